"""Every content file compared with the identity the index holds for it: a restart's check.

A restart answers from the last publication only while no file changed since it was
stored (see stored.py): at 100,000 files that is as many stat(2) calls and stored rows, on
the way to the first answer. They are compared as two lists, in one comparison made in C
rather than file by file in Python; and where there is a second CPU, a forked process
checks half of the files meanwhile, so the check takes about half the time.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Sequence

log = logging.getLogger(__name__)

# Below this many files the check takes less than a process costs to start.
SPLIT_MIN_FILES = 20000


def first_difference(root: str, stored: Sequence[tuple]) -> str | None:
    """Say which file is not as `stored` says (rows of (rel, mtime_ns, size, inode, racy),
    in path order, the paths those under `root` now); None: every one is."""
    if len(stored) < SPLIT_MIN_FILES or len(os.sched_getaffinity(0)) < 2:
        return _difference(root, stored)
    half = len(stored) // 2
    context = multiprocessing.get_context("fork")  # the rows inherited, not sent
    reader, writer = context.Pipe(duplex=False)
    try:
        helper = context.Process(target=_send_difference, args=(writer, root, stored[half:]))
        helper.start()
    except (OSError, AssertionError) as exc:  # e.g. in a daemonic process
        log.debug("checking every file in this process (%s)", exc)
        reader.close()
        return _difference(root, stored)
    finally:
        writer.close()  # the helper's end, from here on
    try:
        found = _difference(root, stored[:half])
        try:
            theirs = reader.recv()
        except (EOFError, OSError):  # the helper died: its half is checked here
            theirs = _difference(root, stored[half:])
    finally:
        reader.close()
        helper.join()
    return found or theirs


def _send_difference(writer, root: str, stored: Sequence[tuple]) -> None:
    """In the helper process: send what _difference finds."""
    writer.send(_difference(root, stored))
    writer.close()


def _difference(root: str, stored: Sequence[tuple]) -> str | None:
    """Compare the files with their rows; say what the first differing one is."""
    prefix = f"{root}/"
    try:
        infos = map(os.stat, [prefix + row[0] for row in stored])
        found = [  # racy 0: a row saved within RACY_SECONDS of its file's change never matches
            (row[0], info.st_mtime_ns, info.st_size, info.st_ino, 0)
            for row, info in zip(stored, infos, strict=True)
        ]
    except OSError as exc:
        return f"{str(exc.filename).removeprefix(prefix)} cannot be read"
    if found == stored:
        return None
    row = next(row for row, now in zip(stored, found, strict=True) if row != now)
    return f"{row[0]} was saved as it changed" if row[4] else f"{row[0]} changed"
