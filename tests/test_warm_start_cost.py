"""What a warm restart costs: one worker checks the files, the others take its word.

The process holding the publisher lock checks every file against the stored publication
and says what it found (stored.CheckVerdict); a worker that does not publish answers from
the same stored publication without reading a file identity, and never on the word of an
earlier process. What it answers is what the live snapshot answers, byte for byte.
"""

from __future__ import annotations

import os
import sys

import pytest

from feedsvc import store as store_module
from feedsvc import stored
from feedsvc.index import ContentIndex
from feedsvc.publisher import PublishedMark, PublisherLock, process_start
from tests.conftest import wait_until
from tests.test_warm_restart import held_assembly, publish_once, serving, write_site

__all__ = ["held_assembly"]  # a fixture, used by name

# Every site and section feed of write_site's content, in each format.
FEEDS = [
    f"/{name}.{ext}" for name in ("feed", "culture", "news") for ext in ("xml", "atom", "json")
]
CODINGS = ["identity", "gzip", "br"]


def answer(client, path: str, coding: str) -> tuple:
    """Everything a reader gets for `path` in `coding`: status, body and the headers that count."""
    response = client.get(path, headers={"Accept-Encoding": coding})
    headers = response.headers
    names = ("ETag", "Last-Modified", "Cache-Control", "Content-Encoding", "Content-Type", "Vary")
    return (response.status_code, response.data, *(headers.get(name) for name in names))


def every_answer(client) -> dict:
    return {(path, coding): answer(client, path, coding) for path in FEEDS for coding in CODINGS}


def refuse_file_checks(monkeypatch) -> None:
    """Fail the test if this process compares a file with the index, or reads identities."""

    def refused(*args, **kwargs):
        raise AssertionError("a worker that does not publish checked the files")

    read = ContentIndex._read_stored_publication

    def read_without_files(self, conn, with_files=True, *rest):
        assert not with_files, "a worker that does not publish read every file's identity"
        return read(self, conn, with_files, *rest)

    monkeypatch.setattr(stored, "why_not_current", refused)
    monkeypatch.setattr(ContentIndex, "_read_stored_publication", read_without_files)


@pytest.fixture
def checks(monkeypatch) -> list:
    """Count the file checks this process makes."""
    made = []
    check = stored.why_not_current

    def counted(*args):
        made.append(args)
        return check(*args)

    monkeypatch.setattr(stored, "why_not_current", counted)
    return made


def test_a_second_worker_answers_on_the_publishers_check(
    write_article, backdate, make_app, held_assembly, monkeypatch
):
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    publisher = make_app(WATCH_CONTENT=True)
    publisher_answers = every_answer(publisher.test_client())
    assert publisher.extensions["feedsvc"].role()["role"] == "publisher"

    with monkeypatch.context() as patched:
        refuse_file_checks(patched)
        follower = make_app(WATCH_CONTENT=True)
        assert follower.extensions["feedsvc"].stored_publication() is not None
    assert follower.extensions["feedsvc"].role() == {
        "role": "follower",
        "pid": os.getpid(),
        "generation": 1,
        "serving": "index",  # the publisher's feeds from the index: no site held
    }
    assert every_answer(follower.test_client()) == publisher_answers


def test_what_the_publisher_found_changed_is_not_answered_by_any_worker(
    write_article, backdate, make_app, held_assembly, content_dir, monkeypatch
):
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    story = content_dir / "culture" / "story-1.md"
    story.write_text(story.read_text().replace("Story 1", "Story X"))
    publisher = make_app(WATCH_CONTENT=True)
    assert publisher.extensions["feedsvc"].stored_publication() is None

    with monkeypatch.context() as patched:
        refuse_file_checks(patched)
        follower = make_app(WATCH_CONTENT=True).extensions["feedsvc"]
        assert follower.stored_publication() is None
        assert follower.stored_answer("/culture.xml") is None
    held_assembly.set()
    assert b"Story X" in publisher.test_client().get("/culture.xml").data


def write_verdict(state_dir, pid: int, start: str, state: str, generation: int) -> None:
    (state_dir / stored.VERDICT_NAME).write_text(f"{pid} {start} {state} {generation}\n")


@pytest.mark.parametrize("left", ["earlier process, same pid", "older publication", "none"])
def test_a_worker_checks_for_itself_without_its_publishers_word(
    write_article, backdate, make_app, held_assembly, content_dir, checks, monkeypatch, left
):
    """A verdict of an earlier run (a restarted container's workers get the same pids),
    or of an earlier publication (a worker respawned later), is not the publisher's word
    on this one: the worker checks the files itself, and finds the change made meanwhile."""
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    state_dir = content_dir.parent / "state"
    generation = ContentIndex.for_settings(make_app().extensions["feedsvc"].settings).generation()
    if left == "earlier process, same pid":
        write_verdict(state_dir, os.getpid(), "1", "current", generation)
    elif left == "older publication":
        write_verdict(state_dir, os.getpid(), process_start(os.getpid()), "current", generation - 1)
    else:  # (the one publish_once left is this process's own: the same pid and start)
        (state_dir / stored.VERDICT_NAME).unlink()
    story = content_dir / "culture" / "story-1.md"
    story.write_text(story.read_text().replace("Story 1", "Story X"))
    monkeypatch.setattr(stored, "VERDICT_WAIT_SECONDS", 0.05)
    lock = PublisherLock(state_dir)  # another process publishes, and says nothing
    assert lock.held()
    try:
        follower = make_app(WATCH_CONTENT=True).extensions["feedsvc"]
        assert follower.stored_publication() is None
    finally:
        lock.release()
    assert len(checks) == 1


def test_the_stored_answers_are_the_live_ones_in_every_coding(
    write_article, backdate, make_app, held_assembly
):
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    app = make_app(WATCH_CONTENT=True)
    client = app.test_client()
    from_stored = every_answer(client)
    assert serving(app) == "stored publication"
    assert {coding for (_, coding), a in from_stored.items() if a[5] == coding} == {"gzip", "br"}
    etag = from_stored[("/news.atom", "gzip")][2]
    conditional = {"If-None-Match": etag, "Accept-Encoding": "gzip"}
    assert client.get("/news.atom", headers=conditional).status_code == 304

    held_assembly.set()
    wait_until(lambda: serving(app) == "live", "the live snapshot served")
    assert every_answer(client) == from_stored


def test_only_the_site_and_section_feeds_are_answered_before_the_load(
    write_article, backdate, make_app, held_assembly
):
    """Tag, author and archive feeds, pages and the OPML file wait for the live snapshot."""
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    store = make_app(WATCH_CONTENT=True).extensions["feedsvc"]
    publication = store.stored_publication()
    assert sorted(publication.documents) == sorted(FEEDS)
    for path in ("/tags/weather.xml", "/feeds.opml", "/culture/", "/culture/story-1/"):
        assert store.stored_answer(path) is None


def test_the_load_gives_way_to_requests_until_it_is_done(
    write_article, backdate, make_app, held_assembly
):
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    before = sys.getswitchinterval()
    app = make_app(WATCH_CONTENT=True)
    assert app.extensions["feedsvc"].stored_publication() is not None
    loading = store_module.LOADING_SWITCH_SECONDS
    wait_until(lambda: sys.getswitchinterval() == loading, "a short switch interval")
    held_assembly.set()
    wait_until(lambda: serving(app) == "live", "the live snapshot served")
    wait_until(lambda: sys.getswitchinterval() == before, "the switch interval restored")


def test_the_publisher_says_what_it_found(write_article, backdate, make_app, held_assembly):
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    store = make_app(WATCH_CONTENT=True).extensions["feedsvc"]
    assert store.stored_publication() is not None
    verdict = stored.CheckVerdict(store.settings.state_dir).read()
    assert verdict == (os.getpid(), process_start(os.getpid()), "current", 1)


def test_a_worker_loads_while_the_publisher_does_not_after_it(
    write_article, backdate, make_app, held_assembly, content_dir, monkeypatch
):
    """A worker that found the stored publication current (on its own check here) answers
    its feeds from the index, and once a request needs the site, takes its file states
    from the index at once: it need not wait for the publisher's load."""
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    state_dir = content_dir.parent / "state"
    (state_dir / stored.VERDICT_NAME).unlink()
    monkeypatch.setattr(stored, "VERDICT_WAIT_SECONDS", 0.05)
    lock = PublisherLock(state_dir)  # a publisher still loading: it publishes nothing
    assert lock.held()
    mark = PublishedMark(state_dir)  # what is published was published by an earlier run
    mark.path.write_text(f"{mark.read()[0]} {os.getppid()}\n")
    try:
        app = make_app(WATCH_CONTENT=True)
        client = app.test_client()
        before = every_answer(client)
        assert serving(app) == "index"
        held_assembly.set()
        assert client.get("/culture/story-1/").status_code == 200  # a page: the site loads
        assert serving(app) == "live"
        assert app.extensions["feedsvc"].role()["role"] == "follower"
        assert every_answer(client) == before
    finally:
        lock.release()
