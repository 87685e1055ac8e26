"""Which process publishes for a content folder: the one holding a lock in the state folder.

Every worker serves; one of them at a time is the publisher: it alone watches the
folder, parses what changed, writes the index and tells the WebSub hub, so an edit costs
one parse and one ping however many workers there are. The others follow what it
publishes. The lock is an flock(2) on a file: the kernel drops it when its holder dies,
and the next worker that asks takes over.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import weakref
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "publisher.lock"
# Rewritten (atomically) after each publication: followers notice it with one stat(2).
MARK_NAME = "published"


class PublisherLock:
    """This process's claim on publishing for one state folder; asked for without waiting."""

    def __init__(self, state_dir: Path):
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None
        self._lock = threading.Lock()
        # A forked child shares the parent's lock: it forgets it, and asks on its own.
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forget(ref))

    def held(self) -> bool:
        """Tell whether this process publishes, taking the lock if nobody holds it."""
        with self._lock:
            if self._fd is not None:
                return True
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:  # no state folder: each process publishes for itself
                log.warning("publisher lock %s: %s; publishing without it", self.path, exc)
                return True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            log.info("process %s publishes for %s", os.getpid(), self.path.parent)
            return True

    def holder(self) -> int | None:
        """Return the pid of the process that took the lock last (it may have died since)."""
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def release(self) -> None:
        """Give up publishing (the next process that asks takes over)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _forget(ref: weakref.ref) -> None:
    lock = ref()
    if lock is not None:
        lock._lock = threading.Lock()
        if lock._fd is not None:
            os.close(lock._fd)  # the parent's descriptor still holds the lock
            lock._fd = None


class PublishedMark:
    """A small file naming the last generation published and the process that published it.

    Followers look at it with one stat(2) per check, and read the index only when it
    changed; a generation counts only when its publisher still holds the lock, so a
    follower never takes a previous run's content for the current one.
    """

    def __init__(self, state_dir: Path):
        self.path = state_dir / MARK_NAME

    def write(self, generation: int) -> None:
        """Announce `generation` as published by this process."""
        spare = self.path.with_name(f".{MARK_NAME}.{os.getpid()}")
        try:
            spare.write_text(f"{generation} {os.getpid()}\n")
            os.replace(spare, self.path)
        except OSError as exc:
            log.warning("cannot announce publication in %s: %s", self.path, exc)

    def stamp(self) -> tuple | None:
        """Return what changes whenever the mark is rewritten (None: no mark)."""
        try:
            info = os.stat(self.path)
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def read(self) -> tuple[int, int] | None:
        """Return (generation, publisher pid) as announced, or None."""
        try:
            generation, pid = self.path.read_text().split()
            return int(generation), int(pid)
        except (OSError, ValueError):
            return None
