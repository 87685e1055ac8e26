"""A published snapshot: the site at one moment, with its feeds, documents and pages.

Immutable once built (its page cache only fills): readers keep the snapshot they took
while the store builds the next one aside.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import InitVar, dataclass, field
from datetime import datetime

from .addresses import RESERVED_SLUGS, SITE_FEED
from .bounded import BoundedCache
from .catalog import Listing
from .editions import FeedEdition
from .editorial import Routes, build_routes
from .models import Article, Site
from .responses import Representation

# Rendered pages kept per snapshot; beyond this, the oldest are rendered again on demand.
# About 500 pages (14 kB held for a 10 kB page): the section and tag pages readers
# browse; a crawler's article pages, each asked for once, come and go.
PAGE_CACHE_BYTES = 8 * 1024 * 1024


class PageCache(BoundedCache[str, Representation]):
    """Pages rendered for one snapshot, bounded in bytes so a crawler cannot fill memory."""

    def __init__(self, budget: int = PAGE_CACHE_BYTES):
        super().__init__(budget, Representation.held_bytes)


@dataclass(frozen=True)
class Snapshot:
    """The site as published at one moment, with its feeds and pages as they are then."""

    site: Site
    as_of: datetime
    listings: Mapping[str, Listing]
    editions: Mapping[str, FeedEdition]
    # Documents about the feeds themselves, such as /feeds.opml.
    documents: Mapping[str, Representation]
    # When the next scheduled article goes live; the snapshot is stale from then on.
    next_release: float | None
    pages: PageCache = field(default_factory=PageCache, compare=False, repr=False)
    # Not served before this POSIX time: its newest Last-Modified (a second change within
    # one second gets the next second, and no Last-Modified may be ahead of the clock).
    visible_from: float = field(default=0.0, compare=False)
    # The snapshot before, whose URL map is taken over for the editions carried over.
    before: InitVar[Snapshot | None] = None
    # The names whose edition is not `before`'s, which has the same names (None: unknown).
    remade: InitVar[Collection[str] | None] = None
    _feed_paths: Mapping[str, tuple[FeedEdition, str]] = field(init=False, repr=False)

    def __post_init__(self, before: Snapshot | None, remade: Collection[str] | None):
        editions = self.editions
        if before is None:
            paths = {
                path: (edition, fmt)
                for edition in editions.values()
                for path, fmt in edition.paths().items()
            }
        elif remade is not None:  # only those are mapped again, not thousands of archives
            paths = dict(before._feed_paths)
            for name in remade:
                for path in before.editions[name].paths():
                    del paths[path]
                edition = editions[name]
                paths.update((path, (edition, fmt)) for path, fmt in edition.paths().items())
        else:  # an edit changes a few editions of thousands (archive pages): map those
            paths = dict(before._feed_paths)
            old = before.editions
            for name, edition in old.items():
                if editions.get(name) is not edition:
                    for path in edition.paths():
                        paths.pop(path, None)
            for name, edition in editions.items():
                if old.get(name) is not edition:
                    paths.update({path: (edition, fmt) for path, fmt in edition.paths().items()})
        object.__setattr__(self, "_feed_paths", paths)

    def published(self, listing: str | None = None) -> tuple[Article, ...]:
        """Return the published articles of the site, a section, a tag or an author."""
        group = self.listings.get(listing or SITE_FEED)
        return group.articles if group is not None else ()

    def find(self, section: str, slug: str) -> Article | None:
        """Return the article at /section/slug/ if this snapshot publishes it."""
        return self.site.find(section, slug, self.as_of)

    def feed(self, path: str) -> Representation | None:
        """Return the feed document at a URL path, rendering it on first use."""
        entry = self._feed_paths.get(path)
        return entry[0].representation(entry[1]) if entry is not None else None

    def feed_edition(self, path: str) -> FeedEdition | None:
        """Return the edition of the feed document at a URL path, rendered or not."""
        entry = self._feed_paths.get(path)
        return entry[0] if entry is not None else None

    @functools.cached_property
    def routes(self) -> Routes:
        """Return where old and removed addresses lead, worked out on the first miss."""
        return build_routes(self.site, self.as_of, RESERVED_SLUGS)

    def lookup(self, path: str) -> Representation | None:
        """Return the precomputed response for a URL path: a feed, a document or a rendered page."""
        return self.feed(path) or self.documents.get(path) or self.pages.get(path)
