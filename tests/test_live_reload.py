"""Live reload through a real server on 127.0.0.1: edits show without a restart."""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import feedparser
import pytest

from tests.conftest import article_text, wait_until


def fetch(url: str) -> tuple[dict, bytes]:
    """GET a URL; return (headers, body)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(response.headers), response.read()


def titles(url: str) -> list[str]:
    """Return the item titles of the feed at `url`, read by feedparser."""
    parsed = feedparser.parse(fetch(url)[1])
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return [entry.title for entry in parsed.entries]


@pytest.fixture
def watched(write_article, serve):
    """A served site with two articles, watching its content folder."""
    write_article("culture", "first", title="First story", date="2026-01-01T10:00:00Z")
    write_article("culture", "second", title="Second story", date="2026-01-02T10:00:00Z")
    return serve(WATCH_CONTENT=True)


def test_new_file_appears(watched, write_article):
    assert titles(f"{watched}/culture.xml") == ["Second story", "First story"]
    write_article("culture", "third", title="Third story", date="2026-01-03T10:00:00Z")
    wait_until(lambda: "Third story" in titles(f"{watched}/culture.xml"), "the new article")
    assert titles(f"{watched}/feed.atom")[0] == "Third story"
    assert b"Third story" in fetch(f"{watched}/culture/third/")[1]


def test_edit_changes_title_but_keeps_the_guid(watched, write_article):
    before = feedparser.parse(fetch(f"{watched}/culture.atom")[1]).entries
    write_article("culture", "first", title="First story, revised", date="2026-01-01T10:00:00Z")
    wait_until(lambda: "First story, revised" in titles(f"{watched}/culture.atom"), "the edit")
    after = feedparser.parse(fetch(f"{watched}/culture.atom")[1]).entries
    assert [e.id for e in after] == [e.id for e in before]
    assert len(after) == 2


def test_rename_with_id_keeps_the_guid(write_article, serve, content_dir):
    write_article(
        "culture", "old-name", title="Moved", date="2026-01-01T10:00:00Z", id="tag:x,2026:1"
    )
    base = serve(WATCH_CONTENT=True)
    assert titles(f"{base}/culture.xml") == ["Moved"]
    os.rename(content_dir / "culture" / "old-name.md", content_dir / "culture" / "new-name.md")

    def moved():
        entries = feedparser.parse(fetch(f"{base}/culture.xml")[1]).entries
        return entries if entries and entries[0].link.endswith("/new-name/") else None

    entries = wait_until(moved, "the renamed article")
    assert [e.id for e in entries] == ["tag:x,2026:1"]


def test_deleted_file_disappears(watched, content_dir):
    (content_dir / "culture" / "second.md").unlink()
    wait_until(lambda: titles(f"{watched}/culture.xml") == ["First story"], "the deletion")


def test_new_section_gets_its_feed(watched, write_article):
    write_article("science", "tides", title="Tides", date="2026-01-05T10:00:00Z")
    wait_until(lambda: "Tides" in titles(f"{watched}/feed.xml"), "the new section's article")
    assert titles(f"{watched}/science.xml") == ["Tides"]


def test_half_written_file_keeps_the_last_good_version(watched, content_dir, write_article):
    assert titles(f"{watched}/culture.xml") == ["Second story", "First story"]
    path = content_dir / "culture" / "first.md"
    path.write_text("---\ntitle: First sto")  # an editor or rsync caught mid-write

    def reported():
        health = fetch(f"{watched}/healthz")[1].decode()
        return str(path) in health

    wait_until(reported, "the half-written file in /healthz")
    assert titles(f"{watched}/culture.xml") == ["Second story", "First story"]
    write_article("culture", "first", title="First story, finished", date="2026-01-01T10:00:00Z")
    wait_until(lambda: "First story, finished" in titles(f"{watched}/culture.xml"), "the fix")
    assert str(path) not in fetch(f"{watched}/healthz")[1].decode()


def test_whole_tree_swap_through_a_symlink(tmp_path, serve):
    releases = tmp_path / "releases"
    for name, title in (("one", "Release one"), ("two", "Release two")):
        folder = releases / name / "culture"
        folder.mkdir(parents=True)
        (folder / "story.md").write_text(article_text(title=title, date="2026-01-01T10:00:00Z"))
    current = tmp_path / "current"
    current.symlink_to(releases / "one")
    base = serve(WATCH_CONTENT=True, CONTENT_DIR=str(current))
    assert titles(f"{base}/culture.xml") == ["Release one"]
    (tmp_path / "next").symlink_to(releases / "two")
    os.replace(tmp_path / "next", current)  # atomic switch, as deploy tools do
    wait_until(lambda: titles(f"{base}/culture.xml") == ["Release two"], "the new release")


def test_last_modified_rises_on_two_edits_within_one_second(watched, write_article):
    url = f"{watched}/culture.xml"
    seen = [parsedate_to_datetime(fetch(url)[0]["Last-Modified"])]
    for title in ("Edit one", "Edit two"):
        write_article("culture", "first", title=title, date="2026-01-01T10:00:00Z")
        wait_until(lambda t=title: t in titles(url), title)
        headers = fetch(url)[0]
        seen.append(parsedate_to_datetime(headers["Last-Modified"]))
        assert seen[-1] <= parsedate_to_datetime(headers["Date"])
    assert seen[0] < seen[1] < seen[2]


def test_scheduled_article_goes_live_on_time(watched, write_article):
    release = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    write_article("culture", "soon", title="Scheduled story", date=release.isoformat())
    wait_until(lambda: json.loads(fetch(f"{watched}/healthz")[1])["scheduled"], "the schedule")
    headers = fetch(f"{watched}/culture.xml")[0]
    max_age = int(headers["Cache-Control"].rsplit("=", 1)[1])
    assert max_age <= 3
    assert "Scheduled story" not in titles(f"{watched}/culture.xml")
    wait_until(lambda: "Scheduled story" in titles(f"{watched}/culture.xml"), "the release")
    assert datetime.now(UTC) >= release
