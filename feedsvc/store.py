"""Keep an app's content current: re-read what changed, publish immutable snapshots.

Readers take the current Snapshot and never see a half-built one: a refresh builds the
next snapshot aside and swaps it in with one assignment.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .catalog import FeedEdition, feed_specs, next_releases, render_editions
from .loader import (
    MEDIA_DIR,
    FileState,
    assemble_site,
    media_sizes,
    parse_context,
    read_content_file,
    scan_tree,
    with_new_media,
)
from .models import Article, ContentError, Site
from .responses import Representation
from .settings import Settings

log = logging.getLogger(__name__)

# Rendered pages kept per snapshot; beyond this, the oldest are rendered again on demand.
PAGE_CACHE_BYTES = 32 * 1024 * 1024


class PageCache:
    """Pages rendered for one snapshot, bounded in bytes so a crawler cannot fill memory."""

    def __init__(self, budget: int = PAGE_CACHE_BYTES):
        self._pages: dict[str, Representation] = {}
        self._budget = budget
        self._used = 0
        self._lock = threading.Lock()

    def get(self, path: str) -> Representation | None:
        """Return the cached page at `path`, if any."""
        return self._pages.get(path)

    def put(self, path: str, rep: Representation) -> None:
        """Keep `rep` for `path`, dropping the oldest pages when over budget."""
        size = sum(len(variant.body) for variant in rep.variants.values())
        with self._lock:
            if path in self._pages or size > self._budget:
                return
            while self._used + size > self._budget:
                oldest = next(iter(self._pages))
                dropped = self._pages.pop(oldest)
                self._used -= sum(len(v.body) for v in dropped.variants.values())
            self._pages[path] = rep
            self._used += size


@dataclass(frozen=True)
class Snapshot:
    """The site as published at one moment, with its feeds rendered and pages cached."""

    site: Site
    as_of: datetime
    editions: Mapping[str, FeedEdition]
    # When the next scheduled article goes live; the snapshot is stale from then on.
    next_release: float | None
    feeds: Mapping[str, Representation] = field(init=False, repr=False)
    pages: PageCache = field(default_factory=PageCache, compare=False, repr=False)

    _published: Mapping[str | None, tuple[Article, ...]] = field(init=False, repr=False)

    def __post_init__(self):
        feeds = {p: r for e in self.editions.values() for p, r in e.representations.items()}
        object.__setattr__(self, "feeds", feeds)
        everything = tuple(self.site.published(self.as_of))
        published: dict[str | None, list[Article]] = {slug: [] for slug in self.site.sections}
        for article in everything:
            published[article.section].append(article)
        lists = {slug: tuple(articles) for slug, articles in published.items()}
        object.__setattr__(self, "_published", {None: everything, **lists})

    def published(self, section: str | None = None) -> tuple[Article, ...]:
        """Return the articles visible in this snapshot, newest first; computed once."""
        return self._published.get(section, ())

    def find(self, section: str, slug: str) -> Article | None:
        """Return the article at /section/slug/ if this snapshot publishes it."""
        return self.site.find(section, slug, self.as_of)

    def lookup(self, path: str) -> Representation | None:
        """Return the precomputed response for a URL path: a feed, or a page rendered before."""
        return self.feeds.get(path) or self.pages.get(path)


class ContentStore:
    """The one place an app gets content from; kept in app.extensions, never global."""

    def __init__(self, settings: Settings, watcher_factory: Callable | None = None):
        self.settings = settings
        self._context = parse_context(settings)
        self._refresh_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._states: dict[str, FileState] = {}
        self._sizes: dict[str, int] = {}
        self._snapshot: Snapshot | None = None
        self._watcher_factory = watcher_factory
        self._watcher = None
        self.watching = False

    @property
    def site(self) -> Site:
        """Return the current site; callers keep using the one they took."""
        return self.snapshot().site

    def snapshot(self) -> Snapshot:
        """Return the current snapshot, loading the content on first use.

        With no watcher running, a snapshot that a scheduled article made stale is
        refreshed here; with one, the watcher does it on time and requests never wait.
        """
        snapshot = self._snapshot
        if snapshot is None:
            return self._start()
        if not self.watching and snapshot.next_release and time.time() >= snapshot.next_release:
            return self.refresh(())
        return snapshot

    def _start(self) -> Snapshot:
        """Load the content and start watching it, once, in the process that serves.

        Deferred to first use so a CLI command pays nothing and a forking server's
        workers each get a watcher thread of their own.
        """
        with self._start_lock:
            if self._snapshot is None:
                self.refresh()
                if self._watcher_factory is not None:
                    self._watcher = self._watcher_factory(self)
                    self._watcher.start()
        return self._snapshot

    def close(self) -> None:
        """Stop watching the content folder."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def refresh(self, changed: Iterable[str] | None = None) -> Snapshot:
        """Re-read `changed` paths (relative to the content folder; None: check every file)."""
        with self._refresh_lock:
            before = self._snapshot
            site = self._read(None if before is None else changed)
            snapshot = self._publish(site, before)
            _log_problem_changes(before.site.problems if before else (), site.problems)
            self._snapshot = snapshot
            return snapshot

    def _read(self, changed: Iterable[str] | None) -> Site:
        root = self.settings.content_dir
        tree = scan_tree(root)
        dirty = set(tree.files) - self._states.keys()
        media_changed = changed is None
        if changed is None:
            dirty.update(
                rel for rel in tree.files if rel not in dirty and self._changed_on_disk(root, rel)
            )
        else:
            changed = set(changed)
            dirty.update(changed.intersection(tree.files))
            media_changed = any(rel.split("/", 1)[0] == MEDIA_DIR for rel in changed)
        states = {rel: self._states[rel] for rel in tree.files if rel not in dirty}
        if media_changed:
            sizes = media_sizes(root)
            if sizes != self._sizes:
                self._sizes = sizes
                states = {rel: with_new_media(state, sizes) for rel, state in states.items()}
        for rel in dirty:
            previous = self._states.get(rel)
            states[rel] = read_content_file(root, rel, self._context, self._sizes, previous)
        self._states = states
        return assemble_site(tree, states, self._sizes, self.settings)

    def _changed_on_disk(self, root: Path, rel: str) -> bool:
        try:
            stat = os.stat(root / rel)
        except OSError:
            return True
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._states[rel].fingerprint

    def _publish(self, site: Site, before: Snapshot | None) -> Snapshot:
        """Render what changed; wait, if needed, until every new Last-Modified is in the past."""
        now = datetime.now(UTC)
        specs = feed_specs(site, now, self.settings)
        releases = next_releases(site, now)
        previous = before.editions if before is not None else {}
        editions = render_editions(specs, previous, releases, now.timestamp(), self.settings)
        newest = max(
            (rep.last_modified for e in editions.values() for rep in e.representations.values()),
            default=0,
        )
        wait = newest - time.time()
        if wait > 0:  # a second change within one second: its Last-Modified is next second
            time.sleep(wait)
        next_release = min(releases.values(), default=None)
        return Snapshot(site, now, editions, next_release)


def _log_problem_changes(before: Iterable[ContentError], after: Iterable[ContentError]) -> None:
    """Log each problem once, when it appears, and once more when it is gone."""
    old = {(p.path, p.line, p.reason) for p in before}
    new = {(p.path, p.line, p.reason) for p in after}
    for problem in after:
        if (problem.path, problem.line, problem.reason) not in old:
            log.warning("content problem: %s", problem)
    for path, line, reason in sorted(old - new, key=str):
        log.info("content problem resolved: %s:%s: %s", path, line or 1, reason)
