"""The feeds a site offers, each rendered once per change into precomputed HTTP representations.

Subscription feeds (the site's and each section's) are rendered when a snapshot is built;
tag, author and archive feeds on first request. A feed's Last-Modified rises with every
change of its bytes, strictly, by at least a second: HTTP dates have no finer grain, and
readers such as newsboat drop a 200 whose Last-Modified is not newer than their copy.
"""

from __future__ import annotations

import hashlib
import math
import operator
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from . import editorial
from .feeds import (
    ATOM,
    JSON,
    RSS,
    FeedSpec,
    ItemHtmlMemo,
    document_path,
    media_type,
    render_feed,
)
from .jsonfeed import render_json_feed
from .models import Article, Site
from .responses import IDENTITY, Representation, Variant, build_representation
from .settings import Settings
from .slugs import name_slug

SITE_FEED = "feed"
TAGS = "tags"
AUTHORS = "authors"
FEED_FORMATS = (RSS, ATOM, JSON)
# What browsers get for RSS and Atom, so they apply the feed's stylesheet.
BROWSER_FEED_TYPE = "application/xml; charset=utf-8"
# Archive documents change only when old articles do: caches may keep them a day.
ARCHIVE_MAX_AGE = 86400
# Bytes of tag, author and archive feeds kept rendered; beyond this, the least recently
# used are rendered again on demand (same bytes, so the same ETag and Last-Modified).
RENDER_CACHE_BYTES = 64 * 1024 * 1024
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


class ValidatorHistory:
    """The last body digest and Last-Modified served at each feed path, kept across snapshots.

    With a `backing` (the persistent index), the history is shared with the other
    processes serving the same content and survives restarts: the newest record wins.
    """

    def __init__(self, backing=None):
        self._seen: dict[str, tuple[bytes, int]] = {}
        # The persistent index, if any: subscription feeds are kept there rendered too.
        self.backing = backing
        self._lock = threading.Lock()

    def last_modified(self, path: str, body: bytes, content_time: int) -> int:
        """Return the Last-Modified for `body` at `path`: unchanged bytes keep theirs."""
        digest = hashlib.sha256(body).digest()
        with self._lock:
            seen = self._seen.get(path)
            if seen is not None and seen[0] == digest:
                return seen[1]
            stored = self.backing.validator(path) if self.backing is not None else None
            if stored is not None and (seen is None or stored[1] >= seen[1]):
                seen = stored
                if seen[0] == digest:
                    self._seen[path] = seen
                    return seen[1]
            moment = content_time if seen is None else max(content_time, seen[1] + 1)
            self._seen[path] = (digest, moment)
            if self.backing is not None:
                self.backing.record_validator(path, digest, moment)
            return moment


class RenderCache:
    """Feeds rendered on demand, least recently used dropped first, bounded in bytes.

    Tag, author and archive feeds are listed in /feeds.opml, so a crawler asks for every
    one of them; kept without a bound they would outgrow any machine's memory.
    """

    def __init__(self, budget: int | None = None):
        self._entries: OrderedDict[tuple, Representation] = OrderedDict()
        self._budget = RENDER_CACHE_BYTES if budget is None else budget
        self._used = 0
        self._lock = threading.Lock()
        # Item HTML per article version, which every feed's render reuses.
        self.items = ItemHtmlMemo()

    def get(self, key: tuple) -> Representation | None:
        """Return the representation kept under `key`, marking it recently used."""
        with self._lock:
            rep = self._entries.get(key)
            if rep is not None:
                self._entries.move_to_end(key)
            return rep

    def put(self, key: tuple, rep: Representation) -> None:
        """Keep `rep`, dropping the least recently used entries when over budget."""
        size = _size(rep)
        with self._lock:
            if key in self._entries or size > self._budget:
                return
            self._entries[key] = rep
            self._used += size
            while self._used > self._budget:
                _, dropped = self._entries.popitem(last=False)
                self._used -= _size(dropped)

    @property
    def used(self) -> int:
        """Return the bytes held."""
        return self._used


def _size(rep: Representation) -> int:
    return sum(len(variant.body) for variant in rep.variants.values())


class FeedEdition:
    """One feed document in every format, rendered on first use.

    A subscription feed keeps its renders for its snapshot; any other feed keeps them in
    the shared, bounded RenderCache under a token that editions with the same spec share.
    """

    def __init__(
        self,
        spec: FeedSpec,
        max_age: int,
        expires_at: float | None,
        context,
        cache=None,
        memo: ItemHtmlMemo | None = None,
    ):
        self.spec = spec
        self._memo = memo
        self._paths: dict[str, str] | None = None
        self.max_age = max_age
        self.expires_at = expires_at
        self._settings, self._history = context
        self._cache: RenderCache | None = cache
        self._token = object()
        self._rendered: dict[str, Representation] = {}
        self._lock = threading.Lock()

    def made_with(self, spec, max_age, expires_at, context, cache, memo) -> bool:
        """Tell whether this edition was made of this very spec, with these same parts."""
        settings, history = context
        return (
            self.spec is spec
            and self.expires_at == expires_at
            and self.max_age == max_age
            and self._settings is settings
            and self._history is history
            and self._cache is cache
            and self._memo is memo
        )

    def paths(self) -> dict[str, str]:
        """Map each format's URL path to the format (the same dict each time: do not change it)."""
        if self._paths is None:
            self._paths = {document_path(self.spec, fmt): fmt for fmt in FEED_FORMATS}
        return self._paths

    def inherit(self, previous: FeedEdition) -> None:
        """Reuse what an edition with the same spec already rendered."""
        self._token = previous._token
        for fmt, rep in previous._rendered.items():
            self._rendered[fmt] = _with_expiry(rep, self.expires_at)

    def rendered(self) -> dict[str, Representation]:
        """Return the representations this edition holds itself, by format."""
        return dict(self._rendered)

    def representation(self, fmt: str) -> Representation:
        """Return the document in `fmt`, rendering it the first time."""
        rep = self._rendered.get(fmt)
        if rep is not None:
            return rep
        if self._cache is not None:
            rep = self._cache.get((self._token, fmt))
            if rep is None:
                rep = self._render(fmt)
                self._cache.put((self._token, fmt), rep)
            return _with_expiry(rep, self.expires_at)
        with self._lock:
            rep = self._rendered.get(fmt) or self._render(fmt)
            self._rendered[fmt] = rep
        return rep

    def _render(self, fmt: str) -> Representation:
        settings, spec = self._settings, self.spec
        path = document_path(spec, fmt)
        store = self._history.backing if self._cache is None else None
        key = store.document_key(path, spec) if store is not None else None
        stored = store.document(path, key) if store is not None else None
        if stored is not None:  # rendered by an earlier run or another worker
            content_type, variants, headers, browser_type = stored
            body = variants[IDENTITY][0]
            last_modified = self._history.last_modified(path, body, content_last_modified(spec))
            return Representation(
                content_type,
                last_modified,
                {coding: Variant(*variant) for coding, variant in variants.items()},
                self.max_age,
                self.expires_at,
                headers,
                browser_type,
            )
        if fmt == JSON:
            body = render_json_feed(spec, settings, self._memo)
        else:
            body = render_feed(spec, fmt, settings, self._memo)
        last_modified = self._history.last_modified(path, body, content_last_modified(spec))
        headers = ()
        if spec.hub:
            self_url = settings.absolute(path)
            headers = (("Link", f'<{spec.hub}>; rel="hub", <{self_url}>; rel="self"'),)
        rep = build_representation(
            body,
            media_type(fmt),
            last_modified,
            self.max_age,
            self.expires_at,
            headers,
            None if fmt == JSON else BROWSER_FEED_TYPE,
        )
        if store is not None:
            variants = {coding: (v.body, v.etag) for coding, v in rep.variants.items()}
            store.store_document(
                path, key, (rep.content_type, variants, rep.extra_headers, rep.browser_content_type)
            )
        return rep


def listings(site: Site, published: list[Article]) -> dict[str, Listing]:
    """Group the published articles: the whole site, each section, each tag, each author."""
    groups = {SITE_FEED: Listing(SITE_FEED, "", "/", tuple(published))}
    members: dict[str, list[Article]] = {slug: [] for slug in site.sections}
    labels: dict[str, str] = {}
    for article in published:
        members[article.section].append(article)
        for kind, values in ((TAGS, article.tags), (AUTHORS, article.authors)):
            for value in values:
                slug = name_slug(value)
                if slug:
                    name = f"{kind}/{slug}"
                    labels.setdefault(name, value)  # the newest article's spelling
                    group = members.setdefault(name, [])
                    if not group or group[-1] is not article:
                        group.append(article)
    for name, articles in members.items():
        label = labels.get(name) or site.sections[name].title
        groups[name] = Listing(name, label, f"/{name}/", tuple(articles))
    return groups


def feed_specs(
    site: Site,
    groups: Mapping[str, Listing],
    now: datetime,
    settings: Settings,
    previous: tuple[Mapping[str, Listing], Mapping[str, FeedSpec]] | None = None,
) -> dict[str, FeedSpec]:
    """Describe every feed document: subscription feeds, their archives, tag and author feeds.

    `previous`: the listings and specs of the snapshot before. A listing that is the very
    same object keeps its specs, and an archive page whose items are the same keeps its
    spec: one edit re-describes the feeds it is in, not every feed and page of the site.
    """
    hub = settings.websub_hub or None
    specs = {}
    tombstones = _tombstones_by_feed(site, now, settings)
    groups = {**groups, **_emptied_groups(tombstones, groups)}
    old_groups, old_specs = previous if previous is not None else ({}, {})
    sections = _sections_change(old_specs, site)
    if sections == "titles":
        old_groups, old_specs = {}, {}
    for name, group in groups.items():
        before = old_specs.get(name)
        stones = tombstones.get(name, ())
        if old_groups.get(name) is group and before is not None and before.tombstones == stones:
            kept = [name, *(f"{name}/archive/{n}" for n in range(1, _archive_count(before) + 1))]
            for kept_name in kept:
                spec = old_specs[kept_name]
                # A folder's new time (a file added or removed) counts for Last-Modified.
                specs[kept_name] = replace(spec, sections=site.sections) if sections else spec
            continue
        title, description = _title_and_description(site, group, settings)
        in_feeds = tuple(filter(_IN_FEEDS, group.articles))  # `feeds: false` left out
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
            hub=hub,
            tombstones=stones,
        )
        if name.startswith((TAGS + "/", AUTHORS + "/")):
            specs[name] = base
        else:
            pages = _with_archives(base, in_feeds, settings.feed_items, old_specs, bool(sections))
            specs.update(pages)
    return specs


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
    return int(spec.archive_links[0][1].rsplit("/", 1)[1])


def feed_names(article: Article) -> list[str]:
    """Return the names of the feeds an article is in: the site's, its section's, tags, authors."""
    names = [SITE_FEED, article.section]
    names += [f"{TAGS}/{name_slug(tag)}" for tag in article.tags]
    names += [f"{AUTHORS}/{name_slug(author)}" for author in article.authors]
    return names


def _emptied_groups(tombstones: Mapping[str, tuple], groups: Mapping[str, Listing]) -> dict:
    """Keep the feed of a tag or author whose every article was taken down, to announce it."""
    emptied = {}
    for name, stones in tombstones.items():
        kind, _, slug = name.partition("/")
        if name in groups or kind not in (TAGS, AUTHORS) or not slug:
            continue
        names = stones[0].tags if kind == TAGS else stones[0].authors
        label = next((n for n in names if name_slug(n) == slug), slug)
        emptied[name] = Listing(name, label, f"/{name}/", ())
    return emptied


def _tombstones_by_feed(site: Site, now: datetime, settings: Settings) -> dict[str, tuple]:
    """Group the takedowns feeds announce now by the feeds that carried the articles."""
    stones: dict[str, list[Article]] = {}
    for article in editorial.due_tombstones(site, now, settings.tombstone_period):
        for name in feed_names(article):
            stones.setdefault(name, []).append(article)
    return {name: tuple(articles) for name, articles in stones.items()}


def _title_and_description(site: Site, group: Listing, settings: Settings) -> tuple[str, str]:
    if group.name == SITE_FEED:
        return settings.site_title, settings.site_description
    if group.name in site.sections:
        section = site.sections[group.name]
        description = section.description or settings.site_description
        return f"{section.title} — {settings.site_title}", description
    if group.name.startswith(TAGS + "/"):
        return f"{group.label} — {settings.site_title}", f"Articles tagged “{group.label}”."
    return f"{group.label} — {settings.site_title}", f"Articles by {group.label}."


def _with_archives(
    base: FeedSpec,
    articles: tuple[Article, ...],
    size: int,
    previous: Mapping[str, FeedSpec] | None = None,
    resection: bool = False,
) -> dict:
    """Split a feed's history into RFC 5005 archive pages of `size` items, oldest first.

    Only full pages are archives, so each keeps its items as newer articles arrive; the
    subscription feed holds the newest items, including those of the page still filling.
    A page of `previous` holding the very same articles, with the same links, is kept
    (`resection`: given the site's sections, whose folder times changed).
    """
    count = len(articles)
    full_pages = count // size if count > size else 0
    stem = f"{base.name}/archive"
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
    for number in range(1, full_pages + 1):
        # Page n, newest first, holds the n-th `size` of the oldest articles.
        start = count - number * size
        page = articles[start : start + size]
        path_stem = f"{stem}/{number}"
        kept = previous.get(path_stem) if number <= kept_pages else None
        if (
            kept is not None
            and (number < kept_pages) == (number < full_pages)
            and all(map(operator.is_, kept.articles, page))
        ):
            if resection:  # a folder's new time counts for Last-Modified
                kept = replace(kept, sections=base.sections)
            specs[path_stem] = kept
            continue
        links = [("current", base.name)]
        if number > 1:
            links.append(("prev-archive", f"{stem}/{number - 1}"))
        if number < full_pages:
            links.append(("next-archive", f"{stem}/{number + 1}"))
        specs[path_stem] = replace(
            base,
            articles=page,
            updated=_newest_update(page),
            tombstones=(),
            archive_links=tuple(links),
            archive=True,
            path_stem=path_stem,
            json_next=f"{stem}/{number - 1}" if number > 1 else None,
        )
    if full_pages:
        newest_page = specs[f"{stem}/{full_pages}"].articles
        shown = {article.key for article in base.articles}
        base = replace(
            base,
            archive_links=(("prev-archive", f"{stem}/{full_pages}"),),
            json_more=tuple(a for a in newest_page if a.key not in shown),
            json_next=f"{stem}/{full_pages - 1}" if full_pages > 1 else None,
        )
    return {base.name: base, **specs}


def next_releases(site: Site, now: datetime, settings: Settings | None = None) -> dict[str, float]:
    """Return, per feed name, when its next scheduled article or update goes live (POSIX time).

    With `settings`, a takedown coming into effect and a tombstone's end count too.
    """
    releases: dict[str, float] = {}
    changes = []
    for article in site.timely():
        # A scheduled article goes live, or a published one's future `updated` comes due.
        moment = article.date if article.date > now else article.updated
        if moment > now:
            changes.append((article, moment))
    if settings is not None:
        changes += editorial.coming_changes(site, now, settings.tombstone_period)
    for article, moment in changes:
        for name in feed_names(article):
            releases[name] = min(releases.get(name, math.inf), moment.timestamp())
    return releases


def build_editions(
    specs: Mapping[str, FeedSpec],
    previous: Mapping[str, FeedEdition],
    releases: Mapping[str, float],
    settings: Settings,
    history: ValidatorHistory,
    cache: RenderCache | None = None,
) -> dict[str, FeedEdition]:
    """Make the snapshot's editions, keeping what an unchanged spec already rendered.

    With a `cache`, feeds other than the subscription feeds keep their renders there, and
    every feed takes item HTML from the cache's memo of it.
    """
    memo = cache.items if cache is not None else None
    editions = {}
    for name, spec in specs.items():
        max_age = ARCHIVE_MAX_AGE if spec.archive else settings.feed_max_age
        expires_at = None if spec.archive else releases.get(name)
        shared = None if is_subscription(name) else cache
        before = previous.get(name)
        if before is not None and before.made_with(
            spec, max_age, expires_at, (settings, history), shared, memo
        ):
            editions[name] = before  # a spec carried over as it was: its edition too
            continue
        edition = FeedEdition(spec, max_age, expires_at, (settings, history), shared, memo)
        if before is not None and (before.spec is spec or before.spec == spec):
            edition.inherit(before)
        editions[name] = edition
    return editions


def is_subscription(name: str) -> bool:
    """Tell whether feed `name` is rendered eagerly: the site's and the sections' feeds."""
    return not name.startswith((TAGS + "/", AUTHORS + "/")) and "/archive/" not in name


def changed_feeds(
    editions: Mapping[str, FeedEdition], previous: Mapping[str, FeedEdition]
) -> list[str]:
    """Return the names of subscribable feeds whose content changed since `previous`."""
    return [
        name
        for name, edition in editions.items()
        if not edition.spec.archive
        and (name not in previous or previous[name].spec != edition.spec)
    ]


def content_last_modified(spec: FeedSpec) -> int:
    """Return when the feed's content last changed: items, their files and section folders.

    Folder times catch deletions, file times catch edits that leave `updated` alone; all
    are the same in every worker process, so workers agree without talking to each other.
    """
    if spec.name == SITE_FEED:
        sections: Iterable = spec.sections.values()
    elif spec.name in spec.sections:
        sections = [spec.sections[spec.name]]
    else:
        sections = {spec.sections[a.section] for a in spec.articles if a.section in spec.sections}
    folder_times = [section.file_mtime for section in sections]
    return modified_time(spec.articles, [spec.updated.timestamp(), *folder_times])


def modified_time(articles: Iterable[Article], other_times: Iterable[float] = ()) -> int:
    """Return the newest of the articles' updated dates and file times and `other_times`.

    Never in the future: a file stamped ahead of the clock counts as changed now.
    """
    moments = [*other_times, *(max(a.updated.timestamp(), a.file_mtime) for a in articles)]
    return int(min(max(moments, default=0.0), time.time()))


def _with_expiry(rep: Representation, expires_at: float | None) -> Representation:
    return rep if rep.expires_at == expires_at else replace(rep, expires_at=expires_at)


def _newest_update(articles: Iterable[Article]) -> datetime:
    return max((a.updated for a in articles), default=_EPOCH)


def _folder_update(site: Site, name: str) -> datetime:
    """Return when section `name`'s folder last changed, to the second; else a fixed date."""
    section = site.sections.get(name)
    if section is None or section.file_mtime <= _EPOCH.timestamp():
        return _EPOCH
    return datetime.fromtimestamp(int(section.file_mtime), UTC)
