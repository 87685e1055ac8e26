"""On a first start, every worker answers as soon as the publisher's first look does.

A follower has no publication to answer from until the publisher's full read ends and
records one; meanwhile it asks the publisher for every answer (renderlink.py), so every
worker serves the same bytes, ETag and Last-Modified, and none reads the content itself.
The full read is held back (tests/held_read_wsgi.py) so what is served before it ends is
seen for what it is. With no publisher to ask, a follower's threads wait for one once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from pathlib import Path

from feedsvc import firstlook, renderlink, store
from tests.conftest import free_port, wait_until
from tests.test_follower_serving import reports
from tests.test_publisher import get, granian, validators

SUBSCRIPTIONS = [
    f"/{name}.{ext}" for name in ("feed", "culture", "news") for ext in ("xml", "atom", "json")
]


def write_site(write_stories, backdate) -> None:
    write_stories("culture", 20, tags=["Books"])
    write_stories("news", 9, first="2026-02-01T09:00:00+00:00", author="Sam Okafor")
    backdate()


@contextlib.contextmanager
def held_read_server(content_dir: Path, tmp_path: Path, gate: Path, *options: str):
    """Run granian's two workers on a first start whose full read waits for `gate`."""
    state, log = tmp_path / "state", tmp_path / "server.log"
    held = {"HELD_FULL_READ": str(gate)}
    server = granian(
        free_port(),
        content_dir,
        state,
        log,
        *options,
        target="tests.held_read_wsgi:app",
        environ=held,
        WATCH_CONTENT="true",
        FEED_ITEMS="3",
    )
    try:
        with server as (port, _):
            yield port, log
    finally:
        gate.touch()  # a worker held at the gate would never stop


def every_worker_live(port: int) -> bool:
    return all(r["serving"] in ("live", "index") for r in reports(port).values())


def test_every_worker_answers_the_first_look_before_the_full_read_ends(
    write_stories, backdate, content_dir, tmp_path
):
    write_site(write_stories, backdate)
    gate = tmp_path / "read"  # absent: no process reads the files in full
    with held_read_server(content_dir, tmp_path, gate) as (port, log):
        wait_until(lambda: len(reports(port)) == 2, "both workers answering")
        workers = reports(port).values()
        assert {(r["role"], r["serving"]) for r in workers} == {
            ("publisher", firstlook.KIND),
            ("follower", store.BORROWING),
        }
        # Every worker: the same bytes, ETag and Last-Modified, and what is still checked.
        first = {path: validators(port, path) for path in SUBSCRIPTIONS}
        for _ in range(8):
            assert firstlook.STILL_CHECKING in json.loads(get(port, "/healthz")[2])["reasons"]
        assert not gate.exists()

        gate.touch()
        wait_until(lambda: every_worker_live(port), "every worker serving the publication")
        # What the full read publishes is what the first look answered, in every worker.
        assert {path: validators(port, path) for path in SUBSCRIPTIONS} == first
        assert validators(port, "/tags/books.xml")[0]
    text = log.read_text()
    assert "asks process" in text and "for every answer until it publishes" in text
    assert "loading the site" not in text and "no publisher to ask" not in text


def test_a_publisher_killed_during_the_first_look_is_replaced_by_one_that_looks_again(
    write_stories, backdate, content_dir, tmp_path
):
    write_site(write_stories, backdate)
    gate = tmp_path / "read"
    respawn = "--respawn-failed-workers"
    with held_read_server(content_dir, tmp_path, gate, respawn) as (port, log):
        wait_until(lambda: len(reports(port)) == 2, "both workers answering")
        first = {path: validators(port, path) for path in SUBSCRIPTIONS}
        (killed,) = [pid for pid, r in reports(port).items() if r["role"] == "publisher"]
        os.kill(killed, signal.SIGKILL)

        def replaced() -> bool:
            try:
                workers = reports(port)
            except OSError:  # the worker killed, as it goes
                return False
            return killed not in workers and {
                (r["role"], r["serving"]) for r in workers.values()
            } == {("publisher", firstlook.KIND), ("follower", store.BORROWING)}

        # The follower publishes now, from a first look of its own: the full read still held.
        wait_until(replaced, "a new publisher answering from its first look", deadline=30)
        assert {path: validators(port, path) for path in SUBSCRIPTIONS} == first
        assert not gate.exists()
        gate.touch()
        wait_until(lambda: every_worker_live(port), "every worker serving the publication")
        assert {path: validators(port, path) for path in SUBSCRIPTIONS} == first
    assert "takes over publishing" in log.read_text()


def test_once_no_publisher_answered_in_time_no_thread_waits_for_one_again(tmp_path, monkeypatch):
    """A follower's threads share one wait for a publisher to come, not one wait each."""
    monkeypatch.setattr(renderlink, "CONNECT_SECONDS", 0.2)
    link = renderlink.PublisherLink(tmp_path)  # nothing listens for this state folder
    attempts: list[int] = []
    connect = link._connect

    def counted():
        attempts.append(threading.get_ident())
        return connect()

    monkeypatch.setattr(link, "_connect", counted)
    assert link.ask({"path": "/feed.xml"}, lambda: True) is None
    assert len(attempts) > 1  # it kept trying while a publisher could still come
    attempts.clear()
    answers = []
    other = threading.Thread(target=lambda: answers.append(link.ask({"path": "/"}, lambda: True)))
    other.start()
    other.join()
    assert answers == [None] and len(attempts) == 1
