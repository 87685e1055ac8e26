"""Build RSS 2.0 and Atom 1.0 documents from articles; every feedgen detail lives here.

feedgen traps handled below: the RSS channel <link> is the last link added, so the
alternate link goes last; entries are appended in order (feedgen prepends by default);
feed dates are set from the content (feedgen defaults them to "now"); Atom entry links
lose rel/type in feedgen 1.0.0, so entries carry only their alternate link and the lead
image travels as media:content instead of an enclosure link.

Each article's entry is built once per version and format (feedgen's FeedEntry, its
extensions, its XML) and kept in the renderer's memo; a document copies the XML of each,
so rendering a feed again after an edit builds only the edited article's entry.
Imported by feeds.render_feed when a first document is rendered (see feeds.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import partial
from html import escape

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem
from lxml import etree

from .addresses import STATIC, item_id
from .feeds import (
    ATOM,
    FORMATS,
    RSS,
    FeedSpec,
    branding_urls,
    document_path,
    feed_links,
    image_url_of,
)
from .itemhtml import ItemHtmlMemo, article_html, made_once
from .models import Article, Image, Section
from .settings import Settings

GENERATOR = "feedsvc"
MEDIA_NS = "http://search.yahoo.com/mrss/"
DC_NS = "http://purl.org/dc/elements/1.1/"
DCTERMS_NS = "http://purl.org/dc/terms/"
ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
TOMBSTONES_NS = "http://purl.org/atompub/tombstones/1.0"
# Feedly's branding elements (icon, logo, cover, accentColor): https://blog.feedly.com/10-ways-to-optimize-your-feed-for-feedly/
WEBFEEDS_NS = "http://webfeeds.org/rss/1.0"
# Shown by browsers that open a feed; feed readers ignore the processing instruction.
FEED_STYLESHEET = f"/{STATIC}/feed.css"
# Bytes a built entry holds beyond its XML twice (feedgen's fields, tree nodes), measured.
_ENTRY_OVERHEAD = 4096
# RSS elements that hold plain text, and the short HTML description (the same characters).
# Only texts with an "&" (as "&lt;" and "&amp;" are written) need a change: the others
# are not matched, which spares a call per element.
_RSS_PLAIN_TEXT = re.compile(
    rb"(<(title|description|category|dc:creator|media:credit)\b[^>]*>)([^<&]*&[^<]*)(?=</\2>)"
)


def render_xml(spec: FeedSpec, fmt: str, settings: Settings, memo: ItemHtmlMemo | None) -> bytes:
    """Render `spec` as an RSS or Atom document, whatever its size (feeds.fit_to_cap caps it)."""
    generator = _new_generator(spec, fmt, settings)
    for index, article in enumerate(spec.articles):
        full = spec.full_items is None or index < spec.full_items
        section = spec.sections[article.section]
        # Everything the entry reads: the article (its image sizes are not part of its
        # equality), its section's title, the site URL, the format and whether it is full.
        key = (fmt, full, article, article.image_sizes, section.title, settings.site_url)
        build = partial(_build_entry, article, section, settings, fmt, full, memo)
        generator.add_entry(made_once(memo, key, build, _BuiltEntry.held_bytes), order="append")
    if fmt == RSS:
        document = _rss_profile_text(generator.rss_str(pretty=True))
    else:
        document = generator.atom_str(pretty=True)
    return _with_stylesheet(document, settings)


def _rss_profile_text(document: bytes) -> bytes:
    """Write "<" and "&" in RSS plain text as the RSS profile advises: &#x3C; and &#x26;.

    The same characters, so readers see no change; validators then know the text is not
    escaped HTML ("Why <details> beats JavaScript").
    """

    def hexadecimal(match: re.Match) -> bytes:
        text = match.group(3).replace(b"&lt;", b"&#x3C;").replace(b"&amp;", b"&#x26;")
        return match.group(1) + text

    return _RSS_PLAIN_TEXT.sub(hexadecimal, document)


def _with_stylesheet(document: bytes, settings: Settings) -> bytes:
    """Point browsers at a stylesheet that shows the feed as a readable page; readers ignore it."""
    declaration, newline, rest = document.partition(b"\n")
    href = escape(settings.absolute(FEED_STYLESHEET))
    instruction = f'<?xml-stylesheet type="text/css" href="{href}"?>'.encode()
    return declaration + newline + instruction + newline + rest


def _rss_date(moment: datetime) -> datetime:
    """Return the moment as RSS writes it: in UTC where its offset is not whole half hours.

    RFC 822 allows +0545 (Nepal), but the W3C validator calls such a date "problematical"
    and some readers misread it; the same instant in UTC is understood everywhere.
    """
    offset = moment.utcoffset()
    return moment.astimezone(UTC) if offset and offset % timedelta(minutes=30) else moment


def _new_generator(spec: FeedSpec, fmt: str, settings: Settings) -> FeedGenerator:
    generator = FeedGenerator()
    for name, feed_part, entry_part, atom in _ENTRY_EXTENSIONS:
        generator.register_extension(name, feed_part, entry_part, atom=atom)
    self_url = settings.absolute(document_path(spec, fmt))
    generator.id(self_url)
    generator.title(spec.title)
    generator.subtitle(spec.description or spec.title)
    generator.author({"name": settings.site_author or settings.site_title})
    generator.language(settings.language)
    generator.generator(GENERATOR, uri=settings.site_url + "/")
    generator.updated(spec.updated)
    generator.lastBuildDate(_rss_date(spec.updated))
    generator.link(href=self_url, rel="self", type=FORMATS[fmt][1])
    links = feed_links(spec, fmt, settings)
    if fmt == ATOM:
        for rel, href in links:
            generator.link(href=href, rel=rel)
    else:  # feedgen drops RSS links other than self; the extension writes them
        generator.register_extension("channel_links", _ChannelLinks, atom=False)
        generator.channel_links.set(tuple(links), spec.archive)
    if fmt == ATOM and spec.archive:
        generator.register_extension("archive_marker", _ArchiveMarker, rss=False)
    if fmt == ATOM and spec.tombstones:
        generator.register_extension("tombstones", _Tombstones, rss=False)
        generator.tombstones.set(
            tuple((item_id(a, settings), a.removed_at.isoformat()) for a in spec.tombstones)
        )
    _add_branding(generator, spec, settings)
    # Added last on purpose: feedgen makes the last link the RSS channel <link>.
    generator.link(href=settings.absolute(spec.page_path), rel="alternate", type="text/html")
    return generator


def _add_branding(generator: FeedGenerator, spec: FeedSpec, settings: Settings) -> None:
    """Name the site's pictures: RSS <image>, Atom icon and logo, and Feedly's webfeeds."""
    pictures = branding_urls(settings)
    picture = pictures.get("logo") or pictures.get("icon")
    if picture:  # RSS <image> must repeat the channel's title and link
        generator.image(picture, title=spec.title, link=settings.absolute(spec.page_path))
    if "icon" in pictures:
        generator.icon(pictures["icon"])
    if pictures or settings.accent_color:
        generator.register_extension("webfeeds", _WebFeeds)
        generator.webfeeds.set(pictures, settings.accent_color)


def _build_entry(
    article: Article,
    section: Section,
    settings: Settings,
    fmt: str,
    full: bool,
    memo: ItemHtmlMemo | None,
) -> _BuiltEntry:
    """Build the article's entry with feedgen, and its XML once."""
    permalink = settings.absolute(article.path)
    entry = _BuiltEntry()
    for name, _, entry_part, atom in _ENTRY_EXTENSIONS:  # as the generator would, once
        entry.register_extension(name, entry_part, atom=atom)
    entry.title(article.title)
    entry.link(href=permalink, rel="alternate", type="text/html")
    is_permalink = article.explicit_id is None and not article.original_path
    entry.guid(item_id(article, settings), permalink=is_permalink)
    entry.published(_rss_date(article.date) if fmt == RSS else article.date)
    entry.updated(article.updated)
    entry.author([{"name": name} for name in article.authors])
    entry.category(
        [{"term": section.title, "scheme": settings.absolute(section.path)}]
        + [{"term": tag} for tag in article.tags]
    )
    # RSS descriptions are HTML, so plain text is escaped ("3 < 5" would be broken
    # markup); Atom's summary is declared type="text" and carries it as written. A body
    # with no text has no summary: Atom may leave it out, RSS needs a description before
    # content:encoded (feedgen would move the content into it), so it repeats the title.
    if fmt == RSS:
        entry.summary(escape(article.summary or article.title, quote=False))
    elif article.summary:
        entry.summary(article.summary)
    entry.content(article_html(article, settings, full, memo), type="html")
    image_url = image_url_of(article, settings)
    entry.rss_extras.set(article.authors, article.updated, article.image, image_url)
    if article.image is not None:
        entry.lead_image.set(article.image, image_url)
    entry.freeze(fmt)
    return entry


class _BuiltEntry(FeedEntry):
    """A feedgen entry whose XML feedgen builds once: each document takes a copy of it.

    Documents rendered at once in several threads share it, so it never changes once
    frozen; the generator's attempts to register its extensions again find them
    registered, and change nothing.
    """

    def freeze(self, fmt: str) -> None:
        """Build the entry's XML for `fmt` now, once."""
        self._built = super().rss_entry() if fmt == RSS else super().atom_entry()

    def held_bytes(self) -> int:
        """Return about how much memory the entry holds: its tree (text and nodes), its fields."""
        return 2 * len(etree.tostring(self._built)) + _ENTRY_OVERHEAD

    def rss_entry(self, extensions=True):
        """Return a copy of the item feedgen built (a tree node belongs to one document)."""
        return self._built.__copy__()  # lxml copies the whole subtree, as deepcopy would

    atom_entry = rss_entry


class _ChannelLinks(BaseExtension):
    """Feed-level links in RSS (WebSub hub, RFC 5005 archives) as atom:link elements."""

    def __init__(self):
        self.links: tuple[tuple[str, str], ...] = ()
        self.archive = False

    def extend_ns(self):
        return {"atom": ATOM_NS, "fh": HISTORY_NS}

    def set(self, links: tuple[tuple[str, str], ...], archive: bool):
        """Record the links to write and whether the document is an archive."""
        self.links, self.archive = links, archive

    def extend_rss(self, rss_feed):
        channel = rss_feed[0]
        for rel, href in self.links:
            xml_elem(f"{{{ATOM_NS}}}link", channel, rel=rel, href=href)
        if self.archive:
            xml_elem(f"{{{HISTORY_NS}}}archive", channel)
        return rss_feed


class _ArchiveMarker(BaseExtension):
    """Mark an Atom document as an RFC 5005 archive: complete, and never changing."""

    def extend_ns(self):
        return {"fh": HISTORY_NS}

    def extend_atom(self, atom_feed):
        xml_elem(f"{{{HISTORY_NS}}}archive", atom_feed)
        return atom_feed


class _Tombstones(BaseExtension):
    """RFC 6721 at:deleted-entry elements: readers drop the entries they hold with these ids."""

    def __init__(self):
        self.deleted: tuple[tuple[str, str], ...] = ()

    def extend_ns(self):
        return {"at": TOMBSTONES_NS}

    def set(self, deleted: tuple[tuple[str, str], ...]):
        """Record (item id, RFC 3339 time of removal) pairs."""
        self.deleted = deleted

    def extend_atom(self, atom_feed):
        for ref, when in self.deleted:
            xml_elem(f"{{{TOMBSTONES_NS}}}deleted-entry", atom_feed, ref=ref, when=when)


class _WebFeeds(BaseExtension):
    """Feedly's branding elements, which it reads in RSS and Atom alike."""

    def __init__(self):
        self.pictures: dict[str, str] = {}
        self.accent_color = ""

    def extend_ns(self):
        return {"webfeeds": WEBFEEDS_NS}

    def set(self, pictures: dict[str, str], accent_color: str):
        """Record the absolute picture URLs by name, and the colour (hex digits)."""
        self.pictures, self.accent_color = pictures, accent_color

    def _extend(self, parent):
        for name in ("icon", "logo"):
            if name in self.pictures:
                xml_elem(f"{{{WEBFEEDS_NS}}}{name}", parent).text = self.pictures[name]
        if "cover" in self.pictures:
            xml_elem(f"{{{WEBFEEDS_NS}}}cover", parent, image=self.pictures["cover"])
        if self.accent_color:
            xml_elem(f"{{{WEBFEEDS_NS}}}accentColor", parent).text = self.accent_color

    def extend_rss(self, rss_feed):
        self._extend(rss_feed[0])
        return rss_feed

    def extend_atom(self, atom_feed):
        self._extend(atom_feed)
        return atom_feed


class _MediaNamespace(BaseExtension):
    def extend_ns(self):
        return {"media": MEDIA_NS}


class _DublinCoreNamespaces(BaseExtension):
    def extend_ns(self):
        return {"dc": DC_NS, "dcterms": DCTERMS_NS}


class _LeadImage(BaseEntryExtension):
    """Carry the lead image as Media RSS, with its alt text and credit."""

    def __init__(self):
        self.image: Image | None = None
        self.url = ""

    def set(self, image: Image, absolute_url: str):
        """Attach the lead image, its URL already absolute."""
        self.image, self.url = image, absolute_url

    def extend_atom(self, entry):
        if self.image is None:
            return entry
        content = xml_elem(f"{{{MEDIA_NS}}}content", entry, url=self.url, medium="image")
        if self.image.mime_type:
            content.set("type", self.image.mime_type)
        if self.image.length:
            content.set("fileSize", str(self.image.length))
        if self.image.width and self.image.height:
            content.set("width", str(self.image.width))
            content.set("height", str(self.image.height))
        if self.image.alt:
            # As HTML: plain text with "<b>" in it reads as undeclared markup to validators.
            description = xml_elem(f"{{{MEDIA_NS}}}description", content, type="html")
            description.text = escape(self.image.alt, quote=False)
        if self.image.credit:
            xml_elem(f"{{{MEDIA_NS}}}credit", content).text = self.image.credit
        # Readers that build a card (Feedly, Flipboard, Inoreader) look for a thumbnail.
        thumbnail = xml_elem(f"{{{MEDIA_NS}}}thumbnail", entry, url=self.url)
        if self.image.width and self.image.height:
            thumbnail.set("width", str(self.image.width))
            thumbnail.set("height", str(self.image.height))
        return entry

    extend_rss = extend_atom


class _RssExtras(BaseEntryExtension):
    """Add to RSS items: author names (dc:creator), the updated date, the image enclosure.

    The enclosure is written here rather than with feedgen's enclosure(), which would
    also add an Atom link that feedgen 1.0.0 strips of its rel="enclosure".
    """

    def __init__(self):
        self.authors: tuple[str, ...] = ()
        self.modified: datetime | None = None
        self.image: Image | None = None
        self.image_url = ""

    def set(self, authors, modified: datetime, image: Image | None, image_url: str):
        """Record the item's author names, last substantive edit and lead image."""
        self.authors, self.modified = authors, modified
        self.image, self.image_url = image, image_url

    def extend_rss(self, item):
        if self.authors:
            # One element: readers such as newsboat keep only the last of several.
            xml_elem(f"{{{DC_NS}}}creator", item).text = ", ".join(self.authors)
        if self.modified is not None:
            xml_elem(f"{{{DCTERMS_NS}}}modified", item).text = self.modified.isoformat()
        # RSS requires an enclosure's length; images elsewhere have media:content only.
        if self.image is not None and self.image.length and self.image.mime_type:
            length, mime_type = str(self.image.length), self.image.mime_type
            xml_elem("enclosure", item, url=self.image_url, length=length, type=mime_type)
        return item


# Entry extensions, as (name, feed part, entry part, in Atom): registered on each
# generator, and on each entry once when it is built (the generator's add_entry then
# finds them there and leaves the entry as it is).
_ENTRY_EXTENSIONS = (
    ("lead_image", _MediaNamespace, _LeadImage, True),
    ("rss_extras", _DublinCoreNamespaces, _RssExtras, False),
)
