"""Feeds rendered once per change into precomputed HTTP representations, and their validators.

Subscription feeds (the site's and each section's) are rendered when a snapshot is built;
tag, author and archive feeds on first request. A feed's Last-Modified rises with every
change of its bytes, strictly, by at least a second: HTTP dates have no finer grain, and
readers such as newsboat drop a 200 whose Last-Modified is not newer than their copy.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace

from .addresses import SITE_FEED, is_subscription
from .bounded import BoundedCache
from .feeds import (
    ATOM,
    JSON,
    RSS,
    FeedSpec,
    document_path,
    media_type,
    render_feed,
)
from .itemhtml import ItemHtmlMemo
from .jsonfeed import render_json_feed
from .models import Article
from .responses import IDENTITY, Representation, build_representation, encodings
from .settings import Settings

FEED_FORMATS = (RSS, ATOM, JSON)
# What browsers get for RSS and Atom, so they apply the feed's stylesheet.
BROWSER_FEED_TYPE = "application/xml; charset=utf-8"
# Archive documents change only when old articles do: caches may keep them a day.
ARCHIVE_MAX_AGE = 86400
# Bytes of tag, author and archive feeds kept rendered; beyond this, the least recently
# used are rendered again on demand (same bytes, so the same ETag and Last-Modified).
# A crawl of every feed fills it, on top of the articles: at 100,000 of them, whose
# nearly 12,000 feed documents no budget holds anyway, 2 MB keeps the 60 or so feeds most
# recently asked for (pollers keep theirs; a crawler's are rendered again when asked, and
# a crawler asking for each document once finds none kept, whatever the budget). Each
# byte kept costs about two after such a crawl (the renderings freed around the kept ones
# leave the C heap in pieces): with 8 MB here and 8 MB of item HTML a crawl added 51 MB
# to a worker serving 100,000 articles, with 2 and 2 it added 30-35 MB.
RENDER_CACHE_BYTES = 2 * 1024 * 1024


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

    def seen(self, path: str) -> tuple[bytes, int] | None:
        """Return the digest and Last-Modified last given for `path` here, if any."""
        with self._lock:
            return self._seen.get(path)

    def given(self) -> dict[str, tuple[bytes, int]]:
        """Return the digest and Last-Modified given at each path here, for another history."""
        with self._lock:
            return dict(self._seen)

    def remember(self, validators: dict[str, tuple[bytes, int]]) -> None:
        """Start from validators served before (a first look's): Last-Modified only rises."""
        with self._lock:
            for path, seen in validators.items():
                if seen is not None:
                    self._seen.setdefault(path, seen)


class RenderCache:
    """Feeds rendered on demand, least recently used dropped first, bounded in bytes.

    Tag, author and archive feeds are listed in /feeds.opml, so a crawler asks for every
    one of them; kept without a bound they would outgrow any machine's memory.
    """

    def __init__(self, budget: int | None = None):
        self._entries: BoundedCache[tuple, Representation] = BoundedCache(
            RENDER_CACHE_BYTES if budget is None else budget, Representation.held_bytes
        )
        # Item HTML per article version, which every feed's render reuses.
        self.items = ItemHtmlMemo()

    def get(self, key: tuple) -> Representation | None:
        """Return the representation kept under `key`, marking it recently used."""
        return self._entries.get(key)

    def put(self, key: tuple, rep: Representation) -> None:
        """Keep `rep`, dropping the least recently used entries when over budget."""
        self._entries.put(key, rep)


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
        # The persistent index's key for this spec's renderings, once made (see _render).
        self._stored_key: bytes | None = None

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

    def held(self) -> tuple[Representation, ...]:
        """Return the renders this edition keeps for its snapshot (a subscription feed's)."""
        return tuple(self._rendered.values())

    def _index_key(self, store) -> bytes:
        """Return the index key of this spec's renderings, digested once for every format.

        Each format is kept at its own path, so one key serves them all: digesting the
        spec (every item's text) once per format cost more than rendering it.
        """
        if self._stored_key is None:
            self._stored_key = store.document_key(self.spec.path_stem or self.spec.name, self.spec)
        return self._stored_key

    def _render(self, fmt: str) -> Representation:
        settings, spec = self._settings, self.spec
        path = document_path(spec, fmt)
        store = self._history.backing if self._cache is None else None
        key = self._index_key(store) if store is not None else None
        stored = store.document(path, key) if store is not None else None
        if stored is not None:  # rendered by an earlier run or another worker
            content_type, variants, headers, browser_type = stored
            body, etag = variants[IDENTITY]
            last_modified = self._history.last_modified(path, body, content_last_modified(spec))
            return Representation(
                content_type,
                last_modified,
                encodings(body, etag),  # compressed as this worker's readers ask, same bytes
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
            # The identity only: each worker compresses, deterministically, what it is asked.
            identity = rep.variants[IDENTITY]
            variants = {IDENTITY: (identity.body, identity.etag)}
            store.store_document(
                path, key, (rep.content_type, variants, rep.extra_headers, rep.browser_content_type)
            )
        return rep


class Editions(dict):
    """A snapshot's editions by name, with what made them, so the next build costs what changed.

    `specs`: the specs they were made of; `releases`: the expiries they were given;
    `remade`: the names whose edition is not the previous one's (None: any may differ).
    """

    specs: Mapping[str, FeedSpec] = {}
    releases: Mapping[str, float] = {}
    remade: frozenset[str] | None = None


def build_editions(
    specs: Mapping[str, FeedSpec],
    previous: Mapping[str, FeedEdition],
    releases: Mapping[str, float],
    settings: Settings,
    history: ValidatorHistory,
    cache: RenderCache | None = None,
    respecified: Iterable[str] | None = None,
) -> Editions:
    """Make the snapshot's editions, keeping what an unchanged spec already rendered.

    With a `cache`, feeds other than the subscription feeds keep their renders there, and
    every feed takes item HTML from the cache's memo of it. `respecified`: the names whose
    spec may differ from `previous`'s, which has the same names in the same order (None:
    unknown); then only those and the feeds whose release moved are looked at, in a copy.
    """
    memo = cache.items if cache is not None else None
    context = (settings, history)
    names: Iterable[str] = specs
    editions = Editions()
    if respecified is not None and _made_alike(previous, specs, context, cache, memo):
        editions.update(previous)
        moved = {
            name
            for name in previous.releases.keys() | releases.keys()
            if previous.releases.get(name) != releases.get(name)
        }
        names = {name for name in (*respecified, *moved) if name in specs}
    for name in names:
        spec = specs[name]
        max_age = ARCHIVE_MAX_AGE if spec.archive else settings.feed_max_age
        expires_at = None if spec.archive else releases.get(name)
        shared = None if is_subscription(name) else cache
        # Only the subscription feeds' items are kept: those are rendered after every edit.
        items = memo if shared is None or memo is None else memo.html_only
        before = previous.get(name)
        made = before is not None and before.made_with(
            spec, max_age, expires_at, context, shared, items
        )
        if made:
            editions[name] = before  # a spec carried over as it was: its edition too
            continue
        edition = FeedEdition(spec, max_age, expires_at, context, shared, items)
        if before is not None and (before.spec is spec or before.spec == spec):
            edition.inherit(before)
        editions[name] = edition
    editions.specs = specs
    editions.releases = dict(releases)
    if names is not specs:
        editions.remade = frozenset(n for n in names if editions[n] is not previous.get(n))
    return editions


def _made_alike(previous, specs, context, cache, memo) -> bool:
    """Tell whether `previous` were built of `specs`' names in order, with these same parts."""
    if not isinstance(previous, Editions) or len(previous) != len(specs):
        return False
    if previous.specs.keys() != specs.keys():
        return False
    site = previous.get(SITE_FEED)
    return (
        site is not None
        and site.made_with(site.spec, site.max_age, site.expires_at, context, None, memo)
        and next((e._cache is cache for n, e in previous.items() if not is_subscription(n)), True)
    )


def changed_feeds(
    editions: Mapping[str, FeedEdition], previous: Mapping[str, FeedEdition]
) -> list[str]:
    """Return the names of subscribable feeds whose content changed since `previous`."""
    return [
        name
        for name, edition in editions.items()
        if not edition.spec.archive
        and previous.get(name) is not edition  # carried over: the same spec
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
