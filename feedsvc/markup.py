"""Markdown to HTML, plain-text excerpts, and HTML made safe and absolute for feeds."""

from __future__ import annotations

import html
import re
from functools import partial
from urllib.parse import urljoin, urlsplit

import nh3
from markdown_it_pyrs import MarkdownIt

from .limits import closes_paragraph

EXCERPT_LENGTH = 280

# Characters XML 1.0 cannot carry (C0 controls except tab/newline/CR, surrogates, U+FFFE/F).
XML_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# Attributes that hold a URL; relative values are resolved against the article's URL.
_URL_ATTRIBUTES = {"href", "src", "cite", "poster"}
_FEED_URL_SCHEMES = {"http", "https", "mailto"}


_FIRST_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.DOTALL)
_TAG = re.compile(r"<[^<>]*>")  # not "<[^>]*>": quadratic on many "<"


def new_markdown() -> MarkdownIt:
    """Return a CommonMark renderer; raw HTML in a body is kept, it is the author's markup."""
    return MarkdownIt("commonmark")


def render_markdown(markdown: MarkdownIt, body: str) -> tuple[str, str]:
    """Render a CommonMark body; return (html, plain text of its first paragraph)."""
    body_html = markdown.render(body)
    first = _FIRST_PARAGRAPH.search(body_html) if closes_paragraph(body_html) else None
    first_paragraph = html.unescape(_TAG.sub("", first.group(1))) if first else ""
    return body_html, " ".join(first_paragraph.split())


def excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """Cut text at a word boundary so a default summary never ends mid-word."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-\u2013\u2014")
    return cut + "…"


def strip_xml_invalid(text: str) -> str:
    """Drop the characters an XML document cannot hold."""
    return XML_INVALID_CHARS.sub("", text)


def resolve_url(url: str, site_url: str, base_url: str) -> str:
    """Make a URL absolute: site paths ("/media/x.jpg") join SITE_URL, others the base URL."""
    url = url.strip()
    if urlsplit(url).scheme or url.startswith("//"):
        return url
    if url.startswith("/"):
        return site_url.rstrip("/") + url
    return urljoin(base_url, url)


def feed_safe_html(html: str, site_url: str, base_url: str) -> str:
    """Return HTML fit for a feed: no scripts or handlers, every link and image absolute."""
    return nh3.clean(
        html,
        attribute_filter=partial(_absolute_url_attribute, site_url, base_url),
        url_schemes=_FEED_URL_SCHEMES,
        link_rel=None,
    )


def _absolute_url_attribute(site_url: str, base_url: str, _tag: str, name: str, value: str):
    if name in _URL_ATTRIBUTES:
        return resolve_url(value, site_url, base_url)
    return value
