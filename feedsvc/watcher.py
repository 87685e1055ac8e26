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

from .store import ContentStore

log = logging.getLogger(__name__)

# How often to check whether the content folder itself was swapped.
ROOT_CHECK_SECONDS = 0.25
# Full rescans (one stat per file): rare with events, every second without them.
RESCAN_SECONDS = 60.0
POLL_RESCAN_SECONDS = 1.0
# A follower: how often it looks for a new publication (one stat(2) of the mark: an edit
# waits half of this on average in the workers that follow), and asks for the publisher's lock.
FOLLOW_SECONDS = 0.02
TAKEOVER_SECONDS = 1.0


class ContentWatcher:
    """A background thread that keeps one store current."""

    def __init__(self, store: ContentStore):
        self.store = store
        self.root = store.settings.content_dir
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None
        self._collector = None  # folderevents.ChangeCollector while observing
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
        """Have inotify name the files that change: the publisher's part (folderevents.py)."""
        from .folderevents import observe

        real_root = Path(os.path.realpath(self.root))
        try:
            self._observer, self._collector = observe(real_root, self._wake)
        except OSError as exc:  # no such folder yet, or the system's inotify limits
            log.warning("watching %s failed (%s); rescanning every second instead", real_root, exc)
            self._observer = None

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
            self._collector.wait_until_settled(self._stop)
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
