"""Build JSON Feed 1.1 documents (https://jsonfeed.org/version/1.1) from the same specs as RSS.

Items carry the same ids, links, dates and HTML as the RSS and Atom items, so a reader
that switches format sees the same articles, never duplicates.
"""

from __future__ import annotations

import json

from .addresses import feed_path, item_id
from .feeds import (
    JSON,
    FeedSpec,
    branding_urls,
    document_path,
    fit_to_cap,
    image_url_of,
)
from .itemhtml import ItemHtmlMemo, article_html, made_once
from .models import Article
from .settings import Settings

VERSION = "https://jsonfeed.org/version/1.1"
# Bytes an encoded item holds beyond its length (the bytes object, its memo entry), measured.
_ITEM_OVERHEAD = 1500


def render_json_feed(spec: FeedSpec, settings: Settings, memo: ItemHtmlMemo | None = None) -> bytes:
    """Render a JSON Feed document as UTF-8 bytes that depend only on content and settings."""
    return fit_to_cap(lambda s: _render(s, settings, memo), spec, settings.feed_max_bytes)


def _render(spec: FeedSpec, settings: Settings, memo: ItemHtmlMemo | None) -> bytes:
    items = (*spec.articles, *spec.json_more)
    full = len(items) if spec.full_items is None else spec.full_items
    document = {
        "version": VERSION,
        "title": spec.title,
        "home_page_url": settings.absolute(spec.page_path),
        "feed_url": settings.absolute(document_path(spec, JSON)),
        "description": spec.description,
        "language": settings.language,
        "authors": [{"name": settings.site_author}] if settings.site_author else [],
        "items": [_item_json(article, settings, i < full, memo) for i, article in enumerate(items)],
    }
    icon = branding_urls(settings).get("icon")
    if icon:  # a square picture serves as both
        document["icon"] = document["favicon"] = icon
    if spec.hub:
        document["hubs"] = [{"type": "WebSub", "url": spec.hub}]
    if spec.json_next:  # JSON Feed pages through older items with next_url
        document["next_url"] = settings.absolute(feed_path(spec.json_next, JSON))
    if not document["authors"]:
        del document["authors"]
    # json.dumps of the whole, written member by member: the items come already encoded.
    members = (
        _encoded(name)
        + b":"
        + (b"[" + b",".join(value) + b"]" if name == "items" else _encoded(value))
        for name, value in document.items()
    )
    return b"{" + b",".join(members) + b"}"


def _encoded(value: object) -> bytes:
    # Compact: an indent sends json.dumps to its pure-Python encoder (about twice the time).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _item_json(
    article: Article, settings: Settings, full: bool, memo: ItemHtmlMemo | None
) -> bytes:
    """Return the article's item as encoded JSON, made once per article version with a `memo`."""
    # Everything the item reads: the article (its image sizes are not part of its
    # equality), the site URL, and whether it carries the full text.
    key = (JSON, full, article, article.image_sizes, settings.site_url)
    return made_once(
        memo, key, lambda: _encoded(_item(article, settings, full, memo)), _encoded_size
    )


def _encoded_size(encoded: bytes) -> int:
    return len(encoded) + _ITEM_OVERHEAD


def _item(article: Article, settings: Settings, full: bool, memo: ItemHtmlMemo | None) -> dict:
    permalink = settings.absolute(article.path)
    item = {
        "id": item_id(article, settings),
        "url": permalink,
        "title": article.title,
        "content_html": article_html(article, settings, full, memo),
        "summary": article.summary,
        "date_published": article.date.isoformat(),
        "date_modified": article.updated.isoformat(),
        "authors": [{"name": name} for name in article.authors],
        "tags": list(article.tags),
    }
    if article.image is not None:
        item["image"] = image_url_of(article, settings)
    if not item["summary"]:  # a body with no text at all
        del item["summary"]
    if item["authors"]:  # JSON Feed 1.0 readers know only `author`, one name
        item["author"] = {"name": ", ".join(article.authors)}
    else:
        del item["authors"]
    if not item["tags"]:
        del item["tags"]
    return item
