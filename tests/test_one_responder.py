"""One responder: pages, feeds and the OPML file are answered by the fast path, never by Flask."""

from __future__ import annotations

import gzip

import brotli
import pytest
from flask import request, request_started

from tests.conftest import article_text

PAGES = [
    "/",
    "/culture/",
    "/culture/page/2/",
    "/culture/story-1/",
    "/tags/tides/",
    "/tags/tides/page/2/",
    "/authors/zoe-martin/",
]
DOCUMENTS = ["/feed.xml", "/culture.atom", "/tags/tides.json", "/feeds.opml"]


@pytest.fixture
def site(write_section, write_stories, monkeypatch):
    from feedsvc import pages

    monkeypatch.setattr(pages, "SECTION_PAGE_SIZE", 2)
    write_section("culture", "Culture")
    write_stories("culture", 3, tags=["Tides"], author="Zoë Martin")


@pytest.fixture
def count_flask_requests():
    """Return a function that makes a list of the paths of an app's requests reaching Flask."""
    receivers = []

    def count(app) -> list[str]:
        reached: list[str] = []

        def record(sender, **extra):
            reached.append(request.path)

        request_started.connect(record, app)
        receivers.append((record, app))
        return reached

    yield count
    for record, app in receivers:
        request_started.disconnect(record, app)


@pytest.fixture
def flask_requests(site, make_app, count_flask_requests):
    """Return an app and the paths of the requests that reached Flask."""
    app = make_app()
    return app, count_flask_requests(app)


@pytest.mark.parametrize("path", PAGES + DOCUMENTS)
def test_every_precomputed_document_is_answered_without_flask(flask_requests, path):
    app, reached = flask_requests
    client = app.test_client()
    first = client.get(path)  # the first request renders it, still outside Flask
    again = client.get(path)
    assert first.status_code == again.status_code == 200
    assert first.data == again.data and first.headers["ETag"] == again.headers["ETag"]
    assert reached == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/nowhere/", 404),
        ("/culture/no-such-story/", 404),
        ("/culture/page/9/", 404),
        ("/culture/page/1/", 404),
        ("/tags/nobody/", 404),
        ("/culture", 308),
        ("/healthz", 200),
    ],
)
def test_what_is_not_a_document_goes_on_to_flask(flask_requests, path, status):
    app, reached = flask_requests
    assert app.test_client().get(path).status_code == status
    assert reached == [path]


def test_slash_redirect_keeps_the_query_and_percent_encodes(flask_requests):
    app, _ = flask_requests
    client = app.test_client()
    response = client.get("/tags/tides?from=mail")
    assert (response.status_code, response.headers["Location"]) == (308, "/tags/tides/?from=mail")
    response = client.get("/tags/音楽")
    assert response.status_code == 308
    assert response.headers["Location"] == "/tags/%E9%9F%B3%E6%A5%BD/"


@pytest.mark.parametrize("path", ["/", "/culture/page/2/", "/culture/story-1/"])
def test_pages_get_head_304_and_encodings_like_feeds(flask_requests, path):
    app, reached = flask_requests
    client = app.test_client()
    head = client.head(path)  # a HEAD first: rendered all the same, no body sent
    plain = client.get(path)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == plain.headers["ETag"]
    assert head.headers["Content-Length"] == str(len(plain.data))
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert plain.headers["Cache-Control"] == "public, max-age=60"
    zipped = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] == plain.headers["ETag"][:-1] + '-gz"'
    squeezed = client.get(path, headers={"Accept-Encoding": "br"})
    assert brotli.decompress(squeezed.data) == plain.data
    for validator in (
        {"If-None-Match": plain.headers["ETag"]},
        {"If-Modified-Since": plain.headers["Last-Modified"]},
    ):
        unchanged = client.get(path, headers=validator)
        assert unchanged.status_code == 304 and unchanged.data == b""
        assert unchanged.headers["ETag"] == plain.headers["ETag"]
        assert unchanged.headers["Last-Modified"] == plain.headers["Last-Modified"]
    refused = client.post(path)
    assert (refused.status_code, refused.headers["Allow"]) == (405, "GET, HEAD")
    assert reached == []


def test_a_new_snapshot_renders_its_pages_afresh(flask_requests, content_dir):
    app, reached = flask_requests
    client = app.test_client()
    store = app.extensions["feedsvc"]
    before = client.get("/culture/story-1/")
    old = store.snapshot()
    assert old.pages.get("/culture/story-1/") is not None
    story = content_dir / "culture" / "story-1.md"
    story.write_text(story.read_text().replace("Story 1", "Story 1, corrected"))
    new = store.refresh({"culture/story-1.md"})
    assert new is not old and new.pages.get("/culture/story-1/") is None
    after = client.get("/culture/story-1/")
    assert b"Story 1, corrected" in after.data and b"Story 1, corrected" not in before.data
    assert after.headers["ETag"] != before.headers["ETag"]
    assert new.pages.get("/culture/story-1/") is not None
    assert reached == []


def test_pages_under_a_path_prefix_are_answered_without_flask(site, make_app, count_flask_requests):
    app = make_app(SITE_URL="https://example.org/news")
    reached = count_flask_requests(app)
    page = app.test_client().get("/news/culture/")
    assert page.status_code == 200
    assert b'href="/news/culture/story-3/"' in page.data
    assert b'href="/news/static/style.css"' in page.data
    assert b'rel="next" href="/news/culture/page/2/"' in page.data
    assert reached == []


def test_error_pages_moves_and_takedowns_still_come_from_flask(site, content_dir, make_app):
    story = content_dir / "culture" / "story-2.md"
    text = story.read_text()
    story.write_text(text.replace("title:", "aliases: [/culture/old-story/]\ntitle:", 1))
    (content_dir / "culture" / "libel.md").write_text(
        article_text(title="Libel", date="2026-01-01T00:00:00Z", takedown="Court order"),
        encoding="utf-8",
    )
    client = make_app().test_client()
    moved = client.get("/culture/old-story/")
    assert (moved.status_code, moved.headers["Location"]) == (301, "/culture/story-2/")
    gone = client.get("/culture/libel/")
    assert gone.status_code == 410 and b"removed by the editors" in gone.data
    missing = client.get("/nowhere/")
    assert missing.status_code == 404 and b'href="/static/style.css"' in missing.data
