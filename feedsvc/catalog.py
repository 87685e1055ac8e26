"""The feeds a site offers, rendered once per change into precomputed HTTP representations.

A feed is re-rendered only when what it holds changed, and its Last-Modified rises with
every change of its bytes: strictly, by at least a second, since HTTP dates have no finer
grain and readers such as newsboat drop a 200 whose Last-Modified is not newer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .feeds import ATOM, JSON, RSS, FeedSpec, feed_path, media_type, render_feed
from .jsonfeed import render_json_feed
from .models import Article, Section, Site
from .responses import Representation, build_representation
from .settings import Settings

SITE_FEED = "feed"
FEED_FORMATS = (RSS, ATOM, JSON)
# The updated time of a feed with no items at all: fixed, so its bytes stay stable.
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedEdition:
    """One feed's spec and its representations (RSS and Atom) keyed by URL path."""

    spec: FeedSpec
    representations: Mapping[str, Representation]


def feed_specs(site: Site, now: datetime, settings: Settings) -> dict[str, FeedSpec]:
    """Describe every feed of the site at time `now`: the whole site's, then each section's."""
    published = site.published(now)
    by_section: dict[str, list[Article]] = {slug: [] for slug in site.sections}
    for article in published:
        by_section[article.section].append(article)
    feeds = [(SITE_FEED, settings.site_title, settings.site_description, "/", published)]
    for slug, section in site.sections.items():
        title = f"{section.title} — {settings.site_title}"
        description = section.description or settings.site_description
        feeds.append((slug, title, description, section.path, by_section[slug]))
    return {
        name: FeedSpec(
            name=name,
            title=title,
            description=description,
            page_path=page_path,
            articles=tuple(articles[: settings.feed_items]),
            sections=site.sections,
            # An empty feed takes the site's newest date, so it stays stable yet plausible.
            updated=_newest_update(articles[: settings.feed_items] or published),
        )
        for name, title, description, page_path, articles in feeds
    }


def next_releases(site: Site, now: datetime) -> dict[str, float]:
    """Return, per feed name, when its next scheduled article goes live (POSIX time)."""
    releases: dict[str, float] = {}
    for article in site.articles:
        if article.date > now:
            moment = article.date.timestamp()
            for name in (SITE_FEED, article.section):
                releases[name] = min(releases.get(name, math.inf), moment)
    return releases


def render_editions(
    specs: Mapping[str, FeedSpec],
    previous: Mapping[str, FeedEdition],
    releases: Mapping[str, float],
    now: float,
    settings: Settings,
) -> dict[str, FeedEdition]:
    """Render the feeds whose spec changed; keep the others' bytes and validators."""
    editions = {}
    for name, spec in specs.items():
        before = previous.get(name)
        expires_at = releases.get(name)
        if before is not None and before.spec == spec:
            representations = {
                path: _with_expiry(rep, expires_at) for path, rep in before.representations.items()
            }
        else:
            old = before.representations if before is not None else {}
            representations = {
                feed_path(name, fmt): _represent(spec, fmt, old, expires_at, now, settings)
                for fmt in FEED_FORMATS
            }
        editions[name] = FeedEdition(spec, representations)
    return editions


def _represent(
    spec: FeedSpec,
    fmt: str,
    old: Mapping[str, Representation],
    expires_at: float | None,
    now: float,
    settings: Settings,
) -> Representation:
    path = feed_path(spec.name, fmt)
    body = render_json_feed(spec, settings) if fmt == JSON else render_feed(spec, fmt, settings)
    before = old.get(path)
    if before is not None and before.variants["identity"].body == body:
        return _with_expiry(before, expires_at)
    last_modified = content_last_modified(spec, now)
    if before is not None:
        last_modified = max(last_modified, before.last_modified + 1)
    return build_representation(
        body, media_type(fmt), last_modified, settings.feed_max_age, expires_at
    )


def _with_expiry(rep: Representation, expires_at: float | None) -> Representation:
    return rep if rep.expires_at == expires_at else replace(rep, expires_at=expires_at)


def content_last_modified(spec: FeedSpec, now: float) -> int:
    """Return when the feed's content last changed: items, their files and section folders.

    Folder times catch deletions, file times catch edits that leave `updated` alone; all
    are the same in every worker process, so workers agree without talking to each other.
    """
    sections: Iterable[Section] = (
        spec.sections.values() if spec.name == SITE_FEED else [spec.sections[spec.name]]
    )
    moments = [spec.updated.timestamp()]
    moments += [section.file_mtime for section in sections]
    moments += [article.file_mtime for article in spec.articles]
    return int(min(max(moments), now))


def _newest_update(articles: Iterable[Article]) -> datetime:
    return max((a.updated for a in articles), default=_EPOCH)
