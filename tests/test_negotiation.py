"""Header negotiation read with werkzeug.http: browsers, encodings and validators."""

from __future__ import annotations

import pytest

from feedsvc.responses import build_representation, choose_encoding, is_browser, respond

RSS = "application/rss+xml; charset=utf-8"
SHOWN = "application/xml; charset=utf-8"
BODY = b"".join(b"<item><title>Story %d by the water</title></item>\n" % n for n in range(300))
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CHROME = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)


@pytest.mark.parametrize(
    ("accept", "browser"),
    [
        (FIREFOX, True),
        (CHROME, True),
        ("text/html", True),
        ("TEXT/HTML", True),
        ("text/html;q=0.5, application/rss+xml;q=0.4", True),
        ("text/*, application/rss+xml;q=0.5", True),
        (None, False),
        ("", False),
        ("*/*", False),
        ("text/html;q=0", False),
        ("text/html;q=0, */*", False),
        ("*/*;q=0.8, text/html;q=0", False),
        ("application/rss+xml, application/atom+xml, */*", False),
        ("application/atom+xml, text/html;q=0.9", False),
        ("text/html;q=0.5, application/feed+json", False),
        ("text/html, application/rss+xml", False),
        ("application/xml, text/xml;q=0.9", False),
        ("text/html;q=abc", False),
    ],
)
def test_is_browser_is_negotiated(accept, browser):
    assert is_browser(accept) is browser


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [(FIREFOX, SHOWN), ("text/html;q=0, */*", RSS), ("*/*", RSS), (None, RSS)],
)
def test_feed_type_follows_negotiation(accept, content_type):
    rep = build_representation(BODY, RSS, 1_700_000_000, 60, browser_content_type=SHOWN)
    environ = {} if accept is None else {"HTTP_ACCEPT": accept}
    status, headers, body = respond(rep, "GET", environ, 1_700_000_100.0)
    assert (status, body) == ("200 OK", BODY)
    assert dict(headers)["Content-Type"] == content_type
    assert dict(headers)["Vary"] == "Accept-Encoding, Accept"


def test_the_same_header_twice_gets_the_same_answer():
    # Parsed values are cached by the raw header: a second request must not differ.
    for _ in range(2):
        assert choose_encoding("gzip;q=0.4, br;q=0.6", ("identity", "gzip", "br")) == "br"
        assert choose_encoding("gzip;q=0.4, br;q=0.6", ("identity", "gzip")) == "gzip"
        assert is_browser("text/html;q=0, */*") is False


@pytest.mark.parametrize(
    ("if_none_match", "expected"),
    [
        ('"a", *', "304 Not Modified"),
        ('W/"a", W/{tag}', "304 Not Modified"),
        ('"a",{tag},"b"', "304 Not Modified"),
        ("{bare}", "200 OK"),
        ('{bare}, "a"', "200 OK"),
        ('{tag}"', "200 OK"),
        ("W/", "200 OK"),
    ],
)
def test_if_none_match_lists(if_none_match, expected):
    rep = build_representation(BODY, RSS, 1_700_000_000, 60)
    tag = rep.variants["identity"].etag
    environ = {"HTTP_IF_NONE_MATCH": if_none_match.format(tag=tag, bare=tag.strip('"'))}
    status, _, _ = respond(rep, "GET", environ, 1_700_000_100.0)
    assert status == expected


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (FIREFOX, "application/xml"),
        ("text/html;q=0, */*", "application/rss+xml"),
        ("application/rss+xml, text/html;q=0.9", "application/rss+xml"),
    ],
)
def test_served_feed_type_follows_negotiation(
    write_section, write_stories, client_factory, accept, content_type
):
    write_section("culture", "Culture")
    write_stories("culture", 1)
    response = client_factory().get("/culture.xml", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.mimetype == content_type
