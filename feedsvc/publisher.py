"""Which process publishes for a content folder: the one holding a lock in the state folder.

Every worker serves; one of them at a time is the publisher: it alone watches the
folder, parses what changed, writes the index and tells the WebSub hub, so an edit costs
one parse and one ping however many workers there are. The others follow what it
publishes. The lock is an flock(2) on a file: the kernel drops it when its holder dies,
and the next worker that asks takes over.
"""

from __future__ import annotations

import contextlib
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
# One file per following process, naming the publication it serves.
FOLLOWERS_DIR = "following"


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

    def taken_at(self) -> int | None:
        """Return when the lock was last taken (the lock file's mtime in ns), or None."""
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
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
        try:
            replace_file(self.path, f"{generation} {os.getpid()}\n")
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


class FollowerAcks:
    """Which publication each following process serves, one small file per process.

    The publisher tells caches and the WebSub hub about a change only once every worker
    serves it: a cache refetching from a worker still on the previous publication would
    keep the old bytes for its whole lifetime.
    """

    def __init__(self, state_dir: Path):
        self.folder = state_dir / FOLLOWERS_DIR

    def record(self, generation: int) -> None:
        """Say that this process now serves `generation`."""
        path = self.folder / str(os.getpid())
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            replace_file(path, f"{generation}\n")
        except OSError as exc:
            log.warning("cannot record the publication followed in %s: %s", path, exc)

    def forget(self) -> None:
        """Say that this process no longer follows (it publishes, or it stops)."""
        with contextlib.suppress(OSError):
            (self.folder / str(os.getpid())).unlink()

    def caught_up(self, generation: int) -> bool:
        """Tell whether every live following process serves `generation` or a newer one."""
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return True
        for entry in entries:
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            if not _alive(int(entry.name)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                continue
            try:
                if int(Path(entry.path).read_text()) < generation:
                    return False
            except (OSError, ValueError):
                continue
        return True


def replace_file(path: Path, text: str) -> None:
    """Write `text` to `path` in one step: readers see the old content or the new, never half."""
    spare = path.with_name(f".{path.name}.{os.getpid()}")
    spare.write_text(text)
    os.replace(spare, path)


def process_start(pid: int) -> str | None:
    """Return when process `pid` started (kernel ticks since boot), or None if unknown.

    A pid with its start time names one process: a later process given the same pid
    (a restarted container's workers get the same ones) has another start time. A process
    that has exited but not been reaped yet (a zombie: a killed server's worker, until its
    new parent reaps it) runs no more: None.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True
