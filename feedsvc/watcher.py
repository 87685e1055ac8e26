"""Notice content changes and scheduled releases, and have the store refresh in time.

In the publishing process, that means watching the folder; in every other process
serving the same content, following what the publisher publishes (one stat of its
mark a few times a second) and taking over publishing when the publisher is gone.

File-system events (inotify through watchdog) name the files that changed, so a change
costs a re-read of those files, not a walk of the site. A cheap check of the content
folder's identity catches a whole-tree swap (a `content` symlink switched to a new
release folder), which produces no event inside the old tree; a slow periodic rescan is
the safety net for events a file system never delivers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from .media import MEDIA_DIR
from .store import ContentStore

log = logging.getLogger(__name__)

# A burst of events (an editor's save, an rsync run) is let settle: a refresh waits until
# the files written are closed and no event came for QUIET_SECONDS, or, for a writer that
# keeps a file open, until no event came for SETTLE_SECONDS.
QUIET_SECONDS = 0.01
SETTLE_SECONDS = 0.05
# How often to check whether the content folder itself was swapped.
ROOT_CHECK_SECONDS = 0.25
# Full rescans (one stat per file): rare with events, every second without them.
RESCAN_SECONDS = 60.0
POLL_RESCAN_SECONDS = 1.0
# A follower: how often it looks for a new publication (one stat(2) of the mark: an edit
# waits half of this on average in the workers that follow), and asks for the publisher's lock.
FOLLOW_SECONDS = 0.02
TAKEOVER_SECONDS = 1.0
# The events that can change the site, asked of inotify itself. Not a file opened or closed
# unwritten: a first start's own reads of 100,000 files would bring 200,000 such events
# through Python threads; nor a folder's "modified", which comes beside the event of each
# file created, written, moved or deleted in it, and whose name would cost a walk of the
# whole tree (see loader.update_tree).
_CHANGE_EVENTS = (
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
)


class _ChangeCollector(FileSystemEventHandler):
    """Collect the content-relative paths that events name, and wake the watcher."""

    def __init__(self, root: Path, wake: threading.Event):
        self.root = str(root)
        self.wake = wake
        self.paths: set[str] = set()
        # Files created or modified and not closed since: still being written.
        self.writing: set[str] = set()
        self.last_event = 0.0  # time.monotonic() of the last event collected
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if not isinstance(event, _CHANGE_EVENTS):  # an observer that cannot filter
            return
        names = [event.src_path, getattr(event, "dest_path", "")]
        relative = [os.path.relpath(os.fsdecode(n), self.root) for n in names if n]
        wanted = [rel for rel in relative if _matters(rel, event.is_directory)]
        if wanted:
            with self.lock:
                self.paths.update(wanted)
                if event.event_type in ("created", "modified") and not event.is_directory:
                    self.writing.update(wanted)
                else:  # closed, deleted, or moved whole
                    self.writing.difference_update(wanted)
                self.last_event = time.monotonic()
            self.wake.set()

    def settled(self) -> float:
        """Return how long to wait yet before the paths collected are worth reading (0: now)."""
        with self.lock:
            quiet = time.monotonic() - self.last_event
            return max((SETTLE_SECONDS if self.writing else QUIET_SECONDS) - quiet, 0.0)

    def take(self) -> set[str]:
        with self.lock:
            paths, self.paths = self.paths, set()
            self.writing = set()  # a file still open is read again when its close is seen
        return paths


def _matters(rel: str, is_directory: bool) -> bool:
    """Tell whether a changed path can change the site; editors' and rsync's temp files cannot."""
    if rel.startswith("..") or any(part.startswith(".") for part in rel.split("/")):
        return False
    return is_directory or rel.endswith(".md") or rel.split("/", 1)[0] == MEDIA_DIR


class ContentWatcher:
    """A background thread that keeps one store current."""

    def __init__(self, store: ContentStore):
        self.store = store
        self.root = store.settings.content_dir
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None
        self._collector: _ChangeCollector | None = None
        self._identity = None
        # Following: the publisher's mark as last seen, and when to ask for its lock next.
        self._stamp = None
        self._next_takeover = 0.0

    def start(self) -> None:
        """Start watching; safe to call once per process (threads do not survive a fork)."""
        self._identity = _folder_identity(self.root)
        if self.store.following:
            self._stamp = self.store.publication_stamp()
        else:
            self._observe()
        self._thread = threading.Thread(target=self._run, name="feedsvc-watcher", daemon=True)
        self._thread.start()
        self.store.watching = True

    def stop(self) -> None:
        """Stop the thread and the observer."""
        self.store.watching = False
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._unobserve()

    def is_alive(self) -> bool:
        """Tell whether the watching thread still runs."""
        return self._thread is not None and self._thread.is_alive()

    def _observe(self) -> None:
        real_root = Path(os.path.realpath(self.root))
        self._collector = _ChangeCollector(real_root, self._wake)
        try:
            observer = Observer()
            observer.schedule(
                self._collector, str(real_root), recursive=True, event_filter=_CHANGE_EVENTS
            )
            observer.start()
        except OSError as exc:  # no such folder yet, or the system's inotify limits
            log.warning("watching %s failed (%s); rescanning every second instead", real_root, exc)
            self._observer = None
            return
        self._observer = observer

    def _unobserve(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def _run(self) -> None:
        last_rescan = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(timeout=self._timeout())
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                last_rescan = self._step(last_rescan)
            except Exception:  # the watcher must outlive any one bad refresh
                log.exception("content refresh failed; serving the previous snapshot")

    def _timeout(self) -> float:
        if self.store.following:
            return FOLLOW_SECONDS
        timeout = ROOT_CHECK_SECONDS
        release = self.store.snapshot().next_release
        if release is not None:
            timeout = min(timeout, max(release - time.time(), 0.0))
        return timeout

    def _step(self, last_rescan: float) -> float:
        if self.store.following:
            return self._follow(last_rescan)
        identity = _folder_identity(self.root)
        rescan_every = RESCAN_SECONDS if self._observer is not None else POLL_RESCAN_SECONDS
        if identity != self._identity:
            log.info("content folder %s was replaced; reloading it", self.root)
            self._identity = identity
            self._unobserve()
            self._observe()
            self.store.refresh(None)
            return time.monotonic()
        if time.monotonic() - last_rescan >= rescan_every:
            self.store.refresh(None)
            return time.monotonic()
        if self._collector is not None and self._collector.paths:
            while (wait := self._collector.settled()) > 0 and not self._stop.is_set():
                time.sleep(min(wait, QUIET_SECONDS))  # a close may come at any moment
            self.store.refresh(self._collector.take())
            return last_rescan
        release = self.store.snapshot().next_release
        if release is not None and time.time() >= release:
            self.store.refresh(())
        return last_rescan

    def _follow(self, last_rescan: float) -> float:
        """Take up a new publication; become the publisher when the lock is free."""
        stamp = self.store.publication_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            self.store.follow()
        if time.monotonic() < self._next_takeover:
            return last_rescan
        self._next_takeover = time.monotonic() + TAKEOVER_SECONDS
        if not self.store.take_over():
            return last_rescan
        self._identity = _folder_identity(self.root)
        self._observe()  # before the full refresh, so no event falls between them
        self.store.refresh(None)
        return time.monotonic()


def _folder_identity(root: Path) -> tuple:
    """Return what changes when the folder is replaced, rather than edited."""
    try:
        stat = os.stat(root)
    except OSError:
        return (None,)
    return (os.path.realpath(root), stat.st_dev, stat.st_ino)
