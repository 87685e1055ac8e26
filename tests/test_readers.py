"""Real terminal feed readers (newsboat, rsstail) fetch the feeds from a real server."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime

import pytest

NEWSBOAT = shutil.which("newsboat")
RSSTAIL = shutil.which("rsstail")


@pytest.fixture
def site(write_section, write_article, write_media):
    """Two articles in a culture section, one with every optional field."""
    write_section("culture", "Culture", "Arts and ideas.")
    write_media("lead.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    write_article(
        "culture",
        "harbour-concert",
        "The quartet played *Dvořák* as the tide came in.",
        title="Dvořák by the Water — the Quartet’s “Finale”",
        date="2026-08-02T20:15:00+02:00",
        author=["Zoë Martin", "Sam Okafor"],
        summary="A summer season ends on the pier.",
        image={"src": "/media/lead.png", "alt": "Lamps on the harbour wall", "credit": "Ana Pérez"},
        related=[{"title": "The season ahead", "url": "/culture/season/"}],
    )
    write_article("culture", "older-news", title="Older News", date="2026-07-01T08:00:00Z")


@pytest.mark.skipif(NEWSBOAT is None, reason="newsboat is not installed (apt-get install newsboat)")
@pytest.mark.parametrize("feed", ["culture.xml", "culture.atom"])
def test_newsboat_reads_every_item(site, live_server, tmp_path, feed):
    (tmp_path / "urls").write_text(f"{live_server}/{feed}\n")
    cache = tmp_path / "cache.db"
    subprocess.run(
        [NEWSBOAT, "-u", tmp_path / "urls", "-c", cache, "-C", "/dev/null", "-x", "reload"],
        check=True,
        timeout=60,
        capture_output=True,
    )
    with sqlite3.connect(cache) as db:
        feed_row = db.execute("SELECT url, title FROM rss_feed").fetchone()
        items = db.execute(
            "SELECT title, author, url, guid, pubDate, content FROM rss_item ORDER BY pubDate DESC"
        ).fetchall()
    assert feed_row == (f"{live_server}/culture/", "Culture — Test Gazette")
    assert [item[0] for item in items] == [
        "Dvořák by the Water — the Quartet’s “Finale”",
        "Older News",
    ]
    _, author, url, guid, published, content = items[0]
    assert author == "Zoë Martin, Sam Okafor"
    assert url == guid == f"{live_server}/culture/harbour-concert/"
    assert published == datetime(2026, 8, 2, 18, 15, tzinfo=UTC).timestamp()
    assert f'src="{live_server}/media/lead.png"' in content
    assert "A summer season ends on the pier." in content
    assert 'title="Lamps on the harbour wall"' in content and "Ana Pérez" in content
    assert "<em>Dvořák</em>" in content
    assert f'href="{live_server}/culture/season/"' in content


@pytest.mark.skipif(RSSTAIL is None, reason="rsstail is not installed (apt-get install rsstail)")
def test_rsstail_lists_items_with_links_and_dates(site, live_server):
    result = subprocess.run(
        [RSSTAIL, "-u", f"{live_server}/culture.xml", "-1", "-N", "-l", "-p", "-d"],
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert lines[:4] == [
        "Dvořák by the Water — the Quartet’s “Finale”",
        f"{live_server}/culture/harbour-concert/",
        "A summer season ends on the pier.",
        "Sun, 02 Aug 2026 20:15:00 +0200",
    ]
    assert "Older News" in lines
