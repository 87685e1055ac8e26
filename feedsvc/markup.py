"""Markdown to HTML, plain-text excerpts, and HTML made safe and absolute for feeds."""

from __future__ import annotations

import html
import re
from functools import cache, partial
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from .embeds import degrade_embeds
from .urls import absolute_url, scheme_of

if TYPE_CHECKING:
    import nh3
    from markdown_it_pyrs import MarkdownIt

EXCERPT_LENGTH = 280

# Characters XML 1.0 cannot carry (C0 controls except tab/newline/CR, surrogates, U+FFFE/F).
XML_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Its controls as bytes (in UTF-8 they are their own bytes).
_XML_INVALID_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])

# Windows-1252's meaning of the C1 control range, which text pasted from Word carries. The
# five codes it leaves undefined mean nothing and are dropped, as is U+FFFD (text garbled
# before it was saved); the W3C validator calls all of them BadCharacters.
MISREAD_CHARS = re.compile("[\x80-\x9f\ufffd]")
_MISREAD = (*map(chr, range(0x80, 0xA0)), "\ufffd")
_WINDOWS_1252 = {
    code: bytes([code]).decode("cp1252", "ignore") or None for code in range(0x80, 0xA0)
} | {0xFFFD: None}

# Link schemes kept in feeds; any other (javascript:, data:, …) loses its link.
_FEED_URL_SCHEMES = {"http", "https", "mailto", "tel", "sms", "ftp", "geo", "xmpp"}


@cache
def _feed_cleaner() -> nh3.Cleaner:
    """Return the feeds' sanitiser, built once: configuring one costs more than cleaning a
    typical body. Imported on first use: a worker that follows the publisher cleans nothing.
    """
    import nh3

    # Beyond the sanitiser's defaults: media elements and responsive images, which feed
    # readers show and the W3C Feed Validator counts as safe (not controls that run scripts).
    tags = nh3.ALLOWED_TAGS | {"video", "audio", "source", "track", "picture"}
    attributes = {
        **nh3.ALLOWED_ATTRIBUTES,
        "img": nh3.ALLOWED_ATTRIBUTES["img"] | {"srcset", "sizes", "title"},
        "video": {"src", "poster", "controls", "width", "height", "preload"},
        "audio": {"src", "controls", "preload"},
        "source": {"src", "srcset", "type", "media", "sizes"},
        "track": {"src", "label"},
    }
    return nh3.Cleaner(
        tags=tags, attributes=attributes, url_schemes=_FEED_URL_SCHEMES, link_rel=None
    )


# In the sanitiser's output every "<" of text is escaped and every value double-quoted, so
# these find exactly the tags, and the URLs in them, to make absolute.
_CLEAN_TAG = re.compile(r"""<[a-zA-Z][^\s/>]*(?:\s+[^\s="/>]+(?:="[^"]*")?)*\s*/?>""")
_URL_VALUE = re.compile(r'(\s(href|src|cite|poster|srcset)=")([^"]*)"')


# Paragraph tags, found one after the other (a lazy "<p>(.*?)</p>" rescans the rest of the
# body from every unclosed "<p>": quadratic).
_PARAGRAPH_START = re.compile(r"<p\b[^<>]*>", re.IGNORECASE)
_PARAGRAPH_END = re.compile(r"</p\s*>", re.IGNORECASE)
# Elements whose content a reader never sees as text.
_HIDDEN_ELEMENTS = frozenset(
    {"script", "style", "template", "noscript", "textarea", "select", "svg", "math", "title"}
)
_HIDDEN_START = re.compile(rf"<(?:{'|'.join(sorted(_HIDDEN_ELEMENTS))})\b", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")  # not "<[^>]*>": quadratic on many "<"
# Elements that embed a file, and links; their URLs are checked against the media folder.
_MEDIA_URL = re.compile(
    r"""<(img|source|video|audio|track|a)\b[^<>]*?\s(?:src|href|poster)\s*=\s*"""
    r"""(?:"([^"<]*)"|'([^'<]*)'|([^\s<>"']+))""",
    re.IGNORECASE,
)


class CommonMark:
    """A CommonMark renderer, made on first use: a process that never parses (a worker
    following the publisher) never loads the parser. Raw HTML in a body is kept: it is
    the author's markup."""

    __slots__ = ("_renderer",)

    def __init__(self) -> None:
        self._renderer: MarkdownIt | None = None

    def render(self, text: str) -> str:
        """Return `text` rendered as HTML."""
        renderer = self._renderer
        if renderer is None:
            from markdown_it_pyrs import MarkdownIt

            renderer = self._renderer = MarkdownIt("commonmark")
        return renderer.render(text)

    def __reduce__(self) -> tuple:  # sent to a parsing process, which makes its own
        return (CommonMark, ())


def new_markdown() -> CommonMark:
    """Return a CommonMark renderer (see CommonMark)."""
    return CommonMark()


def render_markdown(markdown: CommonMark, body: str) -> tuple[str, str]:
    """Render a CommonMark body; return (html, its first text: the default summary)."""
    body_html = markdown.render(body)
    return body_html, first_text(body_html)


def first_text(body_html: str) -> str:
    """Return the text of the first paragraph that has any, else of the whole body.

    What a reader sees first: an image, its alt text or a script is not a summary.
    """
    for paragraph in _paragraphs(body_html):
        text = visible_text(paragraph)
        if text:
            return text
    return visible_text(body_html)


def _paragraphs(body_html: str):
    """Yield the inner HTML of each closed paragraph, in one pass over the body."""
    position = 0
    while (start := _PARAGRAPH_START.search(body_html, position)) is not None:
        end = _PARAGRAPH_END.search(body_html, start.end())
        if end is None:
            return
        yield body_html[start.end() : end.start()]
        position = end.end()


def visible_text(fragment: str) -> str:
    """Return the text of an HTML fragment as a reader sees it, on one line."""
    if not _HIDDEN_START.search(fragment):  # the common case, without a parser
        return " ".join(html.unescape(_TAG.sub("", fragment)).split())
    collector = _TextCollector()
    collector.feed(fragment)
    collector.close()
    return " ".join("".join(collector.parts).split())


class _TextCollector(HTMLParser):
    """Collect character data outside script, style and other hidden elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in _HIDDEN_ELEMENTS:
            self._hidden += 1

    def handle_startendtag(self, tag, attrs):
        pass  # <svg/> hides nothing

    def handle_endtag(self, tag):
        if tag in _HIDDEN_ELEMENTS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def site_media_urls(body_html: str) -> list[tuple[str, bool]]:
    """Return the URLs of files a body embeds or links, as (url, is_link), but not web ones.

    Links matter only where they point into the media folder; embedded files always.
    """
    found = []
    for tag, *values in _MEDIA_URL.findall(body_html):
        url = "".join(values).strip()
        if url and not url.startswith(("#", "//")) and not scheme_of(url):
            found.append((html.unescape(url) if "&" in url else url, tag.lower() == "a"))
    return found


def find_misread(text: str) -> int:
    """Return the index of the first C1 control or U+FFFD in text, or -1.

    On a whole file, thirty-three substring scans are several times faster than one regex.
    """
    found = [i for i in map(text.find, _MISREAD) if i >= 0]
    return min(found, default=-1)


def repair_windows_1252(text: str) -> str:
    """Replace C1 controls by the Windows-1252 characters meant (\x92 → ’); drop U+FFFD."""
    if text.isascii() or not MISREAD_CHARS.search(text):  # the common case: translate is slow
        return text
    return text.translate(_WINDOWS_1252)


def excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """Cut text at a word boundary so a default summary never ends mid-word."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-\u2013\u2014")
    return cut + "…"


def find_xml_invalid(text: str) -> re.Match | None:
    """Return the first character XML cannot hold in text, or None.

    Most texts hold none, which the UTF-8 bytes (controls) and two scans (U+FFFE/F) tell
    several times faster than the regex; it runs where they find one, or a surrogate
    (which cannot be encoded).
    """
    try:
        data = text.encode()
    except UnicodeEncodeError:
        data = None
    if (
        data is not None
        and "\ufffe" not in text
        and "\uffff" not in text
        and len(data.translate(None, _XML_INVALID_BYTES)) == len(data)
    ):
        return None
    return XML_INVALID_CHARS.search(text)


def strip_xml_invalid(text: str) -> str:
    """Drop the characters an XML document cannot hold."""
    return XML_INVALID_CHARS.sub("", text)


_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""\ssrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", re.IGNORECASE)
_SIZED = re.compile(r"\s(?:width|height)\s*=", re.IGNORECASE)


def with_image_sizes(body_html: str, sizes: tuple[tuple[str, int, int], ...]) -> str:
    """Give each <img> whose size is known width and height, so no layout shifts as it loads."""
    if not sizes:
        return body_html
    known = {url: (width, height) for url, width, height in sizes}

    def sized(match: re.Match) -> str:
        tag = match.group(0)
        src = _SRC.search(tag)
        url = html.unescape("".join(src.groups(""))) if src else ""
        if url not in known or _SIZED.search(tag):
            return tag
        width, height = known[url]
        end = len(tag) - (2 if tag.endswith("/>") else 1)
        return f'{tag[:end].rstrip()} width="{width}" height="{height}"{tag[end:]}'

    return _IMG_TAG.sub(sized, body_html)


def feed_safe_html(html: str, site_url: str, base_url: str) -> str:
    """Return HTML fit for a feed: no scripts or handlers, every link and image absolute."""
    clean = _feed_cleaner().clean(degrade_embeds(html))
    return _CLEAN_TAG.sub(partial(_absolute_tag, site_url, base_url), clean)


def _absolute_tag(site_url: str, base_url: str, tag: re.Match) -> str:
    def absolute(match: re.Match) -> str:
        value = html.unescape(match.group(3))
        if match.group(2) == "srcset":
            value = absolute_srcset(value, site_url, base_url)
        else:
            value = absolute_url(value, site_url, base_url)
        return f'{match.group(1)}{html.escape(value, quote=True)}"'

    return _URL_VALUE.sub(absolute, tag.group(0))


def absolute_srcset(srcset: str, site_url: str, base_url: str) -> str:
    """Make each image candidate of a `srcset` absolute, keeping its width or density."""
    candidates = []
    for candidate in srcset.split(","):
        url, _, descriptor = candidate.strip().partition(" ")
        if url:
            url = absolute_url(url, site_url, base_url)
            candidates.append(f"{url} {descriptor.strip()}".strip())
    return ", ".join(candidates)
