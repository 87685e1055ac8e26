"""What a feed holds and where it lives; its RSS and Atom documents are made in feedxml.py.

A feed is described here (FeedSpec, its paths, links and media types) for every module
that names feeds; the documents themselves are built with feedgen, whose every detail
lives in feedxml.py, imported when a first document is rendered: a worker that follows
the publisher renders none, and need not load feedgen and lxml.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from . import urls
from .addresses import FEED_EXTENSIONS, feed_path
from .itemhtml import ItemHtmlMemo
from .models import Article, Section
from .settings import Settings

log = logging.getLogger(__name__)

RSS = "rss"
ATOM = "atom"
JSON = "json"
# Format -> (file extension, media type). JSON Feed documents are built in jsonfeed.py.
FORMATS = {
    RSS: (FEED_EXTENSIONS[RSS], "application/rss+xml"),
    ATOM: (FEED_EXTENSIONS[ATOM], "application/atom+xml"),
    JSON: (FEED_EXTENSIONS[JSON], "application/feed+json"),
}


@dataclass(frozen=True)
class FeedSpec:
    """What one feed holds: its name ("culture", or "feed" for the site) and its items."""

    name: str
    title: str
    description: str
    page_path: str
    articles: Sequence[Article]
    sections: Mapping[str, Section]
    updated: datetime
    # The WebSub hub that readers may subscribe through, if any.
    hub: str | None = None
    # RFC 5005 links as (rel, path stem): ("prev-archive", "culture/archive/3"), …
    archive_links: tuple[tuple[str, str], ...] = ()
    # An archive document (RFC 5005): it holds a fixed page of older items.
    archive: bool = False
    # Where this document lives, when not at feed_path(name, fmt) (archives).
    path_stem: str | None = None
    # JSON Feed pages with next_url, and no page may repeat an item: a subscription feed's
    # JSON runs on with these older items to where the archive page it names ends.
    json_more: tuple[Article, ...] = ()
    json_next: str | None = None  # path stem of that next page
    # Articles taken down lately that this feed carried: Atom announces each (RFC 6721).
    tombstones: tuple[Article, ...] = ()
    # How many of the newest items carry their full text (None: all); the rest carry their
    # summary, so that the document stays under FEED_MAX_BYTES.
    full_items: int | None = None


def feed_links(spec: FeedSpec, fmt: str, settings: Settings) -> list[tuple[str, str]]:
    """Return the document's feed-level links (rel, absolute URL) beyond self and alternate."""
    links = [("hub", spec.hub)] if spec.hub else []
    links += [(rel, settings.absolute(feed_path(stem, fmt))) for rel, stem in spec.archive_links]
    return links


def document_path(spec: FeedSpec, fmt: str) -> str:
    """Return the site path of the document `spec` describes, in format `fmt`."""
    return feed_path(spec.path_stem or spec.name, fmt)


def media_type(fmt: str) -> str:
    """Return the Content-Type of a feed format."""
    return FORMATS[fmt][1] + "; charset=utf-8"


def render_feed(
    spec: FeedSpec, fmt: str, settings: Settings, memo: ItemHtmlMemo | None = None
) -> bytes:
    """Render a feed document as UTF-8 bytes that depend only on content and settings.

    With a `memo`, item HTML already made for an unchanged article is reused.
    """
    from .feedxml import render_xml

    return fit_to_cap(lambda s: render_xml(s, fmt, settings, memo), spec, settings.feed_max_bytes)


def fit_to_cap(render: Callable[[FeedSpec], bytes], spec: FeedSpec, cap: int) -> bytes:
    """Render `spec` within `cap` bytes: full text for as many of the newest items as fit.

    The rest carry their summary and a link. Should even summaries not fit, the oldest
    items are left out (and logged): aggregators drop an oversize feed altogether.
    """
    document = render(spec)
    if not cap or len(document) <= cap:
        return document
    items = len(spec.articles) + len(spec.json_more)
    fitted = _largest_fitting(lambda n: render(replace(spec, full_items=n)), items - 1, cap)
    if fitted is not None:
        return fitted
    fewer = _largest_fitting(
        lambda n: render(replace(spec, articles=spec.articles[:n], json_more=(), full_items=0)),
        len(spec.articles) - 1,
        cap,
    )
    log.warning(
        "feed %s: summaries of every item exceed %d bytes; left out older items", spec.name, cap
    )
    return fewer if fewer is not None else document


def _largest_fitting(render: Callable[[int], bytes], most: int, cap: int) -> bytes | None:
    """Return the document of the largest n in 0..most whose rendering fits in cap bytes."""
    low, high, best = 0, most, None
    while low <= high:
        middle = (low + high) // 2
        document = render(middle)
        if len(document) <= cap:
            best, low = document, middle + 1
        else:
            high = middle - 1
    return best


def branding_urls(settings: Settings) -> dict[str, str]:
    """Return the absolute URLs of the icon, logo and cover that are set, by name."""
    pictures = (
        ("icon", settings.site_icon),
        ("logo", settings.site_logo),
        ("cover", settings.site_cover),
    )
    home = settings.site_url + "/"
    return {
        name: urls.absolute_url(value, settings.site_url, home) for name, value in pictures if value
    }


def image_url_of(article: Article, settings: Settings) -> str:
    """Return the absolute, encoded URL of the article's lead image ("" without one)."""
    if article.image is None:
        return ""
    return urls.absolute_url(article.image.src, settings.site_url, settings.absolute(article.path))
