"""Every address of the site as a value: what a URL path names, and all that is made from it.

An Address is the site, a section, a tag, an author (each with its feed, its RFC 5005
archive pages and its HTML pages) or an article. Its name (the key of listings and feeds:
"culture", "tags/music", "culture/archive/3"), its feed and page paths, its surrogate keys
and its items' ids are made here and nowhere else, and read back here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import quote

from . import urls
from .slugs import name_slug

if TYPE_CHECKING:
    from .models import Article
    from .settings import Settings

SITE = "site"
SECTION = "section"
TAG = "tag"
AUTHOR = "author"
ARTICLE = "article"

# The first path segments the site itself answers; no section may take one (see views.py).
SITE_FEED = "feed"  # /feed.xml: the whole site's feed, and the site's name among listings
OPML_STEM = "feeds"  # /feeds.opml
TAGS = "tags"
AUTHORS = "authors"
MEDIA = "media"
STATIC = "static"
HEALTHZ = "healthz"
RESERVED_SLUGS = frozenset({SITE_FEED, OPML_STEM, TAGS, AUTHORS, MEDIA, STATIC, HEALTHZ})

OPML_PATH = f"/{OPML_STEM}.opml"
# Surrogate keys (edge.py): a feed document in every format, every page of a listing, an article.
_FEED_KEY, _LISTING_KEY, _ARTICLE_KEY = "feed:", "list:", "article:"
OPML_KEY = _FEED_KEY + OPML_STEM
ARCHIVE = "archive"
PAGE = "page"
# Feed format -> file extension.
FEED_EXTENSIONS = {"rss": "xml", "atom": "atom", "json": "json"}
_FORMAT_OF = {extension: fmt for fmt, extension in FEED_EXTENSIONS.items()}
# A tag or an author: the first segment of its paths, also the Article field of its names.
_SEGMENTS = {TAG: TAGS, AUTHOR: AUTHORS}
_KIND_OF = {segment: kind for kind, segment in _SEGMENTS.items()}
NAMED_KINDS = tuple(_SEGMENTS)


@dataclass(frozen=True)
class Address:
    """One thing the site publishes: a listing (its feed, archives, HTML pages) or an article."""

    kind: str
    slug: str = ""
    section: str = ""  # an article's section folder
    archive: int = 0  # an RFC 5005 archive page of the listing's feed, 1 the oldest
    page: int = 1  # a page of the listing's HTML

    @classmethod
    def site(cls) -> Address:
        """Return the whole site's address: the home page and /feed.xml."""
        return cls(SITE)

    @classmethod
    def article(cls, section: str, slug: str) -> Address:
        """Return an article's address, /section/slug/."""
        return cls(ARTICLE, slug, section)

    @classmethod
    def listing(cls, kind: str, slug: str) -> Address:
        """Return the address of a section, tag or author by its slug."""
        return cls(kind, slug)

    @classmethod
    def from_name(cls, name: str) -> Address:
        """Read back a name made by `name`: "feed", "culture", "tags/x", "culture/archive/3"."""
        head, sep, number = name.rpartition(f"/{ARCHIVE}/")
        if sep and _number(number) and head:
            return replace(cls.from_name(head), archive=_number(number))
        if name == SITE_FEED:
            return cls(SITE)
        segment, sep, slug = name.partition("/")
        if sep and segment in _KIND_OF:
            return cls(_KIND_OF[segment], slug)
        if sep or not name:
            raise ValueError(f"{name!r} names no listing or feed")
        return cls(SECTION, name)

    @classmethod
    def named(cls, segment: str, slug: str) -> Address:
        """Return a tag's or an author's address by the first segment of its paths ("tags")."""
        return cls(_KIND_OF[segment], slug)

    @property
    def name(self) -> str:
        """Return the key of the listing or feed document ("feed" for the site's).

        A section's name is its slug, so the site's sections and listings share keys.
        """
        stem = self._stem
        return f"{stem}/{ARCHIVE}/{self.archive}" if self.archive else stem

    @property
    def _stem(self) -> str:
        """Return the name of the listing (or article) itself, without archive page."""
        if self.kind == ARTICLE:
            return f"{self.section}/{self.slug}"
        return listing_name(self.kind, self.slug)

    def archive_page(self, number: int) -> Address:
        """Return archive page `number` of this listing's feed."""
        return Address(self.kind, self.slug, self.section, number)

    def archive_name(self, number: int) -> str:
        """Return the name of archive page `number`: an edit names thousands, so no object."""
        return f"{self._stem}/{ARCHIVE}/{number}"

    @property
    def is_named(self) -> bool:
        """Tell whether this is a tag or an author (a listing named by articles' fields)."""
        return self.kind in _SEGMENTS

    def feed_path(self, fmt: str) -> str:
        """Return the site path of this feed or archive page in format `fmt`: /culture.xml."""
        return feed_path(self.name, fmt)

    @property
    def page_path(self) -> str:
        """Return the site path of this HTML page (an archive's: its listing's first page)."""
        if self.kind == ARTICLE:
            return article_path(self.section, self.slug)
        path = "/" if self.kind == SITE else f"/{self._stem}/"
        return f"{path}{PAGE}/{self.page}/" if self.page > 1 else path

    @property
    def feed_key(self) -> str:
        """Return the surrogate key of this feed document in every format."""
        return _FEED_KEY + _token(self.name)

    @property
    def page_key(self) -> str:
        """Return the surrogate key of every HTML page of this listing, or of the article's page."""
        if self.kind == ARTICLE:
            return f"{_ARTICLE_KEY}{_token(self.section)}/{_token(self.slug)}"
        return _LISTING_KEY + _token(self._stem)


def parse_path(path: str) -> tuple[Address, str] | None:
    """Return what a site path names and its feed format ("" for a page); None if nothing."""
    stem, dot, extension = path.rpartition(".")
    if dot:
        fmt = _FORMAT_OF.get(extension)
        if fmt is None or not stem.startswith("/") or "/" in extension:
            return None
        try:
            return Address.from_name(stem[1:]), fmt
        except ValueError:
            return None
    if path == "/":
        return Address.site(), ""
    if not (path.startswith("/") and path.endswith("/")):
        return None
    parts = path[1:-1].split("/")
    page = _number(parts[-1]) if len(parts) in (3, 4) and parts[-2] == PAGE else 0
    if page > 1:
        parts = parts[:-2]
    else:
        page = 1
    if not all(parts):
        return None
    if len(parts) == 2 and parts[0] in _KIND_OF:
        return Address(_KIND_OF[parts[0]], parts[1], page=page), ""
    if len(parts) == 2 and page == 1:
        return Address.article(parts[0], parts[1]), ""
    if len(parts) == 1 and parts[0] not in _KIND_OF:
        return Address(SECTION, parts[0], page=page), ""
    return None


# Names and paths by plain strings, for the paths that handle every article or feed: the
# same strings the Address methods give, at the cost of one format.


def listing_name(kind: str, slug: str) -> str:
    """Return the name of the site (SITE), a section, a tag or an author by its slug."""
    if kind == SITE:
        return SITE_FEED
    return f"{_SEGMENTS[kind]}/{slug}" if kind in _SEGMENTS else slug


def feed_path(name: str, fmt: str) -> str:
    """Return the site path of the feed document named `name` in format `fmt`: /culture.xml."""
    return f"/{name}.{FEED_EXTENSIONS[fmt]}"


def article_path(section: str, slug: str) -> str:
    """Return the site path of an article's page: /section/slug/."""
    return f"/{section}/{slug}/"


def is_subscription(name: str) -> bool:
    """Tell whether feed `name` is rendered eagerly: the site's or a section's, no archive.

    Only those names hold no "/" (see Address.name).
    """
    return "/" not in name


def names_in(article: Article, kind: str) -> tuple[str, ...]:
    """Return the article's tags (kind TAG) or authors (AUTHOR) as written."""
    return getattr(article, _SEGMENTS[kind])


def named_in(article: Article) -> list[tuple[str, str]]:
    """Return the article's tags, then its authors, that have an address: (name, as written)."""
    named = []
    for segment in _SEGMENTS.values():  # listing_name, unrolled: this runs for every article
        for value in getattr(article, segment):
            slug = name_slug(value)
            if slug:
                named.append((f"{segment}/{slug}", value))
    return named


def item_id(article: Article, settings: Settings) -> str:
    """Return the item's permanent GUID / Atom id: the permalink, or the author's `id`."""
    if article.explicit_id is None:
        return settings.absolute(article.id_path)  # a moved article keeps its first address
    return urls.item_id(article.explicit_id)


def _number(text: str) -> int:
    """Return a page number written in ASCII digits, else 0."""
    return int(text) if text.isascii() and text.isdigit() else 0


def _token(text: str) -> str:
    """Write a key part in ASCII without spaces or commas, as every cache reads keys."""
    return quote(text, safe="/%")
