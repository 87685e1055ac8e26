"""Fixtures: each test writes its own content folder and builds its own app on it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import yaml
from werkzeug.serving import make_server

from feedsvc import create_app

SITE_URL = "https://news.example.org"
# 2020-01-01T00:00:00Z: older than every content date the tests write.
OLD_MTIME = 1577836800.0
# A PNG signature and some bytes: enough for the media type, never decoded.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def article_text(body: str = "Body text.", **fields) -> str:
    """Return the text of an article file with `fields` as YAML front matter."""
    front = yaml.safe_dump(fields, allow_unicode=True, sort_keys=False)
    return f"---\n{front}---\n{body}\n"


def wait_until(check, what: str, deadline: float = 10.0, interval: float = 0.05):
    """Poll `check` until it returns something truthy, or fail after `deadline` seconds.

    The deadline is generous for a loaded CI machine; a healthy run takes a fraction of it.
    """
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"not seen within {deadline} s: {what}")


def fetch_all(client, paths) -> dict[str, bytes]:
    """GET each path through a test client, each answering 200; the bodies by path."""
    found = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        found[path] = response.data
    return found


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server started with start_new_session=True, with every worker it forked.

    granian never stops a worker that is still starting when told to stop; signalling the
    whole group, then killing what is left, means no worker outlives its test.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    folder.mkdir()
    return folder


@pytest.fixture
def write_article(content_dir: Path):
    """Write content/<section>/<slug>.md; fields default to a valid, published article."""

    def write(section: str, slug: str, body: str = "Body text.", **fields) -> Path:
        fields.setdefault("title", slug.replace("-", " ").title())
        fields.setdefault("date", "2026-03-01T09:00:00+00:00")
        path = content_dir / section / f"{slug}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(article_text(body, **fields), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_stories(write_article):
    """Write <section>/story-1 … story-<count>, "Story <n>", one a day from `first`.

    `first` is an ISO date or date-time; every other field goes to each article as written.
    """

    def write(section: str, count: int, first: str = "2026-03-01T09:00:00+00:00", **fields):
        start = datetime.fromisoformat(first) if "T" in first else date.fromisoformat(first)
        return [
            write_article(
                section,
                f"story-{n}",
                title=f"Story {n}",
                date=(start + timedelta(days=n - 1)).isoformat(),
                **fields,
            )
            for n in range(1, count + 1)
        ]

    return write


@pytest.fixture
def write_section(content_dir: Path):
    """Write content/<section>/_index.md with a title and description."""

    def write(section: str, title: str, description: str = "") -> Path:
        path = content_dir / section / "_index.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(article_text("", title=title, description=description), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_media(content_dir: Path):
    """Write content/media/<name> with the given bytes."""

    def write(name: str, data: bytes) -> Path:
        path = content_dir / "media" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def backdate(content_dir: Path):
    """Set the modification time of every file and folder of the content to `when`.

    Last-Modified takes file times into account; a test about content dates backdates
    the files it has just written so their times do not win.
    """

    def set_times(when: float = OLD_MTIME) -> None:
        for path in [content_dir, *content_dir.rglob("*")]:
            os.utime(path, (when, when))

    return set_times


def app_config(content_dir: Path, **config) -> dict:
    """Return the settings make_app builds an app with (plain values: JSON can carry them)."""
    return {
        "TESTING": True,
        "CONTENT_DIR": str(content_dir),
        "STATE_DIR": str(content_dir.parent / "state"),
        "SITE_URL": SITE_URL,
        "SITE_TITLE": "Test Gazette",
        "SITE_DESCRIPTION": "A site made by a test.",
        "SITE_AUTHOR": "Gazette Staff",
        "WATCH_CONTENT": False,
        **config,
    }


@pytest.fixture
def make_app(content_dir: Path):
    """Build an app on the test's content folder; keyword arguments override config keys.

    Content watching is off unless a test asks for it (WATCH_CONTENT=True); every app's
    watcher is stopped when the test ends.
    """
    apps = []

    def make(**config):
        apps.append(create_app(app_config(content_dir, **config)))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["feedsvc"].close()


@pytest.fixture
def client(make_app):
    """A test client of an app built on the content written before it is requested."""
    return make_app().test_client()


@pytest.fixture
def client_factory(make_app):
    """Build a fresh app and client on the content as it is at the time of the call."""
    return lambda **config: make_app(**config).test_client()


def in_forked_child(work, size: int = 1) -> bytes:
    """Run `work` (returning bytes) in a forked child; return its `size` bytes of answer."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        try:
            os.write(writer, work())
        finally:
            os._exit(0)
    os.close(writer)
    answer = os.read(reader, size)
    os.waitpid(pid, 0)
    os.close(reader)
    return answer


def free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def serve(make_app):
    """Start real HTTP servers on 127.0.0.1, each in a thread; `serve(**config)` gives a URL.

    SITE_URL is the server's own address, so the links in feeds can be followed.
    """
    servers = []

    def start(**config) -> str:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        app = make_app(**{"SITE_URL": base_url, **config})
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((server, thread))
        return base_url

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def live_server(serve):
    """Serve an app built on the test's content on 127.0.0.1; yield its base URL."""
    return serve()


class _StandInHub(BaseHTTPRequestHandler):
    """Record each publish ping; the server's `pings` list is shared with the test."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        self.server.pings.append((form.get("hub.mode"), form.get("hub.url")))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    """A stand-in WebSub hub on 127.0.0.1; yields (URL, received pings as (modes, urls))."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInHub)
    server.pings = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hub", server.pings
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
