"""The feeds a site offers: listings (site, sections, tags, authors), their feed specs and archives.

What each feed holds is decided here; editions.py renders them once per change.
"""

from __future__ import annotations

import math
import operator
from bisect import bisect_right
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import NamedTuple

from . import editorial
from .addresses import (
    SECTION,
    SITE,
    SITE_FEED,
    TAG,
    Address,
    is_subscription,
    listing_name,
    named_in,
    names_in,
)
from .feeds import FeedSpec
from .models import Article, Site, newest_first
from .settings import Settings
from .slugs import name_slug

_IN_FEEDS = operator.attrgetter("in_feeds")
# The updated time of a feed with no items at all: fixed, so its bytes stay stable.
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Listing:
    """A group of articles with its own page and feed: a section, a tag or an author."""

    name: str  # "culture", "tags/music", "authors/zoe-martin"; "feed" for the whole site
    label: str
    page_path: str
    articles: tuple[Article, ...]


def listings(site: Site, published: list[Article]) -> dict[str, Listing]:
    """Group the published articles: the whole site, each section, each tag, each author."""
    groups = {SITE_FEED: Listing(SITE_FEED, "", Address.site().page_path, tuple(published))}
    members: dict[str, list[Article]] = {slug: [] for slug in site.sections}
    labels: dict[str, str] = {}
    for article in published:
        members[article.section].append(article)
        for name, value in named_in(article):
            labels.setdefault(name, value)  # the newest article's spelling
            group = members.setdefault(name, [])
            if not group or group[-1] is not article:
                group.append(article)
    for name, articles in members.items():
        label = labels.get(name) or site.sections[name].title
        groups[name] = Listing(name, label, Address.from_name(name).page_path, tuple(articles))
    return groups


class FeedSpecs(dict):
    """Feed specs by document name, as feed_specs made them, saying which carry tombstones."""

    tombstoned: frozenset[str] = frozenset()
    # The names described again in a copy of the previous specs (None: all were described).
    respecified: frozenset[str] | None = None


class _Describing(NamedTuple):
    """What describing any one group's feed reads, beside the group (see feed_specs)."""

    site: Site
    settings: Settings
    old_groups: Mapping[str, Listing]
    old_specs: Mapping[str, FeedSpec]
    all_in_feeds: bool
    remade: Mapping[str, tuple[Listing, tuple]]


def feed_specs(
    site: Site,
    groups: Mapping[str, Listing],
    now: datetime,
    settings: Settings,
    previous: tuple[Mapping[str, Listing], Mapping[str, FeedSpec]] | None = None,
    all_in_feeds: bool = False,
    remade: Mapping[str, tuple[Listing, tuple]] | None = None,
    relisted: Collection[str] | None = None,
) -> FeedSpecs:
    """Describe every feed document: subscription feeds, their archives, tag and author feeds.

    `previous`: the listings and specs of the snapshot before. A listing that is the very
    same object keeps its specs, and an archive page whose items are the same keeps its
    spec: one edit re-describes the feeds it is in, not every feed and page of the site.
    `all_in_feeds`: no article says `feeds: false`, so listings need no filtering.
    `remade`: per listing, the one of `previous` it replaces and the sort key of its oldest
    article that changed (SiteAssembler.remade): archive pages of older ones are kept unread.
    `relisted`: the names of the groups that may differ from `previous`'s, all others being
    the same Listings in the same order (SiteAssembler.relisted): when the sections and the
    tombstones are as they were, only those are described again, in a copy of the specs.
    """
    tombstones = _tombstones_by_feed(site, now, settings)
    groups = {**groups, **_emptied_groups(tombstones, groups)}
    old_groups, old_specs = previous if previous is not None else ({}, {})
    sections = _sections_change(old_specs, site)
    if sections == "titles":
        old_groups, old_specs = {}, {}
    parts = _Describing(site, settings, old_groups, old_specs, all_in_feeds, remade or {})
    if relisted is not None and old_specs and not sections:
        specs = _respecified(groups, parts, tombstones, relisted)
        if specs is not None:
            return specs
    kept: dict[str, list[str]] = {}  # each listing's previous specs, archives too, in order
    for key, spec in old_specs.items():
        kept.setdefault(spec.name, []).append(key)
    specs = FeedSpecs()
    specs.tombstoned = frozenset(tombstones)
    for name, group in groups.items():
        before = old_specs.get(name)
        stones = tombstones.get(name, ())
        if (
            old_groups.get(name) is group
            and before is not None
            and before.tombstones == stones
            and (before.articles or not sections)  # an empty feed is as new as its folder
        ):
            for key in kept[name]:
                spec = old_specs[key]
                # A folder's new time (a file added or removed) counts for Last-Modified.
                specs[key] = replace(spec, sections=site.sections) if sections else spec
            continue
        specs.update(_group_specs(name, group, stones, parts, bool(sections)))
    return specs


def _respecified(
    groups: Mapping[str, Listing],
    parts: _Describing,
    tombstones: Mapping[str, tuple],
    relisted: Collection[str],
) -> FeedSpecs | None:
    """Describe again only the groups listed again, in a copy of the previous specs.

    None when that would not give what describing every group gives: a group came or
    went, a feed gained or lost an archive page, or tombstones are announced.
    """
    old_groups, old_specs = parts.old_groups, parts.old_specs
    if (
        tombstones
        or not isinstance(old_specs, FeedSpecs)
        or old_specs.tombstoned
        or len(groups) != len(old_groups)
    ):
        return None
    specs = FeedSpecs(old_specs)
    respecified = set()
    for name in relisted:
        group = groups.get(name)
        before = old_specs.get(name)
        if group is None or before is None or name not in old_groups:
            return None
        if old_groups[name] is group:
            continue
        made = _group_specs(name, group, (), parts, False, overlay=True)
        if _archive_count(made[name]) != _archive_count(before):
            return None  # its pages are other documents: their names and order change
        specs.update(made)  # a key present already keeps its place
        respecified.update(made)
    specs.respecified = frozenset(respecified)
    return specs


def _group_specs(
    name: str,
    group: Listing,
    stones: tuple,
    parts: _Describing,
    resection: bool,
    overlay: bool = False,
) -> dict[str, FeedSpec]:
    """Describe one group's feed, and a subscription feed's archive pages.

    `overlay`: leave out the archive pages that are certainly those of the previous specs.
    """
    site, settings, old_groups, old_specs, all_in_feeds, remade = parts
    title, description = _title_and_description(site, group, settings)
    in_feeds = group.articles  # `feeds: false` left out:
    if not all_in_feeds:
        in_feeds = tuple(filter(_IN_FEEDS, in_feeds))
    latest = in_feeds[: settings.feed_items]
    updated = _newest_update(latest) if latest else _folder_update(site, name)
    if stones:  # readers see the feed change when it announces a removal
        updated = max(updated, stones[0].removed_at)
    base = FeedSpec(
        name=name,
        title=title,
        description=description,
        page_path=group.page_path,
        articles=latest,
        sections=site.sections,
        # An empty feed is as new as its section folder: no other section's news moves it.
        updated=updated,
        hub=settings.websub_hub or None,
        tombstones=stones,
    )
    if not is_subscription(name):  # a tag's or an author's feed: no archive
        return {name: base}
    tail = 0  # how many of the oldest articles are as in the previous listing
    hint = remade.get(name)
    if hint is not None and hint[0] is old_groups.get(name):
        tail = len(in_feeds) - bisect_right(in_feeds, hint[1], key=newest_first)
    return _with_archives(base, in_feeds, settings.feed_items, old_specs, resection, tail, overlay)


def _sections_change(specs: Mapping[str, FeedSpec], site: Site) -> str:
    """Say how the site's sections differ from the specs': "" (not), "times" or "titles"."""
    if not specs:
        return ""
    spec = next(iter(specs.values()))
    if spec.sections != site.sections:
        return "titles"
    same_times = all(
        section.file_mtime == spec.sections[slug].file_mtime
        for slug, section in site.sections.items()
    )
    return "" if same_times else "times"


def _archive_count(spec: FeedSpec) -> int:
    """Return how many archive pages a subscription feed's spec links to."""
    if spec.archive or not spec.archive_links:
        return 0
    return Address.from_name(spec.archive_links[0][1]).archive


def feed_names(article: Article) -> list[str]:
    """Return the names of the feeds an article is in: the site's, its section's, tags, authors."""
    names = [SITE_FEED, listing_name(SECTION, article.section)]
    return names + [name for name, _ in named_in(article)]


def _emptied_groups(tombstones: Mapping[str, tuple], groups: Mapping[str, Listing]) -> dict:
    """Keep the feed of a tag or author whose every article was taken down, to announce it."""
    emptied = {}
    for name, stones in tombstones.items():
        address = Address.from_name(name)
        if name in groups or not address.is_named or not address.slug:
            continue
        names = names_in(stones[0], address.kind)
        label = next((n for n in names if name_slug(n) == address.slug), address.slug)
        emptied[name] = Listing(name, label, address.page_path, ())
    return emptied


def _tombstones_by_feed(site: Site, now: datetime, settings: Settings) -> dict[str, tuple]:
    """Group the takedowns feeds announce now by the feeds that carried the articles."""
    stones: dict[str, list[Article]] = {}
    for article in editorial.due_tombstones(site, now, settings.tombstone_period):
        for name in feed_names(article):
            stones.setdefault(name, []).append(article)
    return {name: tuple(articles) for name, articles in stones.items()}


def _title_and_description(site: Site, group: Listing, settings: Settings) -> tuple[str, str]:
    kind = Address.from_name(group.name).kind
    if kind == SITE:
        return settings.site_title, settings.site_description
    if kind == SECTION:
        section = site.sections[group.name]
        description = section.description or settings.site_description
        return f"{section.title} — {settings.site_title}", description
    if kind == TAG:
        return f"{group.label} — {settings.site_title}", f"Articles tagged “{group.label}”."
    return f"{group.label} — {settings.site_title}", f"Articles by {group.label}."


def _with_archives(
    base: FeedSpec,
    articles: tuple[Article, ...],
    size: int,
    previous: Mapping[str, FeedSpec] | None = None,
    resection: bool = False,
    unchanged_tail: int = 0,
    overlay: bool = False,
) -> dict:
    """Split a feed's history into RFC 5005 archive pages of `size` items, oldest first.

    Only full pages are archives, so each keeps its items as newer articles arrive; the
    subscription feed holds the newest items, including those of the page still filling.
    A page of `previous` holding the very same articles, with the same links, is kept
    (`resection`: given the site's sections, whose folder times changed); so is one
    within the `unchanged_tail` oldest articles, known to be those of `previous`.
    `overlay`: the pages kept that way are left out (the caller has them), but for the
    newest, which the subscription feed's spec reads.
    """
    count = len(articles)
    full_pages = count // size if count > size else 0
    address = Address.from_name(base.name)
    before = (previous or {}).get(base.name)
    same_feed = before is not None and (
        before.title,
        before.description,
        before.page_path,
        before.hub,
    ) == (base.title, base.description, base.page_path, base.hub)
    # Pages kept from `previous` have the same links as now, but for the newest page
    # when the number of pages changed (its next-archive link comes or goes).
    kept_pages = _archive_count(before) if same_feed else 0
    specs = {}
    first = 1
    if overlay and not resection:  # pages 1 to first - 1 are kept, as the loop would find
        first = max(min(unchanged_tail // size, kept_pages - 1, full_pages - 1), 0) + 1
    for number in range(first, full_pages + 1):
        # Page n, newest first, holds the n-th `size` of the oldest articles.
        start = count - number * size
        path_stem = address.archive_name(number)
        kept = previous.get(path_stem) if number <= kept_pages else None
        if (
            kept is not None
            and (number < kept_pages) == (number < full_pages)
            and (
                number * size <= unchanged_tail
                or all(map(operator.is_, kept.articles, articles[start : start + size]))
            )
        ):
            if resection:  # a folder's new time counts for Last-Modified
                kept = replace(kept, sections=base.sections)
            specs[path_stem] = kept
            continue
        page = articles[start : start + size]
        links = [("current", base.name)]
        if number > 1:
            links.append(("prev-archive", address.archive_name(number - 1)))
        if number < full_pages:
            links.append(("next-archive", address.archive_name(number + 1)))
        specs[path_stem] = replace(
            base,
            articles=page,
            updated=_newest_update(page),
            tombstones=(),
            archive_links=tuple(links),
            archive=True,
            path_stem=path_stem,
            json_next=address.archive_name(number - 1) if number > 1 else None,
        )
    if full_pages:
        newest_page = specs[address.archive_name(full_pages)].articles
        shown = {article.key for article in base.articles}
        base = replace(
            base,
            archive_links=(("prev-archive", address.archive_name(full_pages)),),
            json_more=tuple(a for a in newest_page if a.key not in shown),
            json_next=address.archive_name(full_pages - 1) if full_pages > 1 else None,
        )
    return {base.name: base, **specs}


def next_releases(site: Site, now: datetime, settings: Settings | None = None) -> dict[str, float]:
    """Return, per feed name, when its next scheduled article or update goes live (POSIX time).

    With `settings`, a takedown coming into effect and a tombstone's end count too.
    """
    releases: dict[str, float] = {}
    for article in site.timely():
        moment = release_moment(article, now, settings)
        if moment is None:
            continue
        stamp = moment.timestamp()
        for name in feed_names(article):
            if stamp < releases.get(name, math.inf):
                releases[name] = stamp
    return releases


def release_moment(
    article: Article, now: datetime, settings: Settings | None = None
) -> datetime | None:
    """Return when the feeds holding `article` next change by the clock alone, if ever.

    A scheduled article goes live, or a published one's future `updated` comes due; with
    `settings`, a takedown coming into effect and its tombstone's end (as
    editorial.coming_changes has them).
    """
    moment = article.date if article.date > now else article.updated
    moments = [moment] if moment > now else []
    removed_at = article.removed_at
    if settings is not None and removed_at is not None:
        for change in (removed_at, removed_at + settings.tombstone_period):
            if change > now:
                moments.append(change)
                break
    return min(moments, default=None)


def _newest_update(articles: Iterable[Article]) -> datetime:
    return max((a.updated for a in articles), default=_EPOCH)


def _folder_update(site: Site, name: str) -> datetime:
    """Return when section `name`'s folder last changed, to the second; else a fixed date."""
    section = site.sections.get(name)
    if section is None or section.file_mtime <= _EPOCH.timestamp():
        return _EPOCH
    return datetime.fromtimestamp(int(section.file_mtime), UTC)
