"""The published feed rules of aggregators, checked against a site: `flask check --for …`.

Each rule names the page it comes from. A miss is a warning: the feeds stay valid and
are served as they are, and /healthz does not count it; the partner may show the article
less well, or not at all. Images are checked where their size is known (files under
media/); a web image's size is not fetched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from .addresses import is_subscription
from .catalog import feed_specs, listings
from .feeds import RSS, render_feed
from .itemhtml import article_html
from .models import Article, ContentWarning, Site
from .settings import Settings

GOOGLE_NEWS_SOURCE = (
    "Google Publisher Center Help, Feed guidelines:"
    " https://support.google.com/news/publisher-center/answer/9545420"
)
APPLE_NEWS_SOURCE = (
    "Apple News Publisher Help, RSS guidelines for Apple News:"
    " https://support.apple.com/guide/news-publisher/apdc2c7520ff/icloud"
)
MSN_ITEM_SOURCE = (
    "MSN Partner Hub, MSN feed item metadata requirements:"
    " https://support.microsoft.com/topic/msn-feed-item-metadata-requirements-0114c19c-36bb-4fef-8322-4a1ed6888329"
)
MSN_MEDIA_SOURCE = (
    "MSN Help Center, Feed content specifications:"
    " https://helpcenter.microsoftstart.com/kb/feed-specifications"
)
FLIPBOARD_SOURCE = "Flipboard, RSS Spec: https://about.flipboard.com/rss-spec/"

_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class Miss:
    """One rule a partner states that the content does not meet."""

    path: str
    line: int | None
    reason: str
    source: str

    def as_warning(self, partner: str) -> ContentWarning:
        """Return the miss as a content warning naming the partner and the rule's source."""
        return ContentWarning(self.path, self.line, f"{partner}: {self.reason} [{self.source}]")


@dataclass(frozen=True)
class Context:
    """What the rules look at: the site and what it publishes now, its settings and feeds."""

    site: Site
    published: tuple[Article, ...]
    now: datetime
    settings: Settings
    feeds: dict[str, bytes]  # subscription feed name -> its RSS document


ArticleRule = Callable[[Article, Context], Iterator[Miss]]
SiteRule = Callable[[Context], Iterator[Miss]]


@dataclass(frozen=True)
class Profile:
    """A partner: its name on the command line, and its rules for the site and each article."""

    name: str
    title: str
    site_rules: tuple[SiteRule, ...]
    article_rules: tuple[ArticleRule, ...]


def check_partner(profile: Profile, site: Site, settings: Settings, now: datetime) -> list[Miss]:
    """Apply a partner's rules to the site's published articles and subscription feeds."""
    published = tuple(site.published(now))
    specs = feed_specs(site, listings(site, list(published)), now, settings)
    subscribed = {name: spec for name, spec in specs.items() if is_subscription(name)}
    feeds = {name: render_feed(spec, RSS, settings) for name, spec in subscribed.items()}
    context = Context(site, published, now, settings, feeds)
    misses = [miss for rule in profile.site_rules for miss in rule(context)]
    in_feeds = {article.key for spec in subscribed.values() for article in spec.articles}
    for article in published:  # the articles a partner can fetch: those in its feeds
        if article.key in in_feeds:
            misses += [miss for rule in profile.article_rules for miss in rule(article, context)]
    return misses


def field_line(article: Article, name: str) -> int | None:
    """Return the line of front-matter field `name` in the article's file, to point at it."""
    try:
        with open(article.source_path, encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if line.startswith(f"{name}:"):
                    return number
                if number > 1 and line.rstrip() == "---":
                    return None
    except OSError:
        return None
    return None


def _settings_path(context: Context) -> str:
    return str(context.settings.content_dir)


# Rules shared by several partners, each bound to its source by a small factory.


def _plain_title(low: int, high: int, source: str) -> ArticleRule:
    """Return the rule for a title of `low` to `high` characters, in plain text."""

    def rule(article: Article, context: Context) -> Iterator[Miss]:
        length = len(article.title)
        if not low <= length <= high:
            reason = f"title has {length} characters; the rule asks for {low} to {high}"
            yield Miss(article.source_path, field_line(article, "title"), reason, source)
        if _HTML_TAG.search(article.title):
            reason = "title holds HTML markup, which is stripped or refused: write plain text"
            yield Miss(article.source_path, field_line(article, "title"), reason, source)

    return rule


def _https_site(source: str) -> SiteRule:
    def rule(context: Context) -> Iterator[Miss]:
        if not context.settings.site_url.startswith("https://"):
            reason = f"SITE_URL {context.settings.site_url} is not https://; feeds must be"
            yield Miss(_settings_path(context), None, reason, source)

    return rule


def _language_with_locale(source: str) -> SiteRule:
    def rule(context: Context) -> Iterator[Miss]:
        if "-" not in context.settings.language:
            reason = (
                f"LANGUAGE {context.settings.language!r} has no locale;"
                " write it with one, e.g. en-US"
            )
            yield Miss(_settings_path(context), None, reason, source)

    return rule


def _lead_image(
    source: str, *, smallest_side: int = 0, longest_side: int = 0, ratio=None, max_bytes=0
) -> ArticleRule:
    """Require a lead image, and where its file is known, its size and shape."""

    def rule(article: Article, context: Context) -> Iterator[Miss]:
        image = article.image
        if image is None:
            yield Miss(article.source_path, None, "article has no lead image", source)
            return
        line = field_line(article, "image")
        if max_bytes and image.length and image.length > max_bytes:
            reason = f"lead image {image.src} has {image.length} bytes, over {max_bytes}"
            yield Miss(article.source_path, line, reason, source)
        if not image.width or not image.height:
            return
        size = f"{image.width}×{image.height}"
        if smallest_side and min(image.width, image.height) < smallest_side:
            reason = (
                f"lead image {image.src} is {size} px; the smaller side must be {smallest_side}+"
            )
            yield Miss(article.source_path, line, reason, source)
        if longest_side and max(image.width, image.height) < longest_side:
            reason = f"lead image {image.src} is {size} px; {longest_side} px wide or high advised"
            yield Miss(article.source_path, line, reason, source)
        if ratio and not ratio[0] <= image.width / image.height <= ratio[1]:
            shape = f"{image.width / image.height:.2f}"
            reason = (
                f"lead image {image.src} is {size} px, width/height {shape};"
                f" between {ratio[0]} and {ratio[1]} is shown correctly"
            )
            yield Miss(article.source_path, line, reason, source)

    return rule


# Google News


def _google_feed_size(context: Context) -> Iterator[Miss]:
    for name, document in context.feeds.items():
        if len(document) > 2 * MEGABYTE:
            reason = (
                f"feed /{name}.xml has {len(document)} bytes, over 2 MB;"
                " set FEED_MAX_BYTES=2000000 or fewer FEED_ITEMS"
            )
            yield Miss(_settings_path(context), None, reason, GOOGLE_NEWS_SOURCE)


def _google_items_per_fetch(context: Context) -> Iterator[Miss]:
    if context.settings.feed_items > 60:
        reason = f"FEED_ITEMS is {context.settings.feed_items}; 60 new articles are read per fetch"
        yield Miss(_settings_path(context), None, reason, GOOGLE_NEWS_SOURCE)


def _google_article_size(article: Article, context: Context) -> Iterator[Miss]:
    size = len(article_html(article, context.settings).encode("utf-8"))
    if size > MEGABYTE:
        reason = f"article HTML has {size} bytes, over 1 MB"
        yield Miss(article.source_path, None, reason, GOOGLE_NEWS_SOURCE)


# Apple News


def _apple_excerpt(article: Article, context: Context) -> Iterator[Miss]:
    if article.dek and len(article.dek) > 200:
        reason = f"summary has {len(article.dek)} characters; up to 200 are shown as the excerpt"
        yield Miss(article.source_path, field_line(article, "summary"), reason, APPLE_NEWS_SOURCE)


# Microsoft Start / MSN


def _msn_date_age(article: Article, context: Context) -> Iterator[Miss]:
    if context.now - article.date > timedelta(days=365):
        reason = f"published {article.date.date().isoformat()}, over 365 days ago: not ingested"
        yield Miss(article.source_path, field_line(article, "date"), reason, MSN_ITEM_SOURCE)


# Flipboard


def _flipboard_item_count(context: Context) -> Iterator[Miss]:
    items = min(len(context.published), context.settings.feed_items)
    if items < 30:
        reason = f"the site feed holds {items} items; at least 30 are asked for"
        yield Miss(_settings_path(context), None, reason, FLIPBOARD_SOURCE)


def _flipboard_excerpt(article: Article, context: Context) -> Iterator[Miss]:
    # A summary cut from a longer paragraph ("…") is as long as feedsvc's excerpts go; a
    # short written summary, or a short first paragraph, is what the author can lengthen.
    if len(article.summary) < 300 and not article.summary.endswith("…"):
        reason = f"summary has {len(article.summary)} characters; 300 or more are asked for"
        line = field_line(article, "summary")
        yield Miss(article.source_path, line, reason, FLIPBOARD_SOURCE)


PROFILES = {
    profile.name: profile
    for profile in (
        Profile(
            "google-news",
            "Google News",
            (_google_feed_size, _google_items_per_fetch),
            (_google_article_size,),
        ),
        Profile(
            "apple-news",
            "Apple News",
            (_language_with_locale(APPLE_NEWS_SOURCE),),
            (_plain_title(15, 60, APPLE_NEWS_SOURCE), _apple_excerpt),
        ),
        Profile(
            "msn",
            "Microsoft Start / MSN",
            (_https_site(MSN_MEDIA_SOURCE),),
            (
                _plain_title(21, 150, MSN_ITEM_SOURCE),
                _msn_date_age,
                _lead_image(
                    MSN_MEDIA_SOURCE, longest_side=720, ratio=(0.5, 1.89), max_bytes=15 * MEGABYTE
                ),
            ),
        ),
        Profile(
            "flipboard",
            "Flipboard",
            (_flipboard_item_count,),
            (_lead_image(FLIPBOARD_SOURCE, smallest_side=400), _flipboard_excerpt),
        ),
    )
}
