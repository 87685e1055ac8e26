"""RSS and Atom feeds, read back by feedparser (a real reader) and checked element by element."""

from __future__ import annotations

import calendar
import os
import uuid
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from lxml import etree

from tests.conftest import SITE_URL

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "media": "http://search.yahoo.com/mrss/",
}
FEED_URLS = ["/culture.xml", "/culture.atom", "/feed.xml", "/feed.atom"]
RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"

NEWS_BODY = """\
Weeks of silence ended on *Wednesday*, when the mayor finally answered questions.

“I think it’s heartbreaking,” she said — and left [the podium](/culture/podium-history/).

![Crowd outside](crowd.jpg)
"""


@pytest.fixture
def newsroom(write_article, write_section, write_media):
    """A culture section holding one article that uses every part of the format."""
    write_section("culture", "Culture", "Arts, ideas and the people behind them.")
    write_media("mayor.jpg", b"\xff\xd8\xff" + b"0" * 1234)
    write_article(
        "culture",
        "mayor-speaks-up",
        NEWS_BODY,
        title="Why Did It Take the Mayor So Long to Speak Up?",
        date="2026-06-21T10:15:00-07:00",
        updated="2026-06-22T08:30:00-07:00",
        author=["Zoë Martin", "Sam Okafor"],
        summary="The mayor finally spoke up about the “heartbreaking” policy.",
        image={"src": "/media/mayor.jpg", "alt": "The mayor at the podium", "credit": "Ana Pérez"},
        tags=["City hall", "Policy"],
        related=[{"title": "Councillors speak out", "url": "/culture/councillors/"}],
    )


def read(client, url):
    """GET a feed and parse it with feedparser, which must find nothing malformed."""
    response = client.get(url)
    assert response.status_code == 200
    parsed = feedparser.parse(response.data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return response, parsed


def xml(response):
    return etree.fromstring(response.data)


@pytest.mark.parametrize("url", FEED_URLS)
def test_every_part_of_an_article_reaches_the_reader(newsroom, client, url):
    _, parsed = read(client, url)
    [entry] = parsed.entries
    permalink = f"{SITE_URL}/culture/mayor-speaks-up/"
    assert entry.title == "Why Did It Take the Mayor So Long to Speak Up?"
    assert entry.link == permalink
    assert entry.id == permalink
    if url.endswith(".atom"):
        assert [a.name for a in entry.authors] == ["Zoë Martin", "Sam Okafor"]
    else:  # RSS: one dc:creator naming both, as readers show only one
        assert [a.name for a in entry.authors] == ["Zoë Martin, Sam Okafor"]
    assert [t.term for t in entry.tags] == ["Culture", "City hall", "Policy"]
    assert entry.summary == "The mayor finally spoke up about the “heartbreaking” policy."
    assert (
        calendar.timegm(entry.published_parsed)
        == datetime(2026, 6, 21, 17, 15, tzinfo=UTC).timestamp()
    )
    assert (
        calendar.timegm(entry.updated_parsed)
        == datetime(2026, 6, 22, 15, 30, tzinfo=UTC).timestamp()
    )
    html = entry.content[0].value
    [image] = etree.HTML(html).xpath("//figure/img")
    assert image.get("src") == f"{SITE_URL}/media/mayor.jpg"
    assert image.get("alt") == image.get("title") == "The mayor at the podium"
    [dek] = etree.HTML(html).xpath("//p[1]/strong/text()")
    assert dek == "The mayor finally spoke up about the “heartbreaking” policy."
    assert "<figcaption>Ana Pérez</figcaption>" in html
    assert "<em>Wednesday</em>" in html
    assert "“I think it’s heartbreaking,” she said" in html
    assert f'href="{SITE_URL}/culture/councillors/"' in html
    assert ">Councillors speak out<" in html
    [media] = entry.media_content
    assert media["url"] == f"{SITE_URL}/media/mayor.jpg"
    assert media["type"] == "image/jpeg"
    assert media["filesize"] == "1237"


@pytest.mark.parametrize(
    ("url", "date_path", "offset"),
    [
        ("/culture.xml", "channel/item/pubDate", "-0700"),
        ("/culture.atom", "atom:entry/atom:published", "-07:00"),
    ],
)
def test_publication_date_keeps_its_real_offset(newsroom, client, url, date_path, offset):
    [date] = xml(client.get(url)).xpath(date_path, namespaces=NS)
    assert date.text.endswith(offset)
    assert "21" in date.text and "10:15:00" in date.text


def test_rss_items_carry_creators_modified_date_and_enclosure(newsroom, client):
    [item] = xml(client.get("/culture.xml")).xpath("channel/item")
    assert item.find("author") is None
    assert [c.text for c in item.findall("dc:creator", NS)] == ["Zoë Martin, Sam Okafor"]
    assert item.findtext("dcterms:modified", namespaces=NS) == "2026-06-22T08:30:00-07:00"
    assert item.find("guid").get("isPermaLink") == "true"
    enclosure = item.find("enclosure")
    assert enclosure.attrib == {
        "url": f"{SITE_URL}/media/mayor.jpg",
        "length": "1237",
        "type": "image/jpeg",
    }
    media = item.find("media:content", NS)
    assert media.findtext("media:description", namespaces=NS) == "The mayor at the podium"
    assert media.findtext("media:credit", namespaces=NS) == "Ana Pérez"


@pytest.mark.parametrize(
    ("url", "content_type", "page"),
    [
        ("/culture.xml", RSS_TYPE, "/culture/"),
        ("/culture.atom", ATOM_TYPE, "/culture/"),
        ("/feed.xml", RSS_TYPE, "/"),
        ("/feed.atom", ATOM_TYPE, "/"),
    ],
)
def test_feed_links_point_to_the_page_and_to_itself(newsroom, client, url, content_type, page):
    response, parsed = read(client, url)
    assert response.content_type == content_type
    assert parsed.feed.link == SITE_URL + page
    [self_link] = [link for link in parsed.feed.links if link.rel == "self"]
    assert self_link.href == SITE_URL + url
    assert self_link.type == content_type.split(";")[0]


def test_rss_channel_link_is_the_page_not_the_feed(newsroom, client):
    channel = xml(client.get("/culture.xml")).find("channel")
    assert channel.findtext("link") == f"{SITE_URL}/culture/"
    assert channel.findtext("title") == "Culture — Test Gazette"
    assert channel.findtext("description") == "Arts, ideas and the people behind them."
    assert channel.findtext("language") == "en-US"


def test_plain_text_summary_is_escaped_html_in_rss_and_text_in_atom(write_article, client_factory):
    write_article("culture", "maths", summary="Why 3 < 5 & 5 > 3.")
    client = client_factory()
    rss_description = xml(client.get("/culture.xml")).findtext("channel/item/description")
    assert rss_description == "Why 3 &lt; 5 &amp; 5 &gt; 3."
    atom_summary = xml(client.get("/culture.atom")).find("atom:entry/atom:summary", NS)
    assert atom_summary.text == "Why 3 < 5 & 5 > 3."
    assert atom_summary.get("type") in (None, "text")


def test_summary_cut_from_the_body_is_not_repeated_in_the_content(write_article, client_factory):
    write_article("culture", "plain", "Only paragraph.")
    _, parsed = read(client_factory(), "/culture.atom")
    assert parsed.entries[0].summary == "Only paragraph."
    assert parsed.entries[0].content[0].value.count("Only paragraph.") == 1


def test_relative_links_in_the_body_become_absolute(newsroom, client):
    _, parsed = read(client, "/culture.atom")
    html = parsed.entries[0].content[0].value
    assert f'href="{SITE_URL}/culture/podium-history/"' in html
    assert f'src="{SITE_URL}/culture/mayor-speaks-up/crowd.jpg"' in html


@pytest.mark.parametrize("url", ["/culture.xml", "/culture.atom"])
def test_feed_html_carries_no_script_or_handlers(write_article, client_factory, url):
    write_article(
        "culture",
        "risky",
        '<script>alert(1)</script><p onclick="steal()">Hi <a href="javascript:evil()">x</a></p>'
        '<iframe src="https://example.org/"></iframe>',
    )
    body = client_factory().get(url).data.decode()
    for flagged in ("<script", "onclick", "javascript:", "<iframe", "alert(1)"):
        assert flagged not in body
    assert "Hi" in body


def test_explicit_id_survives_a_rename(write_article, client_factory, content_dir):
    write_article("culture", "first-name", id="urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66")
    _, before = read(client_factory(), "/culture.atom")
    (content_dir / "culture" / "first-name.md").rename(content_dir / "culture" / "new-name.md")
    _, after = read(client_factory(), "/culture.atom")
    expected = "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"
    assert before.entries[0].id == after.entries[0].id == expected
    assert after.entries[0].link == f"{SITE_URL}/culture/new-name/"


def test_explicit_id_that_is_not_a_uri_becomes_a_stable_urn(write_article, client_factory):
    write_article("culture", "story", id="story-2026-0042")
    expected = uuid.uuid5(uuid.NAMESPACE_URL, "story-2026-0042").urn
    for url in ("/culture.xml", "/culture.atom"):
        _, parsed = read(client_factory(), url)
        assert parsed.entries[0].id == expected
    guid = xml(client_factory().get("/culture.xml")).find("channel/item/guid")
    assert guid.get("isPermaLink") == "false"


def test_an_edit_keeps_the_item_id(write_article, client_factory):
    write_article("culture", "story", title="First headline")
    _, before = read(client_factory(), "/culture.xml")
    write_article("culture", "story", "New body.", title="Corrected headline")
    _, after = read(client_factory(), "/culture.xml")
    assert before.entries[0].id == after.entries[0].id
    assert after.entries[0].title == "Corrected headline"


def test_items_are_newest_first_and_limited(write_article, client_factory):
    for day in range(1, 8):
        write_article("culture", f"day-{day}", date=f"2026-03-0{day}T12:00:00Z")
    write_article("science", "lab", date="2026-03-04T18:00:00Z")
    client = client_factory(FEED_ITEMS=5)
    _, section = read(client, "/culture.xml")
    assert [e.link.rsplit("/", 2)[-2] for e in section.entries] == [
        "day-7", "day-6", "day-5", "day-4", "day-3",
    ]  # fmt: skip
    _, site = read(client, "/feed.atom")
    assert [e.link.rsplit("/", 2)[-2] for e in site.entries] == [
        "day-7", "day-6", "day-5", "lab", "day-4",
    ]  # fmt: skip


def test_drafts_and_future_articles_stay_out(write_article, client_factory):
    now = datetime.now(UTC)
    write_article("culture", "public", date=(now - timedelta(days=1)).isoformat())
    write_article("culture", "hidden", draft=True)
    write_article("culture", "scheduled", date=(now + timedelta(days=3)).isoformat())
    client = client_factory()
    for url in FEED_URLS:
        _, parsed = read(client, url)
        assert [e.title for e in parsed.entries] == ["Public"]


def test_scheduled_article_appears_when_its_time_comes(write_article, client_factory):
    soon = datetime.now(UTC) + timedelta(seconds=2)
    write_article("culture", "older", date="2026-01-01T00:00:00Z")
    write_article("culture", "soon", date=soon.isoformat())
    client = client_factory()
    _, before = read(client, "/culture.xml")
    assert [e.title for e in before.entries] == ["Older"]
    deadline = soon + timedelta(seconds=10)
    while datetime.now(UTC) < deadline:
        _, after = read(client, "/culture.xml")
        if len(after.entries) == 2:
            break
    assert [e.title for e in after.entries] == ["Soon", "Older"]


def test_two_requests_get_byte_identical_feeds(newsroom, make_app):
    for url in FEED_URLS:
        first = make_app().test_client().get(url).data
        second = make_app().test_client().get(url).data
        assert first == second


def test_feed_dates_come_from_content_not_from_now(newsroom, client):
    channel = xml(client.get("/culture.xml")).find("channel")
    assert channel.findtext("lastBuildDate") == "Mon, 22 Jun 2026 08:30:00 -0700"
    atom = xml(client.get("/culture.atom"))
    assert atom.findtext("atom:updated", namespaces=NS) == "2026-06-22T08:30:00-07:00"


@pytest.mark.parametrize("url", FEED_URLS)
def test_forged_host_header_never_reaches_a_link(newsroom, client, url):
    body = client.get(url, headers={"Host": "evil.example"}, base_url="http://evil.example").data
    assert b"evil.example" not in body
    assert b"localhost" not in body


def test_empty_section_still_gives_valid_feeds(write_section, write_article, client_factory):
    write_section("quiet", "Quiet corner")
    write_article("culture", "story")
    client = client_factory()
    for url in ("/quiet.xml", "/quiet.atom"):
        _, parsed = read(client, url)
        assert parsed.entries == []
        assert parsed.feed.title == "Quiet corner — Test Gazette"


@pytest.mark.parametrize("url", ["/nowhere.xml", "/nowhere.atom", "/feeds.xml", "/media.atom"])
def test_unknown_feed_is_404(newsroom, client, url):
    assert client.get(url).status_code == 404


def test_feed_answers_conditional_get_and_head(newsroom, backdate, client):
    backdate()
    response = client.get("/culture.atom")
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["Last-Modified"] == "Mon, 22 Jun 2026 15:30:00 GMT"
    not_modified = client.get("/culture.atom", headers={"If-None-Match": response.headers["ETag"]})
    assert not_modified.status_code == 304
    assert not_modified.data == b""
    head = client.head("/culture.atom")
    assert head.status_code == 200
    assert head.headers["ETag"] == response.headers["ETag"]
    assert head.data == b""


def test_feed_last_modified_follows_newest_file_time(newsroom, backdate, content_dir, client):
    backdate()
    when = 1790000000  # 2026-09-21T14:13:20Z, after every date in the content
    os.utime(content_dir / "culture" / "mayor-speaks-up.md", (when, when))
    response = client.get("/culture.atom")
    assert response.headers["Last-Modified"] == "Mon, 21 Sep 2026 14:13:20 GMT"
