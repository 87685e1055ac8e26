"""A first start answers every feed, archive page and page from its first look, the
articles each shows read in full on demand, with the bytes, ETag and Last-Modified the
live snapshot gives; what it cannot answer yet is a 503 with Retry-After, never a wait.

The live snapshot's read is held back (see test_first_start.held_full_read), so what is
served before it is seen for what it is.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest

from feedsvc import loader
from feedsvc.loader import BackgroundRead
from feedsvc.parsing import ParseContext
from tests.conftest import wait_until
from tests.test_first_start import held_full_read  # noqa: F401 (a fixture)
from tests.w3c_rules import feed_problems

FORMATS = ("xml", "atom", "json")
# Beyond the site and section feeds: tag, author and archive feeds, the feed list, pages.
FEEDS = [
    f"/{stem}.{ext}"
    for stem in ("tags/books", "authors/sam-okafor", "culture/archive/1", "feed/archive/2")
    for ext in FORMATS
]
PAGES = ["/", "/culture/", "/culture/story-4/", "/tags/books/", "/authors/sam-okafor/"]
DOCUMENTS = [*FEEDS, "/feeds.opml", *PAGES]


def write_site(write_stories, write_article, backdate) -> None:
    write_stories("culture", 20, tags=["Books", "Lyon"])
    write_stories("news", 9, first="2026-02-01T09:00:00+00:00", author="Sam Okafor")
    write_article("news", "old-books", tags=["Books"], date="2025-01-01T09:00:00+00:00")
    backdate()


def answer(client, path: str) -> tuple:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.data, response.headers["ETag"], response.headers["Last-Modified"]


def serving(client) -> str:
    return client.get("/healthz").json["publishing"]["serving"]


@pytest.fixture
def looking(write_stories, write_article, backdate, make_app, held_full_read):  # noqa: F811
    """Return a test client on a site answered from a first look, and the gate of the
    live snapshot's read."""
    write_site(write_stories, write_article, backdate)
    return make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client(), held_full_read


def test_every_document_answers_from_a_first_look_as_the_live_snapshot_does(looking):
    client, gate = looking
    first = {path: answer(client, path) for path in DOCUMENTS}
    assert serving(client) == "first look"
    for path in FEEDS:
        body = first[path][0]
        if path.endswith(".json"):
            assert json.loads(body)["items"], path
            continue
        assert feedparser.parse(body).bozo == 0, path
        assert feed_problems(body) == [], path
    books = feedparser.parse(first["/tags/books.xml"][0])
    assert [e.title for e in books.entries] == ["Story 20", "Story 19", "Story 18"]
    assert "<p>Body text.</p>" in books.entries[0].content[0].value  # read in full
    archive = feedparser.parse(first["/culture/archive/1.atom"][0])
    assert [e.title for e in archive.entries] == ["Story 3", "Story 2", "Story 1"]
    assert b"Body text." in first["/culture/story-4/"][0]

    gate.set()
    wait_until(lambda: serving(client) == "live", "the live snapshot")
    assert {path: answer(client, path) for path in DOCUMENTS} == first


def test_every_feed_of_the_feed_list_answers_over_http_during_a_first_look(
    write_stories,
    write_article,
    backdate,
    serve,
    held_full_read,  # noqa: F811
):
    write_site(write_stories, write_article, backdate)
    base = serve(WATCH_CONTENT=True, FEED_ITEMS=3)

    with urllib.request.urlopen(base + "/feeds.opml", timeout=30) as response:
        outline = ET.fromstring(response.read())
    urls = [node.get("xmlUrl") for node in outline.iter("outline") if node.get("xmlUrl")]
    assert f"{base}/tags/lyon.xml" in urls and f"{base}/authors/sam-okafor.xml" in urls
    for url in urls:
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200, url
            assert feedparser.parse(response.read()).bozo == 0, url
    with urllib.request.urlopen(base + "/healthz", timeout=30) as response:
        assert json.loads(response.read())["publishing"]["serving"] == "first look"


def test_what_a_first_look_cannot_answer_is_a_503_to_try_again(looking):
    client, gate = looking
    response = client.get("/culture/no-such-story/")
    assert serving(client) == "first look"
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["Cache-Control"] == "no-store"

    gate.set()
    wait_until(lambda: serving(client) == "live", "the live snapshot")
    assert client.get("/culture/no-such-story/").status_code == 404


@pytest.fixture
def held_reading(monkeypatch, tmp_path):
    """Hold a BackgroundRead's processes before they read anything, until the returned
    file exists (they are forked, so they see this patch)."""
    go = tmp_path / "go"
    read = loader._read_chunk

    def held(*args, **kwargs):
        end = time.monotonic() + 30
        while not go.exists() and time.monotonic() < end:
            time.sleep(0.01)
        return read(*args, **kwargs)

    monkeypatch.setattr(loader, "_read_chunk", held)
    return go


def test_files_read_on_demand_are_not_read_again_behind(
    write_stories, make_app, content_dir: Path, held_reading
):
    write_stories("culture", 12)
    rels = [f"culture/story-{n}.md" for n in range(1, 13)]
    settings = make_app().extensions["feedsvc"].settings
    behind = BackgroundRead(content_dir, rels, settings, {})
    try:
        behind.claim(rels[:5])
        held_reading.touch()
        states = behind.result()
    finally:
        behind.close()
    assert sorted(states) == sorted(rels[5:])
    assert all(state.result.body_html == "<p>Body text.</p>\n" for state in states.values())


def catches_sigterm(pid: int) -> bool:
    """Tell whether a process has a handler of its own for SIGTERM (/proc's SigCgt mask)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        caught = next(line.split()[1] for line in status if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)


def test_a_full_read_told_to_stop_stops_under_a_servers_signal_handlers(
    write_stories, content_dir, make_app, held_reading
):
    # granian's workers catch SIGTERM to end their serving loop; a reader forked from one
    # inherits that, and must stop all the same (its files held: it would wait 30 s).
    write_stories("culture", 4)
    rels = [f"culture/story-{n}.md" for n in range(1, 5)]
    settings = make_app().extensions["feedsvc"].settings
    previous = signal.signal(signal.SIGTERM, lambda number, frame: None)
    try:
        behind = BackgroundRead(content_dir, rels, settings, {})
    finally:
        signal.signal(signal.SIGTERM, previous)
    readers = [process for process, _ in behind._workers]
    for process in readers:  # past its start: the signals it catches are its own
        wait_until(lambda p=process: not catches_sigterm(p.pid), "the reader's own handlers")
    started = time.monotonic()
    for process in readers:
        process.terminate()
    for process in readers:
        process.join(10)
    assert [process.exitcode for process in readers] == [-signal.SIGTERM] * len(readers)
    assert time.monotonic() - started < 10
    behind.close()


def test_a_first_look_gives_the_default_author_as_a_full_read_does(tmp_path):
    (tmp_path / "culture").mkdir()
    (tmp_path / "culture" / "a.md").write_text("---\ntitle: T\ndate: 2026-01-02\n---\nB.\n")
    context = ParseContext(timezone=ZoneInfo("Europe/Paris"), default_author="Staff")
    looked = loader.look_content_file(tmp_path, "culture/a.md", context, {})
    assert looked.result.authors == ("Staff",)
