"""Hold the current Site snapshot for an app and the feed documents rendered from it."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from .feeds import FeedSpec, render_feed
from .loader import load_site
from .models import Article, Site
from .settings import Settings

SITE_FEED = "feed"
# The updated time of a feed with no items at all: fixed, so its bytes stay stable.
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RenderedFeed:
    """A feed document and its HTTP validators."""

    body: bytes
    etag: str
    last_modified: datetime


class ContentStore:
    """The one place an app gets content from; kept in app.extensions, never global."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._site = load_site(settings)
        self._feeds: dict[tuple, RenderedFeed] = {}
        self._lock = threading.Lock()

    @property
    def site(self) -> Site:
        """Return the current snapshot; callers keep using the one they took."""
        return self._site

    def feed(self, name: str, fmt: str, now: datetime) -> RenderedFeed | None:
        """Return feed `name` ("feed" for the whole site) in `fmt`, rendered once per change."""
        site = self._site
        generation = (site.version, site.released_count(now))
        key = (*generation, name, fmt)
        rendered = self._feeds.get(key)
        if rendered is None:
            spec = self.feed_spec(site, name, now)
            if spec is None:
                return None
            body = render_feed(spec, fmt, self.settings)
            etag = hashlib.sha256(body).hexdigest()[:32]
            rendered = RenderedFeed(body, etag, spec.updated)
            with self._lock:
                self._feeds = {k: v for k, v in self._feeds.items() if k[:2] == generation}
                self._feeds[key] = rendered
        return rendered

    def feed_spec(self, site: Site, name: str, now: datetime) -> FeedSpec | None:
        """Describe feed `name` at time `now`, or None if there is no such feed."""
        settings = self.settings
        if name == SITE_FEED:
            title, description, page_path = settings.site_title, settings.site_description, "/"
            articles = site.published(now)
        elif name in site.sections:
            section = site.sections[name]
            title = f"{section.title} — {settings.site_title}"
            description = section.description or settings.site_description
            page_path = section.path
            articles = site.published(now, name)
        else:
            return None
        latest = tuple(articles[: settings.feed_items])
        return FeedSpec(
            name=name,
            title=title,
            description=description,
            page_path=page_path,
            articles=latest,
            sections=site.sections,
            # An empty feed takes the site's newest date, so it stays stable yet plausible.
            updated=_newest_update(latest or site.published(now)),
        )


def _newest_update(articles: list[Article]) -> datetime:
    return max((a.updated for a in articles), default=_EPOCH)
