"""What a first look read in full, the full read behind it takes up instead of reading again
(checked against its file as an index entry is), and records in the index with the rest."""

from __future__ import annotations

import os
import threading

import pytest

from feedsvc import firstlook, loader, store
from tests.conftest import wait_until

SUBSCRIPTIONS = [
    f"/{name}.{ext}" for name in ("feed", "culture", "news") for ext in ("xml", "atom", "json")
]


@pytest.fixture
def full_reads(monkeypatch):
    """The files each full read asked for, held until the test sets `gate`."""
    monkeypatch.setattr(firstlook, "FIRST_LOOK_MIN_FILES", 1)
    gate = threading.Event()
    calls: list[set[str]] = []
    read = store.read_content_files

    def held(root, rels, *args, **kwargs):
        assert gate.wait(30), "the test never let the full read run"
        rels = set(rels)
        calls.append(rels)
        return read(root, rels, *args, **kwargs)

    monkeypatch.setattr(store, "read_content_files", held)
    yield gate, calls
    gate.set()


def write_site(write_stories, backdate) -> None:
    write_stories("culture", 30)
    write_stories("news", 9, first="2026-02-01T09:00:00+00:00")
    backdate()


def live(client) -> None:
    def served() -> bool:
        return client.get("/healthz").json["publishing"]["serving"] == "live"

    wait_until(served, "the live snapshot")


def feeds(client) -> dict:
    return {path: client.get(path).data for path in SUBSCRIPTIONS}


def test_the_full_read_behind_the_first_look_leaves_nothing_to_read(
    write_stories, backdate, make_app, full_reads, tmp_path, monkeypatch
):
    gate, calls = full_reads
    write_site(write_stories, backdate)
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()
    assert client.get("/culture.xml").status_code == 200  # from the first look
    gate.set()
    live(client)

    assert calls == [set()]  # every file read behind the first look, checked, not read again
    looked = feeds(client)
    monkeypatch.setattr(firstlook, "FIRST_LOOK_MIN_FILES", 10**9)
    plain = make_app(WATCH_CONTENT=True, FEED_ITEMS=3, STATE_DIR=str(tmp_path / "other"))
    assert feeds(plain.test_client()) == looked


def test_without_a_read_behind_it_the_full_read_reads_what_the_first_look_did_not(
    write_stories, backdate, make_app, full_reads, tmp_path, monkeypatch
):
    gate, calls = full_reads
    monkeypatch.setattr(firstlook, "_read_behind", lambda *args: None)
    write_site(write_stories, backdate)
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()
    assert client.get("/culture.xml").status_code == 200  # from the first look
    gate.set()
    live(client)

    (read,) = calls
    assert "culture/story-1.md" in read  # too old for a feed: not read in full before
    assert "culture/story-30.md" not in read and "news/story-9.md" not in read
    looked = feeds(client)
    # The same feeds as a start with no first look.
    monkeypatch.setattr(firstlook, "FIRST_LOOK_MIN_FILES", 10**9)
    plain = make_app(WATCH_CONTENT=True, FEED_ITEMS=3, STATE_DIR=str(tmp_path / "other"))
    assert feeds(plain.test_client()) == looked


def test_a_file_edited_after_the_first_look_read_it_is_read_again(
    write_stories, write_article, backdate, make_app, full_reads
):
    gate, calls = full_reads
    write_site(write_stories, backdate)
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()
    assert b"Story 30" in client.get("/culture.xml").data
    write_article("culture", "story-30", title="Retitled", date="2026-03-30T09:00:00+00:00")
    gate.set()
    live(client)

    assert "culture/story-30.md" in calls[0]
    body = client.get("/culture.xml").data
    assert b"Retitled" in body and b"Story 30" not in body


def test_a_restart_reads_no_file_the_first_look_read(
    write_stories, backdate, make_app, full_reads, monkeypatch
):
    gate, calls = full_reads
    write_site(write_stories, backdate)
    app = make_app(WATCH_CONTENT=True, FEED_ITEMS=3)
    client = app.test_client()
    assert client.get("/culture.xml").status_code == 200
    gate.set()
    live(client)
    first = feeds(client)
    app.extensions["feedsvc"].close()

    calls.clear()
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()
    live(client)
    assert calls and not set().union(*calls)  # every file found in the index, unchanged
    assert feeds(client) == first


def _die(*args) -> None:
    os._exit(3)  # a process of the read behind the first look dies (killed, out of memory)


def test_a_read_behind_that_dies_leaves_the_full_read_to_the_store(
    write_stories, backdate, make_app, full_reads, monkeypatch, caplog
):
    gate, calls = full_reads
    monkeypatch.setattr(loader, "_read_behind", _die)
    write_site(write_stories, backdate)
    client = make_app(WATCH_CONTENT=True, FEED_ITEMS=3).test_client()
    looked = feeds(client)
    gate.set()
    live(client)

    (read,) = calls
    assert "culture/story-1.md" in read and "culture/story-30.md" not in read
    assert "the full read behind the first look failed" in caplog.text
    assert feeds(client) == looked
