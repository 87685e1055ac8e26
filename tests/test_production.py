"""The production servers the README names, run for real on 127.0.0.1 with several workers."""

from __future__ import annotations

import gzip
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest

from tests.conftest import free_port, stop_process_group

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SERVERS = {
    "granian": ["-m", "granian", "--interface", "wsgi", "--workers", "2", "--host", "127.0.0.1"],
    "gunicorn": ["-m", "gunicorn", "--workers", "2"],
}


def get(port: int, path: str, **headers) -> tuple[int, http.client.HTTPMessage, bytes]:
    """GET on a fresh connection, so successive calls may reach different workers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:  # closed even when a busy server times out, as a starting one may
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, response.headers, body


@pytest.fixture(params=sorted(SERVERS))
def production(request, content_dir, write_article, tmp_path):
    """Start a production server on the test's content; yield its port."""
    write_article("culture", "first", title="First", date="2026-01-01T10:00:00Z")
    port = free_port()
    args = SERVERS[request.param]
    args = (
        [*args, "--port", str(port)]
        if request.param == "granian"
        else [*args, "--bind", f"127.0.0.1:{port}"]
    )
    env = {
        **os.environ,
        "FEEDSVC_CONTENT_DIR": str(content_dir),
        "FEEDSVC_SITE_URL": f"http://127.0.0.1:{port}",
    }
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, *args, "wsgi:app"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,  # its workers too are stopped by process group
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get(port, "/healthz")
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield port
    finally:
        stop_process_group(server)
        log.close()


def test_serves_feeds_pages_and_304s(production):
    status, headers, body = get(production, "/culture.xml", **{"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    parsed = feedparser.parse(gzip.decompress(body))
    assert parsed.bozo == 0
    assert [e.title for e in parsed.entries] == ["First"]
    assert parsed.entries[0].link == f"http://127.0.0.1:{production}/culture/first/"
    status, _, body = get(
        production, "/culture.xml", **{"If-None-Match": headers["ETag"], "Accept-Encoding": "gzip"}
    )
    assert (status, body) == (304, b"")
    status, _, body = get(production, "/culture/first/")
    assert status == 200
    assert b"First" in body


def test_every_worker_picks_up_an_edit(production, write_article):
    write_article("culture", "first", title="First, edited", date="2026-01-01T10:00:00Z")
    deadline = time.monotonic() + 10
    fresh = 0
    while fresh < 20:  # 20 fresh connections in a row: every worker serves the edit
        assert time.monotonic() < deadline, "the edit did not reach every worker"
        _, _, body = get(production, "/culture.xml")
        fresh = fresh + 1 if b"First, edited" in body else 0
