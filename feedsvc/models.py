"""The content model: immutable articles, sections and the site snapshot that holds them."""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter, itemgetter
from sys import intern
from types import MappingProxyType
from typing import Protocol

try:  # the standard library's from Python 3.14
    from compression import zstd
except ImportError:
    from backports import zstd

from .addresses import SECTION, Address, article_path
from .dates import announced_update

# Zstandard level for article bodies kept in memory and in the index (0: plain UTF-8). Its
# default level packs a body a little smaller than zlib's fastest, in half the time: every
# file read at a start or an edit packs its body once.
BODY_COMPRESSION = 3


def pack_html(html: str) -> bytes:
    """Pack HTML for keeping in memory: a third of its size as a str, or less."""
    data = html.encode("utf-8")
    return zstd.compress(data, BODY_COMPRESSION) if BODY_COMPRESSION else data


def unpack_html(packed: bytes) -> str:
    """Return the HTML that pack_html packed."""
    return (zstd.decompress(packed) if BODY_COMPRESSION else packed).decode("utf-8")


class BodySource(Protocol):
    """Where bodies no longer kept in memory are read from (the content index)."""

    def body_html(self, body: Body) -> str:
        """Return the HTML of `body`, or raise LookupError if it can no longer be had."""
        ...


class Body:
    """An article body's HTML, named by a digest of it: equal digests, equal bodies.

    Its value never changes; where its bytes are kept may, once. A body just parsed is
    packed in memory (pack_html) until the content index holds it; from then on, and for
    a body read back from the index, only the index does, and rendering reads it there
    (rarely: rendered items and pages are kept). Without a usable index it stays in memory.
    """

    __slots__ = ("_packed", "_source", "digest", "path")

    def __init__(
        self,
        digest: bytes,
        path: str,
        packed: bytes | None = None,
        source: BodySource | None = None,
    ):
        self.digest = digest
        self.path = path  # the content file it was parsed from, to parse again if need be
        self._packed = packed
        self._source = source

    @classmethod
    def of(cls, html: str, path: str) -> Body:
        """Return the body holding `html`, packed in memory."""
        packed = pack_html(html)
        return cls(body_digest(packed), path, packed)

    @property
    def html(self) -> str:
        """Return the HTML: unpacked from memory, else read from where it is kept."""
        packed = self._packed  # read before the source: keep_in sets the source first
        if packed is not None:
            return unpack_html(packed)
        if self._source is None:
            raise LookupError(f"the body of {self.path} is kept nowhere this process reads")
        return self._source.body_html(self)

    @property
    def packed(self) -> bytes | None:
        """Return the packed HTML if this process holds it in memory, else None."""
        return self._packed

    def keep_in(self, source: BodySource) -> None:
        """Let `source` (which holds this body from now on) keep it; memory no longer does."""
        self._source = source
        self._packed = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Body):
            return NotImplemented
        return self.digest == other.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        where = "memory" if self._packed is not None else "index"
        return f"Body({self.digest.hex()}, {self.path!r}, in {where})"

    def __reduce__(self):
        # A copy holds its bytes, wherever they are kept here (see index.py for the index's).
        return (Body, (self.digest, self.path, self._packed or pack_html(self.html)))


def body_digest(packed: bytes) -> bytes:
    """Return the digest naming a body packed by pack_html (16 bytes: no two bodies share one)."""
    return hashlib.blake2b(packed, digest_size=16).digest()


class ContentError(Exception):
    """A content file that cannot be published, with where and why."""

    severity = "error"

    def __init__(self, path: str, line: int | None, reason: str):
        super().__init__(f"{path}:{line or 1}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason

    @property
    def key(self) -> tuple[str, int | None, str]:
        """Return what identifies the problem, for telling new problems from known ones."""
        return (self.path, self.line, self.reason)

    def __reduce__(self):
        # Problems cross process boundaries when a large tree is parsed in parallel.
        return (ContentError, self.key)

    def as_dict(self) -> dict:
        """Describe the problem for JSON output."""
        return {
            "path": self.path,
            "line": self.line,
            "reason": self.reason,
            "severity": self.severity,
        }


class ContentWarning(ContentError):
    """A problem worth fixing that did not stop the article from being published."""

    severity = "warning"

    def __reduce__(self):
        return (ContentWarning, self.key)


@dataclass(frozen=True, slots=True)
class Image:
    """A lead image: where it is, what it shows, who made it."""

    src: str
    alt: str = ""
    credit: str = ""
    mime_type: str | None = None
    length: int | None = None
    # Pixel size read from a local file (images.py); None for a web image.
    width: int | None = None
    height: int | None = None

    def __reduce__(self):
        # Many articles share a lead image: its texts are kept once (see _shared).
        return (_image, (_IMAGE_VALUES(self),))


def _image(values: tuple) -> Image:
    """Make an Image again (unpickling), its texts that repeat kept once."""
    src, alt, credit, mime_type, *rest = values
    return Image(intern(src), alt, intern(credit), mime_type and intern(mime_type), *rest)


@dataclass(frozen=True, slots=True)
class RelatedLink:
    """A link shown under an article."""

    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Article:
    """One published (or scheduled) article, parsed from one content file."""

    section: str
    slug: str
    title: str
    date: datetime
    updated: datetime
    authors: tuple[str, ...]
    summary: str
    # The body's HTML, in memory or in the content index: 100,000 articles' bodies do not
    # fit in a server's memory budget, and few of them are ever rendered.
    body: Body
    # The summary as the author wrote it; empty when the summary is cut from the body.
    dek: str = ""
    image: Image | None = None
    tags: tuple[str, ...] = ()
    related: tuple[RelatedLink, ...] = ()
    explicit_id: str | None = None
    source_path: str = ""
    # Where `id:` is written, to point at it when two files claim the same id.
    id_line: int | None = field(default=None, compare=False, repr=False)
    # Front-matter fields feedsvc does not know, kept for templates and later use (read-only).
    extra: Mapping[str, object] = field(default_factory=dict, compare=False)
    # Problems that did not stop publication (e.g. characters XML cannot hold, removed).
    warnings: tuple[ContentError, ...] = field(default=(), compare=False, repr=False)
    # When the file last changed on disk: one input of the feeds' Last-Modified.
    file_mtime: float = field(default=0.0, compare=False, repr=False)
    # Local files the article uses, as (URL as written, file line, is a link), for checks.
    media_refs: tuple[tuple[str, int, bool], ...] = field(default=(), compare=False, repr=False)
    # Pixel sizes of the local images the body shows, as (URL as written, width, height).
    image_sizes: tuple[tuple[str, int, int], ...] = field(default=(), compare=False, repr=False)
    # Media it uses that nothing serves; recomputed when the media folder changes.
    media_warnings: tuple[ContentError, ...] = field(default=(), compare=False, repr=False)
    # Old addresses (site paths, oldest first), each answering 301 to this article.
    aliases: tuple[str, ...] = ()
    aliases_line: int | None = field(default=None, compare=False, repr=False)
    # `feeds: false`: on the site, in no feed.
    in_feeds: bool = True
    # `takedown:` given: the reason (private, "" if none) and the date written, if any.
    takedown: str | None = None
    takedown_date: datetime | None = None
    # Where the article was first published, when it moved: its item id stays that URL.
    original_path: str = ""

    def __post_init__(self):
        if not self.extra and self.extra is not NO_EXTRA:  # most articles: one shared
            object.__setattr__(self, "extra", NO_EXTRA)

    def __reduce__(self):
        # Unpickled (from the index, from a parsing process) with one copy per distinct
        # section, author and tag name: 100,000 articles repeat few of them.
        values = _ARTICLE_VALUES(self)
        if values[_EXTRA] is NO_EXTRA:  # pickled as before: a plain empty dict
            values = (*values[:_EXTRA], {}, *values[_EXTRA + 1 :])
        return (_article, (values,))

    @property
    def removed_at(self) -> datetime | None:
        """Return when a takedown takes effect: its date, else when the file was last changed."""
        if self.takedown is None:
            return None
        return self.takedown_date or datetime.fromtimestamp(int(self.file_mtime), UTC)

    def is_removed(self, now: datetime) -> bool:
        """Tell whether a takedown has taken the article off the site at `now`."""
        removed_at = self.removed_at
        return removed_at is not None and removed_at <= now

    @property
    def id_path(self) -> str:
        """Return the site path its default item id is made of: where it was first published."""
        return self.original_path or self.path

    @property
    def body_html(self) -> str:
        """Return the body's HTML, the one place the author's own markup enters."""
        return self.body.html

    def as_of(self, now: datetime) -> Article:
        """Return the article as published at `now`: a future `updated` is not shown yet."""
        updated = announced_update(self.updated, self.date, now)
        return self if updated is self.updated else replace(self, updated=updated)

    @property
    def key(self) -> tuple[str, str]:
        """Return the lookup key used by URLs: (section, slug)."""
        return (self.section, self.slug)

    @property
    def path(self) -> str:
        """Return the article's URL path relative to the site root."""
        return article_path(self.section, self.slug)


# Every field's value, in order: what an Article or Image pickles as.
_ARTICLE_VALUES = attrgetter(*(f.name for f in fields(Article)))
_IMAGE_VALUES = attrgetter(*(f.name for f in fields(Image)))
_SECTION, _AUTHORS, _TAGS, _EXTRA, _MEDIA_REFS, _IMAGE_SIZES = (
    [f.name for f in fields(Article)].index(name)
    for name in ("section", "authors", "tags", "extra", "media_refs", "image_sizes")
)
_FIELD_INDEX = {f.name: n for n, f in enumerate(fields(Article))}
# The `extra` of every article without unknown fields (most): one read-only empty mapping.
NO_EXTRA: Mapping[str, object] = MappingProxyType({})


def _article(values: tuple) -> Article:
    """Make an Article again (unpickling), what articles repeat kept once.

    One copy per distinct section, author and tag name, and per distinct list of authors
    and of local media (a section's default picture): at 100,000 articles each copy saved
    is some megabytes. (An empty `extra` is NO_EXTRA, as for every Article.)
    """
    values = list(values)
    values[_SECTION] = intern(values[_SECTION])
    values[_AUTHORS] = _shared(tuple(map(intern, values[_AUTHORS])))
    values[_TAGS] = tuple(map(intern, values[_TAGS]))
    if values[_MEDIA_REFS]:
        values[_MEDIA_REFS] = _shared(values[_MEDIA_REFS])
    if values[_IMAGE_SIZES]:
        values[_IMAGE_SIZES] = _shared(values[_IMAGE_SIZES])
    return Article(*values)


def with_changes(article: Article, **changes) -> Article:
    """Return `article` with `changes`: dataclasses.replace in half the time (per file read)."""
    values = list(_ARTICLE_VALUES(article))
    for name, value in changes.items():
        values[_FIELD_INDEX[name]] = value
    return Article(*values)


@lru_cache(maxsize=4096)
def _shared(value: tuple) -> tuple:
    """Return the first tuple equal to `value` among those recently seen (kept once)."""
    return value


def forget_shared() -> None:
    """Forget the tuples _shared keeps (see loader.forget_recent_values)."""
    _shared.cache_clear()


@dataclass(frozen=True)
class Section:
    """A folder of articles with its own page and feeds."""

    slug: str
    title: str
    description: str = ""
    # Newest change of the folder or its _index.md: deletions show up here.
    file_mtime: float = field(default=0.0, compare=False, repr=False)
    # Former folder names (oldest first), whose pages and feeds answer 301 to this section.
    aliases: tuple[str, ...] = ()
    source_path: str = field(default="", compare=False, repr=False)
    aliases_line: int | None = field(default=None, compare=False, repr=False)

    @property
    def path(self) -> str:
        """Return the section page's URL path relative to the site root."""
        return Address.listing(SECTION, self.slug).page_path


def newest_first(article: Article) -> tuple:
    """Return the article's sort key in the site's order: newest first."""
    return (-article.date.timestamp(), article.section, article.slug)


# Buckets of a KeyedArticles: an edit copies the one or two it touches, not the whole map.
_KEY_BUCKETS = 256


@dataclass(frozen=True)
class KeyedArticles:
    """Articles by (section, slug), spread over fixed buckets that versions share.

    The next version copies only the buckets holding the keys that changed, so a
    site of 100,000 articles is re-published without copying its lookup.
    """

    buckets: tuple[Mapping[tuple[str, str], Article], ...] = ({},) * _KEY_BUCKETS

    def get(self, key: tuple[str, str]) -> Article | None:
        return self.buckets[hash(key) % len(self.buckets)].get(key)

    def updated(
        self, keys: Iterable[tuple[str, str]], current: Mapping[tuple[str, str], Article]
    ) -> KeyedArticles:
        """Return a version where each of `keys` maps as in `current` (or is gone)."""
        copied: dict[int, dict] = {}
        for key in keys:
            index = hash(key) % len(self.buckets)
            bucket = copied.get(index)
            if bucket is None:
                bucket = copied[index] = dict(self.buckets[index])
            if key in current:
                bucket[key] = current[key]
            else:
                bucket.pop(key, None)
        if not copied:
            return self
        buckets = list(self.buckets)
        for index, bucket in copied.items():
            buckets[index] = bucket
        return KeyedArticles(tuple(buckets))


@dataclass(frozen=True)
class Site:
    """A consistent snapshot of the whole content tree; replaced, never mutated."""

    sections: Mapping[str, Section]
    articles: tuple[Article, ...]
    problems: tuple[ContentError, ...] = ()
    version: str = ""
    # The articles whose visibility may depend on the time (scheduled, a future `updated`,
    # a takedown), when known: every other one is published as it is. None: any may.
    timed: tuple[Article, ...] | None = field(default=None, repr=False, compare=False)
    _by_key: Mapping[tuple[str, str], Article] | KeyedArticles = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self):
        ordered = tuple(sorted(self.articles, key=newest_first))
        object.__setattr__(self, "sections", MappingProxyType(dict(self.sections)))
        object.__setattr__(self, "articles", ordered)
        object.__setattr__(self, "_by_key", MappingProxyType({a.key: a for a in ordered}))

    @classmethod
    def from_ordered(
        cls,
        sections: Mapping[str, Section],
        articles: tuple[Article, ...],
        problems: tuple[ContentError, ...],
        version: str,
        by_key: KeyedArticles,
        timed: tuple[Article, ...],
    ) -> Site:
        """Make a site of articles already newest first, with their lookup by key.

        For an assembler that keeps them in order between changes: no sort of the archive,
        and the lookup shared with the site before but for the keys that changed.
        """
        site = object.__new__(cls)
        object.__setattr__(site, "sections", MappingProxyType(dict(sections)))
        object.__setattr__(site, "articles", articles)
        object.__setattr__(site, "problems", problems)
        object.__setattr__(site, "version", version)
        object.__setattr__(site, "timed", timed)
        object.__setattr__(site, "_by_key", by_key)
        return site

    def timely(self) -> tuple[Article, ...]:
        """Return the articles whose visibility may depend on the time (all, if unknown)."""
        return self.articles if self.timed is None else self.timed

    def published(self, now: datetime, section: str | None = None) -> list[Article]:
        """Return the articles visible at `now`, newest first, optionally of one section."""
        if self.timed is not None and section is None:
            return self._published_with_timed(now)
        return [
            a if a.updated <= now else a.as_of(now)
            for a in self.articles
            if a.date <= now
            and (section is None or a.section == section)
            and (a.takedown is None or not a.is_removed(now))
        ]

    def _published_with_timed(self, now: datetime) -> list[Article]:
        """Return published(now), looking at the timed articles only: the rest are as they are."""
        return published_among(self.articles, self.timed, now)

    def find(self, section: str, slug: str, now: datetime) -> Article | None:
        """Return the article at /section/slug/ if it is published at `now`."""
        article = self._by_key.get((section, slug))
        if article is None or article.date > now or article.is_removed(now):
            return None
        return article.as_of(now)


def published_among(
    articles: Sequence[Article],
    timed: Iterable[Article],
    now: datetime,
    keys: Sequence[tuple] | None = None,
) -> list[Article]:
    """Return `articles` (newest first) as published at `now`, where only `timed` may differ.

    The timed ones are found by bisection (in `keys`, the articles' sort keys, if given),
    so the cost is theirs plus copying the list once.
    """
    if keys is None:
        found = [(bisect_left(articles, newest_first(a), key=newest_first), a) for a in timed]
    else:
        found = [(bisect_left(keys, newest_first(a)), a) for a in timed]
    found.sort(key=itemgetter(0))
    published: list[Article] = []
    start = 0
    for index, a in found:
        published += articles[start:index]
        start = index + 1
        if a.date <= now and (a.takedown is None or not a.is_removed(now)):
            published.append(a if a.updated <= now else a.as_of(now))
    published += articles[start:]
    return published
