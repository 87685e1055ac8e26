"""Tag and author pages and feeds, and the OPML file that lists every feed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import feedparser
import lxml.html
import pytest

from tests.conftest import SITE_URL
from tests.w3c_rules import feed_problems


@pytest.fixture
def tagged(write_section, write_article):
    """Articles sharing tags and authors, with accents and spaces in their names."""
    write_section("culture", "Culture")
    write_section("science", "Science")
    write_article(
        "culture",
        "harbour",
        title="Harbour concert",
        date="2026-03-01T10:00:00Z",
        tags=["Music", "Harbour Life"],
        author=["Zoë Martin"],
    )
    write_article(
        "science",
        "tides",
        title="Tide gauge",
        date="2026-03-02T10:00:00Z",
        tags=["Harbour Life"],
        author=["Zoë Martin", "Sam Okafor"],
    )
    write_article("culture", "plain", title="Untagged", date="2026-03-03T10:00:00Z")


def entries(client, url: str) -> list:
    response = client.get(url)
    assert response.status_code == 200, url
    parsed = feedparser.parse(response.data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed.entries


@pytest.mark.parametrize(
    ("name", "titles"),
    [
        ("tags/harbour-life", ["Tide gauge", "Harbour concert"]),
        ("tags/music", ["Harbour concert"]),
        ("authors/zoe-martin", ["Tide gauge", "Harbour concert"]),
        ("authors/sam-okafor", ["Tide gauge"]),
    ],
)
def test_tag_and_author_feeds_hold_their_articles(tagged, client, name, titles):
    for ext in ("xml", "atom"):
        assert [e.title for e in entries(client, f"/{name}.{ext}")] == titles
        assert feed_problems(client.get(f"/{name}.{ext}").data) == []
    document = json.loads(client.get(f"/{name}.json").data)
    assert [item["title"] for item in document["items"]] == titles


def test_tag_feed_items_keep_their_ids(tagged, client):
    by_tag = {e.link: e.id for e in entries(client, "/tags/harbour-life.atom")}
    everywhere = {e.link: e.id for e in entries(client, "/feed.atom")}
    assert by_tag == {link: everywhere[link] for link in by_tag}


def test_article_page_links_its_tags_and_authors(tagged, client):
    page = lxml.html.document_fromstring(client.get("/science/tides/").data)
    assert page.xpath("//a[@rel='tag']/@href") == ["/tags/harbour-life/"]
    assert page.xpath("//a[@rel='author']/@href") == [
        "/authors/zoe-martin/",
        "/authors/sam-okafor/",
    ]
    assert " ".join(page.xpath("//span[@class='byline']")[0].text_content().split()) == (
        "Zoë Martin and Sam Okafor"
    )


@pytest.mark.parametrize(
    ("path", "heading", "feed"),
    [
        ("/tags/harbour-life/", "Tagged “Harbour Life”", "tags/harbour-life"),
        ("/authors/zoe-martin/", "By Zoë Martin", "authors/zoe-martin"),
    ],
)
def test_listing_pages_show_articles_and_discover_their_feeds(tagged, client, path, heading, feed):
    page = lxml.html.document_fromstring(client.get(path).data)
    assert page.xpath("string(//h1)") == heading
    assert page.xpath("//ol[@class='article-list']//h3/a/text()") == [
        "Tide gauge",
        "Harbour concert",
    ]
    alternates = page.xpath("//head/link[@rel='alternate']/@href")
    assert f"{SITE_URL}/{feed}.xml" in alternates
    assert f"{SITE_URL}/{feed}.json" in alternates


@pytest.mark.parametrize("path", ["/tags/nothing/", "/authors/nobody/", "/tags/nothing.xml"])
def test_unknown_tags_and_authors_are_404(tagged, client, path):
    assert client.get(path).status_code == 404


def test_spellings_of_one_tag_share_a_feed(write_article, client_factory):
    write_article("culture", "a", title="A", date="2026-03-01T10:00:00Z", tags=["Café"])
    write_article("culture", "b", title="B", date="2026-03-02T10:00:00Z", tags=["cafe"])
    client = client_factory()
    assert [e.title for e in entries(client, "/tags/cafe.xml")] == ["B", "A"]
    (problem,) = client.get("/healthz").get_json()["problems"]
    assert problem["path"].endswith("culture/b.md")
    assert problem["reason"] == (
        "tag 'cafe' and 'Café' share the address /tags/cafe/; they are published as one"
    )


def test_check_reports_authors_sharing_an_address(write_article, make_app):
    write_article("culture", "a", title="A", date="2026-03-01T10:00:00Z", author="Zoë Martin")
    write_article("culture", "b", title="B", date="2026-03-02T10:00:00Z", author="Zoe Martin")
    result = make_app().test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "author 'Zoe Martin' and 'Zoë Martin' share the address /authors/zoe-martin/" in (
        result.output
    )


def test_opml_lists_every_feed_and_each_one_answers(tagged, client):
    response = client.get("/feeds.opml")
    assert response.status_code == 200
    assert response.content_type == "text/x-opml; charset=utf-8"
    outline = ET.fromstring(response.data)
    assert outline.get("version") == "2.0"
    feeds = {o.get("xmlUrl"): o.get("htmlUrl") for o in outline.iter("outline") if o.get("xmlUrl")}
    expected = {
        "feed",
        "culture",
        "science",
        "tags/music",
        "tags/harbour-life",
        "authors/zoe-martin",
        "authors/sam-okafor",
        "authors/gazette-staff",  # the site author, for the article that names none
    }
    assert set(feeds) == {f"{SITE_URL}/{name}.xml" for name in expected}
    for xml_url, html_url in feeds.items():
        entries(client, xml_url.removeprefix(SITE_URL))
        assert client.get(html_url.removeprefix(SITE_URL)).status_code == 200


def test_home_page_links_the_opml(tagged, client):
    page = lxml.html.document_fromstring(client.get("/").data)
    assert "/feeds.opml" in page.xpath("//a/@href")


def test_long_tag_listing_is_split_into_pages(write_article, client_factory):
    for day in range(1, 53):  # 52 articles: a full first page and 2 on the second
        date = f"2026-01-{day % 28 + 1:02}T{day % 24:02}:00:00Z"
        write_article("culture", f"story-{day:02}", title=f"Story {day}", date=date, tags=["Tides"])
    client = client_factory()
    first = lxml.html.document_fromstring(client.get("/tags/tides/").data)
    assert first.xpath("//nav[@class='pager']/a[@rel='next']/@href") == ["/tags/tides/page/2/"]
    second = lxml.html.document_fromstring(client.get("/tags/tides/page/2/").data)
    assert len(second.xpath("//ol[@class='article-list']/li")) == 2
    assert second.xpath("//nav[@class='pager']/a[@rel='prev']/@href") == ["/tags/tides/"]
    assert client.get("/tags/tides/page/3/").status_code == 404
