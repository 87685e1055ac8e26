"""Syndication partners: their published feed rules in `check --for`, branding, language,
the feed byte cap and JSON Feed 1.0 authors.

Each partner test names the published rule it implements, with its source.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from conftest import SITE_URL
from lxml import etree
from lxml import html as lxml_html
from PIL import Image
from w3c_rules import feed_problems

from feedsvc.settings import SettingsError

ATOM = "{http://www.w3.org/2005/Atom}"
WEBFEEDS = "{http://webfeeds.org/rss/1.0}"
RECENT = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0).isoformat()
LONG_SUMMARY = "A long and careful summary of the evening on the quay. " * 7  # > 300 chars


def image_bytes(width: int, height: int, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def check(make_app, monkeypatch, tmp_path):
    """Run `flask check --for PARTNER` and return (exit code, warning lines about it)."""

    def run(partner: str, **config):
        monkeypatch.chdir(tmp_path)
        result = make_app(**config).test_cli_runner().invoke(args=["check", "--for", partner])
        lines = [line for line in result.output.splitlines() if f"warning: {partner}:" in line]
        return result.exit_code, lines

    return run


def misses_of(lines: list[str], path: str) -> list[str]:
    return [line for line in lines if line.startswith(path)]


def good_article(write_article, write_media, slug: str, **fields):
    """Write an article that meets every partner's rules, then apply `fields`."""
    write_media(f"{slug}.jpg", image_bytes(1200, 800))
    fields = {
        "title": "The Harbour Concert Fills the Quay",
        "date": RECENT,
        "summary": LONG_SUMMARY.strip()[:190],
        "image": {"src": f"/media/{slug}.jpg", "alt": "The quay"},
        **fields,
    }
    return write_article("culture", slug, LONG_SUMMARY, **fields)


# --- Flipboard -----------------------------------------------------------------------------


def test_flipboard_image_size_item_count_and_excerpt(check, write_article, write_media):
    """Flipboard, RSS Spec (https://about.flipboard.com/rss-spec/): at least one image per
    article no less than 400 px in its smallest dimension, at least 30 items, and an excerpt
    (description) of 300 characters or more. A summary cut from a longer first paragraph
    (feedsvc's 280-character excerpt) is not counted short: the author wrote more."""
    write_media("narrow.png", image_bytes(300, 600, "PNG"))
    write_media("fine.jpg", image_bytes(800, 450))
    write_article("culture", "narrow", LONG_SUMMARY, image={"src": "/media/narrow.png"})
    write_article("culture", "fine", LONG_SUMMARY, image={"src": "/media/fine.jpg"})
    write_article("culture", "bare", LONG_SUMMARY)
    write_article("culture", "short", "Too short.", image={"src": "/media/fine.jpg"})
    code, lines = check("flipboard")
    assert code == 0  # partner rules are warnings: the feeds are valid and served
    narrow = misses_of(lines, "content/culture/narrow.md")
    assert len(narrow) == 1 and "300×600 px; the smaller side must be 400+" in narrow[0]
    assert narrow[0].startswith("content/culture/narrow.md:2:")  # the image field's line
    assert misses_of(lines, "content/culture/fine.md") == []
    assert [
        "article has no lead image" in line for line in misses_of(lines, "content/culture/bare.md")
    ] == [True]
    (short,) = misses_of(lines, "content/culture/short.md")
    assert "summary has 10 characters; 300 or more" in short
    assert any("site feed holds 4 items; at least 30" in line for line in lines)
    assert all(
        "[Flipboard, RSS Spec: https://about.flipboard.com/rss-spec/]" in line for line in lines
    )


# --- Microsoft Start / MSN -----------------------------------------------------------------


def test_msn_title_length_markup_and_date_age(check, write_article, write_media):
    """MSN feed item metadata requirements (https://support.microsoft.com/topic/msn-feed-item-
    metadata-requirements-0114c19c-36bb-4fef-8322-4a1ed6888329): a title of more than 20 and
    at most 150 characters, no HTML in it; a published date less than 365 days old."""
    good_article(write_article, write_media, "ok", title="Twenty-one characters")
    good_article(write_article, write_media, "twenty", title="Twenty characters ok")
    good_article(write_article, write_media, "long", title="Harbour " * 19)
    good_article(write_article, write_media, "markup", title="Why <em>quays</em> matter so much")
    old = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    good_article(write_article, write_media, "old", date=old)
    code, lines = check("msn", SITE_URL="https://news.example.org")
    assert misses_of(lines, "content/culture/ok.md") == []
    (twenty,) = misses_of(lines, "content/culture/twenty.md")
    assert "title has 20 characters; the rule asks for 21 to 150" in twenty
    assert "title has 151 characters" in misses_of(lines, "content/culture/long.md")[0]
    assert "title holds HTML markup" in misses_of(lines, "content/culture/markup.md")[0]
    (old_miss,) = misses_of(lines, "content/culture/old.md")
    assert "over 365 days ago" in old_miss and "msn-feed-item-metadata-requirements" in old_miss
    assert code == 0


def test_msn_image_size_and_aspect_ratio_and_https(check, write_article, write_media):
    """MSN Help Center, Feed content specifications (https://helpcenter.microsoftstart.com/kb/
    feed-specifications): images at least 720 px in height or width are advised, an aspect
    ratio outside 0.5 to 1.89 may not display correctly, and only HTTPS feed sources."""
    good_article(write_article, write_media, "fine")
    write_media("small-pic.jpg", image_bytes(600, 400))
    write_media("banner-pic.jpg", image_bytes(2000, 500))
    good_article(write_article, write_media, "small", image={"src": "/media/small-pic.jpg"})
    good_article(write_article, write_media, "banner", image={"src": "/media/banner-pic.jpg"})
    _, lines = check("msn", SITE_URL="http://news.example.org")
    assert misses_of(lines, "content/culture/fine.md") == []
    assert (
        "600×400 px; 720 px wide or high advised" in misses_of(lines, "content/culture/small.md")[0]
    )
    (banner,) = misses_of(lines, "content/culture/banner.md")
    assert "width/height 4.00; between 0.5 and 1.89" in banner
    assert any("SITE_URL http://news.example.org is not https://" in line for line in lines)


# --- Apple News ----------------------------------------------------------------------------


def test_apple_news_language_locale_title_length_and_excerpt(check, write_article, write_media):
    """Apple News Publisher Help, RSS guidelines for Apple News (https://support.apple.com/
    guide/news-publisher/apdc2c7520ff/icloud): channel language with locale, titles of 15 to
    60 characters without HTML, up to 200 characters of the description used as excerpt."""
    good_article(write_article, write_media, "fine")
    good_article(write_article, write_media, "short", title="Quay night")
    good_article(write_article, write_media, "wordy", summary="Words and more words. " * 12)
    _, lines = check("apple-news", LANGUAGE="en")
    assert any("LANGUAGE 'en' has no locale" in line for line in lines)
    assert misses_of(lines, "content/culture/fine.md") == []
    (short,) = misses_of(lines, "content/culture/short.md")
    assert short.startswith("content/culture/short.md:2:") and "title has 10 characters" in short
    assert "up to 200 are shown" in misses_of(lines, "content/culture/wordy.md")[0]
    _, with_locale = check("apple-news", LANGUAGE="en-GB")
    assert not any("LANGUAGE" in line for line in with_locale)


# --- Google News ---------------------------------------------------------------------------


def test_google_news_feed_and_article_size_caps(check, write_article):
    """Google Publisher Center Help, Feed guidelines (https://support.google.com/news/
    publisher-center/answer/9545420): 1 MB per article, 2 MB per feed, up to 60 new
    articles read per fetch."""
    # 1.2 MB of UTF-8 in 400,000 characters: within the body limit of 512 Ki characters.
    big = "\n\n".join(["長い報告書の一段落です。" * 100] * 330)
    write_article("culture", "report-one", big, title="The Long Report, Part One")
    write_article("culture", "report-two", big, title="The Long Report, Part Two")
    write_article("city", "small", "Short.", title="A Short Note on the City")
    _, lines = check("google-news", FEED_ITEMS=61)
    assert "over 1 MB" in misses_of(lines, "content/culture/report-one.md")[0]
    assert misses_of(lines, "content/city/small.md") == []
    oversize = [line for line in lines if "over 2 MB" in line]
    assert {re.search(r"feed (\S+) has", line).group(1) for line in oversize} == {
        "/feed.xml",
        "/culture.xml",
    }
    assert any("FEED_ITEMS is 61; 60 new articles are read per fetch" in line for line in lines)
    _, capped = check("google-news", FEED_MAX_BYTES=2_000_000)
    assert not any("over 2 MB" in line for line in capped)  # the byte cap keeps feeds under


def test_partner_misses_stay_out_of_healthz_and_json_names_the_source(
    make_app, write_article, monkeypatch, tmp_path
):
    """A partner's advice is not a content error: /healthz stays ok for load balancers."""
    write_article("culture", "bare", "Short.", title="Bare")
    app = make_app()
    health = app.test_client().get("/healthz").get_json()
    assert health["status"] == "ok"
    monkeypatch.chdir(tmp_path)
    result = app.test_cli_runner().invoke(args=["check", "--json", "--for", "flipboard"])
    problems = json.loads(result.output)["problems"]
    assert problems and {p["severity"] for p in problems} == {"warning"}
    assert all("https://about.flipboard.com/rss-spec/" in p["reason"] for p in problems)
    assert result.exit_code == 0


def test_an_unknown_partner_is_refused(make_app):
    result = make_app().test_cli_runner().invoke(args=["check", "--for", "myspace"])
    assert result.exit_code == 2 and "google-news" in result.output


# --- branding ------------------------------------------------------------------------------

BRANDING = {
    "SITE_ICON": "/media/icon.png",
    "SITE_LOGO": "/media/logo.png",
    "SITE_COVER": "https://cdn.example.net/cover.jpg",
    "ACCENT_COLOR": "#00A0E0",
}


@pytest.fixture
def branded(write_article, make_app):
    write_article("culture", "story")
    return make_app(**BRANDING).test_client()


def test_rss_channel_image_and_feedly_webfeeds(branded):
    """RSS 2.0 <image> repeats the channel's title and link; Feedly reads webfeeds:icon, logo,
    cover and accentColor (Feedly blog, "10 ways to optimize your feed for Feedly")."""
    body = branded.get("/culture.xml").data
    assert feed_problems(body) == []
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0 and parsed.feed.image.href == f"{SITE_URL}/media/logo.png"
    channel = etree.fromstring(body).find("channel")
    image = channel.find("image")
    assert image.findtext("url") == f"{SITE_URL}/media/logo.png"
    assert image.findtext("title") == channel.findtext("title")
    assert image.findtext("link") == channel.findtext("link")
    assert channel.findtext(f"{WEBFEEDS}icon") == f"{SITE_URL}/media/icon.png"
    assert channel.findtext(f"{WEBFEEDS}logo") == f"{SITE_URL}/media/logo.png"
    assert channel.find(f"{WEBFEEDS}cover").get("image") == "https://cdn.example.net/cover.jpg"
    assert channel.findtext(f"{WEBFEEDS}accentColor") == "00a0e0"


def test_atom_icon_and_logo(branded):
    body = branded.get("/culture.atom").data
    assert feed_problems(body) == []
    feed = etree.fromstring(body)
    assert feed.findtext(f"{ATOM}icon") == f"{SITE_URL}/media/icon.png"
    assert feed.findtext(f"{ATOM}logo") == f"{SITE_URL}/media/logo.png"
    assert feed.findtext(f"{WEBFEEDS}icon") == f"{SITE_URL}/media/icon.png"
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0 and parsed.feed.icon == f"{SITE_URL}/media/icon.png"


def test_json_icon_and_favicon_and_page_favicon(branded):
    document = json.loads(branded.get("/culture.json").data)
    assert document["icon"] == document["favicon"] == f"{SITE_URL}/media/icon.png"
    page = lxml_html.fromstring(branded.get("/culture/story/").data)
    assert page.xpath('//link[@rel="icon"]/@href') == ["/media/icon.png"]


def test_without_branding_feeds_name_no_pictures(write_article, client_factory):
    write_article("culture", "story")
    client = client_factory()
    channel = etree.fromstring(client.get("/culture.xml").data).find("channel")
    assert channel.find("image") is None and channel.find(f"{WEBFEEDS}icon") is None
    assert "icon" not in json.loads(client.get("/culture.json").data)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("SITE_ICON", "icon.png", "a site path such as /media/logo.png"),
        ("SITE_LOGO", "ftp://x.example/logo.png", "a site path such as /media/logo.png"),
        ("ACCENT_COLOR", "blue", "six hexadecimal digits"),
        ("FEED_MAX_BYTES", "500", "0 (no cap) or a number of bytes of at least 10000"),
        ("FEED_MAX_BYTES", "lots", "a whole number of at least 0"),
    ],
)
def test_bad_branding_and_cap_settings_are_refused(make_app, key, value, expected):
    with pytest.raises(SettingsError) as caught:
        make_app(**{key: value})
    assert f"FEEDSVC_{key}={value!r}" in str(caught.value) and expected in str(caught.value)


# --- language ------------------------------------------------------------------------------


def test_language_with_locale_in_every_format(write_article, make_app):
    write_article("culture", "story")
    client = make_app(LANGUAGE="fr-CA").test_client()
    rss = etree.fromstring(client.get("/culture.xml").data)
    assert rss.find("channel").findtext("language") == "fr-CA"
    atom = etree.fromstring(client.get("/culture.atom").data)
    assert atom.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr-CA"
    assert json.loads(client.get("/culture.json").data)["language"] == "fr-CA"
    assert lxml_html.fromstring(client.get("/culture/story/").data).get("lang") == "fr-CA"


def test_default_language_has_a_locale(write_article, client_factory):
    write_article("culture", "story")
    assert json.loads(client_factory().get("/feed.json").data)["language"] == "en-US"


# --- feed byte cap -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/culture.xml", "/culture.atom", "/culture.json"])
def test_byte_cap_keeps_full_text_for_the_newest_and_summaries_for_the_rest(
    write_article, make_app, url
):
    body = "\n\n".join(["Long paragraph of reporting on the harbour works. " * 20] * 12)
    for day in range(1, 10):
        write_article(
            "culture",
            f"part-{day}",
            body,
            title=f"Part {day}",
            summary=f"Summary of part {day}.",
            date=f"2026-03-0{day}T09:00:00+00:00",
        )
    uncapped = make_app().test_client().get(url).data
    cap = len(uncapped) // 2
    document = make_app(FEED_MAX_BYTES=cap).test_client().get(url).data
    assert len(document) <= cap < len(uncapped)
    if url.endswith(".json"):
        contents = [i["content_html"] for i in json.loads(document)["items"]]
    else:
        assert feed_problems(document) == [] and feedparser.parse(document).bozo == 0
        contents = [e.content[0].value for e in feedparser.parse(document).entries]
    assert len(contents) == 9  # every item is still there, newest first
    full = ["Long paragraph" in content for content in contents]
    assert full[0] and not full[-1]
    assert full == sorted(full, reverse=True)  # full text for the newest, then summaries
    assert "Summary of part 1." in contents[-1] and "/culture/part-1/" in contents[-1]


def test_a_cap_too_small_even_for_summaries_leaves_out_the_oldest(write_article, make_app):
    for day in range(1, 10):
        write_article(
            "culture",
            f"note-{day}",
            "Body.",
            title=f"Note {day}",
            summary="A summary that is long enough to weigh something. " * 30,
            date=f"2026-03-0{day}T09:00:00+00:00",
        )
    document = make_app(FEED_MAX_BYTES=10_000).test_client().get("/culture.xml").data
    assert len(document) <= 10_000
    entries = feedparser.parse(document).entries
    assert 0 < len(entries) < 9 and entries[0].title == "Note 9"


# --- JSON Feed authors ---------------------------------------------------------------------


def test_json_items_carry_authors_and_the_1_0_author(write_article, client_factory):
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1) deprecates `author` for `authors`
    but advises keeping `author` too for readers of version 1.0."""
    write_article("culture", "duo", author=["Zoë Martin", "Sam Okafor"])
    (item,) = json.loads(client_factory().get("/culture.json").data)["items"]
    assert item["authors"] == [{"name": "Zoë Martin"}, {"name": "Sam Okafor"}]
    assert item["author"] == {"name": "Zoë Martin, Sam Okafor"}
