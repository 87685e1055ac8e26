"""RFC 5005 archived feeds: the subscription feed links to archives that hold every article."""

from __future__ import annotations

import json

import feedparser
import pytest
from lxml import etree

from tests.conftest import SITE_URL
from tests.w3c_rules import feed_problems

HISTORY = "{http://purl.org/syndication/history/1.0}"
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def history(write_article, client_factory):
    """Eleven articles, feeds of three items: archives 1–3 full, two items still filling."""
    for day in range(1, 12):
        write_article(
            "culture", f"story-{day:02}", title=f"Story {day}", date=f"2026-01-{day:02}T10:00:00Z"
        )
    return client_factory(FEED_ITEMS=3)


def links(document: bytes) -> dict[str, str]:
    """Return the feed-level links (rel -> href) of an RSS or Atom document."""
    root = etree.fromstring(document)
    channel = root.find("channel") if root.tag == "rss" else root
    return {link.get("rel"): link.get("href") for link in channel.findall(f"{ATOM}link")}


@pytest.mark.parametrize("ext", ["xml", "atom"])
def test_walking_prev_archive_links_reaches_every_article_once(history, ext):
    url = f"{SITE_URL}/culture.{ext}"
    seen, documents = [], 0
    while url:
        response = history.get(url.removeprefix(SITE_URL))
        assert response.status_code == 200, url
        parsed = feedparser.parse(response.data)
        assert parsed.bozo == 0
        assert feed_problems(response.data) == []
        seen += [e.title for e in parsed.entries]
        documents += 1
        url = links(response.data).get("prev-archive")
    assert documents == 4
    assert sorted(set(seen), key=lambda t: int(t.split()[1])) == [
        f"Story {d}" for d in range(1, 12)
    ]
    archived = seen[3:]  # what the archives hold, beyond the subscription feed
    assert len(archived) == len(set(archived)) == 9


def test_archive_documents_are_marked_and_linked(history):
    response = history.get("/culture/archive/2.atom")
    root = etree.fromstring(response.data)
    assert root.find(f"{HISTORY}archive") is not None
    assert links(response.data) == {
        "self": f"{SITE_URL}/culture/archive/2.atom",
        "current": f"{SITE_URL}/culture.atom",
        "prev-archive": f"{SITE_URL}/culture/archive/1.atom",
        "next-archive": f"{SITE_URL}/culture/archive/3.atom",
        "alternate": f"{SITE_URL}/culture/",
    }
    titles = [e.title for e in feedparser.parse(response.data).entries]
    assert titles == ["Story 6", "Story 5", "Story 4"]
    assert response.headers["Cache-Control"] == "public, max-age=86400"


def test_subscription_feed_is_no_archive(history):
    root = etree.fromstring(history.get("/culture.xml").data)
    assert root.find(f"channel/{HISTORY}archive") is None
    assert links(history.get("/culture.xml").data)["prev-archive"] == (
        f"{SITE_URL}/culture/archive/3.xml"
    )


def test_json_feed_pages_to_the_archives(history):
    # The first page runs on to the end of archive 3, so next_url's page repeats none of it.
    document = json.loads(history.get("/culture.json").data)
    titles = [item["title"] for item in document["items"]]
    assert titles == ["Story 11", "Story 10", "Story 9", "Story 8", "Story 7"]
    assert document["next_url"] == f"{SITE_URL}/culture/archive/2.json"
    older = json.loads(history.get("/culture/archive/2.json").data)
    assert [item["title"] for item in older["items"]] == ["Story 6", "Story 5", "Story 4"]
    assert older["next_url"] == f"{SITE_URL}/culture/archive/1.json"


def test_no_archives_while_one_feed_holds_everything(write_article, client_factory):
    write_article("culture", "only", title="Only", date="2026-01-01T10:00:00Z")
    client = client_factory(FEED_ITEMS=3)
    assert "prev-archive" not in links(client.get("/culture.xml").data)
    assert client.get("/culture/archive/1.xml").status_code == 404


def test_archive_pages_keep_their_items_as_new_articles_arrive(history, write_article, make_app):
    before = history.get("/culture/archive/2.xml").data
    write_article("culture", "story-12", title="Story 12", date="2026-01-12T10:00:00Z")
    after = make_app(FEED_ITEMS=3).test_client().get("/culture/archive/2.xml").data
    assert after == before
