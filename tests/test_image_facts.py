"""Image facts read from real files with Pillow: sizes and real types in feeds and on pages."""

from __future__ import annotations

import io
import json

import feedparser
import pytest
from conftest import SITE_URL
from lxml import etree
from lxml import html as lxml_html
from PIL import Image
from w3c_rules import feed_problems

MEDIA = "{http://search.yahoo.com/mrss/}"


def image_bytes(width: int, height: int, fmt: str) -> bytes:
    """Return a real image file of the given pixel size and Pillow format."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def gallery(write_article, write_media):
    """Articles whose lead images are real files: a JPEG, a PNG named .jpg, a GIF, a WebP."""
    files = {
        "wide.jpg": image_bytes(1200, 630, "JPEG"),
        "really-a-png.jpg": image_bytes(800, 800, "PNG"),
        "small.gif": image_bytes(320, 200, "GIF"),
        "tall.webp": image_bytes(600, 900, "WEBP"),
        "in body.png": image_bytes(640, 480, "PNG"),
    }
    for name, data in files.items():
        write_media(name, data)
    for day, name in enumerate(["wide.jpg", "really-a-png.jpg", "small.gif", "tall.webp"], 1):
        slug = name.split(".")[0]
        write_article(
            "culture",
            slug,
            "Text first.\n\n![In the body](/media/in%20body.png)\n",
            date=f"2026-03-0{day}T09:00:00+00:00",
            image={"src": f"/media/{name}", "alt": f"Picture {slug}"},
        )
    return {name: len(data) for name, data in files.items()}


EXPECTED = {
    "wide": ("image/jpeg", 1200, 630, "wide.jpg"),
    "really-a-png": ("image/png", 800, 800, "really-a-png.jpg"),
    "small": ("image/gif", 320, 200, "small.gif"),
    "tall": ("image/webp", 600, 900, "tall.webp"),
}


@pytest.mark.parametrize("url", ["/culture.xml", "/culture.atom"])
def test_media_content_and_thumbnail_carry_size_type_and_length(gallery, client, url):
    body = client.get(url).data
    assert feed_problems(body) == []
    assert feedparser.parse(body).bozo == 0
    root = etree.fromstring(body)
    entries = root.findall(".//item") or root.findall(".//{http://www.w3.org/2005/Atom}entry")
    assert len(entries) == 4
    for entry in entries:
        link = entry.findtext("link") or entry.find("{http://www.w3.org/2005/Atom}link").get("href")
        mime_type, width, height, name = EXPECTED[link.rstrip("/").rsplit("/", 1)[-1]]
        content = entry.find(f"{MEDIA}content")
        assert content.attrib == {
            "url": f"{SITE_URL}/media/{name}",
            "medium": "image",
            "type": mime_type,
            "fileSize": str(gallery[name]),
            "width": str(width),
            "height": str(height),
        }
        thumbnail = entry.find(f"{MEDIA}thumbnail")
        assert thumbnail.attrib == {
            "url": f"{SITE_URL}/media/{name}",
            "width": str(width),
            "height": str(height),
        }


def test_rss_enclosure_has_the_real_type_not_the_extension(gallery, client):
    """A PNG saved as .jpg is announced as image/png: readers decode by the declared type."""
    root = etree.fromstring(client.get("/culture.xml").data)
    enclosures = {e.get("url"): e.get("type") for e in root.iter("enclosure")}
    assert enclosures[f"{SITE_URL}/media/really-a-png.jpg"] == "image/png"


def test_feedparser_reads_the_sizes(gallery, client):
    parsed = feedparser.parse(client.get("/culture.xml").data)
    entry = next(e for e in parsed.entries if e.link.endswith("/wide/"))
    assert entry.media_content[0]["width"] == "1200"
    assert entry.media_thumbnail[0]["height"] == "630"


def test_json_feed_image_and_content_image_sizes(gallery, client):
    items = {i["url"]: i for i in json.loads(client.get("/culture.json").data)["items"]}
    item = items[f"{SITE_URL}/culture/tall/"]
    assert item["image"] == f"{SITE_URL}/media/tall.webp"
    root = lxml_html.fragment_fromstring(item["content_html"], create_parent="div")
    lead, body = root.xpath("//img")
    assert (lead.get("width"), lead.get("height")) == ("600", "900")
    assert body.get("src") == f"{SITE_URL}/media/in%20body.png"
    assert (body.get("width"), body.get("height")) == ("640", "480")


def test_article_page_images_have_width_and_height(gallery, client):
    """Width and height on every local <img> let browsers reserve the space: no layout shift."""
    page = lxml_html.fromstring(client.get("/culture/small/").data)
    lead = page.xpath('//figure[@class="lead-image"]/img')[0]
    assert (lead.get("width"), lead.get("height")) == ("320", "200")
    (body,) = page.xpath('//div[@class="body"]//img')
    assert (body.get("width"), body.get("height")) == ("640", "480")


def test_a_file_that_is_not_an_image_gets_no_size(write_article, write_media, client_factory):
    write_media("broken.jpg", b"not an image at all")
    write_article("culture", "broken", image={"src": "/media/broken.jpg", "alt": "x"})
    content = etree.fromstring(client_factory().get("/culture.xml").data).find(f".//{MEDIA}content")
    assert content.get("type") == "image/jpeg"  # from the name, the best there is
    assert content.get("width") is None and content.get("fileSize") == "19"


def test_a_web_image_is_not_fetched(write_article, client_factory):
    write_article("culture", "remote", image={"src": "https://cdn.example.net/p.png", "alt": "x"})
    content = etree.fromstring(client_factory().get("/culture.xml").data).find(f".//{MEDIA}content")
    assert content.get("url") == "https://cdn.example.net/p.png"
    assert content.get("width") is None


def test_replacing_a_media_file_updates_its_size(gallery, write_media, make_app):
    app = make_app(WATCH_CONTENT=False)
    store = app.extensions["feedsvc"]
    write_media("wide.jpg", image_bytes(1600, 900, "JPEG") + b"\0" * 10)
    store.refresh()
    root = etree.fromstring(app.test_client().get("/culture.xml").data)
    widths = {c.get("url"): c.get("width") for c in root.iter(f"{MEDIA}content")}
    assert widths[f"{SITE_URL}/media/wide.jpg"] == "1600"
