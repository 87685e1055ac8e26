"""Article bodies live in the content index, not in memory: read when rendered, never stale."""

from __future__ import annotations

import logging
import os
import random
import tracemalloc
from datetime import UTC, datetime

from feedsvc.index import INDEX_NAME, ContentIndex
from feedsvc.loader import FileState
from feedsvc.models import Article

ARTICLES = 40


def words(seed: int, count: int) -> str:
    """Return `count` words that zlib cannot shrink much (a body of that size in memory)."""
    rng = random.Random(seed)
    return " ".join(
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
        for _ in range(count)
    )


def write_corpus(write_article, body_words: int) -> None:
    for n in range(ARTICLES):
        day = 1 + n % 28
        write_article(
            "culture",
            f"story-{n}",
            f"{words(n, body_words)}\n\nEnd of story {n}.",
            title=f"Story {n}",
            summary=f"Story {n} in short.",
            date=f"2026-03-{day:02d}T09:00:00+00:00",
        )


def articles(store) -> list[Article]:
    return [s.result for s in store._states.values() if isinstance(s.result, Article)]


def page(client, section: str, slug: str) -> str:
    response = client.get(f"/{section}/{slug}/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def loaded_bytes(settings) -> int:
    """Return the bytes the file states of the index take once loaded (tracemalloc)."""
    index = ContentIndex.for_settings(settings)
    try:
        index.generation()  # opened before counting
        tracemalloc.start()
        try:
            entries, _ = index.load()
            size, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert all(isinstance(state, FileState) for state, _ in entries.values())
        assert len(entries) == ARTICLES
        return size
    finally:
        index.close()


def test_no_article_holds_its_body_once_the_index_has_it(write_article, make_app):
    write_corpus(write_article, 400)
    store = make_app().extensions["feedsvc"]
    first = store.snapshot().site.articles
    # A first start parses every body, then keeps it in the index only.
    assert len(first) == ARTICLES
    assert all(a.body.packed is None for a in first)
    assert "End of story 7." in next(a for a in first if a.slug == "story-7").body_html
    # A restart reads the states from the index: no body comes with them.
    again = make_app()
    assert all(a.body.packed is None for a in articles(again.extensions["feedsvc"]))
    assert "End of story 7." in page(again.test_client(), "culture", "story-7")


def test_long_bodies_cost_no_memory_after_a_load(tmp_path, content_dir, write_article, make_app):
    write_corpus(write_article, 20)
    short = make_app().extensions["feedsvc"]
    short.snapshot()
    short_bytes = loaded_bytes(short.settings)
    long_dir = tmp_path / "long"
    os.rename(content_dir, tmp_path / "short")
    content_dir.mkdir()
    write_corpus(write_article, 5000)  # ~35 kB of HTML each, ~20 kB packed
    long = make_app(STATE_DIR=str(long_dir)).extensions["feedsvc"]
    long.snapshot()
    long_bytes = loaded_bytes(long.settings)
    half = sum(len(a.body.html) for a in articles(long)) // 2  # less than they take packed
    assert long_bytes - short_bytes < half // 10, (short_bytes, long_bytes, half)


def test_a_body_read_after_an_edit_is_the_new_one(write_article, make_app):
    write_corpus(write_article, 30)
    app = make_app()
    store = app.extensions["feedsvc"]
    client = app.test_client()
    old = store.snapshot().site.find("culture", "story-3", datetime.now(UTC))
    assert "End of story 3." in page(client, "culture", "story-3")
    write_article("culture", "story-3", "A new body.", title="Story 3", date="2026-03-04")
    store.refresh(["culture/story-3.md"])
    text = page(client, "culture", "story-3")
    assert "A new body." in text and "End of story 3." not in text
    feed = client.get("/culture.xml").get_data(as_text=True)
    assert "A new body." in feed and "End of story 3." not in feed
    # A snapshot still showing the old version reads the old body, not the new one.
    assert "End of story 3." in old.body_html and "A new body." not in old.body_html


def test_a_restart_and_a_follower_read_the_body_of_their_version(write_article, make_app):
    write_corpus(write_article, 30)
    app = make_app()
    store = app.extensions["feedsvc"]
    store.snapshot()
    follower = ContentIndex.for_settings(store.settings)  # another process's handle
    try:
        first = follower.changes_since(0)
        story = first.states["culture/story-5.md"].result
        assert story.body.packed is None and "End of story 5." in story.body_html
        write_article("culture", "story-5", "Rewritten.", title="Story 5", date="2026-03-06")
        store.refresh(["culture/story-5.md"])
        later = follower.changes_since(first.generation)
        assert set(later.states) == {"culture/story-5.md"}
        assert later.states["culture/story-5.md"].result.body_html == "<p>Rewritten.</p>\n"
        assert "End of story 5." in story.body_html  # the version it had, still
    finally:
        follower.close()
    store.close()
    # Changed while no server ran: the restart reads the file again, and shows its body.
    write_article("culture", "story-5", "Once more.", title="Story 5", date="2026-03-06")
    text = page(make_app().test_client(), "culture", "story-5")
    assert "Once more." in text and "Rewritten." not in text


def test_without_a_usable_index_bodies_stay_in_memory(write_article, make_app, tmp_path, caplog):
    write_corpus(write_article, 30)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / INDEX_NAME).mkdir()  # where the database file should be
    with caplog.at_level(logging.WARNING, logger="feedsvc.index"):
        app = make_app(STATE_DIR=str(blocked))
        store = app.extensions["feedsvc"]
        store.snapshot()
    assert any("going on without it" in r.getMessage() for r in caplog.records)
    assert all(a.body.packed is not None for a in articles(store))
    assert "End of story 9." in page(app.test_client(), "culture", "story-9")


def test_a_body_lost_with_its_index_is_read_from_its_file(
    write_article, make_app, content_dir, caplog
):
    write_corpus(write_article, 30)
    app = make_app()
    app.extensions["feedsvc"].snapshot()
    state = content_dir.parent / "state"
    for name in os.listdir(state):
        if name.startswith(INDEX_NAME):
            os.remove(state / name)  # an admin deleting the index under a running server
    with caplog.at_level(logging.INFO, logger="feedsvc.index"):
        assert "End of story 11." in page(app.test_client(), "culture", "story-11")
    assert any("parsed again from its file" in r.getMessage() for r in caplog.records)
