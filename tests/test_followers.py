"""One publisher, many servers: one process reads the files, the others follow what it publishes."""

from __future__ import annotations

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from feedsvc import store
from tests.conftest import free_port, wait_until
from tests.test_publisher import children, everywhere, get, granian, validators, write_site


@pytest.fixture
def parsed(monkeypatch):
    """Record, per store, which files it parses."""
    seen: dict[int, list[str]] = {}
    read = store.read_content_files

    def counting(root, rels, settings, *args, **kwargs):
        rels = list(rels)
        seen.setdefault(id(settings), []).extend(rels)
        return read(root, rels, settings, *args, **kwargs)

    monkeypatch.setattr(store, "read_content_files", counting)
    return seen


def feed(app, path: str = "/culture.atom") -> bytes:
    return app.test_client().get(path).data


def role(app) -> str:
    return app.test_client().get("/healthz").json["publishing"]["role"]


def test_a_second_process_follows_without_parsing_and_takes_over(
    write_article, backdate, make_app, parsed, content_dir
):
    write_site(write_article, backdate)
    publisher = make_app(WATCH_CONTENT=True)
    assert b"Story 2" in feed(publisher)
    follower = make_app(WATCH_CONTENT=True)
    assert feed(follower) == feed(publisher)
    assert (role(publisher), role(follower)) == ("publisher", "follower")

    write_article("culture", "story-1", title="Story 1, corrected", date="2026-01-02")
    write_article("culture", "story-9", title="A new story", date="2026-01-09")
    (content_dir / "culture" / "story-0.md").unlink()
    for app in (publisher, follower):
        wait_until(lambda app=app: b"A new story" in feed(app), "the new story everywhere")
        wait_until(lambda app=app: b"Story 0" not in feed(app), "the removal everywhere")
        assert b"Story 1, corrected" in feed(app)
    client_a, client_b = publisher.test_client(), follower.test_client()
    for path in ("/culture.atom", "/feed.xml", "/feed.json", "/feeds.opml"):
        a, b = client_a.get(path), client_b.get(path)
        assert (a.data, a.headers["ETag"], a.headers["Last-Modified"]) == (
            b.data,
            b.headers["ETag"],
            b.headers["Last-Modified"],
        ), path
    follower_settings = id(follower.extensions["feedsvc"].settings)
    assert parsed.get(follower_settings, []) == []  # the follower never read a file

    publisher.extensions["feedsvc"].close()  # as when its process dies: the lock is free
    wait_until(lambda: role(follower) == "publisher", "the follower taking over", deadline=15)
    late = make_app(WATCH_CONTENT=True)  # follows the new publisher, content unchanged
    assert role(late) == "follower"
    assert feed(late) == feed(follower)
    write_article("culture", "story-10", title="After the takeover", date="2026-01-10")
    wait_until(lambda: b"After the takeover" in feed(follower), "an edit after the takeover")


def test_a_late_worker_serves_the_publication_at_once(write_article, backdate, make_app, parsed):
    write_site(write_article, backdate)
    publisher = make_app(WATCH_CONTENT=True)
    before = publisher.test_client().get("/feed.xml")
    late = make_app(WATCH_CONTENT=True).test_client().get("/feed.xml")
    assert late.data == before.data
    assert late.headers["ETag"] == before.headers["ETag"]
    assert len(parsed) == 1  # only the publisher's settings ever parsed


def test_an_index_lost_under_a_running_server_is_written_again_in_full(
    write_article, backdate, make_app, content_dir
):
    write_site(write_article, backdate)
    publisher = make_app(WATCH_CONTENT=True)
    follower = make_app(WATCH_CONTENT=True)
    assert b"Story 0" in feed(follower)
    publisher.extensions["feedsvc"].close()
    state = content_dir.parent / "state"
    for name in os.listdir(state):  # an admin clears the state folder
        if name.startswith("index.sqlite3"):
            os.unlink(state / name)
    (content_dir / "culture" / "story-0.md").unlink()
    wait_until(lambda: role(follower) == "publisher", "the takeover", deadline=15)
    wait_until(lambda: b"Story 0" not in feed(follower), "the removal published")
    # A worker started now follows the new index, which holds every file, not the delta.
    late = make_app(WATCH_CONTENT=True)
    assert role(late) == "follower"
    assert feed(late) == feed(follower)
    assert b"Story 1" in feed(late) and b"Story 2" in feed(late)


# Through the production server: granian's workers are separate processes.


def publishing(port: int, tries: int = 12) -> dict[int, str]:
    """Return the role each worker answering /healthz says it has, by pid."""
    seen = {}
    for _ in range(tries):
        report = json.loads(get(port, "/healthz")[2])["publishing"]
        seen[report["pid"]] = report["role"]
    return seen


def test_workers_follow_one_publisher_and_the_next_takes_over(
    write_article, backdate, content_dir, tmp_path
):
    write_site(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    address = free_port()
    options = ("--respawn-failed-workers",)
    with granian(address, content_dir, state, log, *options, WATCH_CONTENT="true") as (port, srv):
        wait_until(lambda: len(publishing(port)) == 2, "both workers answering")
        roles = publishing(port)
        assert sorted(roles.values()) == ["follower", "publisher"], roles
        write_article("culture", "story-1", title="Story 1, corrected", date="2026-01-02")
        wait_until(lambda: everywhere(port, "/culture.atom", b"Story 1, corrected"), "the edit")
        before = validators(port, "/culture.atom")

        # The publisher dies in the middle of publishing many new files.
        victim = next(pid for pid, what in roles.items() if what == "publisher")
        for n in range(200):
            write_article("culture", f"batch-{n:03}", title=f"Batch {n}", date="2026-02-01")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in children(srv.pid), "the publisher gone")
        status, _, body = get(port, "/feed.json")  # meanwhile: the last whole publication
        assert status == 200 and json.loads(body)["items"]
        wait_until(
            lambda: everywhere(port, "/culture/batch-199/", b"Batch 199"), "the batch", deadline=30
        )
        wait_until(lambda: "publisher" in publishing(port).values(), "a new publisher")
        assert list(publishing(port, tries=16).values()).count("publisher") == 1
        after = validators(port, "/culture.atom")
        assert after[0] != before[0]
        assert log.read_text().count("takes over publishing") <= 1


def test_caches_hear_of_an_edit_only_once_every_worker_serves_it(
    write_article, backdate, content_dir, tmp_path
):
    write_site(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    address = free_port()
    seen_at_purge: list[bool] = []

    class Cache(BaseHTTPRequestHandler):
        """A cache that refetches what it is told to drop at once, from any worker."""

        def do_PURGE(self):
            if self.path == "/culture.atom":
                seen_at_purge.extend(
                    b"Story 1, corrected" in get(address, self.path)[2] for _ in range(8)
                )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    cache = ThreadingHTTPServer(("127.0.0.1", 0), Cache)
    thread = threading.Thread(target=cache.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    purge_url = f"http://127.0.0.1:{cache.server_port}"
    try:
        with granian(address, content_dir, state, log, WATCH_CONTENT="true", PURGE_URLS=purge_url):
            wait_until(lambda: len(publishing(address)) == 2, "both workers answering")
            write_article("culture", "story-1", title="Story 1, corrected", date="2026-01-02")
            wait_until(lambda: seen_at_purge, "the purge of /culture.atom")
    finally:
        cache.shutdown()
        cache.server_close()
        thread.join(timeout=5)
    assert all(seen_at_purge), seen_at_purge
