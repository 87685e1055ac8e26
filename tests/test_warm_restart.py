"""A restart answers the last publication's feeds at once, from the index, while nothing changed.

The live snapshot is held back (its site assembly waits for a gate the test opens), so
what a restarted process serves before it is, is seen for what it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from pathlib import Path

import pytest

from feedsvc import assembly
from feedsvc.index import INDEX_NAME, ContentIndex
from feedsvc.stored import why_not_current
from tests.conftest import free_port, wait_until
from tests.test_publisher import get, validators
from tests.test_publisher import granian as serve

# The site and section feeds: what a stored publication answers.
STORED = ["/feed.xml", "/feed.atom", "/feed.json", "/culture.xml", "/culture.atom", "/news.json"]


def write_site(write_article, backdate) -> None:
    for n in range(3):
        write_article("culture", f"story-{n}", title=f"Story {n}", date=f"2026-01-0{n + 1}")
    write_article("news", "flood", title="Flood", date="2026-01-05", tags=["Weather"])
    backdate()  # files older than the index: their entries are trusted on restart


@pytest.fixture
def held_assembly(monkeypatch):
    """Hold every site assembly until the test sets the returned event (set at the end)."""
    gate = threading.Event()
    assemble = assembly.SiteAssembler.assemble

    def held(self, *args, **kwargs):
        assert gate.wait(30), "the test never let the assembly run"
        return assemble(self, *args, **kwargs)

    monkeypatch.setattr(assembly.SiteAssembler, "assemble", held)
    yield gate
    gate.set()


def served(client, path: str) -> tuple:
    response = client.get(path)
    assert response.status_code == 200, path
    headers = response.headers
    return response.data, headers["ETag"], headers["Last-Modified"], headers["Cache-Control"]


def publish_once(make_app, held_assembly, **config) -> dict:
    """Serve the content once, as a server that then stops does; return its feeds."""
    held_assembly.set()
    app = make_app(WATCH_CONTENT=True, **config)
    client = app.test_client()
    before = {path: served(client, path) for path in STORED}
    app.extensions["feedsvc"].close()
    held_assembly.clear()
    return before


def serving(app) -> str:
    return app.test_client().get("/healthz").json["publishing"]["serving"]


def test_a_restart_answers_the_stored_feeds_before_the_content_loads(
    write_article, backdate, make_app, held_assembly
):
    write_site(write_article, backdate)
    before = publish_once(make_app, held_assembly)

    app = make_app(WATCH_CONTENT=True)
    client = app.test_client()
    assert {path: served(client, path) for path in STORED} == before
    health = client.get("/healthz").json
    assert health["publishing"]["serving"] == "stored publication"
    assert (health["status"], health["articles"], health["sections"]) == ("ok", 4, 2)
    etag = before["/culture.atom"][1]
    assert client.get("/culture.atom", headers={"If-None-Match": etag}).status_code == 304

    held_assembly.set()  # the live snapshot is made, and replaces the stored one
    wait_until(lambda: serving(app) == "live", "the live snapshot served")
    assert {path: served(client, path) for path in STORED} == before
    assert client.get("/culture/story-1/").status_code == 200


@pytest.mark.parametrize(
    "change",
    ["edited", "added", "removed", "media", "section", "touched"],
)
def test_content_changed_while_down_is_never_answered_stale(
    write_article, write_media, backdate, make_app, held_assembly, content_dir, change
):
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    story = content_dir / "culture" / "story-1.md"
    if change == "edited":
        story.write_text(story.read_text().replace("Story 1", "Story X"))
    elif change == "added":
        write_article("culture", "story-9", title="Story X", date="2026-01-09")
    elif change == "removed":
        story.unlink()
    elif change == "media":
        write_media("lead.png", b"\x89PNG\r\n\x1a\n")
    elif change == "section":
        (content_dir / "opinion").mkdir()
    else:  # the same bytes written again: read again, as the live load would
        story.write_text(story.read_text())

    app = make_app(WATCH_CONTENT=True)
    store = app.extensions["feedsvc"]
    assert store.stored_publication() is None
    assert store.stored_answer("/culture.xml") is None
    held_assembly.set()
    body = app.test_client().get("/culture.xml").data
    assert (b"Story X" in body) == (change in ("edited", "added"))
    assert (b"Story 1" in body) == (change not in ("edited", "removed"))


def test_a_corrupt_index_is_not_answered_from(
    write_article, backdate, make_app, held_assembly, content_dir, caplog
):
    write_site(write_article, backdate)
    before = publish_once(make_app, held_assembly)
    index = content_dir.parent / "state" / INDEX_NAME
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.write_bytes(b"not a database" * 100)

    app = make_app(WATCH_CONTENT=True)
    with caplog.at_level(logging.WARNING, logger="feedsvc.index"):
        assert app.extensions["feedsvc"].stored_publication() is None
    assert any("rebuilding it" in r.getMessage() for r in caplog.records)
    held_assembly.set()
    client = app.test_client()
    assert served(client, "/culture.atom")[:3] == before["/culture.atom"][:3]


def test_other_settings_are_not_answered_from(write_article, backdate, make_app, held_assembly):
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    retitled = make_app(WATCH_CONTENT=True, SITE_TITLE="Another Gazette")
    assert retitled.extensions["feedsvc"].stored_publication() is None
    held_assembly.set()
    assert b"Another Gazette" in retitled.test_client().get("/feed.xml").data


def test_a_feed_stored_since_by_another_process_is_not_answered_from(
    write_article, backdate, make_app, held_assembly
):
    write_site(write_article, backdate)
    publish_once(make_app, held_assembly)
    # A worker still behind the publisher stores its rendering of an older publication.
    app = make_app(WATCH_CONTENT=True)
    index = ContentIndex.for_settings(app.extensions["feedsvc"].settings)
    index.store_document("/feed.xml", b"another key", ("text/xml", {}, (), None))
    index.close()
    assert app.extensions["feedsvc"].stored_publication() is None


def test_a_scheduled_change_come_due_makes_it_stale(
    write_article, backdate, make_app, held_assembly
):
    write_site(write_article, backdate)
    write_article("news", "later", title="Later", date="2999-01-01T00:00:00Z")
    backdate()
    publish_once(make_app, held_assembly)
    settings = make_app(WATCH_CONTENT=True).extensions["feedsvc"].settings
    index = ContentIndex.for_settings(settings)
    parts = index.stored_publication()
    index.close()
    due = parts.manifest["next_release"]
    assert due == pytest.approx(32472144000.0)
    assert why_not_current(settings.content_dir, parts, due - 1) is None
    assert why_not_current(settings.content_dir, parts, due) == "a scheduled change has come due"


def test_a_file_saved_as_it_changed_is_read_again(write_article, make_app, held_assembly):
    write_site(write_article, lambda: None)  # not backdated: saved within a second of a write
    publish_once(make_app, held_assembly)
    assert make_app(WATCH_CONTENT=True).extensions["feedsvc"].stored_publication() is None


# Through the production server: granian's workers, each answering before it loads.


@contextlib.contextmanager
def granian(port: int, content_dir: Path, state_dir: Path, log_path: Path, gate: Path | None):
    """Run granian with two workers; with `gate`, no worker assembles the site before it exists."""
    if gate is None:
        with serve(port, content_dir, state_dir, log_path) as (port, _):
            yield port
        return
    gated = {"GATED_ASSEMBLY": str(gate)}
    with serve(
        port, content_dir, state_dir, log_path, target="tests.gated_wsgi:app", environ=gated
    ):
        try:
            yield port
        finally:
            gate.touch()  # a worker held at the gate would never stop


def test_granian_workers_answer_the_stored_feeds_with_equal_validators(
    write_article, backdate, content_dir, tmp_path
):
    write_site(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    address = free_port()
    with granian(address, content_dir, state, log, None) as port:
        before = {path: validators(port, path) for path in STORED}

    gate = tmp_path / "assemble"  # absent: no worker assembles the site
    with granian(address, content_dir, state, log, gate) as port:
        assert {path: validators(port, path) for path in STORED} == before
        for _ in range(8):
            report = json.loads(get(port, "/healthz")[2])
            # The publisher loads behind it; a follower answers from the index, holding no site.
            assert report["publishing"]["serving"] in ("stored publication", "index")
        gate.touch()
        wait_until(
            lambda: all(
                json.loads(get(port, "/healthz")[2])["publishing"]["serving"] in ("live", "index")
                for _ in range(8)
            ),
            "every worker serving its live snapshot",
            deadline=30,
        )
        assert {path: validators(port, path) for path in STORED} == before
        assert get(port, "/culture/")[0] == 200


def test_a_server_stopped_while_recording_its_first_publication_keeps_it(
    write_article, backdate, content_dir, tmp_path
):
    write_site(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    address = free_port()
    gate = tmp_path / "record"  # absent: the first publication is served, not yet recorded
    held = {"HELD_RECORD": str(gate)}
    target = "tests.held_record_wsgi:app"
    with serve(address, content_dir, state, log, target=target, environ=held) as (port, server):
        wait_until(lambda: gate.with_suffix(".started").exists(), "the publication recorded")
        before = {path: validators(port, path) for path in STORED}
        os.killpg(server.pid, signal.SIGTERM)  # as a service manager stops it
        threading.Timer(0.5, gate.touch).start()  # the write ends after the stop was asked
        server.wait(timeout=30)

    gate = tmp_path / "assemble"  # absent: the restart has only the index to answer from
    with granian(address, content_dir, state, log, gate) as port:
        assert {path: validators(port, path) for path in STORED} == before
