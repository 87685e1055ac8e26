"""serve_bench's floors: granian serving feedsvc's bytes without feedsvc, through WSGI and RSGI.

They say how near to nginx any Python app behind granian can come (issue 11), so they must
answer like feedsvc: the same bytes, header lines and 304s, on a real server.
"""

from __future__ import annotations

import http.client
import os
import subprocess
from pathlib import Path

import pytest

from bench.harness import GRANIAN_FLAGS, granian_argv
from bench.serve_bench import FLOORS, copy_to_nginx_root, server_argv
from tests.conftest import free_port, stop_process_group, wait_until

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PATHS = ("/feed.xml", "/culture/")
# What granian adds to every answer on its own.
NOT_COMPARED = {"date", "server"}


def get(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def answers(port: int) -> bool:
    try:
        return get(port, "/feed.xml")[0] == 200
    except OSError:
        return False


@pytest.fixture
def start(tmp_path):
    """Start a server from argv on its port with extra environment; stop them all after."""
    started = []

    def run(argv: list[str], port: int, **env: str) -> int:
        with (tmp_path / f"server-{port}.log").open("w") as log:
            process = subprocess.Popen(
                [str(arg) for arg in argv],
                cwd=PROJECT_ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        started.append(process)
        wait_until(lambda: answers(port), f"server on port {port}", deadline=30)
        return port

    yield run
    for process in started:
        stop_process_group(process)


@pytest.fixture
def feedsvc_and_root(start, content_dir, write_stories, tmp_path):
    """Serve a site with the production command; copy its answers as serve_bench does."""
    write_stories("culture", 3)
    port = free_port()
    site = {"FEEDSVC_CONTENT_DIR": str(content_dir), "FEEDSVC_SITE_URL": f"http://127.0.0.1:{port}"}
    start(granian_argv(port), port, **site)
    root = tmp_path / "root"
    copy_to_nginx_root(port, list(PATHS), root)
    return port, root


@pytest.mark.parametrize("floor", sorted(FLOORS))
def test_a_floor_answers_as_feedsvc_does(floor, start, feedsvc_and_root):
    feedsvc, root = feedsvc_and_root
    port = free_port()
    start(server_argv(floor, port, GRANIAN_FLAGS), port, FLOOR_ROOT=str(root))
    for path in PATHS:
        for asked in ({}, {"Accept-Encoding": "gzip"}):
            theirs, ours = get(feedsvc, path, **asked), get(port, path, **asked)
            assert ours[0] == theirs[0] == 200
            assert ours[2] == theirs[2], path
            assert set(ours[1]) - NOT_COMPARED == set(theirs[1]) - NOT_COMPARED
            assert ours[1]["content-length"] == theirs[1]["content-length"]
            assert ours[1].get("content-encoding") == theirs[1].get("content-encoding")
            status, headers, body = get(port, path, **asked, **{"If-None-Match": ours[1]["etag"]})
            theirs_304 = get(feedsvc, path, **asked, **{"If-None-Match": theirs[1]["etag"]})
            assert (status, body) == (theirs_304[0], theirs_304[2]) == (304, b"")
            assert set(headers) - NOT_COMPARED == set(theirs_304[1]) - NOT_COMPARED


def test_the_floors_use_the_production_flags():
    for floor, (interface, target) in FLOORS.items():
        argv = server_argv(floor, 8000, GRANIAN_FLAGS)
        assert argv[-1] == target
        assert argv[argv.index("--interface") + 1] == interface
        others = [arg for arg in argv if arg not in (interface, target)]
        production = [arg for arg in granian_argv(8000) if arg not in ("wsgi", "wsgi:app")]
        assert others == production
