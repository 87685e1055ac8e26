"""Recording a first start's index: states in the form the reader processes made, crash-safe."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from feedsvc import loader
from feedsvc.index import INDEX_NAME
from feedsvc.loader import FileState, TakenState
from tests.conftest import fetch_all

FEEDS = ("/feed.xml", "/feed.atom", "/feed.json", "/culture.xml", "/news.atom", "/opinion.json")


@pytest.fixture
def in_reader_processes(monkeypatch):
    """Parse a small tree in reader processes, as a first start of thousands of files does."""
    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", 4)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


@pytest.fixture
def newsroom(write_stories, write_section, write_article, backdate):
    """Write three sections of stories, one file broken, all older than the racy window."""
    write_section("culture", "Culture", "Arts and ideas.")
    write_stories("culture", 9, tags=["Opera", "Riga"], author=["Ann Example"])
    write_stories("news", 8, first="2026-02-01", body="News *body* with [a link](/culture/).")
    write_stories("opinion", 7, first="2026-01-01T12:00:00+02:00", tags=["Essays"])
    write_article("news", "broken", title=["not", "a", "title"])
    backdate()


def index_rows(state_dir: Path) -> tuple[list, list]:
    """Return the index's file states and bodies as stored, without their save times."""
    conn = sqlite3.connect(state_dir / INDEX_NAME)
    try:
        files = conn.execute(
            "SELECT rel, generation, mtime_ns, size, inode, state FROM files ORDER BY rel"
        ).fetchall()
        bodies = conn.execute(
            "SELECT rel, digest, replaced, packed FROM bodies ORDER BY rel, digest"
        ).fetchall()
    finally:
        conn.close()
    return files, bodies


def described(site) -> tuple:
    """Return what a site publishes (its problems by what they say: errors never compare)."""
    return site.sections, tuple(site.articles), site.version, [p.key for p in site.problems]


def served(app) -> dict[str, bytes]:
    return fetch_all(app.test_client(), FEEDS)


def test_states_from_reader_processes_are_recorded_as_the_main_process_would(
    tmp_path, make_app, newsroom, in_reader_processes, monkeypatch
):
    """The same index bytes, site and feeds whether the main process pickles or the readers do."""
    taken = make_app(STATE_DIR=str(tmp_path / "taken"))
    store = taken.extensions["feedsvc"]
    site = store.snapshot().site
    states = {rel: s for rel, s in store._states.items() if rel.endswith(".md")}
    assert all(type(state) is TakenState for state in states.values())
    assert all(state.stored is None for state in states.values())  # dropped once recorded
    taken_feeds = served(taken)

    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", 10**6)  # parsed here, pickled here
    here = make_app(STATE_DIR=str(tmp_path / "here"))
    here_store = here.extensions["feedsvc"]
    assert described(here_store.snapshot().site) == described(site)
    assert not any(isinstance(s, TakenState) for s in here_store._states.values())
    assert served(here) == taken_feeds
    assert index_rows(tmp_path / "taken") == index_rows(tmp_path / "here")
    # A state equals its plain copy both ways, as one read back from the index does.
    for state in states.values():
        plain = FileState(*FileState.__reduce__(state)[1])
        assert plain == state and state == plain and hash(plain) == hash(state)


def test_an_index_recorded_from_reader_processes_serves_a_restart_as_it_is(
    tmp_path, make_app, newsroom, in_reader_processes, monkeypatch
):
    """A restart reads no file again and serves the same site, with bodies from the index."""
    first = make_app()
    site = first.extensions["feedsvc"].snapshot().site
    feeds = served(first)
    first.extensions["feedsvc"].close()

    def no_reading(*args, **kwargs):
        raise AssertionError("a file was read again although the index holds it")

    monkeypatch.setattr(loader, "_read_bytes", no_reading)
    again = make_app()
    assert described(again.extensions["feedsvc"].snapshot().site) == described(site)
    assert served(again) == feeds
    article = again.extensions["feedsvc"].snapshot().find("news", "story-3")
    assert "<em>body</em>" in article.body.html  # read from the index's bodies


# Run in a child process: load the content, and be killed (SIGKILL, nothing cleaned up) at
# a chosen moment of recording the index: mid-transaction, or just as it commits.
CRASHING_START = """
import os, signal, sys
from feedsvc import create_app, index, loader
loader.PARALLEL_MIN_FILES = 4
os.cpu_count = lambda: 2
moment = sys.argv[3]
checks = []
has_rows = index._has_rows

def crash_while_recording(conn, table):
    checks.append(table)
    if moment == table:  # "gone": the states written; "bodies": no body yet
        os.kill(os.getpid(), signal.SIGKILL)
    return has_rows(conn, table)

index._has_rows = crash_while_recording
app = create_app({"CONTENT_DIR": sys.argv[1], "STATE_DIR": sys.argv[2], "WATCH_CONTENT": False,
                  "SITE_URL": "https://news.example.org"})
app.extensions["feedsvc"].snapshot()
"""


@pytest.mark.parametrize("moment", ["gone", "bodies"])
def test_a_start_killed_while_recording_leaves_an_index_that_is_never_served_half(
    tmp_path, content_dir, make_app, newsroom, moment
):
    """The killed transaction leaves nothing: the restart reads every file and records them."""
    state_dir = tmp_path / "state"
    root = Path(__file__).resolve().parent.parent
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_START, str(content_dir), str(state_dir), moment],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr.decode()
    assert (state_dir / INDEX_NAME).exists()
    assert index_rows(state_dir) == ([], [])  # nothing of the killed recording is kept

    restarted = make_app(STATE_DIR=str(state_dir))
    site = restarted.extensions["feedsvc"].snapshot().site
    assert len(site.articles) == 24
    files, bodies = index_rows(state_dir)
    assert len(files) == 26 and len(bodies) == 24  # every file, every article's body
    feeds = served(restarted)
    fresh = make_app(STATE_DIR=str(tmp_path / "fresh"))
    assert described(fresh.extensions["feedsvc"].snapshot().site) == described(site)
    assert served(fresh) == feeds
