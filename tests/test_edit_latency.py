"""One edit reaches its feed without a walk of the tree or a fixed wait (speed: bench/)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import feedparser
import pytest
from watchdog.events import DirModifiedEvent, FileClosedEvent, FileModifiedEvent

from feedsvc import folderevents, loader, store
from feedsvc.folderevents import QUIET_SECONDS, SETTLE_SECONDS, ChangeCollector
from feedsvc.loader import scan_tree, update_tree
from tests.conftest import wait_until


def _titles(client, path: str) -> list[str]:
    parsed = feedparser.parse(client.get(path).data)
    assert parsed.bozo == 0
    return [entry.title for entry in parsed.entries]


def test_a_watched_edit_reads_the_file_and_never_walks_the_tree(
    write_stories, write_article, content_dir, make_app, monkeypatch
):
    write_stories("culture", 5)
    write_stories("news", 3)
    walks = []
    monkeypatch.setattr(store, "scan_tree", lambda root: walks.append(root) or scan_tree(root))
    app = make_app(WATCH_CONTENT=True)
    client = app.test_client()
    assert "Story 2" in _titles(client, "/culture.xml")
    walks.clear()
    write_article("culture", "story-2", title="Story 2, edited", date="2026-03-02T09:00:00+00:00")
    wait_until(lambda: "Story 2, edited" in _titles(client, "/culture.xml"), "the edit")
    write_article("culture", "story-9", title="A new one", date="2026-04-01T09:00:00+00:00")
    wait_until(lambda: "A new one" in _titles(client, "/culture.xml"), "the new article")
    (content_dir / "culture" / "story-1.md").unlink()
    wait_until(lambda: "Story 1" not in _titles(client, "/culture.xml"), "the deletion")
    # watchdog names the section folder after each of these; only its files are looked at
    assert walks == []


def test_a_refresh_waits_for_the_written_file_to_be_closed(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(folderevents, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    root = tmp_path / "content"
    root.mkdir()
    wake = threading.Event()
    collector = ChangeCollector(root, wake)
    collector.on_any_event(DirModifiedEvent(str(root / "news")))
    assert not wake.is_set() and collector.paths == set()  # the folder: its files say more
    collector.on_any_event(FileModifiedEvent(str(root / "news" / "a.md")))
    assert wake.is_set() and collector.paths == {"news/a.md"}
    clock[0] += QUIET_SECONDS * 2
    assert collector.settled() > 0  # still open for writing: half a file is no article
    collector.on_any_event(FileClosedEvent(str(root / "news" / "a.md")))
    assert collector.settled() == pytest.approx(QUIET_SECONDS)  # a rename may follow
    clock[0] += QUIET_SECONDS * 1.01
    assert collector.settled() == 0
    assert collector.take() == {"news/a.md"} and collector.paths == set()
    collector.on_any_event(FileModifiedEvent(str(root / "news" / "b.md")))
    clock[0] += SETTLE_SECONDS * 1.01
    assert collector.settled() == 0  # a writer keeping it open: read it all the same


def test_reading_the_content_brings_the_watcher_no_event(
    write_stories, write_article, content_dir, make_app, monkeypatch
):
    write_stories("culture", 5)
    seen = []
    handle = ChangeCollector.on_any_event
    monkeypatch.setattr(
        ChangeCollector,
        "on_any_event",
        lambda self, event: seen.append(event) or handle(self, event),
    )
    app = make_app(WATCH_CONTENT=True)
    client = app.test_client()
    assert "Story 2" in _titles(client, "/culture.xml")
    for path in sorted(content_dir.rglob("*.md")) * 3:  # as a first start reads every file
        path.read_bytes()
    write_article("culture", "story-9", title="A new one", date="2026-04-01T09:00:00+00:00")
    wait_until(lambda: "A new one" in _titles(client, "/culture.xml"), "the new article")
    # inotify is asked only for changes: a read (opened, closed unwritten) is never delivered
    assert seen and {type(event) for event in seen} <= set(folderevents.CHANGE_EVENTS)
    assert {event.src_path for event in seen} == {str(content_dir / "culture" / "story-9.md")}


def test_an_edit_keeps_the_tree_a_new_file_extends_it(write_stories, write_article, content_dir):
    write_stories("culture", 3)
    tree = scan_tree(content_dir)
    write_article("culture", "story-2", title="Edited")
    edited, present, gone = update_tree(content_dir, tree, {"culture/story-2.md"})
    assert edited.files is tree.files  # nothing copied for an edit
    assert (present, gone) == ({"culture/story-2.md"}, set())
    write_article("culture", "story-0")
    added, present, _ = update_tree(content_dir, edited, {"culture/story-0.md"})
    assert added.files == scan_tree(content_dir).files and present == {"culture/story-0.md"}
    (content_dir / "culture" / "story-1.md").unlink()
    removed, _, gone = update_tree(content_dir, added, {"culture/story-1.md"})
    assert removed.files == scan_tree(content_dir).files and gone == {"culture/story-1.md"}


def test_edits_in_place_publish_and_record_what_a_fresh_start_reads(
    write_stories, write_article, content_dir, make_app, backdate, tmp_path, monkeypatch
):
    write_stories("culture", 4)
    write_stories("news", 2)
    backdate()  # old files: the index trusts what it saves of them (see RACY_SECONDS)
    app = make_app()
    live = app.extensions["feedsvc"]
    assert len(live.site.articles) == 6
    write_article("culture", "story-3", title="Retitled", date="2026-03-03T09:00:00+00:00")
    write_article("news", "fresh", title="Fresh", date="2026-05-01T09:00:00+00:00")
    (content_dir / "culture" / "story-1.md").unlink()
    backdate()
    live.refresh(["culture/story-3.md", "news/fresh.md", "culture/story-1.md"])
    write_article("news", "fresh", title="Fresh again", date="2026-05-01T09:00:00+00:00")
    backdate()
    live.refresh(["news/fresh.md"])
    edited = live.site
    live.close()
    fresh = make_app(STATE_DIR=str(tmp_path / "other-state")).extensions["feedsvc"].site
    titles = [a.title for a in fresh.articles]
    assert "Fresh again" in titles and "Retitled" in titles
    assert "story-1" not in [a.slug for a in fresh.articles if a.section == "culture"]
    reads = []
    made = loader.read_content_file

    def counting(root, rel, *args, **kwargs):
        reads.append(rel)
        return made(root, rel, *args, **kwargs)

    monkeypatch.setattr(loader, "read_content_file", counting)
    restarted = make_app().extensions["feedsvc"].site
    assert reads == []  # the index holds every state the edits read, and no removed file
    for site in (edited, restarted):
        assert site.version == fresh.version
        assert [(a.key, a.title) for a in site.articles] == [
            (a.key, a.title) for a in fresh.articles
        ]
