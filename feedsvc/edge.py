"""What an HTTP cache tier in front (Varnish, a CDN) is told, apart from what readers are told.

Readers keep `Cache-Control: max-age=FEED_MAX_AGE`; the edge gets a long lifetime of its
own (Surrogate-Control, and CDN-Cache-Control of RFC 9213), because a publish purges what
it changed there (see purge.py). Each feed and page carries surrogate keys (`xkey`,
`Surrogate-Key`) derived from its path, so one edit can drop every page that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from .addresses import OPML_KEY, OPML_PATH, parse_path
from .responses import Header, fresh_for

# Past its lifetime, an edge may serve its copy this long while it fetches a new one...
STALE_WHILE_REVALIDATE = 30
# ...and this long while the origin is down or failing.
STALE_IF_ERROR = 86_400
# Every page carries this key: the sections' names and titles are on every page.
SITE_KEY = "site"
# Paths whose keys are kept worked out: the feeds and pages pollers ask for again and again.
KEYED_PATHS_CACHED = 4096


@dataclass(frozen=True)
class EdgePolicy:
    """The edge lifetime of feeds and pages, and what the edge may do past it."""

    max_age: int
    stale_while_revalidate: int = STALE_WHILE_REVALIDATE
    stale_if_error: int = STALE_IF_ERROR
    _steady: str = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        steady = (
            f"max-age={self.max_age}, stale-while-revalidate={self.stale_while_revalidate},"
            f" stale-if-error={self.stale_if_error}"
        )
        object.__setattr__(self, "_steady", steady)

    def control(self, expires_at: float | None, now: float) -> str:
        """Return the edge's Surrogate-Control, never running past a scheduled release.

        Once a release is due, even a moment of the old copy would hide it from readers:
        a lifetime cut short by a release allows no stale-while-revalidate.
        """
        if expires_at is None or expires_at - now >= self.max_age:
            return self._steady
        lifetime = fresh_for(self.max_age, expires_at, now)
        return f"max-age={lifetime}, stale-if-error={self.stale_if_error}"

    def headers(self, path: str, expires_at: float | None, now: float) -> tuple[Header, ...]:
        """Return the headers for the edge on the document at site path `path`."""
        control = self.control(expires_at, now)
        keys = " ".join(surrogate_keys(path))
        return (
            ("Surrogate-Control", control),
            ("CDN-Cache-Control", control),
            ("Surrogate-Key", keys),
            ("xkey", keys),
        )


@lru_cache(maxsize=KEYED_PATHS_CACHED)
def surrogate_keys(path: str) -> tuple[str, ...]:
    """Return the keys of the feed or page at `path`: what a publish purges it by.

    Cached by path: a request pays one dict lookup instead of reading its address.
    """
    if path == OPML_PATH:
        return (OPML_KEY,)
    found = parse_path(path)
    if found is None:
        return (SITE_KEY,)
    address, fmt = found
    if fmt:  # a feed document (/culture.xml): all its formats
        return (address.feed_key,)
    return (address.page_key, SITE_KEY)
