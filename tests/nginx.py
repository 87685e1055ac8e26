"""Run the shipped nginx recipes (deploy/nginx-*.conf) as they are, on test paths and ports."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from feedsvc import PROJECT_ROOT

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEPLOY = PROJECT_ROOT / "deploy"
needs_nginx = pytest.mark.skipif(
    not os.access(NGINX, os.X_OK) or os.geteuid() != 0,
    reason="needs nginx (Debian package nginx; .ci/run installs it) and root, which the"
    " recipes' Debian paths (/var/lib/nginx) need",
)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def recipe(name: str, work: Path, port: int, changes: dict[str, str]) -> str:
    """Return deploy/`name` with only its paths and ports changed for a test run in `work`.

    Each of `changes` (and the log, pid and listen lines) must occur in the file as
    shipped, so a test notices when the recipe it claims to run changes.
    """
    text = (DEPLOY / name).read_text()
    every = {
        "pid /run/nginx.pid;": f"pid {work}/nginx.pid;",
        "error_log /var/log/nginx/error.log;": f"error_log {work}/error.log;",
        "access_log /var/log/nginx/access.log;": f"access_log {work}/access.log;",
        "listen 80;": f"listen 127.0.0.1:{port};",
        # The workers read the test's files, which only root may read.
        "user www-data;": "user root;",
        **changes,
    }
    root = changes.get("root /srv/feedsvc/site;")
    if root is not None:  # the export's redirect map is included from its root
        every["include /srv/feedsvc/site/.redirects*.map;"] = (
            f"include {root.removeprefix('root ').removesuffix(';')}/.redirects*.map;"
        )
    for old, new in every.items():
        assert text.count(old) == 1, f"deploy/{name} no longer has {old!r} once"
        text = text.replace(old, new)
    return text


@contextlib.contextmanager
def running_nginx(config: str, work: Path, port: int):
    """Run nginx in the foreground with `config` until the block ends; yield its address."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / "nginx.conf"
    path.write_text(config)
    command = [NGINX, "-p", str(work), "-e", str(work / "error.log"), "-c", str(path)]
    process = subprocess.Popen(
        [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx stopped: {(work / 'error.log').read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                pytest.fail("nginx did not start listening within 10 s")
            time.sleep(0.05)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fetch(address: tuple[str, int], path: str, method: str = "GET", **headers: str):
    """Send one request; return status, lower-cased headers (repeated ones joined), body."""
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        joined: dict[str, str] = {}
        for key, value in response.getheaders():
            key = key.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        return response.status, joined, response.read()
    finally:
        connection.close()
