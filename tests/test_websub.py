"""WebSub end to end: hub links in feeds and headers, and pings a stand-in hub receives."""

from __future__ import annotations

import json
import time
import urllib.request

import feedparser
import pytest
from lxml import etree

ATOM_LINK = "{http://www.w3.org/2005/Atom}link"


@pytest.fixture
def site(write_article, serve, hub):
    """A served, watched site with two sections, announcing the stand-in hub."""
    write_article(
        "culture", "concert", title="Concert", date="2026-01-01T10:00:00Z", tags=["Music"]
    )
    write_article("science", "tides", title="Tides", date="2026-01-02T10:00:00Z")
    return serve(WATCH_CONTENT=True, WEBSUB_HUB=hub[0])


def fetch(url: str) -> tuple[dict, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(response.headers), response.read()


@pytest.mark.parametrize("path", ["/culture.xml", "/culture.atom", "/tags/music.xml"])
def test_feeds_name_the_hub_and_themselves(site, hub, path):
    headers, body = fetch(site + path)
    assert headers["Link"] == f'<{hub[0]}>; rel="hub", <{site}{path}>; rel="self"'
    root = etree.fromstring(body)
    channel = root.find("channel") if root.tag == "rss" else root
    rels = {link.get("rel"): link.get("href") for link in channel.findall(ATOM_LINK)}
    assert rels["hub"] == hub[0]
    assert rels["self"] == f"{site}{path}"
    assert feedparser.parse(body).bozo == 0


def test_json_feed_lists_the_hub(site, hub):
    headers, body = fetch(f"{site}/culture.json")
    assert json.loads(body)["hubs"] == [{"type": "WebSub", "url": hub[0]}]
    assert f'<{hub[0]}>; rel="hub"' in headers["Link"]


def test_an_edit_pings_the_hub_for_the_changed_feeds_only(site, hub, write_article):
    fetch(f"{site}/culture.xml")  # the site is loaded: no pings for a first load
    time.sleep(0.3)
    assert hub[1] == []
    write_article(
        "culture", "concert", title="Concert, moved", date="2026-01-01T10:00:00Z", tags=["Music"]
    )
    deadline = time.monotonic() + 10
    expected = {
        f"{site}/{name}.{ext}"
        for name in ("feed", "culture", "tags/music", "authors/gazette-staff")
        for ext in ("xml", "atom", "json")
    }
    while {url for _, (url,) in hub[1]} != expected:
        assert time.monotonic() < deadline, f"pings received: {hub[1]}"
        time.sleep(0.05)
    assert all(mode == ["publish"] for mode, _ in hub[1])
    assert len(hub[1]) == len(expected)  # science feeds did not change: never pinged


def test_no_hub_no_links(write_article, client_factory):
    write_article("culture", "concert", title="Concert", date="2026-01-01T10:00:00Z")
    client = client_factory()
    response = client.get("/culture.atom")
    assert "Link" not in response.headers
    assert b'rel="hub"' not in response.data
