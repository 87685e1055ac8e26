"""Each article's item HTML for feeds: dek, lead image, body, related links, made feed-safe.

RSS, Atom and JSON Feed items carry the same HTML; sanitising it costs more than the rest
of an item, so it is kept per article version in an ItemHtmlMemo, with the items made of it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from html import escape
from operator import itemgetter
from typing import TypeVar

from .bounded import BoundedCache
from .markup import feed_safe_html, with_image_sizes
from .models import Article, Image
from .settings import Settings

# Bytes of item HTML an ItemHtmlMemo keeps; beyond this the least recently used go.
# Counted as the strings really hold them: one non-ASCII character (a dash, an accent)
# makes Python keep every character of a string in 2 bytes, an emoji in 4; counted in
# characters, 8M of them held 16 MB after a crawl of every feed. The items of a site and a
# section feed fit (50 items of 10 kB: 0.5-1 MB each), which is what an edit renders again;
# a tag or author feed polled after others pushed its articles out sanitises them again
# (see editions.RENDER_CACHE_BYTES for what a larger budget cost).
ITEM_HTML_MEMO_BYTES = 2 * 1024 * 1024
# Bytes of feed items made of that HTML (RSS and Atom entries, JSON items) kept besides,
# for the subscription feeds only (see html_only): they are rendered again after each
# edit, and fit: at 8 sections of 50 items, 400 articles in RSS and Atom (about 19 kB
# each with 6 kB of HTML, measured) and up to 800 in JSON (8 kB each; a JSON feed holds
# fewer than 100): 22 MB. An edit then builds only the edited items.
ITEM_MEMO_BYTES = 32 * 1024 * 1024

T = TypeVar("T")


class ItemHtmlMemo:
    """Item HTML (sanitised, links made absolute) kept per article version, bounded in size.

    Sanitising a body costs more than the rest of its item: kept here, a feed rendered
    again after one edit sanitises only the edited article. Owned by whoever renders (the
    store's RenderCache), never global. The key holds everything article_html reads.
    The feed items made of it are kept here too (see `item`), within their own budget.
    """

    def __init__(self, budget: int = ITEM_HTML_MEMO_BYTES, items_budget: int = ITEM_MEMO_BYTES):
        self._entries: BoundedCache[tuple, str] = BoundedCache(budget, sys.getsizeof)
        self._items: BoundedCache[Hashable, tuple[object, int]] = BoundedCache(
            items_budget, itemgetter(1)
        )
        self.misses = 0  # sanitised bodies, for tests and benchmarks
        self.items_made = 0  # feed items built, for tests and benchmarks
        # For the feeds a crawler asks for once (tags, authors, archives): their items
        # kept would push out those of the subscription feeds, which edits render again.
        self.html_only = _HtmlOnly(self)

    def item(self, key: Hashable, make: Callable[[], T], size: Callable[[T], int]) -> T:
        """Return the feed item kept under `key`, else make() it and keep it (size(item) bytes).

        The key must hold everything the item is made of (the article version, the
        settings it reads, the format); the item must never change once made, since
        documents rendered at once in other threads share it.
        """
        found = self._items.get(key)
        if found is not None:
            return found[0]
        made = make()
        self.items_made += 1
        self._items.put(key, (made, size(made)))
        return made

    def html(self, article: Article, settings: Settings, full: bool) -> str:
        """Return article_html(article, settings, full), computed once per article version."""
        key = (
            article.body,  # by its digest: one version of the body
            article.path,
            article.dek,
            article.summary,
            article.image,
            article.image_sizes,
            article.related,
            full,
            settings.site_url,
        )
        found = self._entries.get(key)
        if found is not None:
            return found
        html = _article_html(article, settings, full)
        self.misses += 1
        self._entries.put(key, html)
        return html


class _HtmlOnly:
    """An ItemHtmlMemo's item HTML, with each feed item made anew rather than kept."""

    def __init__(self, memo: ItemHtmlMemo):
        self._memo = memo

    def item(self, key: Hashable, make: Callable[[], T], size: Callable[[T], int]) -> T:
        """Return make(): the item is not kept."""
        self._memo.items_made += 1
        return make()

    def html(self, article: Article, settings: Settings, full: bool) -> str:
        """Return article_html(article, settings, full) from the memo's item HTML."""
        return self._memo.html(article, settings, full)


def made_once(
    memo: ItemHtmlMemo | None, key: Hashable, make: Callable[[], T], size: Callable[[T], int]
) -> T:
    """Return make(), kept in `memo` under `key` if there is a memo (see ItemHtmlMemo.item)."""
    return make() if memo is None else memo.item(key, make, size)


def article_html(
    article: Article, settings: Settings, full: bool = True, memo: ItemHtmlMemo | None = None
) -> str:
    """Return the article's feed HTML, from `memo` when it has this version of it."""
    if memo is not None:
        return memo.html(article, settings, full)
    return _article_html(article, settings, full)


def _article_html(article: Article, settings: Settings, full: bool) -> str:
    """Return the full article as feed HTML: dek, lead image with credit, body, related links.

    Many readers show only this HTML, not the summary, so a dek written by the author
    leads it; a summary cut from the body is not repeated. Not `full`: the summary and a
    link to the article stand in for the body (a feed kept under its byte cap).
    """
    parts = []
    if article.dek or not full:
        parts.append(f"<p><strong>{escape(article.dek or article.summary)}</strong></p>")
    if article.image is not None:
        parts.append(_figure_html(article.image))
    if full:
        parts.append(with_image_sizes(article.body_html, article.image_sizes))
    else:
        link = escape(settings.absolute(article.path))
        parts.append(f'<p><a href="{link}">Read the whole article</a></p>')
    if article.related:
        links = "".join(
            f'<li><a href="{escape(link.url)}">{escape(link.title)}</a></li>'
            for link in article.related
        )
        parts.append(f"<h2>Related</h2><ul>{links}</ul>")
    permalink = settings.absolute(article.path)
    return feed_safe_html("\n".join(parts), settings.site_url, permalink)


def _figure_html(image: Image) -> str:
    caption = f"<figcaption>{escape(image.credit)}</figcaption>" if image.credit else ""
    alt = escape(image.alt)
    # Terminal readers (newsboat) show an image's title, not its alt text.
    title = f' title="{alt}"' if alt else ""
    size = f' width="{image.width}" height="{image.height}"' if image.width and image.height else ""
    src = escape(image.src)
    return f'<figure><img src="{src}" alt="{alt}"{title}{size}>{caption}</figure>'
