"""Embedded media reach every feed format as something a reader can show, or are reported.

Each embed kind is written into an article body the way CMSs and platforms' embed codes
write it, rendered through RSS, Atom and JSON Feed, and read back with feedparser and the
W3C Feed Validator's rules (tests/w3c_rules.py).
"""

from __future__ import annotations

import json
import re

import feedparser
import pytest
from conftest import SITE_URL
from lxml import etree
from lxml import html as lxml_html
from w3c_rules import feed_problems

YOUTUBE = (
    '<iframe width="560" height="315" src="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ'
    '?si=x1" title="The harbour concert" frameborder="0" allowfullscreen></iframe>'
)
VIMEO = (
    '<iframe src="https://player.vimeo.com/video/76979871?h=8272103f6e" title="Rehearsal"></iframe>'
)
UNKNOWN_FRAME = '<iframe src="https://maps.example.net/embed?id=42" title="Venue map"></iframe>'
VIDEO = '<video controls src="/media/clip.mp4" poster="poster.jpg"></video>'
VIDEO_SOURCES = (
    '<video controls data-poster="/media/p2.jpg"><source src="/media/c2.webm" type="video/webm">'
    '<source src="/media/c2.mp4" type="video/mp4"></video>'
)
AUDIO = '<audio controls src="/media/interview.mp3"></audio>'
LAZY_IMAGE = (
    '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="/media/lazy pic.jpg"'
    ' data-srcset="/media/lazy-480.jpg 480w, lazy-960.jpg 960w" loading="lazy" alt="Quay at dusk">'
)
SRCSET_IMAGE = '<img src="/media/a.jpg" srcset="/media/a.jpg 1x, /media/a@2x.jpg 2x" alt="A">'
TWEET = (
    '<blockquote class="twitter-tweet"><p lang="en" dir="ltr">The quay is full tonight</p>'
    "&mdash; Harbour Desk (@harbourdesk) "
    '<a href="https://twitter.com/harbourdesk/status/1234567890">June 1, 2026</a></blockquote>'
    '<script async src="https://platform.twitter.com/widgets.js" charset="utf-8"></script>'
)
INSTAGRAM = (
    '<blockquote class="instagram-media" data-instgrm-permalink="https://www.instagram.com/p/C0ffee/"'
    ' data-instgrm-version="14"><div><p>Lanterns on the water</p></div></blockquote>'
    '<script async src="//www.instagram.com/embed.js"></script>'
)
TIKTOK = (
    '<blockquote class="tiktok-embed" cite="https://www.tiktok.com/@harbour/video/7234567890"'
    ' data-video-id="7234567890"><section><p>Fireworks from the breakwater</p></section>'
    '</blockquote><script async src="https://www.tiktok.com/embed.js"></script>'
)
EVERY_EMBED = "\n\n".join(
    [
        "The concert opened the season.",
        YOUTUBE,
        VIMEO,
        UNKNOWN_FRAME,
        VIDEO,
        VIDEO_SOURCES,
        AUDIO,
        LAZY_IMAGE,
        SRCSET_IMAGE,
        TWEET,
        INSTAGRAM,
        TIKTOK,
    ]
)
BASE = f"{SITE_URL}/culture/concert/"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"


@pytest.fixture
def embeds_client(write_article, make_app):
    write_article("culture", "concert", EVERY_EMBED, title="The Harbour Concert")
    return make_app().test_client()


def item_html(client, fmt: str) -> str:
    """Return the one item's content HTML in format `fmt`, after checking the document."""
    body = client.get(f"/culture.{fmt}").data
    if fmt == "json":
        return json.loads(body)["items"][0]["content_html"]
    assert feed_problems(body) == []
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0 and len(parsed.entries) == 1
    # As published: feedparser's own sanitiser would drop srcset, which readers use.
    content = etree.fromstring(body).xpath(
        "//content:encoded | //atom:content",
        namespaces={"content": CONTENT_NS, "atom": "http://www.w3.org/2005/Atom"},
    )
    return content[0].text


def tree(fragment: str):
    return lxml_html.fragment_fromstring(fragment, create_parent="div")


@pytest.mark.parametrize("fmt", ["xml", "atom", "json"])
def test_known_video_frames_become_links_with_thumbnails(embeds_client, fmt):
    """A YouTube player is a link to the video's page, its thumbnail inside; Vimeo a link."""
    root = tree(item_html(embeds_client, fmt))
    youtube = root.xpath('//a[@href="https://www.youtube.com/watch?v=dQw4w9WgXcQ"]')
    assert youtube and "The harbour concert" in youtube[0].text_content()
    assert youtube[0].xpath("img/@src") == ["https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg"]
    assert root.xpath('//a[@href="https://vimeo.com/76979871"]')
    assert not root.xpath("//iframe")


@pytest.mark.parametrize("fmt", ["xml", "atom", "json"])
def test_a_frame_from_another_host_becomes_a_link_to_it(embeds_client, fmt):
    root = tree(item_html(embeds_client, fmt))
    link = root.xpath('//a[@href="https://maps.example.net/embed?id=42"]')
    assert link and "Venue map" in link[0].text_content()


@pytest.mark.parametrize("fmt", ["xml", "atom", "json"])
def test_video_and_audio_keep_absolute_sources_and_a_fallback_link(embeds_client, fmt):
    root = tree(item_html(embeds_client, fmt))
    first, second = root.xpath("//video")
    assert first.get("src") == f"{SITE_URL}/media/clip.mp4"
    assert first.get("poster") == f"{BASE}poster.jpg"
    assert first.xpath("a/@href") == [f"{SITE_URL}/media/clip.mp4"]  # readers without <video>
    assert second.get("poster") == f"{SITE_URL}/media/p2.jpg"
    assert second.xpath(".//source/@src") == [
        f"{SITE_URL}/media/c2.webm",
        f"{SITE_URL}/media/c2.mp4",
    ]
    (audio,) = root.xpath("//audio")
    assert audio.get("src") == f"{SITE_URL}/media/interview.mp3"
    assert audio.xpath("a/@href") == [f"{SITE_URL}/media/interview.mp3"]


@pytest.mark.parametrize("fmt", ["xml", "atom", "json"])
def test_lazy_images_get_a_real_src_and_every_srcset_is_absolute(embeds_client, fmt):
    root = tree(item_html(embeds_client, fmt))
    (lazy,) = root.xpath('//img[@alt="Quay at dusk"]')
    assert lazy.get("src") == f"{SITE_URL}/media/lazy%20pic.jpg"
    assert lazy.get("srcset") == f"{SITE_URL}/media/lazy-480.jpg 480w, {BASE}lazy-960.jpg 960w"
    assert lazy.get("loading") is None and lazy.get("data-src") is None
    (plain,) = root.xpath('//img[@alt="A"]')
    assert plain.get("srcset") == f"{SITE_URL}/media/a.jpg 1x, {SITE_URL}/media/a@2x.jpg 2x"


@pytest.mark.parametrize("fmt", ["xml", "atom", "json"])
def test_social_posts_keep_their_text_and_link(embeds_client, fmt):
    content = item_html(embeds_client, fmt)
    root = tree(content)
    quotes = {q.text_content().strip(): q for q in root.xpath("//blockquote")}
    assert len(quotes) == 3
    tweet = next(q for text, q in quotes.items() if "The quay is full tonight" in text)
    assert tweet.xpath("a/@href") == ["https://twitter.com/harbourdesk/status/1234567890"]
    instagram = next(q for text, q in quotes.items() if "Lanterns on the water" in text)
    assert instagram.xpath(".//a/@href") == ["https://www.instagram.com/p/C0ffee/"]
    tiktok = next(q for text, q in quotes.items() if "Fireworks" in text)
    assert tiktok.get("cite") == "https://www.tiktok.com/@harbour/video/7234567890"
    assert tiktok.xpath(".//a/@href") == ["https://www.tiktok.com/@harbour/video/7234567890"]
    assert "<script" not in content and "widgets.js" not in content


def test_the_page_still_shows_the_embeds_as_written(embeds_client):
    page = embeds_client.get("/culture/concert/").get_data(as_text=True)
    assert "youtube-nocookie.com/embed/dQw4w9WgXcQ" in page
    assert 'data-src="/media/lazy pic.jpg"' in page


def test_an_embed_code_loader_script_is_not_reported(runner_for):
    """The platforms' loader scripts are replaced by their blockquote; nothing is lost."""
    result = runner_for(TWEET + "\n\n" + INSTAGRAM)
    assert "warning" not in result.output


def test_check_names_what_feeds_must_leave_out_with_line_and_why(runner_for, content_dir):
    body = "\n".join(
        [
            "Intro paragraph.",
            "",
            '<script src="https://ads.example.net/tag.js"></script>',
            "",
            '<object data="/media/old.swf" type="application/x-shockwave-flash"></object>',
            "",
            '<svg width="10" height="10"><circle r="4"/></svg>',
            "",
            '<iframe srcdoc="<p>hi</p>"></iframe>',
            "",
            '<video controls width="640"></video>',
        ]
    )
    result = runner_for(body)
    lines = [line for line in result.output.splitlines() if "left out of feeds" in line]
    path = "content/culture/lossy.md" if "content/" in result.output else "lossy.md"
    found = {re.sub(r".*lossy\.md:(\d+): warning: <(\w+)>.*", r"\2@\1", line) for line in lines}
    # Front matter takes lines 1-4; the body starts on line 5.
    assert found == {"script@7", "object@9", "svg@11", "iframe@13", "video@15"}, result.output
    assert all(path in line for line in lines)
    assert "scripts do not run in feed readers" in result.output
    assert result.exit_code == 0  # warnings: the article is published


@pytest.fixture
def runner_for(write_article, make_app, monkeypatch, tmp_path):
    """Write one article with `body` and run `flask check` on it."""

    def run(body: str):
        write_article("culture", "lossy", body, title="Lossy", date="2026-03-01T09:00:00+00:00")
        monkeypatch.chdir(tmp_path)
        return make_app().test_cli_runner().invoke(args=["check"])

    return run


def test_markup_in_capitals_and_plain_quotes(write_article, make_app):
    """Raw HTML written in capitals is recognised; a Markdown quote is left as it is."""
    body = (
        '<IFRAME SRC="https://www.youtube.com/embed/abc123XYZ_-"></IFRAME>\n\n'
        "> A quote written in Markdown, with [a link](https://example.org/).\n"
    )
    write_article("culture", "caps", body)
    content = item_html(make_app().test_client(), "atom")
    root = tree(content)
    assert root.xpath('//a[@href="https://www.youtube.com/watch?v=abc123XYZ_-"]')
    (quote,) = root.xpath("//blockquote")
    assert quote.xpath("p/a/@href") == ["https://example.org/"] and quote.get("cite") is None
