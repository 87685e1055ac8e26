"""Feeds rendered again after an edit build only the edited items, and equal a fresh start."""

from __future__ import annotations

import threading

import feedparser
import pytest

from feedsvc import feedxml, jsonfeed
from feedsvc.feeds import ATOM, JSON, RSS, render_feed
from feedsvc.itemhtml import ItemHtmlMemo
from feedsvc.jsonfeed import render_json_feed
from tests.conftest import PNG, fetch_all

LONG = "\n\n".join(
    f"Paragraph {n} of a long story, with [a link](/culture/one/)." for n in range(120)
)
# Small enough that some documents carry older items as summaries (FEED_MAX_BYTES).
CAPPED = {"FEED_ITEMS": 3, "FEED_MAX_BYTES": 12_000, "SITE_ICON": "/media/icon.png"}
SETTINGS = {"default": {}, "archives, cap and branding": {**CAPPED, "ACCENT_COLOR": "ff6600"}}


@pytest.fixture
def site(write_article, write_media, write_section):
    """Write two sections of articles with what shapes an item: tags, images, ids, dek."""
    write_section("culture", "Culture & Arts", "Plays <and> books")
    write_media("lead.png", PNG)
    write_media("icon.png", PNG)
    for day in range(1, 8):
        write_article(
            "culture" if day % 2 else "science",
            f"story-{day}",
            LONG if day in (2, 5) else f"Body of story {day}, 3 < 5 & more.",
            title=f"Story {day}",
            date=f"2026-03-0{day}T09:00:00+01:00",
            author=["Zoë Martin", "Sam Okafor"] if day % 3 else "Ana Pérez",
            tags=["Jazz", "City hall"] if day % 2 else ["Folk"],
        )
    write_article(
        "culture",
        "with-image",
        "An image ![inline](/media/lead.png) in the body.",
        title="With an image",
        date="2026-03-08T09:00:00+05:45",
        summary="A dek with <b> & an ampersand",
        image={"src": "/media/lead.png", "alt": "Lead <alt>", "credit": "Ana Pérez"},
        id="urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        related=[{"title": "Story 1", "url": "/culture/story-1/"}],
    )


def documents(app) -> dict[str, bytes]:
    """Fetch every feed document (every feed, archive page and format) through the routes."""
    client = app.test_client()
    snapshot = app.extensions["feedsvc"].snapshot()
    return fetch_all(client, [p for edition in snapshot.editions.values() for p in edition.paths()])


def rendered_alone(app) -> dict[str, bytes]:
    """Render every feed document of the current snapshot anew, reusing no item."""
    store = app.extensions["feedsvc"]
    return {
        path: _render(edition.spec, fmt, store.settings, None)
        for edition in store.snapshot().editions.values()
        for path, fmt in edition.paths().items()
    }


@pytest.mark.parametrize("config", SETTINGS.values(), ids=SETTINGS.keys())
def test_edits_render_the_bytes_a_fresh_start_renders(
    site, config, make_app, content_dir, tmp_path
):
    app = make_app(**config)
    store = app.extensions["feedsvc"]
    first = documents(app)
    assert first == rendered_alone(app)
    if config:  # the capped path is taken: older items carry their summary only
        assert any(b"Read the whole article" in body for body in first.values())
    retitled = 'Why <details> & "quotes" win'

    def replace(old: str, new: str, count: int = -1):
        return lambda path: path.write_text(path.read_text().replace(old, new, count))

    edits = [  # retitle, edit a body, rename a section, remove a file, take one down
        ("culture/story-3.md", replace("Story 3", retitled)),
        ("science/story-4.md", replace("Body of story 4", "A new *body* for story 4")),
        ("culture/_index.md", replace("Culture & Arts", "Arts <& Letters>")),
        ("culture/story-5.md", lambda path: path.unlink()),
        ("science/story-6.md", replace("---\n", "---\ntakedown: Court order\n", 1)),
    ]
    seen = first
    for step, (rel, edit) in enumerate(edits):
        edit(content_dir / rel)
        store.refresh([rel])
        again = documents(app)
        fresh = documents(make_app(**config, STATE_DIR=str(tmp_path / f"fresh-{step}")))
        assert again.keys() == fresh.keys()
        assert [path for path in again if again[path] != fresh[path]] == []
        assert again == rendered_alone(app)
        assert again != seen, f"edit of {rel} changed nothing"
        seen = again
    atom = feedparser.parse(seen["/culture.atom"])
    assert atom.bozo == 0
    assert retitled in [entry.title for entry in atom.entries]
    assert "Arts <& Letters>" in [tag.term for tag in atom.entries[0].tags]
    assert b"<at:deleted-entry" in seen["/science.atom"]


def test_an_edit_builds_only_the_edited_articles_items(site, write_article, make_app, monkeypatch):
    built: list[tuple[str, str]] = []
    build_entry, make_item = feedxml._build_entry, jsonfeed._item

    def counting_entry(article, section, settings, fmt, full, memo):
        built.append((fmt, article.slug))
        return build_entry(article, section, settings, fmt, full, memo)

    def counting_item(article, settings, full, memo):
        built.append((JSON, article.slug))
        return make_item(article, settings, full, memo)

    monkeypatch.setattr(feedxml, "_build_entry", counting_entry)
    monkeypatch.setattr(jsonfeed, "_item", counting_item)
    app = make_app()
    store = app.extensions["feedsvc"]
    store.snapshot()
    assert len(built) == 3 * 8  # every article once per format, whatever the feeds
    built.clear()
    write_article("culture", "story-1", title="Retitled", date="2026-03-01T09:00:00+01:00")
    store.refresh(["culture/story-1.md"])  # the site and culture feeds are rendered again
    assert sorted(built) == [(ATOM, "story-1"), (JSON, "story-1"), (RSS, "story-1")]
    assert "Retitled" in [e.title for e in feedparser.parse(documents(app)["/feed.xml"]).entries]


def _spec_and_settings(make_app):
    store = make_app().extensions["feedsvc"]
    return store.snapshot().editions["culture"].spec, store.settings


def _render(spec, fmt, settings, memo):
    if fmt == JSON:
        return render_json_feed(spec, settings, memo)
    return render_feed(spec, fmt, settings, memo)


@pytest.mark.parametrize("fmt", [RSS, ATOM, JSON])
def test_the_item_memo_stays_within_its_budget(site, make_app, fmt):
    spec, settings = _spec_and_settings(make_app)
    alone = _render(spec, fmt, settings, None)
    roomy = ItemHtmlMemo()
    assert _render(spec, fmt, settings, roomy) == alone
    assert _render(spec, fmt, settings, roomy) == alone
    assert roomy.items_made == len(spec.articles) == 5  # kept: made once each
    # None fits; or a few do, each dropped (least recently used) before the next render
    # comes back to it: what is kept never exceeds the budget.
    for budget in (0, 20_000):
        tight = ItemHtmlMemo(items_budget=budget)
        assert _render(spec, fmt, settings, tight) == alone
        assert _render(spec, fmt, settings, tight) == alone
        assert tight.items_made == 2 * 5  # each dropped before the next render used it


def test_documents_rendered_at_once_share_items_safely(site, make_app):
    spec, settings = _spec_and_settings(make_app)
    memo = ItemHtmlMemo()
    expected = {fmt: _render(spec, fmt, settings, None) for fmt in (RSS, ATOM, JSON)}
    results: list[bool] = []

    def render_many(fmt: str) -> None:
        results.extend(_render(spec, fmt, settings, memo) == expected[fmt] for _ in range(20))

    threads = [threading.Thread(target=render_many, args=(f,)) for f in (RSS, ATOM, JSON) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 120
