"""Turn an assembled site into a snapshot: listings, feed specs, editions and documents.

One way of publishing for the live store and for a first start's first look (firstlook.py),
so what the first look answers is made exactly as the live snapshot makes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from .addresses import OPML_PATH, SITE_FEED
from .assembly import SiteAssembler
from .catalog import FeedSpecs, Listing, feed_specs
from .editions import (
    FEED_FORMATS,
    FeedEdition,
    RenderCache,
    ValidatorHistory,
    build_editions,
    content_last_modified,
)
from .feeds import FeedSpec
from .models import Site
from .opml import OPML_TYPE, render_opml
from .responses import Representation, build_representation
from .settings import Settings
from .snapshot import Snapshot

# Makes /feeds.opml of the listings and the site feed's spec, given the snapshot before.
OutlineMaker = Callable[[Mapping[str, Listing], FeedSpec, Snapshot | None], Representation]


class Described(NamedTuple):
    """What a site publishes, before anything is rendered: its listings and feed specs."""

    now: datetime
    groups: Mapping[str, Listing]
    specs: FeedSpecs
    releases: Mapping[str, float]


def publish_site(
    site: Site,
    before: Snapshot | None,
    assembler: SiteAssembler,
    settings: Settings,
    history: ValidatorHistory,
    renders: RenderCache,
    outline: OutlineMaker,
    described: Described | None = None,
) -> Snapshot:
    """Render what changed into a snapshot served once its newest Last-Modified is not ahead.

    `described`: describe_site's word on this site and `before`, if already asked.
    """
    now, groups, specs, releases = described or describe_site(site, before, assembler, settings)
    previous = before.editions if before is not None else {}
    editions = build_editions(
        specs, previous, releases, settings, history, renders, specs.respecified
    )
    eager = [
        editions[name].representation(fmt)
        for name in subscriptions(site, editions)
        for fmt in FEED_FORMATS
    ]
    documents = {OPML_PATH: outline(groups, specs[SITE_FEED], before)}
    # A second change within one second gets the next second: served from then on.
    newest = max(rep.last_modified for rep in [*eager, *documents.values()])
    next_release = min(releases.values(), default=None)
    return Snapshot(
        site,
        now,
        groups,
        editions,
        documents,
        next_release,
        visible_from=newest,
        before=before,
        remade=editions.remade,
    )


def describe_site(
    site: Site, before: Snapshot | None, assembler: SiteAssembler, settings: Settings
) -> Described:
    """Return the site's listings and feed specs, those of `before` kept where unchanged."""
    now = datetime.now(UTC)
    groups = assembler.listings(site, now)
    previous = before.editions if before is not None else {}
    old, relisted = None, None
    if before is not None:
        specs = getattr(previous, "specs", None) or {n: e.spec for n, e in previous.items()}
        old = (before.listings, specs)
        hint = assembler.relisted()
        if hint is not None and hint[0] is before.listings:
            relisted = hint[1]  # the others are before's listings: their specs are kept
    all_in_feeds = assembler.all_in_feeds(site)
    remade = assembler.remade()
    specs = feed_specs(site, groups, now, settings, old, all_in_feeds, remade, relisted)
    releases = assembler.releases(site, now)
    return Described(now, groups, specs, releases)


def render_outline(
    groups: Mapping[str, Listing],
    site_feed: FeedSpec,
    settings: Settings,
    history: ValidatorHistory,
) -> Representation:
    """Render /feeds.opml, dated as the site feed's content unless its bytes were served before."""
    body = render_opml(groups.values(), settings)
    last_modified = history.last_modified(OPML_PATH, body, content_last_modified(site_feed))
    return build_representation(body, OPML_TYPE, last_modified, settings.feed_max_age)


def subscriptions(site: Site, editions: Mapping[str, FeedEdition]) -> list[str]:
    """Return the names of the subscription feeds (the site's, each section's) among `editions`.

    Named from the site's sections, not found among thousands of archive, tag and author
    editions on each edit.
    """
    return [name for name in (SITE_FEED, *site.sections) if name in editions]
