"""The persistent index: restarts re-read only what changed; a bad index is never trusted."""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from feedsvc import SettingsError, store
from feedsvc.index import INDEX_NAME
from tests.conftest import free_port, in_forked_child, stop_process_group, wait_until
from tests.test_websub_notifier import hub  # noqa: F401  (a fixture)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def parsed(monkeypatch):
    """Record which files the store parses."""
    seen: list[str] = []
    read = store.read_content_files

    def counting(root, rels, *args, **kwargs):
        rels = list(rels)
        seen.extend(rels)
        return read(root, rels, *args, **kwargs)

    monkeypatch.setattr(store, "read_content_files", counting)
    return seen


def titles(app) -> list[str]:
    return [a.title for a in app.extensions["feedsvc"].snapshot().published()]


def stop(app) -> None:
    """Load the content, as serving does, then shut the app down."""
    app.extensions["feedsvc"].snapshot()
    app.extensions["feedsvc"].close()


def write_site(write_article, backdate, count: int = 3) -> None:
    for n in range(count):
        write_article("culture", f"story-{n}", title=f"Story {n}", date=f"2026-01-0{n + 1}")
    backdate()  # files older than the index: their entries are trusted on restart


def test_restart_reads_only_files_changed_while_down(
    write_article, backdate, make_app, parsed, content_dir
):
    write_site(write_article, backdate)
    first = make_app()
    assert titles(first) == ["Story 2", "Story 1", "Story 0"]
    assert sorted(parsed) == ["culture/story-0.md", "culture/story-1.md", "culture/story-2.md"]
    first.extensions["feedsvc"].close()

    parsed.clear()
    assert titles(make_app()) == ["Story 2", "Story 1", "Story 0"]
    assert parsed == []

    # While the server is down: one edit of the same size, one new file, one deletion.
    edited = content_dir / "culture" / "story-1.md"
    edited.write_text(edited.read_text().replace("Story 1", "Story X"))
    write_article("culture", "story-9", title="Story 9", date="2026-01-09")
    (content_dir / "culture" / "story-0.md").unlink()
    parsed.clear()
    assert titles(make_app()) == ["Story 9", "Story 2", "Story X"]
    assert sorted(parsed) == ["culture/story-1.md", "culture/story-9.md"]


def test_a_file_saved_just_before_the_index_is_read_again(write_article, make_app, parsed):
    write_article("culture", "fresh", title="Fresh")
    make_app().extensions["feedsvc"].snapshot()
    parsed.clear()
    make_app().extensions["feedsvc"].snapshot()
    # Its time stamp cannot tell a second write within the same tick: it is checked again.
    assert parsed == ["culture/fresh.md"]


def test_a_corrupt_index_is_rebuilt_with_a_log_line(
    write_article, backdate, make_app, parsed, tmp_path, caplog
):
    write_site(write_article, backdate)
    stop(make_app())
    index = tmp_path / "state" / INDEX_NAME
    for suffix in ("-wal", "-shm"):
        (tmp_path / "state" / (INDEX_NAME + suffix)).unlink(missing_ok=True)
    index.write_bytes(b"this is no database" * 100)
    parsed.clear()
    with caplog.at_level(logging.WARNING, logger="feedsvc.index"):
        app = make_app()
        assert titles(app) == ["Story 2", "Story 1", "Story 0"]
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    assert len(parsed) == 3
    app.extensions["feedsvc"].close()
    parsed.clear()
    assert titles(make_app()) == ["Story 2", "Story 1", "Story 0"]
    assert parsed == []  # the rebuilt index is used again


def test_an_index_with_a_damaged_entry_is_rebuilt(
    write_article, backdate, make_app, parsed, tmp_path
):
    write_site(write_article, backdate)
    stop(make_app())
    with sqlite3.connect(tmp_path / "state" / INDEX_NAME) as conn:
        conn.execute("UPDATE files SET state = x'80049500' WHERE rel = 'culture/story-1.md'")
    parsed.clear()
    assert titles(make_app()) == ["Story 2", "Story 1", "Story 0"]
    assert len(parsed) == 3


def test_a_foreign_index_is_not_trusted(write_article, backdate, make_app, parsed, tmp_path):
    write_site(write_article, backdate)
    stop(make_app())
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "content", other)
    parsed.clear()
    app = make_app(CONTENT_DIR=str(other))  # same state folder, another content folder
    assert titles(app) == ["Story 2", "Story 1", "Story 0"]
    assert len(parsed) == 3


def test_settings_that_shape_parsing_invalidate_the_index(
    write_article, backdate, make_app, parsed
):
    write_article("culture", "local", title="Local", date="2026-01-01 09:00")
    backdate()
    utc = make_app().extensions["feedsvc"].snapshot().published()[0]
    parsed.clear()
    paris = make_app(TIMEZONE="Europe/Paris").extensions["feedsvc"].snapshot().published()[0]
    assert parsed == ["culture/local.md"]
    assert utc.date.isoformat() == "2026-01-01T09:00:00+00:00"
    assert paris.date.isoformat() == "2026-01-01T09:00:00+01:00"
    parsed.clear()
    make_app(TIMEZONE="Europe/Paris").extensions["feedsvc"].snapshot()
    assert parsed == []


def test_validators_survive_a_restart(write_article, backdate, make_app, content_dir):
    write_site(write_article, backdate)
    first = make_app().test_client()
    feeds = ["/feed.xml", "/culture.atom", "/feed.json", "/tags/bridge.xml", "/feeds.opml"]
    before = {path: first.get(path) for path in feeds}
    stop(make_app())
    second = make_app().test_client()
    for path, response in before.items():
        again = second.get(path)
        assert again.status_code == response.status_code, path
        assert again.headers.get("ETag") == response.headers.get("ETag"), path
        assert again.headers.get("Last-Modified") == response.headers.get("Last-Modified"), path
        if response.status_code == 200:
            conditional = second.get(path, headers={"If-None-Match": response.headers["ETag"]})
            assert conditional.status_code == 304


def test_last_modified_keeps_rising_across_restarts(write_article, backdate, make_app):
    write_site(write_article, backdate)
    app = make_app()
    first = app.test_client().get("/culture.xml").headers["Last-Modified"]
    app.extensions["feedsvc"].close()
    # A change whose content times are all old: only the history makes it newer.
    path = write_article("culture", "story-1", title="Story 1, corrected", date="2026-01-02")
    os.utime(path, (1577836800.0, 1577836800.0))
    os.utime(path.parent, (1577836800.0, 1577836800.0))
    second = make_app().test_client().get("/culture.xml")
    assert b"Story 1, corrected" in second.data
    assert parsedate_to_datetime(second.headers["Last-Modified"]) > parsedate_to_datetime(first)


def test_state_dir_setting_is_checked(make_app, tmp_path, content_dir):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(SettingsError, match="STATE_DIR"):
        make_app(STATE_DIR=str(afile))
    with pytest.raises(SettingsError, match="outside the content folder"):
        make_app(STATE_DIR=str(content_dir / "state"))


def test_default_state_dir_is_one_per_content_folder(make_app, tmp_path):
    one = make_app(STATE_DIR=None).extensions["feedsvc"].settings.state_dir
    other = make_app(STATE_DIR="", CONTENT_DIR=str(tmp_path)).extensions["feedsvc"].settings
    assert one != other.state_dir
    assert not one.is_relative_to(tmp_path)


def test_an_unwritable_state_dir_only_costs_the_cache(write_article, make_app, tmp_path, caplog):
    write_article("culture", "story", title="Story")
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / INDEX_NAME).mkdir()  # where the database file should be
    with caplog.at_level(logging.WARNING, logger="feedsvc.index"):
        assert titles(make_app(STATE_DIR=str(blocked))) == ["Story"]
    assert any("going on without it" in r.getMessage() for r in caplog.records)


def test_a_state_dir_others_may_write_is_never_trusted(write_article, make_app, tmp_path, caplog):
    # The index holds pickled data: a folder another user can write could make us run code.
    write_article("culture", "story", title="Story")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="feedsvc.index"):
        assert titles(make_app(STATE_DIR=str(shared / "state"))) == ["Story"]
    assert any("may be written by other users" in r.getMessage() for r in caplog.records)
    assert not (shared / "state" / INDEX_NAME).exists()


# Through real servers: granian with two worker processes, stopped and started again.

GRANIAN = ["-m", "granian", "--interface", "wsgi", "--workers", "2", "--host", "127.0.0.1"]
FEEDS = ["/feed.xml", "/culture.atom", "/feed.json", "/tags/bridge.xml", "/feeds.opml"]


@contextlib.contextmanager
def granian(
    port, content_dir, state_dir, log_path, *options, target="wsgi:app", environ=(), **settings
):
    """Run the production server with two workers on the content; yield its port.

    `target`: the WSGI app granian imports; `environ`: more environment variables for it.
    """
    env = {
        **os.environ,
        **dict(environ),
        **{f"FEEDSVC_{key}": value for key, value in settings.items()},
        "FEEDSVC_CONTENT_DIR": str(content_dir),
        "FEEDSVC_STATE_DIR": str(state_dir),
        "FEEDSVC_SITE_URL": f"http://127.0.0.1:{port}",
    }
    with log_path.open("a") as log:
        server = subprocess.Popen(
            [sys.executable, *GRANIAN, *options, "--port", str(port), target],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            wait_until(lambda: answers(port, server), "the server answering", deadline=30)
            # Both workers up: granian never stops a worker still starting when told to stop.
            wait_until(
                lambda: log_path.read_text().count("Started worker") >= 2,
                "both workers started",
                deadline=30,
            )
            yield port, server
        finally:
            stop_process_group(server)


def children(pid: int) -> list[int]:
    """Return the processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if (
                entry.name.isdigit()
                and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid
            ):
                found.append(int(entry.name))
    return found


def answers(port: int, server: subprocess.Popen) -> bool:
    assert server.poll() is None, "the server stopped"
    try:
        return get(port, "/healthz")[0] == 200
    except OSError:
        return False


def get(port: int, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    """GET on a fresh connection, so successive calls may reach either worker."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def validators(port: int, path: str, tries: int = 8) -> tuple[str, str, bytes]:
    """Return the one (ETag, Last-Modified, body) every worker serves for `path`."""
    seen = set()
    for _ in range(tries):
        status, headers, body = get(port, path)
        assert status == 200, path
        seen.add((headers["ETag"], headers["Last-Modified"], body))
    assert len(seen) == 1, f"workers disagree on {path}: {[s[:2] for s in seen]}"
    return seen.pop()


def everywhere(port: int, path: str, needle: bytes, tries: int = 8) -> bool:
    """Tell whether every answer for `path`, on fresh connections, holds `needle`."""
    return all(needle in get(port, path)[2] for _ in range(tries))


def test_workers_and_restarts_agree_on_validators(write_article, backdate, content_dir, tmp_path):
    for n in range(3):
        write_article(
            "culture", f"story-{n}", title=f"Story {n}", date=f"2026-01-0{n + 1}", tags=["Bridge"]
        )
    backdate()
    state, log = tmp_path / "state", tmp_path / "server.log"
    address = free_port()
    with granian(address, content_dir, state, log) as (port, _):
        before = {path: validators(port, path)[:2] for path in FEEDS}
    with granian(address, content_dir, state, log) as (port, _):
        assert {path: validators(port, path)[:2] for path in FEEDS} == before
    # Changed while the server was down: picked up on restart, by every worker.
    write_article("culture", "story-1", title="Story 1, corrected", date="2026-01-02")
    with granian(address, content_dir, state, log) as (port, _):
        etag, modified, body = validators(port, "/culture.atom")
        assert b"Story 1, corrected" in body
        assert etag != before["/culture.atom"][0]
        assert parsedate_to_datetime(modified) > parsedate_to_datetime(before["/culture.atom"][1])


# Rendered feeds outside the subscription feeds live in a bounded cache.


def test_a_crawl_of_every_feed_stays_within_the_render_budget(write_article, make_app, monkeypatch):
    from feedsvc import catalog, editions

    for n in range(12):
        write_article(
            "culture",
            f"story-{n:02}",
            "Paragraph. " * 300,
            title=f"Story {n}",
            date=f"2026-01-{n + 1:02}",
            tags=[f"Topic {n}", "Shared"],
            author=f"Writer {n}",
        )
    monkeypatch.setattr(editions, "RENDER_CACHE_BYTES", 40_000)
    app = make_app(FEED_ITEMS=3)
    client = app.test_client()
    snapshot = app.extensions["feedsvc"].snapshot()
    lazy = [
        path
        for name, edition in snapshot.editions.items()
        if not catalog.is_subscription(name)
        for path in edition.paths()
    ]
    assert len(lazy) > 60  # tags, authors and archives in three formats
    first = {}
    for path in lazy:
        response = client.get(path, headers={"Accept-Encoding": "gzip, br"})
        assert response.status_code == 200, path
        first[path] = (response.headers["ETag"], response.headers["Last-Modified"])
    # Past the budget, the least recently used were dropped, and are rendered again when
    # asked for: the same bytes, so the same validators.
    rendered_again = []
    render = editions.FeedEdition._render

    def counted(edition, fmt):
        rendered_again.append(fmt)
        return render(edition, fmt)

    monkeypatch.setattr(editions.FeedEdition, "_render", counted)
    for path in lazy:
        response = client.get(path, headers={"Accept-Encoding": "gzip, br"})
        assert (response.headers["ETag"], response.headers["Last-Modified"]) == first[path]
        conditional = client.get(
            path, headers={"Accept-Encoding": "gzip, br", "If-None-Match": first[path][0]}
        )
        assert conditional.status_code == 304
    assert rendered_again


@pytest.mark.parametrize("workers", [2, 4])
def test_one_edit_one_hub_ping_with_two_and_four_workers(
    workers,
    write_article,
    backdate,
    content_dir,
    tmp_path,
    hub,  # noqa: F811
):
    write_article("culture", "story", title="Story", date="2026-01-01")
    backdate()
    address = free_port()
    state, log = tmp_path / "state", tmp_path / "server.log"
    options = ("--workers", str(workers))  # the last --workers given is granian's
    tries = 4 * workers  # fresh connections: each worker answers some, most likely
    with granian(address, content_dir, state, log, *options, WEBSUB_HUB=hub.url) as (port, _):
        for _ in range(10 * workers):  # every worker loads and watches
            validators(port, "/culture.xml", tries=1)
        write_article("culture", "story", title="Story, edited", date="2026-01-01")
        wait_until(lambda: everywhere(port, "/culture.xml", b"Story, edited", tries), "the edit")
        for path in ("/culture.xml", "/feed.atom", "/feed.json"):
            validators(port, path, tries)  # every worker: the same ETag and Last-Modified
        wait_until(lambda: len(hub.pinged()) >= 6, "the pings")
        time.sleep(1.0)  # a second worker's pings would have arrived by now
        pinged = Counter(hub.pinged())
    base = f"http://127.0.0.1:{address}"
    expected = {
        f"{base}/{name}.{ext}" for name in ("feed", "culture") for ext in ("xml", "atom", "json")
    }
    assert expected <= set(pinged)
    assert set(pinged.values()) == {1}, pinged


def test_one_publisher_at_a_time_and_the_next_takes_over(tmp_path):
    from feedsvc.publisher import PublisherLock

    first, second = PublisherLock(tmp_path / "state"), PublisherLock(tmp_path / "state")
    assert first.held()
    assert not second.held()
    first.release()  # as when its process dies: the kernel drops the lock
    assert second.held()
    assert not first.held()


def test_a_forked_child_does_not_inherit_publishing(tmp_path):
    from feedsvc.publisher import PublisherLock

    lock = PublisherLock(tmp_path / "state")
    assert lock.held()
    # The child must not think it publishes, nor free the parent's lock.
    answer = in_forked_child(lambda: b"1" if lock.held() else b"0")
    assert answer == b"0"
    assert not PublisherLock(tmp_path / "state").held()  # the parent still holds it


def test_a_restart_serves_subscription_feeds_rendered_before(
    write_article, backdate, make_app, monkeypatch
):
    from feedsvc import editions

    write_site(write_article, backdate)
    first = make_app()
    before = {path: first.test_client().get(path) for path in ("/feed.xml", "/culture.atom")}
    stop(first)
    renders = []
    render = editions.render_feed
    monkeypatch.setattr(
        editions, "render_feed", lambda *args: renders.append(args[0].name) or render(*args)
    )
    client = make_app().test_client()
    for path, response in before.items():
        again = client.get(path)
        assert again.data == response.data
        assert again.headers["ETag"] == response.headers["ETag"]
        assert again.headers["Last-Modified"] == response.headers["Last-Modified"]
    assert renders == []
    # Any setting that shows in a feed makes the stored renderings useless, never stale.
    retitled = make_app(SITE_TITLE="Another Gazette").test_client().get("/feed.xml")
    assert b"Another Gazette" in retitled.data
    assert "feed" in renders


def test_a_respawned_worker_serves_the_same_validators_at_once(
    write_article, backdate, content_dir, tmp_path
):
    write_site(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    address = free_port()
    with granian(address, content_dir, state, log, "--respawn-failed-workers") as (port, server):
        for _ in range(20):  # fresh connections: both workers load
            get(port, "/healthz")
        feeds = [path for path in FEEDS if not path.startswith("/tags/")]
        before = {path: validators(port, path)[:2] for path in feeds}
        victim = children(server.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: log.read_text().count("Started worker") >= 3, "the respawned worker")
        wait_until(lambda: victim not in children(server.pid), "the old worker gone")
        for path in feeds:  # the new worker answers as the old did, whichever one answers
            assert validators(port, path, tries=12)[:2] == before[path]
