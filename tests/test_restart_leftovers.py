"""A server killed during a first start leaves its full read's temporary folder behind;
the next start removes it, and only folders whose process is gone."""

from __future__ import annotations

import contextlib
import json
import os
import signal

from feedsvc.loader import READ_BEHIND_PREFIX
from feedsvc.publisher import process_start
from feedsvc.scratch import owned_folder, remove_abandoned
from tests.conftest import free_port, wait_until
from tests.test_publisher import get, granian


def read_behind_folders(tmp: str) -> set[str]:
    return {name for name in os.listdir(tmp) if name.startswith(READ_BEHIND_PREFIX)}


def serving(port: int) -> str:
    """Return what the worker answering says it serves."""
    return json.loads(get(port, "/healthz")[2])["publishing"]["serving"]


def test_a_start_removes_what_a_killed_first_start_left(
    write_stories, backdate, tmp_path, monkeypatch
):
    write_stories("culture", 12)
    backdate()
    tmp = tmp_path / "tmp"  # the servers' temporary folder (TMPDIR), this test's alone
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", None)  # owned_folder below: in it too
    # A running process's folder (this one's) and a folder of someone else's naming.
    running = os.path.basename(owned_folder(READ_BEHIND_PREFIX))
    (tmp / "feedsvc-read-behind-notes").mkdir()
    content, state, log = tmp_path / "content", tmp_path / "state", tmp_path / "granian.log"
    port = free_port()
    environ = {"HELD_FULL_READ": str(tmp_path / "never"), "TMPDIR": str(tmp)}
    target = "tests.held_read_wsgi:app"
    known = {running, "feedsvc-read-behind-notes"}
    with granian(port, content, state, log, target=target, environ=environ) as (_, server):
        # Answered once by the publisher: its first look and the full read behind it are
        # under way (a follower waits for that read, held: no more requests).
        wait_until(lambda: read_behind_folders(tmp) - known, "the full read's folder")
        left = read_behind_folders(tmp) - known
        os.killpg(server.pid, signal.SIGKILL)  # no cleanup runs
        server.wait()
    assert read_behind_folders(tmp) >= left

    with granian(port, content, state, log, environ={"TMPDIR": str(tmp)}):
        wait_until(lambda: serving(port) == "live", "the live snapshot")
        assert read_behind_folders(tmp) == known


def test_only_folders_of_processes_gone_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    mine = owned_folder(READ_BEHIND_PREFIX)
    # pid 1 is running, but started at another time than this name says: a reused pid.
    (tmp_path / f"{READ_BEHIND_PREFIX}1-{process_start(1)}-abcd").mkdir()
    (tmp_path / f"{READ_BEHIND_PREFIX}1-0-abcd").mkdir()
    (tmp_path / f"{READ_BEHIND_PREFIX}1-0-file").write_text("not a folder")

    assert remove_abandoned(READ_BEHIND_PREFIX) == 1
    assert sorted(os.listdir(tmp_path)) == sorted(
        [
            os.path.basename(mine),
            f"{READ_BEHIND_PREFIX}1-{process_start(1)}-abcd",
            f"{READ_BEHIND_PREFIX}1-0-file",
        ]
    )


def test_a_process_exited_but_not_reaped_is_gone(tmp_path, monkeypatch):
    # A killed server's worker stays a zombie until its new parent reaps it.
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    go, gone = os.pipe()
    pid = os.fork()
    if pid == 0:  # the folder's maker: exits once its folder is made
        os.read(go, 1)
        os._exit(0)
    try:
        folder = tmp_path / f"{READ_BEHIND_PREFIX}{pid}-{process_start(pid)}-abcd"
        folder.mkdir()
        assert remove_abandoned(READ_BEHIND_PREFIX) == 0  # running
        os.write(gone, b"x")
        wait_until(lambda: process_start(pid) is None, "the child to exit")
        assert os.path.exists(f"/proc/{pid}")  # not reaped: a zombie
        assert remove_abandoned(READ_BEHIND_PREFIX) == 1
        assert not folder.exists()
    finally:
        os.close(go)
        os.close(gone)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
