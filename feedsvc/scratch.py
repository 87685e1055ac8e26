"""Private temporary folders named after the process that made them, and the removal of
those a killed process left behind.

A process killed outright (SIGKILL, the out-of-memory killer) never runs its cleanup: a
first start's full read behind the first look keeps up to a whole site's parsed files in
such a folder, and each killed start would leave one more in the system's temporary folder.
The name says whose it is (pid and start time), so a later start removes exactly the
folders whose process is gone, never a running one's, even where a pid has been reused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile

from .publisher import process_start

log = logging.getLogger(__name__)


def owned_folder(prefix: str) -> str:
    """Make a private temporary folder (0700) named after this process; return its path."""
    pid = os.getpid()
    return tempfile.mkdtemp(prefix=f"{prefix}{pid}-{process_start(pid)}-")


def remove_abandoned(prefix: str) -> int:
    """Remove this user's folders made by owned_folder(prefix) whose process is gone; return
    how many were removed."""
    removed = 0
    with contextlib.suppress(OSError), os.scandir(tempfile.gettempdir()) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix) or not _abandoned(entry, prefix):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
            log.info("removed %s, left behind by a process that was stopped", entry.path)
    return removed


def _abandoned(entry: os.DirEntry, prefix: str) -> bool:
    """Tell whether `entry` is this user's folder of a process no longer running."""
    pid, _, rest = entry.name[len(prefix) :].partition("-")
    started, _, _ = rest.partition("-")
    try:
        mine = entry.is_dir(follow_symlinks=False) and entry.stat().st_uid == os.getuid()
    except OSError:
        return False
    return mine and pid.isdigit() and str(process_start(int(pid))) != started
