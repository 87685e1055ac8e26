"""OPML: every feed of the site in one file, so a reader can subscribe to all in one import.

OPML 2.0 titles may hold HTML, so they are written as escaped HTML ("Why &lt;details&gt;");
a folder is an outline with text alone, which needs no type.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from html import escape

from .addresses import AUTHOR, SITE, TAG, Address
from .catalog import Listing
from .feeds import RSS
from .settings import Settings

OPML_TYPE = "text/x-opml; charset=utf-8"


def render_opml(groups: Iterable[Listing], settings: Settings) -> bytes:
    """Render an OPML 2.0 outline: the site feed, then sections, tags and authors."""
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = _html(f"{settings.site_title}: all feeds")
    ET.SubElement(head, "ownerName").text = _html(settings.site_author or settings.site_title)
    body = ET.SubElement(opml, "body")
    folders = {
        TAG: ET.Element("outline", text="Tags"),
        AUTHOR: ET.Element("outline", text="Authors"),
    }
    for group in groups:
        address = Address.from_name(group.name)
        title = _html(settings.site_title if address.kind == SITE else group.label)
        ET.SubElement(
            folders.get(address.kind, body),
            "outline",
            type="rss",
            text=title,
            title=title,
            xmlUrl=settings.absolute(address.feed_path(RSS)),
            htmlUrl=settings.absolute(group.page_path),
        )
    body.extend(folder for folder in folders.values() if len(folder))
    ET.indent(opml)
    return ET.tostring(opml, encoding="utf-8", xml_declaration=True) + b"\n"


def _html(text: str) -> str:
    """Return plain text as the HTML an OPML title holds."""
    return escape(text, quote=False)
