"""Conditional GET, compression and cache headers, through a real server on 127.0.0.1."""

from __future__ import annotations

import gzip
import http.client
import time
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import urlsplit

import brotli
import pytest

FEED = "/culture.xml"


def request(base: str, path: str, method: str = "GET", **headers) -> http.client.HTTPResponse:
    """Send one request with exactly these headers (underscores become hyphens)."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=5)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        connection.endheaders()
        response = connection.getresponse()
        response.body = response.read()
    finally:
        connection.close()
    return response


@pytest.fixture
def base(write_article, write_section, serve):
    """A served site with one section of two articles."""
    write_section("culture", "Culture")
    write_article("culture", "first", title="First", date="2026-01-01T10:00:00Z")
    write_article("culture", "second", title="Second", date="2026-01-02T10:00:00Z")
    return serve(WATCH_CONTENT=True)


@pytest.fixture
def validators(base):
    """The gzip ETag and the Last-Modified of the feed."""
    response = request(base, FEED, Accept_Encoding="gzip")
    return response.headers["ETag"], response.headers["Last-Modified"]


def shifted(http_date: str, seconds: int) -> str:
    return formatdate(parsedate_to_datetime(http_date).timestamp() + seconds, usegmt=True)


CONDITIONS = {
    "etag match": (lambda etag, lm: {"If-None-Match": etag}, 304),
    "etag mismatch": (lambda etag, lm: {"If-None-Match": '"nope"'}, 200),
    "etag in a list": (lambda etag, lm: {"If-None-Match": f'"a", {etag} , "b"'}, 304),
    "star": (lambda etag, lm: {"If-None-Match": "*"}, 304),
    "weak etag": (lambda etag, lm: {"If-None-Match": f"W/{etag}"}, 304),
    "identity etag while asking gzip": (lambda etag, lm: {"If-None-Match": etag[:-4] + '"'}, 200),
    "since equal": (lambda etag, lm: {"If-Modified-Since": lm}, 304),
    "since older": (lambda etag, lm: {"If-Modified-Since": shifted(lm, -1)}, 200),
    "since newer": (lambda etag, lm: {"If-Modified-Since": shifted(lm, 86400)}, 304),
    "since malformed": (lambda etag, lm: {"If-Modified-Since": "last tuesday"}, 200),
    "etag mismatch wins over since": (
        lambda etag, lm: {"If-None-Match": '"nope"', "If-Modified-Since": lm},
        200,
    ),
    "etag match wins over old since": (
        lambda etag, lm: {"If-None-Match": etag, "If-Modified-Since": shifted(lm, -3600)},
        304,
    ),
}


@pytest.mark.parametrize("case", CONDITIONS)
def test_conditional_get_matrix(base, validators, case):
    make_headers, status = CONDITIONS[case]
    headers = {"Accept-Encoding": "gzip", **make_headers(*validators)}
    response = request(base, FEED, **{k.replace("-", "_"): v for k, v in headers.items()})
    assert response.status == status
    assert (response.body == b"") == (status == 304)


@pytest.mark.parametrize("path", [FEED, "/culture.atom", "/feed.xml", "/culture/", "/"])
def test_304_carries_validators_and_cache_headers(base, path):
    first = request(base, path, Accept_Encoding="gzip")
    again = request(base, path, Accept_Encoding="gzip", If_None_Match=first.headers["ETag"])
    assert again.status == 304
    assert again.body == b""
    for name in ("ETag", "Last-Modified", "Cache-Control", "Vary"):
        assert again.headers[name] == first.headers[name], name
    assert again.headers["Content-Length"] in (None, first.headers["Content-Length"])


@pytest.mark.parametrize("path", [FEED, "/culture.atom", "/culture/", "/culture/first/"])
@pytest.mark.parametrize("encoding", ["gzip", "br", "identity"])
def test_head_has_exactly_the_headers_of_get(base, path, encoding):
    head = request(base, path, "HEAD", Accept_Encoding=encoding)  # first: rendered by Flask
    get = request(base, path, Accept_Encoding=encoding)
    head_again = request(base, path, "HEAD", Accept_Encoding=encoding)  # then: precomputed
    assert head.status == get.status == 200
    assert head.body == head_again.body == b""
    expected = {k: v for k, v in get.getheaders() if k.lower() != "date"}
    for response in (head, head_again):
        assert {k: v for k, v in response.getheaders() if k.lower() != "date"} == expected
    assert int(get.headers["Content-Length"]) == len(get.body)


@pytest.mark.parametrize("path", [FEED, "/culture.atom", "/culture/"])
def test_compressed_bodies_decode_to_the_identity_body(base, path):
    plain = request(base, path)
    assert plain.headers["Content-Encoding"] is None
    gzipped = request(base, path, Accept_Encoding="gzip")
    brotlied = request(base, path, Accept_Encoding="gzip;q=0.5, br")
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert brotlied.headers["Content-Encoding"] == "br"
    assert gzip.decompress(gzipped.body) == plain.body
    assert brotli.decompress(brotlied.body) == plain.body
    etags = {r.headers["ETag"] for r in (plain, gzipped, brotlied)}
    assert len(etags) == 3
    for response in (plain, gzipped, brotlied):
        assert "Accept-Encoding" in response.headers["Vary"].split(", ")


@pytest.mark.parametrize(
    ("accept", "coding"),
    [("gzip;q=0, br;q=0", None), ("*", "br"), ("br;q=0.1, gzip;q=0.9", "gzip"), ("x-gzip", "gzip")],
)
def test_encoding_follows_q_values(base, accept, coding):
    assert request(base, FEED, Accept_Encoding=accept).headers["Content-Encoding"] == coding


def test_edit_turns_a_304_into_a_200_with_new_validators(base, validators, write_article):
    etag, last_modified = validators
    write_article("culture", "first", title="First, corrected", date="2026-01-01T10:00:00Z")
    deadline = time.monotonic() + 10
    while (
        response := request(base, FEED, Accept_Encoding="gzip", If_None_Match=etag)
    ).status == 304:
        assert time.monotonic() < deadline, "the edit was never served"
        time.sleep(0.05)
    assert response.status == 200
    assert response.headers["ETag"] != etag
    assert parsedate_to_datetime(response.headers["Last-Modified"]) > parsedate_to_datetime(
        last_modified
    )
    assert b"First, corrected" in gzip.decompress(response.body)


def test_last_modified_is_never_in_the_future(base):
    for path in (FEED, "/feed.atom", "/culture/", "/"):
        response = request(base, path)
        served = parsedate_to_datetime(response.headers["Date"])
        assert parsedate_to_datetime(response.headers["Last-Modified"]) <= served


@pytest.mark.parametrize("path", [FEED, "/culture.atom"])
def test_browsers_get_feeds_as_xml_they_style_and_readers_as_feeds(base, path):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    shown = request(base, path, Accept=browser)
    read = request(base, path, Accept="application/rss+xml, application/atom+xml, */*")
    plain = request(base, path)
    assert shown.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert read.headers["Content-Type"] == plain.headers["Content-Type"] != "application/xml"
    assert shown.body == read.body == plain.body
    assert shown.headers["ETag"] != read.headers["ETag"]
    assert shown.headers["Vary"] == "Accept-Encoding, Accept"
    again = request(base, path, Accept=browser, If_None_Match=shown.headers["ETag"])
    assert again.status == 304


def test_feed_cache_control_is_the_configured_max_age(write_article, serve):
    write_article("culture", "first", title="First", date="2026-01-01T10:00:00Z")
    base = serve(FEED_MAX_AGE=1234)
    assert request(base, FEED).headers["Cache-Control"] == "public, max-age=1234"
    assert request(base, "/culture/").headers["Cache-Control"] == "public, max-age=60"
