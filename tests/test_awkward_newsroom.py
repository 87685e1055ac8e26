"""An "awkward newsroom": the content a real magazine has, served and read back as readers do.

Hand-named media files, text pasted from Word, dates from historical time zones, non-Latin
tags, `Name <email>` bylines, markup in titles: every feed the site lists (RSS, Atom, JSON)
is fetched from a real server and must satisfy feedparser, the W3C Feed Validator's rules
and the JSON Feed schema; each awkward case is then checked for what a reader would see.
"""

from __future__ import annotations

import json
import urllib.request
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import feedparser
import jsonschema
import pytest

from tests.test_jsonfeed import FORMATS, JSON_FEED_SCHEMA
from tests.w3c_rules import feed_problems

# A valid URI of a scheme no registry knows: kept as written (changing a published id would
# show readers the item twice); the validator warns, and `check` tells the author.
REPORTED_TO_THE_AUTHOR = {"SchemeNotIANARegistered: 'post' in 'post:43'"}
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)
# Text pasted from Word: Windows-1252 quotes and dashes arrive as C1 control characters.
WORD_TITLE = "It\x92s the \x93people\x94 \x96 not the rules"
WORD_BODY = "The council\x92s answer \x97 after a pause \x97 was \x93no\x94.\n"
# Items per feed where a test follows JSON Feed pages; the others see every article at once.
FEED_ITEMS = 3


@pytest.fixture
def newsroom(content_dir, write_article, write_section, write_media, backdate):
    """Write the awkward tree; return its content folder."""
    write_media("my pic.png", PNG)
    write_media("café.png", PNG)
    write_section("culture", "Culture <and> Ideas", "Arts & letters, “as ever”.")
    write_section("letters", "Letters", "Readers write; nothing published yet.")
    write_article(
        "culture",
        "harbour-photos",
        "![The harbour at dusk](</media/my pic.png>)\n\n"
        "Fishing boats came in late, and the market waited for them.\n",
        title="Harbour photos",
        date="2026-03-02T08:00:00+01:00",
        image={"src": "/media/café.png", "alt": "A café by the water", "credit": "Ana Pérez"},
    )
    (content_dir / "culture" / "word-paste.md").write_text(
        f"---\ntitle: {WORD_TITLE}\ndate: 2026-03-03T09:00:00Z\n---\n{WORD_BODY}",
        encoding="utf-8",
    )
    write_article(
        "culture",
        "music-abroad",
        "Songs from far away.",
        title="Music abroad",
        date="2026-03-04T09:00:00Z",
        tags=["音楽", "ثقافة", "Jazz"],
        author=["سارة", "Zoë Martin"],
    )
    write_article(
        "culture",
        "typo-future",
        "An update typed in a hurry.",
        title="A typo in the future",
        date="2026-03-05T09:00:00Z",
        updated="2999-01-01",
    )
    write_article(
        "culture",
        "clock-change",
        "The clocks went forward overnight.",
        title="The night the clocks changed",
        date="2026-03-29 02:30 Europe/Paris",
        updated="2026-03-29 03:10 Europe/Paris",
    )
    write_article(
        "culture",
        "monrovia-1971",
        "From the archive.",
        title="Monrovia, 1971",
        date="1971-06-01 12:00 Africa/Monrovia",
    )
    write_article(
        "culture",
        "kathmandu",
        "Reported at quarter to six, local time.",
        title="Letter from Kathmandu",
        date="2026-03-05 17:45 Asia/Kathmandu",
    )
    write_article(
        "culture",
        "legacy-story",
        "Imported from the old system.",
        title="A legacy story",
        date="2026-03-06T09:00:00Z",
        id="legacy story 42",
    )
    write_article(
        "culture",
        "colon-id",
        "Another import.",
        title="Post forty-three",
        date="2026-03-06T10:00:00Z",
        id="post:43",
    )
    write_article(
        "culture",
        "emailed-byline",
        "A letter from Jane.",
        title="A byline with an address",
        date="2026-03-07T09:00:00Z",
        author="Jane Doe <jane@example.org>",
    )
    write_article(
        "culture",
        "details-element",
        "Native disclosure widgets work without scripts.",
        title="Why <details> beats JavaScript & friends",
        date="2026-03-08T09:00:00Z",
        tags=["HTML <5>"],
    )
    write_article(
        "culture",
        "odd-links",
        "[Slides](//cdn.example.org/x.pdf), [call us](tel:+15551234567) or "
        "[the archive](ftp://ftp.example.org/pub/a.txt).\n",
        title="Links of every kind",
        date="2026-03-09T09:00:00Z",
    )
    write_article(
        "culture",
        "script-first",
        "Oars <script>alert(1)</script> and sails.\n",
        title="Oars and sails",
        date="2026-03-10T09:00:00Z",
    )
    write_article(
        "culture",
        "missing-media",
        "![A lost picture](pic.png)\n\nThe photographer never sent it.\n",
        title="A picture that never came",
        date="2026-03-11T09:00:00Z",
        image="/media/missing.jpg",
    )
    backdate()
    return content_dir


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def feed_urls(base_url: str) -> list[str]:
    """Return every feed the site lists in its OPML, in all three formats."""
    opml = ET.fromstring(fetch(f"{base_url}/feeds.opml"))
    rss = [o.get("xmlUrl") for o in opml.iter("outline") if o.get("xmlUrl")]
    assert f"{base_url}/feed.xml" in rss
    return [url.removesuffix(".xml") + ext for url in rss for ext in (".xml", ".atom", ".json")]


def json_pages(feed_url: str) -> list[str]:
    """Follow a JSON feed's next_url to its end; return every page's URL."""
    pages, url = [], feed_url
    while url and len(pages) < 50:
        pages.append(url)
        url = json.loads(fetch(url)).get("next_url")
    return pages


@pytest.fixture
def served(newsroom, serve):
    return serve()


def test_every_listed_feed_reads_clean(served):
    urls = feed_urls(served)
    assert len(urls) >= 3 * 8  # site, two sections, tags and authors of every script
    for url in urls:
        body = fetch(url)
        if url.endswith(".json"):
            jsonschema.validate(json.loads(body), JSON_FEED_SCHEMA, format_checker=FORMATS)
            continue
        parsed = feedparser.parse(body)
        assert not parsed.bozo, (url, parsed.get("bozo_exception"))
        assert [p for p in feed_problems(body) if p not in REPORTED_TO_THE_AUTHOR] == [], url


def test_json_pages_hold_every_article_once(newsroom, serve):
    served = serve(FEED_ITEMS=FEED_ITEMS)
    ids = []
    for url in json_pages(f"{served}/feed.json"):
        ids += [item["id"] for item in json.loads(fetch(url))["items"]]
    assert len(ids) == len(set(ids))
    assert len(ids) == 14  # every article of the tree


def test_media_urls_are_percent_encoded_and_served(served):
    rss = fetch(f"{served}/culture.xml").decode()
    entry = next(e for e in feedparser.parse(rss).entries if e.title == "Harbour photos")
    lead = f"{served}/media/{quote('café.png')}"
    assert entry.media_content[0]["url"] == lead
    assert entry.enclosures[0]["href"] == lead
    assert f"{served}/media/my%20pic.png" in entry.content[0].value
    for url in (lead, f"{served}/media/my%20pic.png"):
        assert fetch(url) == PNG
    page = fetch(f"{served}/culture/harbour-photos/").decode()
    assert "my pic.png" not in page


def test_summary_comes_from_the_first_text(served):
    expected = "Fishing boats came in late, and the market waited for them."
    for url in (f"{served}/culture.atom", f"{served}/culture.xml"):
        entry = next(e for e in feedparser.parse(fetch(url)).entries if e.title == "Harbour photos")
        assert entry.summary == expected
        assert "content" in entry
    oars = next(
        i for i in json.loads(fetch(f"{served}/culture.json"))["items"] if "Oars" in i["title"]
    )
    assert "alert" not in oars["summary"]
    assert oars["summary"].startswith("Oars")


def test_word_characters_become_the_characters_meant(served):
    for url in (f"{served}/culture.xml", f"{served}/culture.atom", f"{served}/culture.json"):
        text = fetch(url).decode()
        assert not any("\x80" <= c <= "\x9f" for c in text), url
        assert "It’s the “people” – not the rules" in text
        assert "council’s answer — after a pause — was “no”" in text


def test_every_tag_and_author_has_a_working_address(served):
    opml = ET.fromstring(fetch(f"{served}/feeds.opml"))
    by_title = {o.get("text"): o for o in opml.iter("outline") if o.get("xmlUrl")}
    for name in ("音楽", "ثقافة", "سارة", "Jazz", "Zoë Martin"):
        outline = by_title[name]
        page = fetch(outline.get("htmlUrl")).decode()
        assert name in page
        feed = feedparser.parse(fetch(outline.get("xmlUrl")))
        assert [e.title for e in feed.entries] == ["Music abroad"], name
    paths = [urlsplit(o.get("xmlUrl")).path for o in by_title.values()]
    assert len(paths) == len(set(paths))


def test_no_feed_announces_the_future(served):
    now = datetime.now(UTC)
    for url in feed_urls(served):
        parsed = feedparser.parse(fetch(url)) if not url.endswith(".json") else None
        if parsed is None:
            continue
        stamps = [parsed.feed.get("updated_parsed")]
        stamps += [e.get("updated_parsed") for e in parsed.entries]
        for stamp in filter(None, stamps):
            assert datetime(*stamp[:6], tzinfo=UTC) <= now, url


def test_dates_compare_and_publish_as_instants(served):
    entries = {e.title: e for e in feedparser.parse(fetch(f"{served}/culture.atom")).entries}
    clock = entries["The night the clocks changed"]
    assert clock.published_parsed <= clock.updated_parsed
    monrovia = entries["Monrovia, 1971"]
    # 12:00 at Monrovia's offset of -0:44:30 is 12:44:30 UTC.
    assert datetime(*monrovia.published_parsed[:6], tzinfo=UTC) == datetime(
        1971, 6, 1, 12, 44, 30, tzinfo=UTC
    )


def test_offsets_of_quarter_hours_are_written_in_utc_for_rss(served):
    rss = ET.fromstring(fetch(f"{served}/culture.xml"))
    item = next(i for i in rss.iter("item") if i.findtext("title") == "Letter from Kathmandu")
    assert item.findtext("pubDate") == "Thu, 05 Mar 2026 12:00:00 +0000"
    atom = fetch(f"{served}/culture.atom").decode()
    assert "<published>2026-03-05T17:45:00+05:45</published>" in atom  # RFC 3339 holds it


def test_ids_are_valid_and_bylines_hold_no_address(served):
    tree = ET.fromstring(fetch(f"{served}/culture.atom"))
    ns = {"a": "http://www.w3.org/2005/Atom"}
    ids = [element.text for element in tree.iterfind("a:entry/a:id", ns)]
    assert ids and not [i for i in ids if " " in i]
    assert not [n.text for n in tree.iterfind(".//a:author/a:name", ns) if "@" in n.text]
    for url in feed_urls(served):
        if not url.endswith(".json"):
            assert "@" not in feedparser.parse(fetch(url)).feed.title, url


def test_rss_plain_text_escapes_markup_characters(served):
    rss = fetch(f"{served}/culture.xml")
    assert b"<title>Why &lt;details&gt;" not in rss
    entry = next(e for e in feedparser.parse(rss).entries if "details" in e.title)
    assert entry.title == "Why <details> beats JavaScript & friends"
    assert feedparser.parse(rss).feed.title.startswith("Culture <and> Ideas")


def test_links_of_every_kind_survive_in_feeds(served):
    # Read as XML: feedparser's own sanitiser drops tel: links that a feed rightly carries.
    ns = {"a": "http://www.w3.org/2005/Atom"}
    tree = ET.fromstring(fetch(f"{served}/culture.atom"))
    html = next(
        e.findtext("a:content", namespaces=ns)
        for e in tree.iterfind("a:entry", ns)
        if e.findtext("a:title", namespaces=ns) == "Links of every kind"
    )
    assert 'href="http://cdn.example.org/x.pdf"' in html  # the site's own scheme
    assert 'href="tel:+15551234567"' in html
    assert 'href="ftp://ftp.example.org/pub/a.txt"' in html


def test_empty_section_feed_ignores_other_sections(newsroom, client_factory, write_article):
    before = client_factory().get("/letters.atom")
    write_article("culture", "late-addition", date="2026-03-20T09:00:00Z")
    after = client_factory().get("/letters.atom")
    assert after.data == before.data
    assert after.headers["ETag"] == before.headers["ETag"]
    assert after.headers["Last-Modified"] == before.headers["Last-Modified"]


def test_check_reports_what_content_could_fix(newsroom, make_app):
    result = make_app().test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0  # every article is published: all of these are warnings
    lines = result.output.splitlines()
    culture = newsroom / "culture"
    for name, hint in (
        ("word-paste.md", ""),
        ("typo-future.md", "updated"),
        ("missing-media.md", "missing.jpg"),
        ("missing-media.md", "pic.png"),
        ("colon-id.md", "post:43"),
    ):
        reported = [line for line in lines if line.startswith(f"{culture / name}:")]
        assert all(": warning: " in line for line in reported), reported
        assert any(hint in line for line in reported), (name, hint, result.output)
