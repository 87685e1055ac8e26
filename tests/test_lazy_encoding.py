"""Compressed codings are made on first request, once, and equal wherever they are made."""

from __future__ import annotations

import gzip
import threading

import brotli
import pytest

from feedsvc import responses
from feedsvc.responses import build_representation, respond

RSS = "application/rss+xml; charset=utf-8"
BODY = b"".join(b"<item><title>Story %d</title></item>\n" % n for n in range(300))
NOW = 1_700_000_000.0


@pytest.fixture
def compressions(monkeypatch) -> list[str]:
    """Count the calls that compress a body, by coding."""
    calls: list[str] = []
    real = responses._compress

    def counting(body: bytes, coding: str) -> bytes:
        calls.append(coding)
        return real(body, coding)

    monkeypatch.setattr(responses, "_compress", counting)
    return calls


def get(rep, method="GET", **headers):
    environ = {f"HTTP_{name.upper()}": value for name, value in headers.items()}
    return respond(rep, method, environ, NOW)


def header(headers, name):
    return dict(headers).get(name)


def test_building_compresses_nothing(compressions):
    rep = build_representation(BODY, RSS, 1_600_000_000, 300, browser_content_type="text/xml")
    assert set(rep.variants) == {"identity", "gzip", "br"}
    assert compressions == []


def test_a_coding_is_made_on_its_first_request_and_kept(compressions):
    rep = build_representation(BODY, RSS, 1_600_000_000, 300)
    status, headers, body = get(rep, accept_encoding="gzip")
    assert status == "200 OK"
    assert gzip.decompress(body) == BODY
    assert header(headers, "Content-Length") == str(len(body))
    for _ in range(3):
        assert get(rep, accept_encoding="gzip")[2] == body
    assert compressions == ["gzip"]
    assert brotli.decompress(get(rep, accept_encoding="br")[2]) == BODY
    assert compressions == ["gzip", "br"]


def test_a_304_needs_no_compression(compressions):
    rep = build_representation(BODY, RSS, 1_600_000_000, 300)
    identity = rep.variants["identity"].etag
    status, headers, body = get(rep, accept_encoding="br", if_none_match=identity[:-1] + '-br"')
    assert (status, body) == ("304 Not Modified", b"")
    assert header(headers, "ETag") == identity[:-1] + '-br"'
    assert compressions == []


def test_equal_bodies_give_equal_codings_and_etags_in_any_order():
    first = build_representation(BODY, RSS, 1_600_000_000, 300)
    second = build_representation(BODY, RSS, 1_600_000_000, 300)
    assert get(second, accept_encoding="br")[1:] == get(first, accept_encoding="br")[1:]
    # Made in another order (another worker): the same bytes and validators.
    assert get(second, accept_encoding="gzip")[1:] == get(first, accept_encoding="gzip")[1:]
    assert first == second  # compared without compressing


def test_concurrent_first_requests_compress_once(compressions):
    rep = build_representation(BODY * 20, RSS, 1_600_000_000, 300)
    bodies = []
    barrier = threading.Barrier(8)

    def ask():
        barrier.wait()
        bodies.append(get(rep, accept_encoding="gzip")[2])

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(bodies)) == 1 and len(bodies) == 8
    assert compressions == ["gzip"]


def test_a_head_sends_the_length_of_the_get():
    rep = build_representation(BODY, RSS, 1_600_000_000, 300)
    _, head_headers, head_body = get(rep, "HEAD", accept_encoding="gzip")
    _, get_headers, body = get(rep, accept_encoding="gzip")
    assert head_body == b""
    assert head_headers == get_headers
    assert header(head_headers, "Content-Length") == str(len(body))


def test_an_edit_compresses_nothing_until_asked(write_article, make_app, compressions):
    for day in range(1, 6):
        write_article("culture", f"story-{day}", title=f"Story {day}", date=f"2026-01-0{day}")
    app = make_app()
    client = app.test_client()
    assert client.get("/feed.xml").status_code == 200
    path = write_article("culture", "story-3", title="Story 3, edited", date="2026-01-03")
    app.extensions["feedsvc"].refresh([str(path.relative_to(path.parent.parent))])
    assert compressions == []
    reply = client.get("/culture.atom", headers={"Accept-Encoding": "gzip"})
    assert b"Story 3, edited" in gzip.decompress(reply.data)
    assert compressions == ["gzip"]
    path = write_article("culture", "story-4", title="Story 4, edited", date="2026-01-04")
    app.extensions["feedsvc"].refresh([str(path.relative_to(path.parent.parent))])
    asked = {"Accept-Encoding": "gzip", "If-None-Match": reply.headers["ETag"]}
    assert client.get("/culture.atom", headers=asked).status_code == 200
    fresh = client.get("/culture.atom", headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    assert client.get("/culture.atom", headers={**asked, "If-None-Match": fresh}).status_code == 304
    assert compressions == ["gzip", "gzip"]  # one per version asked for, none for the 304
