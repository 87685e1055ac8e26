"""A first start (no index) answers the site and section feeds from a first look at every
file's front matter, while every file is read in full; then the live snapshot serves.

The full read is held back (it waits for a gate the test opens), so what is served before
it is seen for what it is.
"""

from __future__ import annotations

import gc
import json
import threading
import urllib.request
import weakref
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

import feedparser
import pytest

from feedsvc import firstlook, store, stored
from feedsvc.assembly import SiteAssembler
from feedsvc.loader import look_content_file, read_content_file
from feedsvc.parsing import ParseContext, _quick_front, parse_article
from tests.conftest import wait_until
from tests.w3c_rules import feed_problems

SUBSCRIPTIONS = [
    f"/{name}.{ext}" for name in ("feed", "culture", "news") for ext in ("xml", "atom", "json")
]
# Nested block quotes beyond MAX_BLOCK_NESTING: the full read refuses the file.
TOO_DEEP = ">" * 40 + " deep"


@pytest.fixture
def held_full_read(monkeypatch):
    """Hold the live snapshot's read of every file until the test sets the returned event."""
    monkeypatch.setattr(firstlook, "FIRST_LOOK_MIN_FILES", 1)
    gate = threading.Event()
    read = store.read_content_files

    def held(*args, **kwargs):
        assert gate.wait(30), "the test never let the full read run"
        return read(*args, **kwargs)

    monkeypatch.setattr(store, "read_content_files", held)
    yield gate
    gate.set()


def write_site(write_stories, backdate) -> None:
    write_stories("culture", 20, tags=["Books"])
    write_stories("news", 9, first="2026-02-01T09:00:00+00:00", author="Sam Okafor")
    backdate()


def answer(client, path: str) -> tuple:
    response = client.get(path)
    assert response.status_code == 200, path
    headers = response.headers
    return response.data, headers["ETag"], headers["Last-Modified"]


def serving(client) -> dict:
    return client.get("/healthz").json


def test_a_first_start_answers_full_feeds_before_every_file_is_read(
    write_stories, backdate, make_app, held_full_read
):
    write_site(write_stories, backdate)
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()

    first = {path: answer(client, path) for path in SUBSCRIPTIONS}
    health = serving(client)
    assert health["publishing"]["serving"] == "first look"
    assert firstlook.STILL_CHECKING in health["reasons"]
    rss = feedparser.parse(first["/culture.xml"][0])
    assert rss.bozo == 0
    assert [e.title for e in rss.entries] == ["Story 20", "Story 19", "Story 18"]
    assert "<p>Body text.</p>" in rss.entries[0].content[0].value  # full content, rendered
    assert feedparser.parse(first["/feed.atom"][0]).bozo == 0

    held_full_read.set()
    wait_until(lambda: serving(client)["publishing"]["serving"] == "live", "the live snapshot")
    assert firstlook.STILL_CHECKING not in serving(client)["reasons"]
    # The same bytes, ETag and Last-Modified as the live snapshot serves.
    assert {path: answer(client, path) for path in SUBSCRIPTIONS} == first


def test_a_real_server_answers_valid_feeds_from_a_first_look(
    write_stories, backdate, serve, held_full_read
):
    """Over HTTP, before the full read ends: every site and section feed valid (feedparser,
    the W3C validator's rules, JSON), and /healthz says what is still being read."""
    write_site(write_stories, backdate)
    base = serve(WATCH_CONTENT=True, FEED_ITEMS=3)

    for path in SUBSCRIPTIONS:
        with urllib.request.urlopen(base + path, timeout=30) as response:
            assert response.status == 200, path
            body = response.read()
        if path.endswith(".json"):
            assert json.loads(body)["items"], path
            continue
        assert feedparser.parse(body).bozo == 0, path
        assert feed_problems(body) == [], path
    with urllib.request.urlopen(base + "/healthz", timeout=30) as response:
        health = json.loads(response.read())
    assert health["publishing"]["serving"] == "first look"
    assert firstlook.STILL_CHECKING in health["reasons"]


def test_the_same_feeds_as_a_start_without_a_first_look(
    write_stories, backdate, make_app, held_full_read, tmp_path, monkeypatch
):
    write_site(write_stories, backdate)
    looked = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()
    first = {path: answer(looked, path)[:2] for path in SUBSCRIPTIONS}
    held_full_read.set()

    monkeypatch.setattr(firstlook, "FIRST_LOOK_MIN_FILES", 10**9)
    plain = make_app(WATCH_CONTENT=True, FEED_ITEMS=3, STATE_DIR=str(tmp_path / "other"))
    client = plain.test_client()
    assert serving(client)["publishing"]["serving"] == "live"
    assert {path: answer(client, path)[:2] for path in SUBSCRIPTIONS} == first


def test_a_body_over_the_limits_is_reported_once_every_file_is_read(
    write_stories, write_article, backdate, make_app, held_full_read, content_dir
):
    write_site(write_stories, backdate)
    # An old article: no feed shows it, so only the full read finds its body broken.
    write_article("culture", "too-deep", body=TOO_DEEP, date="2025-01-01T09:00:00+00:00")
    backdate()
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()

    first = {path: answer(client, path) for path in SUBSCRIPTIONS}
    health = serving(client)
    assert health["publishing"]["serving"] == "first look"
    assert health["articles"] == 30  # counted from its front matter, not yet checked

    held_full_read.set()
    wait_until(lambda: serving(client)["publishing"]["serving"] == "live", "the live snapshot")
    health = serving(client)
    assert health["articles"] == 29  # left out, as any start leaves it out
    problems = [p for p in health["problems"] if p["path"].endswith("too-deep.md")]
    assert len(problems) == 1
    assert problems[0]["line"] is not None and "nest" in problems[0]["reason"]
    assert client.get("/culture/too-deep/").status_code == 404
    for path in SUBSCRIPTIONS:
        body, etag, last_modified = answer(client, path)
        if body != first[path][0]:  # one feed fewer in an archive count: published again
            assert etag != first[path][1]
            assert parsedate_to_datetime(last_modified) > parsedate_to_datetime(first[path][2])
        assert feedparser.parse(body).bozo == 0 or path.endswith(".json")


def test_a_feed_showing_a_broken_body_is_as_a_full_start_makes_it(
    write_stories, write_article, backdate, make_app, held_full_read
):
    write_site(write_stories, backdate)
    # The newest article: its feeds would show it, so the first look reads it in full.
    write_article("culture", "too-deep", body=TOO_DEEP, date="2026-06-01T09:00:00+00:00")
    backdate()
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()
    rss = feedparser.parse(answer(client, "/culture.xml")[0])
    assert serving(client)["publishing"]["serving"] == "first look"
    assert "Too Deep" not in [e.title for e in rss.entries]
    assert rss.entries[0].title == "Story 20"


def test_a_restart_answers_what_the_first_start_published_with_no_first_look(
    write_stories, backdate, make_app, held_full_read, monkeypatch
):
    write_site(write_stories, backdate)
    app = make_app(WATCH_CONTENT=True, FEED_ITEMS=3)
    client = app.test_client()
    first = {path: answer(client, path) for path in SUBSCRIPTIONS}
    held_full_read.set()
    wait_until(lambda: serving(client)["publishing"]["serving"] == "live", "the live snapshot")
    app.extensions["feedsvc"].close()

    def never(settings):
        raise AssertionError("a first look on a warm start")

    monkeypatch.setattr(store, "first_look", never)
    held_full_read.clear()
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()
    # The index the first start wrote answers at once, with the first look's validators.
    assert {path: answer(client, path) for path in SUBSCRIPTIONS} == first
    assert serving(client)["publishing"]["serving"] == "stored publication"
    held_full_read.set()


@pytest.fixture
def settled(monkeypatch):
    """Watch the publisher settle after its first publication: the returned event is set
    once it has; then its `version` is the version of the site served before, and its
    `kept` names what the publisher served before that is still held once it has settled
    (the site, the first look)."""
    done = threading.Event()
    settle = store.ContentStore._settle

    def watched(self):
        done.version = self._snapshot.site.version
        served = [weakref.ref(self._snapshot.site), weakref.ref(self._first)]
        settle(self)
        gc.collect()
        done.kept = [type(ref()).__name__ for ref in served if ref() is not None]
        done.set()

    monkeypatch.setattr(store.ContentStore, "_settle", watched)
    return done


def test_once_published_a_first_start_keeps_nothing_it_read(
    write_stories, backdate, make_app, held_full_read, settled
):
    """The publisher loads its first publication again from the index, as a restart
    would, and drops everything the first start made: what that freed then goes back to
    the system whole (bench/publisher_bench.py --memory measures it)."""
    write_site(write_stories, backdate)
    app = make_app(WATCH_CONTENT=True, FEED_ITEMS=3)
    client = app.test_client()
    first = {path: answer(client, path) for path in SUBSCRIPTIONS}
    held_full_read.set()
    assert settled.wait(30), "the publisher never settled"

    assert settled.kept == []
    assert app.extensions["feedsvc"].site.version == settled.version  # the same content
    health = serving(client)["publishing"]
    assert (health["serving"], health["generation"]) == ("live", 1)  # not published again
    assert {path: answer(client, path) for path in SUBSCRIPTIONS} == first


def test_while_it_settles_the_feeds_answer_from_the_index(
    write_stories, backdate, make_app, held_full_read, settled, monkeypatch
):
    write_site(write_stories, backdate)
    app = make_app(WATCH_CONTENT=True, FEED_ITEMS=3)
    client = app.test_client()
    first = {path: answer(client, path) for path in SUBSCRIPTIONS}
    loading, go_on = threading.Event(), threading.Event()

    class Held(SiteAssembler):  # only the settling publisher makes a new assembler
        def assemble(self, *args, **kwargs):
            loading.set()
            assert go_on.wait(30), "the test never let the load go on"
            return super().assemble(*args, **kwargs)

    monkeypatch.setattr(store, "SiteAssembler", Held)
    held_full_read.set()
    assert loading.wait(30), "the publisher never loaded its publication again"

    health = serving(client)["publishing"]
    assert (health["serving"], health["generation"]) == (stored.RELOADING, 1)
    assert {path: answer(client, path) for path in SUBSCRIPTIONS} == first
    go_on.set()
    assert settled.wait(30)
    assert serving(client)["publishing"]["serving"] == "live"
    assert {path: answer(client, path) for path in SUBSCRIPTIONS} == first


def test_it_loads_again_once_requests_let_go_of_what_it_served(
    write_stories, backdate, make_app, held_full_read, settled, monkeypatch
):
    """A request still answering from the first snapshot when the publisher settles (a
    /healthz a follower forwarded) holds it: the load waits for it to be let go, or what
    it allocates fills the holes between that snapshot's objects and keeps their memory."""
    write_site(write_stories, backdate)
    app = make_app(WATCH_CONTENT=True, FEED_ITEMS=3)
    client = app.test_client()
    answer(client, "/culture.xml")
    first: list[weakref.ref] = []
    gone_when_loaded: list[bool] = []
    settle, changes_since = store.ContentStore._settle, store.ContentIndex.changes_since

    def settle_while_held(self):
        held = [self._snapshot]
        first.append(weakref.ref(held[0]))

        def request():  # done with the snapshot a moment after the settle starts
            threading.Event().wait(0.3)
            held.clear()

        threading.Thread(target=request).start()
        settle(self)

    def watched(self, generation):
        if generation == 0 and first:
            gone_when_loaded.append(first[0]() is None)
        return changes_since(self, generation)

    monkeypatch.setattr(store.ContentStore, "_settle", settle_while_held)
    monkeypatch.setattr(store.ContentIndex, "changes_since", watched)
    held_full_read.set()
    assert settled.wait(30), "the publisher never settled"

    assert gone_when_loaded == [True]
    assert serving(client)["publishing"]["serving"] == "live"


def test_edits_after_it_settles_are_published(
    write_stories, write_article, backdate, make_app, held_full_read, settled, content_dir
):
    write_site(write_stories, backdate)
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()
    answer(client, "/culture.xml")
    held_full_read.set()
    assert settled.wait(30)

    write_article("culture", "late-arrival", title="Late Arrival", date="2026-06-01T09:00:00Z")
    write_article("culture", "story-20", title="Story 20, revised", date="2026-03-20T09:00:00Z")
    (content_dir / "culture" / "story-19.md").unlink()

    def titles():
        return [e.title for e in feedparser.parse(answer(client, "/culture.xml")[0]).entries]

    expected = ["Late Arrival", "Story 20, revised", "Story 18"]
    wait_until(lambda: titles() == expected, "the edits in /culture.xml")
    assert serving(client)["publishing"]["generation"] >= 2


CONTEXT = ParseContext(timezone=ZoneInfo("Europe/Paris"), default_author="Staff")
QUICK = [
    "title: Plain title\ndate: 2026-01-02 08:28:21+05:30\nupdated: 2026-01-03T09:00:00\n",
    'title: "Quoted: a title"\ndate: "Wed, 07 Jan 2026 14:38:48 +0530"\ntags:\n  - a\n',
    "title: 'Single'\ndate: 2026-01-02\nupdated: 2025-01-01\nid: tag:example.org,2026:/a\n",
    'title: T\ndate: 2026-01-02T10:00:00Z\nid: "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"\n',
    "title: T\r\ndate: 2026-01-02T10:00:00Z\r\nimage:\r\n  src: /media/a.png\r\n",
    'title: T\ndate: "June 12, 2026 14:30"\nupdated: "Fri, 02 Oct 2026 14:30:00 -0000"\n',
    'title: T\ndate: "Mon, 02 Mar 2026 14:30:00 GMT"\nupdated: "March 3, 2026"\n',
    'title: T\ndate: "Tue, 31 Mar 2026 23:30:00 +0100"\nupdated: "October 25, 2026 02:30"\n',
    # Tags and authors, which select the items of their feeds.
    "title: T\ndate: 2026-01-02\ntags:\n  - Books\n  - São Paulo\n  - 'Quoted: yes'\n"
    "author: Jane Doe <jane@example.org>\n",
    "title: T\ndate: 2026-01-02\ntags: [books, \"New York\", 'a, b']\n"
    "author:\n- jane@example.org (Jane Doe)\n- Sam\n",
    "title: T\ndate: 2026-01-02\ntags: Books\nauthor: [Sam Okafor, Sam Okafor]\n",
    "title: T\ndate: 2026-01-02\ntags: []\nauthor:\n",
    "title: T\ndate: 2026-01-02\ntags:\n  # a comment\n  - O'Brien\n",
]
YAML_ONLY = [
    "title: null\ndate: 2026-01-02\n",
    "title: T\ndate: 2026-01-02 # a comment\n",
    "title: >-\n  Folded\n  title\ndate: 2026-01-02\n",
    "title: T\ndate: 2026-01-02\ndraft: true\n",
    "title: T\ndate: 2026-01-02\naliases: [/a/]\n",
    "title: T\ndate: 2026-01-02\nid: 42\n",
    "title: T\ndate: &d 2026-01-02\nupdated: *d\n",
    'title: T\ndate: "2026-01-02\\t"\n',
    "title: T\ndate: 2026-01-02\ntags: [yes, no]\n",
    "title: T\ndate: 2026-01-02\ntags:\n  - 2026\n",
    "title: T\ndate: 2026-01-02\ntags:\n  - a\n    b\n",
    "title: T\ndate: 2026-01-02\ntags:\n  - [a, b]\n",
    "title: T\ndate: 2026-01-02\nauthor: &who Sam\n",
    "title: T\ndate: 2026-01-02\ntags: [a, b,]\n",
    'title: T\ndate: 2026-01-02\ntags: ["a\\tb"]\n',
]


@pytest.mark.parametrize("front", QUICK)
def test_the_quick_front_matter_read_gives_what_yaml_gives(front):
    text = f"\ufeff---\n{front}---\nBody.\n"
    quick = parse_article(text, "a.md", "culture", "a", CONTEXT, body=False)
    full = parse_article(text, "a.md", "culture", "a", CONTEXT)
    assert _quick_front(text, "a.md", "culture", "a", CONTEXT) is not None
    assert (quick.date, quick.updated, quick.explicit_id, quick.tags, quick.authors) == (
        full.date,
        full.updated,
        full.explicit_id,
        full.tags,
        full.authors,
    )


@pytest.mark.parametrize("front", YAML_ONLY)
def test_front_matter_written_otherwise_is_left_to_yaml(front):
    assert _quick_front(f"---\n{front}---\nBody.\n", "a.md", "culture", "a", CONTEXT) is None


LONG_FRONT = "title: Long\ndate: 2026-01-02T10:00:00Z\nnotes: |\n" + "  é line\n" * 600


@pytest.mark.parametrize(
    "text",
    [
        "---\ntitle: Plain\ndate: 2026-01-02T10:00:00+02:00\n---\nBody.\n",
        "---\n" + LONG_FRONT + "---\nBody.\n",  # front matter beyond the first 4 KB
        "---\ntitle: É\ndate: 2026-01-02\n---\n" + "é" * 3000 + "\n",  # cut within a letter
        "---\ntitle: Draft\ndate: 2026-01-02\ndraft: true\n---\nBody.\n",
        "---\ntitle: Bad\ndate: someday\n---\nBody.\n",
        "---\ntitle: Moved\ndate: 2026-01-02\naliases: [/old/]\n---\nBody.\n",
    ],
)
def test_a_first_look_at_a_file_reads_what_a_front_matter_read_does(tmp_path, text):
    """The first look's quick read of a file's start gives the state the YAML read gives."""
    (tmp_path / "culture").mkdir()
    (tmp_path / "culture" / "a.md").write_text(text, encoding="utf-8")
    looked = look_content_file(tmp_path, "culture/a.md", CONTEXT, {})
    read = read_content_file(tmp_path, "culture/a.md", CONTEXT, {}, body=False)
    assert (looked.result, str(looked.problem), looked.fingerprint) == (
        read.result,
        str(read.problem),
        read.fingerprint,
    )


def test_a_linked_file_is_looked_at_as_it_is_read(tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("---\ntitle: Out\ndate: 2026-01-02\n---\nBody.\n", encoding="utf-8")
    content = tmp_path / "content"
    (content / "culture").mkdir(parents=True)
    (content / "culture" / "a.md").symlink_to(outside)
    looked = look_content_file(content, "culture/a.md", CONTEXT, {})
    assert looked.result is None and "outside the content folder" in looked.problem.reason
