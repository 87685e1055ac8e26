"""Unit tests of the precomputed-response helpers: negotiation, validators, cache headers."""

from __future__ import annotations

import gzip
from dataclasses import replace
from email.utils import formatdate

import brotli
import pytest

from feedsvc.heap import Reclaimer
from feedsvc.responses import (
    Representation,
    Variant,
    build_representation,
    choose_encoding,
    parse_http_date,
    respond,
    wsgi_respond,
)

RSS = "application/rss+xml; charset=utf-8"
LAST_MODIFIED = 1_700_000_000  # Tue, 14 Nov 2023 22:13:20 GMT
LM_HTTP = "Tue, 14 Nov 2023 22:13:20 GMT"
NOW = LAST_MODIFIED + 3600.0
HUB = ("Link", '<https://hub.example.org/>; rel="hub"')
ALL = ("identity", "gzip", "br")
BODY = "".join(
    f"<item><title>Story {n}</title><description>Café number {n} opens by the water."
    f"</description></item>\n"
    for n in range(400)
).encode()


def http_date(seconds: float) -> str:
    """Format `seconds` as an IMF-fixdate, the form clients echo back."""
    return formatdate(seconds, usegmt=True)


@pytest.fixture
def rep() -> Representation:
    return build_representation(BODY, RSS, LAST_MODIFIED, 300, extra_headers=[HUB])


def call(rep: Representation, method: str = "GET", now: float = NOW, **headers: str):
    """Run respond() with `headers` given as WSGI keys (if_none_match → HTTP_IF_NONE_MATCH)."""
    environ = {"REQUEST_METHOD": method}
    environ.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    return respond(rep, method, environ, now)


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    """Return the single value of header `name`, or None; fail if it appears twice."""
    values = [value for key, value in headers if key.lower() == name.lower()]
    assert len(values) <= 1, f"{name} repeated: {values}"
    return values[0] if values else None


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "identity"),
        ("", "identity"),
        ("gzip", "gzip"),
        ("br", "br"),
        ("gzip, deflate, br", "br"),
        ("gzip, deflate, br, zstd", "br"),
        ("deflate", "identity"),
        ("GZIP", "gzip"),
        ("Br;Q=0.5, GZip;q=0.4", "br"),
        ("x-gzip", "gzip"),
        ("X-GZIP;q=0.8, br;q=0.5", "gzip"),
        ("  gzip ;  q=0.5 ,  br ; q=0.9  ", "br"),
        ("gzip;q=1.0, br;q=0.9", "gzip"),
        ("gzip;q=0.5, br;q=0.5", "br"),
        ("gzip;q=0.5, identity;q=0.5", "gzip"),
        ("gzip;q=0.5, identity", "identity"),
        ("gzip;q=0.001", "gzip"),
        ("gzip;q=0", "identity"),
        ("gzip;q=0.000", "identity"),
        ("br;q=0, gzip", "gzip"),
        ("*", "br"),
        ("*;q=0.5, gzip", "gzip"),
        ("br;q=0, *", "gzip"),
        ("*;q=0", "identity"),
        ("*;q=0, identity;q=0", "identity"),
        ("identity;q=0", "identity"),
        ("identity", "identity"),
        ("gzip;q=abc", "identity"),
        ("gzip;q=, br;q=0.1", "br"),
        ("gzip;q, br;q=0.1", "br"),
        ("gzip;q=-1", "identity"),
        ("gzip;q=1e0", "identity"),
        ("gzip;q=nan", "identity"),
        ("gzip;q=1.5, br", "br"),
        ("gzip;level=1", "gzip"),
        (",,gzip,,", "gzip"),
        ("gzip br", "identity"),
        (";q=1", "identity"),
        ("gzip;q=0, gzip;q=0.7", "gzip"),
    ],
)
def test_choose_encoding(accept, expected):
    assert choose_encoding(accept, ALL) == expected


@pytest.mark.parametrize(
    ("accept", "available", "expected"),
    [
        ("br, gzip;q=0.5", {"identity", "gzip"}, "gzip"),
        ("br", {"identity", "gzip"}, "identity"),
        ("*", {"identity"}, "identity"),
        ("gzip", {"identity", "br"}, "identity"),
    ],
)
def test_choose_encoding_only_offers_available(accept, available, expected):
    assert choose_encoding(accept, available) == expected


def test_compressed_variants_decode_to_identity(rep):
    assert set(rep.variants) == set(ALL)
    assert rep.variants["identity"].body == BODY
    assert gzip.decompress(rep.variants["gzip"].body) == BODY
    assert brotli.decompress(rep.variants["br"].body) == BODY
    assert len(rep.variants["br"].body) < len(BODY) / 4


def test_etags_share_a_stem_and_differ_per_coding(rep):
    identity = rep.variants["identity"].etag
    assert identity.startswith('"') and identity.endswith('"') and len(identity) == 34
    assert rep.variants["gzip"].etag == identity[:-1] + '-gz"'
    assert rep.variants["br"].etag == identity[:-1] + '-br"'


def test_build_is_deterministic(rep):
    again = build_representation(BODY, RSS, LAST_MODIFIED, 300, extra_headers=[HUB])
    for coding in ALL:
        assert again.variants[coding] == rep.variants[coding]
    assert rep.variants["gzip"].body[4:8] == bytes(4)  # gzip MTIME field: no build time


def test_other_body_gets_other_etags(rep):
    other = build_representation(BODY + b"\n", RSS, LAST_MODIFIED, 300)
    for coding in ALL:
        assert other.variants[coding].etag != rep.variants[coding].etag


def test_tiny_body_keeps_identity_only():
    tiny = build_representation(b"ok", "text/plain", LAST_MODIFIED, 60)
    assert set(tiny.variants) == {"identity"}
    status, headers, body = call(tiny, accept_encoding="gzip, br")
    assert (status, body) == ("200 OK", b"ok")
    assert header(headers, "Content-Encoding") is None
    assert header(headers, "Vary") == "Accept-Encoding"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"variants": {"gzip": Variant(b"x", '"a-gz"')}}, ValueError),
        ({"variants": {"identity": Variant(b"x", '"a"'), "zstd": Variant(b"", '"b"')}}, ValueError),
        ({"extra_headers": (("ETag", '"x"'),)}, ValueError),
        ({"extra_headers": (("Link", "<a>\r\nSet-Cookie: x=1"),)}, ValueError),
        ({"extra_headers": (("Bad Name", "x"),)}, ValueError),
        ({"content_type": "text/html\r\nX: y"}, ValueError),
        ({"last_modified": 1.5}, TypeError),
        ({"expires_at": float("inf")}, ValueError),
    ],
)
def test_representation_refuses_bad_input(rep, change, error):
    with pytest.raises(error):
        replace(rep, **change)


@pytest.mark.parametrize("etag", ['W/"abc"', "abc", '"a"b"', '"'])
def test_variant_refuses_non_strong_etag(etag):
    with pytest.raises(ValueError):
        Variant(b"x", etag)


def test_get_200_headers(rep):
    status, headers, body = call(rep, accept_encoding="gzip")
    assert status == "200 OK"
    assert body == rep.variants["gzip"].body
    assert header(headers, "Content-Type") == RSS
    assert header(headers, "Content-Length") == str(len(body))
    assert header(headers, "Content-Encoding") == "gzip"
    assert header(headers, "ETag") == rep.variants["gzip"].etag
    assert header(headers, "Last-Modified") == LM_HTTP
    assert header(headers, "Cache-Control") == "public, max-age=300"
    assert header(headers, "Vary") == "Accept-Encoding"
    assert header(headers, "Link") == HUB[1]


def test_identity_200_has_vary_and_no_content_encoding(rep):
    status, headers, body = call(rep)
    assert (status, body) == ("200 OK", BODY)
    assert header(headers, "Content-Encoding") is None
    assert header(headers, "Content-Length") == str(len(BODY))
    assert header(headers, "ETag") == rep.variants["identity"].etag
    assert header(headers, "Vary") == "Accept-Encoding"


@pytest.mark.parametrize("accept", [None, "gzip", "br", "identity;q=0"])
def test_head_headers_equal_get_headers(rep, accept):
    extra = {} if accept is None else {"accept_encoding": accept}
    get_status, get_headers, get_body = call(rep, "GET", **extra)
    head_status, head_headers, head_body = call(rep, "HEAD", **extra)
    assert head_status == get_status == "200 OK"
    assert head_headers == get_headers
    assert head_body == b"" and get_body
    assert header(head_headers, "Content-Length") == str(len(get_body))


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("accept", [None, "gzip", "br", "identity;q=0", "br;q=0, gzip;q=0"])
def test_a_packed_body_answers_as_the_plain_one(rep, accept, method):
    packed = build_representation(BODY, RSS, LAST_MODIFIED, 300, extra_headers=[HUB])
    extra = {} if accept is None else {"accept_encoding": accept}
    answer = call(packed, method, **extra)  # prepared before it is packed
    packed.pack()
    for _ in range(2):  # and again once prepared packed
        assert call(packed, method, **extra) == call(rep, method, **extra) == answer
    etag = rep.variants["identity"].etag
    assert call(packed, if_none_match=etag)[0] == "304 Not Modified"
    assert packed == rep and packed.variants == rep.variants


def test_a_packed_body_keeps_no_plain_bytes(rep):
    freed = []
    reclaimer = Reclaimer()
    reclaimer.freed = freed.append
    packed = build_representation(BODY, RSS, LAST_MODIFIED, 300, extra_headers=[HUB])
    assert call(packed)[2] == BODY
    packed.pack(reclaimer)
    for _ in range(3):
        assert call(packed)[2] == BODY
    assert freed == [len(BODY)] * 3  # made for each answer, and counted for giving back
    assert call(packed, accept_encoding="br")[2] == rep.variants["br"].body
    held = len(rep.variants["gzip"].body) + len(rep.variants["br"].body)
    assert packed.variants.held_bytes() == held < len(BODY) / 4
    assert rep.variants.held_bytes() == held + len(BODY)
    assert "identity" not in packed.variants._made and packed._prepared["identity"]._ok is None


def validators(rep: Representation, coding: str) -> tuple[str, str]:
    """Return the selected variant's ETag and its weak form."""
    etag = rep.variants[coding].etag
    return etag, "W/" + etag


@pytest.mark.parametrize(
    ("if_none_match", "expected"),
    [
        ("{gz}", "304 Not Modified"),
        ("{weak_gz}", "304 Not Modified"),
        ("*", "304 Not Modified"),
        ('"nope"', "200 OK"),
        ("{identity}", "200 OK"),
        ("{br}", "200 OK"),
        ('"a", {gz}, "b"', "304 Not Modified"),
        ('"a",{weak_gz}', "304 Not Modified"),
        ('  "a" ,   {gz}   ', "304 Not Modified"),
        ("junk, {gz}", "304 Not Modified"),
        ('"a", "b"', "200 OK"),
        ("{gz}junk", "200 OK"),
        ("{stem}", "200 OK"),
        ("garbage", "200 OK"),
    ],
)
def test_if_none_match(rep, if_none_match, expected):
    tags = {coding: rep.variants[coding].etag for coding in ALL}
    value = if_none_match.format(
        gz=tags["gzip"],
        weak_gz="W/" + tags["gzip"],
        identity=tags["identity"],
        br=tags["br"],
        stem=tags["gzip"].strip('"'),
    )
    status, _, body = call(rep, accept_encoding="gzip", if_none_match=value)
    assert status == expected
    assert (body == b"") == (expected == "304 Not Modified")


@pytest.mark.parametrize(
    ("if_modified_since", "expected"),
    [
        (LM_HTTP, "304 Not Modified"),
        (http_date(LAST_MODIFIED - 1), "200 OK"),
        (http_date(LAST_MODIFIED + 1), "304 Not Modified"),
        (http_date(NOW + 86_400 * 365), "304 Not Modified"),
        ("Tuesday, 14-Nov-23 22:13:20 GMT", "304 Not Modified"),
        ("Tue Nov 14 22:13:20 2023", "304 Not Modified"),
        ("Tue Nov 14 22:13:19 2023", "200 OK"),
        ("Tue, 14 Nov 2023 23:13:20 +0100", "304 Not Modified"),
        ("Tue, 14 Nov 2023 23:13:19 +0100", "200 OK"),
        ("not a date", "200 OK"),
        ("Tue, 32 Nov 2023 22:13:20 GMT", "200 OK"),
        ("Tue, 14 Nov 2023 25:13:20 GMT", "200 OK"),
        ("", "200 OK"),
    ],
)
def test_if_modified_since(rep, if_modified_since, expected):
    status, _, _ = call(rep, if_modified_since=if_modified_since)
    assert status == expected


def test_if_none_match_mismatch_overrides_matching_date(rep):
    status, _, body = call(rep, if_none_match='"other"', if_modified_since=LM_HTTP)
    assert (status, body) == ("200 OK", BODY)


def test_if_none_match_match_overrides_old_date(rep):
    etag = rep.variants["br"].etag
    old = http_date(LAST_MODIFIED - 86_400)
    status, _, _ = call(rep, accept_encoding="br", if_none_match=etag, if_modified_since=old)
    assert status == "304 Not Modified"


def test_blank_if_none_match_falls_back_to_date(rep):
    status, _, _ = call(rep, if_none_match="  ", if_modified_since=LM_HTTP)
    assert status == "304 Not Modified"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_304_carries_validators_and_no_entity_headers(rep, method):
    etag = rep.variants["br"].etag
    status, headers, body = call(rep, method, accept_encoding="br", if_none_match=etag)
    assert (status, body) == ("304 Not Modified", b"")
    assert header(headers, "ETag") == etag
    assert header(headers, "Last-Modified") == LM_HTTP
    assert header(headers, "Cache-Control") == "public, max-age=300"
    assert header(headers, "Vary") == "Accept-Encoding"
    assert header(headers, "Link") == HUB[1]
    for name in ("Content-Length", "Content-Type", "Content-Encoding"):
        assert header(headers, name) is None


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [
        (None, "public, max-age=300"),
        (120.7, "public, max-age=120"),
        (300.0, "public, max-age=300"),
        (10_000.0, "public, max-age=300"),
        (0.4, "public, max-age=0"),
        (-50.0, "public, max-age=0"),
    ],
)
def test_max_age_never_reaches_past_expiry(rep, expires_in, expected):
    expires_at = None if expires_in is None else NOW + expires_in
    scheduled = replace(rep, expires_at=expires_at)
    _, ok_headers, _ = call(scheduled)
    _, not_modified_headers, _ = call(scheduled, if_modified_since=LM_HTTP)
    assert header(ok_headers, "Cache-Control") == expected
    assert header(not_modified_headers, "Cache-Control") == expected


def test_negative_max_age_is_clamped(rep):
    _, headers, _ = call(replace(rep, max_age=-5))
    assert header(headers, "Cache-Control") == "public, max-age=0"


def test_other_methods_get_405_even_when_conditional(rep):
    etag = rep.variants["identity"].etag
    status, headers, body = call(rep, "POST", if_none_match=etag)
    assert (status, body) == ("405 Method Not Allowed", b"")
    assert header(headers, "Allow") == "GET, HEAD"


@pytest.mark.parametrize(("method", "expected_body"), [("GET", [BODY]), ("HEAD", [])])
def test_wsgi_respond(rep, method, expected_body):
    calls = []
    environ = {"REQUEST_METHOD": method}
    result = wsgi_respond(rep, environ, lambda *args: calls.append(args), NOW)
    assert result == expected_body
    assert calls == [respond(rep, "GET", environ, NOW)[:2]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784111777.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0),
        ("Sun Nov  6 08:49:37 1994", 784111777.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("garbage", None),
        ("", None),
        ("Sun, 06 Nov 99999 08:49:37 GMT", None),
    ],
)
def test_parse_http_date(value, expected):
    assert parse_http_date(value) == expected
