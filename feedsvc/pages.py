"""Pages: a URL path → what it shows (home, a section, a tag, an author, an article) → HTML.

Rendered with the Jinja templates outside any Flask request, once per snapshot on the
first request, and kept in the snapshot's bounded PageCache: the fast path answers
pages exactly as it answers feeds (same ETags, 304s, encodings). Flask renders only
error pages and previews, through the same Pages object.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

from .addresses import (
    ARTICLE,
    AUTHORS,
    OPML_PATH,
    SECTION,
    SITE,
    SITE_FEED,
    TAG,
    TAGS,
    Address,
    feed_path,
    parse_path,
)
from .editions import modified_time
from .feeds import ATOM, FORMATS, JSON, RSS
from .markup import with_image_sizes
from .models import Article
from .responses import Representation, build_representation
from .settings import Settings
from .slugs import name_slug
from .snapshot import Snapshot
from .urls import encode_uri

HOME_ARTICLES = 20
SECTION_PAGE_SIZE = 50
PAGE_MAX_AGE = 60
HTML = "text/html; charset=utf-8"
TEMPLATES = Path(__file__).parent / "templates"
# What a path segment may hold unquoted (as Werkzeug builds URLs).
SEGMENT_SAFE = "!$&'()*+,/:;=@"
# Section and article slugs; a tag or author slug may hold letters of any script.
_SLUG = re.compile(r"[a-z0-9-]+")
# An attribute holding a root-relative URL ("/media/x.png", not "//host/x"), as authors write.
_ROOT_RELATIVE = re.compile(r"""(\s(?:href|src|poster|cite)\s*=\s*["']?)/(?!/)""", re.IGNORECASE)


def page_at(path: str) -> Address | None:
    """Return the page the path `path` names (see addresses.py), or None for no page."""
    found = parse_path(path)
    if found is None or found[1]:  # nothing, or a feed
        return None
    at = found[0]
    slugs = (at.section, at.slug) if at.kind == ARTICLE else (at.slug,)
    if at.kind in (SECTION, ARTICLE) and not all(map(_SLUG.fullmatch, slugs)):
        return None
    return at


def _href(at: Address) -> str:
    """Return a page's path, percent-encoded."""
    return quote(at.page_path, safe=SEGMENT_SAFE)


def _long_date(moment: datetime) -> str:
    """Format a date for readers, e.g. "3 September 2026"."""
    return f"{moment.day} {moment:%B %Y}"


def _uri(link: str) -> str:
    """Return a link as a page may hold it: spaces and letters outside ASCII percent-encoded."""
    return encode_uri(link.strip())


@pass_context
def _site_path(context, url: str) -> str:
    """Put the site's path prefix (SITE_URL's path) before a root-relative URL."""
    if url.startswith("/") and not url.startswith("//"):
        return context["root"] + url
    return url


@pass_context
def _site_links(context, html: str) -> str:
    """Make an article body's root-relative links honour the site's path prefix."""
    root = context["root"]
    return _ROOT_RELATIVE.sub(lambda match: match.group(1) + root + "/", html) if root else html


# What templates name pages by: url('home'), url('section', slug), url('tags', slug=…)…
_TEMPLATE_PAGES = {
    "home": lambda section, slug: Address.site(),
    "section": lambda section, slug: Address.listing(SECTION, section),
    "article": Address.article,
    TAGS: lambda section, slug: Address.named(TAGS, slug),
    AUTHORS: lambda section, slug: Address.named(AUTHORS, slug),
}


@pass_context
def _url(context, kind: str, section: str = "", slug: str = "") -> str:
    """Return the site-relative URL of a page, under the site's path prefix."""
    return context["root"] + _href(_TEMPLATE_PAGES[kind](section, slug))


def page_count(articles: int) -> int:
    """Return how many HTML pages a listing of `articles` has (an empty one still has one)."""
    return max(1, -(-articles // SECTION_PAGE_SIZE))


class Pages:
    """The site's HTML: pages rendered for the fast path, error pages and previews for Flask."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._jinja = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(("html",)),
            auto_reload=False,
        )
        self._jinja.filters.update(
            slug=name_slug,
            uri=_uri,
            long_date=_long_date,
            site_path=_site_path,
            site_links=_site_links,
            sized_images=with_image_sizes,
        )
        self._jinja.globals["url"] = _url

    def answer(self, snapshot: Snapshot, path: str, root: str) -> Representation | None:
        """Return the precomputed document at `path`: a feed, the OPML file or a page.

        A page not yet asked for in this snapshot is rendered now.
        """
        return snapshot.lookup(path) or self.page(snapshot, path, root)

    def page(self, snapshot: Snapshot, path: str, root: str) -> Representation | None:
        """Return the page at `path` (None: no such page), rendered once per snapshot.

        `root` is the site's path prefix as the first request gives it (SCRIPT_NAME).
        """
        at = page_at(path)
        if at is None:
            return None
        if at.kind == SITE:
            shown = self._home(snapshot, root)
        elif at.kind == ARTICLE:
            shown = self._article(snapshot, at, root)
        else:
            shown = self._listing(snapshot, at, root)
        if shown is None:
            return None
        rep = build_representation(
            shown.html.encode(),
            HTML,
            modified_time(shown.articles, [shown.folder_mtime]),
            PAGE_MAX_AGE,
            snapshot.next_release,
        )
        snapshot.pages.put(path, rep)
        return rep

    def render(self, template: str, snapshot: Snapshot, root: str, **context) -> str:
        """Render `template` with the settings and the sections for the navigation."""
        sections = snapshot.site.sections
        return self._jinja.get_template(template).render(
            settings=self.settings,
            sections=list(sections.values()),
            sections_by_slug=sections,
            root=root,
            **context,
        )

    def feed_links(self, name: str, title: str) -> list[dict]:
        """Return autodiscovery entries (RSS, Atom and JSON Feed) for feed `name`."""
        return [
            {
                "title": f"{title} ({label})",
                "type": FORMATS[fmt][1],
                "url": self.settings.absolute(feed_path(name, fmt)),
            }
            for fmt, label in ((RSS, "RSS"), (ATOM, "Atom"), (JSON, "JSON Feed"))
        ]

    def _home(self, snapshot: Snapshot, root: str) -> _Shown:
        latest = snapshot.published()[:HOME_ARTICLES]
        sections = snapshot.site.sections.values()
        feeds = self.feed_links(SITE_FEED, self.settings.site_title)
        for section in sections:
            feeds += self.feed_links(section.slug, section.title)
        html = self.render(
            "home.html", snapshot, root, articles=latest, feeds=feeds, opml_path=OPML_PATH
        )
        return _Shown(html, latest, max((s.file_mtime for s in sections), default=0.0))

    def _article(self, snapshot: Snapshot, at: Address, root: str) -> _Shown | None:
        article = snapshot.find(at.section, at.slug)
        if article is None:
            return None
        info = snapshot.site.sections[at.section]
        feeds = self._feeds_with_site(at.section, info.title)
        html = self.render(
            "article.html", snapshot, root, article=article, section=info, feeds=feeds
        )
        return _Shown(html, (article,))

    def shows(self, snapshot: Snapshot, path: str) -> tuple[Article, ...] | None:
        """Return the articles the page at `path` shows (None: no such page), so that a
        first look (firstlook.py) reads them in full before rendering it."""
        at = page_at(path)
        if at is None:
            return None
        if at.kind == SITE:
            return tuple(snapshot.published()[:HOME_ARTICLES])
        if at.kind == ARTICLE:
            article = snapshot.find(at.section, at.slug)
            return None if article is None else (article,)
        listed = self._listed(snapshot, at)
        if listed is None or at.page > page_count(len(listed)):
            return None
        return tuple(listed[(at.page - 1) * SECTION_PAGE_SIZE : at.page * SECTION_PAGE_SIZE])

    def _listed(self, snapshot: Snapshot, at: Address) -> tuple[Article, ...] | None:
        """Return every article of a section, tag or author listing; None: no such listing."""
        if at.kind == SECTION:
            info = snapshot.site.sections.get(at.slug)
            return None if info is None else snapshot.published(at.slug)
        listing = snapshot.listings.get(at.name)
        return None if listing is None else listing.articles

    def _listing(self, snapshot: Snapshot, at: Address, root: str) -> _Shown | None:
        """Return one page of a section, tag or author listing; None past its last page."""
        listed = self._listed(snapshot, at)
        if listed is None:
            return None
        if at.kind == SECTION:
            info = snapshot.site.sections[at.slug]
            folder_mtime = info.file_mtime
            feeds = self._feeds_with_site(info.slug, info.title)
            template, context = "section.html", {"section": info}
        else:
            listing = snapshot.listings[at.name]
            folder_mtime = 0.0
            feeds = self._feeds_with_site(listing.name, listing.label)
            kind = TAGS if at.kind == TAG else AUTHORS  # as templates name them
            template, context = "listing.html", {"kind": kind, "listing": listing}
        pages = page_count(len(listed))
        if at.page > pages:
            return None
        articles = listed[(at.page - 1) * SECTION_PAGE_SIZE : at.page * SECTION_PAGE_SIZE]
        pager = {
            "page": at.page,
            "pages": pages,
            "newer": root + _href(replace(at, page=at.page - 1)) if at.page > 1 else None,
            "older": root + _href(replace(at, page=at.page + 1)) if at.page < pages else None,
        }
        html = self.render(
            template, snapshot, root, articles=articles, feeds=feeds, pager=pager, **context
        )
        return _Shown(html, articles, folder_mtime)

    def _feeds_with_site(self, name: str, title: str) -> list[dict]:
        """Return the autodiscovery entries of feed `name`, then of the site's feed."""
        return self.feed_links(name, title) + self.feed_links(SITE_FEED, self.settings.site_title)


class _Shown(NamedTuple):
    """A page as rendered, with what its Last-Modified is made of."""

    html: str
    articles: tuple[Article, ...]
    folder_mtime: float = 0.0
