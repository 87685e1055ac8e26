"""The content store: parallel loading, and snapshots kept when nothing changed."""

from __future__ import annotations

import os

from feedsvc import loader
from feedsvc.loader import load_site


def test_parallel_loading_reads_the_same_site(write_article, make_app, monkeypatch):
    for day in range(1, 13):
        write_article("culture", f"story-{day:02}", title=f"Story {day}", date=f"2026-01-{day:02}")
    (write_article("culture", "broken", title="Broken")).write_text("---\ntitle: [\n---\n")
    settings = make_app().extensions["feedsvc"].settings
    serial = load_site(settings)
    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", 2)
    calls = []
    parallel = load_site(settings, progress=lambda: calls.append(1))
    assert parallel.articles == serial.articles
    assert [a.body_html for a in parallel.articles] == [a.body_html for a in serial.articles]
    problems = [(p.path, p.line, p.reason) for p in parallel.problems]
    assert problems == [(p.path, p.line, p.reason) for p in serial.problems] != []
    assert len(calls) == 13


def test_rescan_without_changes_keeps_the_snapshot_and_its_pages(write_article, make_app):
    path = write_article("culture", "story", title="Story", date="2026-01-01T10:00:00Z")
    app = make_app()
    store = app.extensions["feedsvc"]
    app.test_client().get("/culture/")
    before = store.snapshot()
    assert before.pages.get("/culture/") is not None
    os.utime(path)  # touched, not changed
    assert store.refresh(None) is before
    assert store.refresh({"culture/story.md"}) is before
    path.write_text(path.read_text().replace("Story", "Story, edited"))
    after = store.refresh({"culture/story.md"})
    assert after is not before
    assert after.pages.get("/culture/") is None
    assert [a.title for a in after.published()] == ["Story, edited"]
