"""The publisher's file-system events (inotify through watchdog): which content files changed.

Only the process that publishes watches the folder; watcher.py imports this module when
it starts to, so a worker that follows the publisher never loads watchdog.
"""

from __future__ import annotations

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
from watchdog.observers.api import BaseObserver

from .media import MEDIA_DIR

# A burst of events (an editor's save, an rsync run) is let settle: a refresh waits until
# the files written are closed and no event came for QUIET_SECONDS, or, for a writer that
# keeps a file open, until no event came for SETTLE_SECONDS.
QUIET_SECONDS = 0.01
SETTLE_SECONDS = 0.05

# The events that can change the site, asked of inotify itself. Not a file opened or closed
# unwritten: a first start's own reads of 100,000 files would bring 200,000 such events
# through Python threads; nor a folder's "modified", which comes beside the event of each
# file created, written, moved or deleted in it, and whose name would cost a walk of the
# whole tree (see loader.update_tree).
CHANGE_EVENTS = (
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileClosedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
)


class ChangeCollector(FileSystemEventHandler):
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
        if not isinstance(event, CHANGE_EVENTS):  # an observer that cannot filter
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

    def wait_until_settled(self, stop: threading.Event) -> None:
        """Return once the paths collected are worth reading, or `stop` is set."""
        while (wait := self.settled()) > 0 and not stop.is_set():
            time.sleep(min(wait, QUIET_SECONDS))  # a close may come at any moment

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


def observe(root: Path, wake: threading.Event) -> tuple[BaseObserver, ChangeCollector]:
    """Start watching `root` (a real path) recursively; OSError if the system refuses."""
    collector = ChangeCollector(root, wake)
    observer = Observer()
    observer.schedule(collector, str(root), recursive=True, event_filter=CHANGE_EVENTS)
    observer.start()
    return observer, collector
