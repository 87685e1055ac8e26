"""A crawl of every feed keeps no more than the bounded caches hold, counted as really held."""

from __future__ import annotations

import functools
import re
import sys

from feedsvc import editions
from feedsvc.itemhtml import ItemHtmlMemo

# Small budgets, so a crawl of a few dozen documents fills them and drops the oldest.
RENDER_BUDGET = 60_000
HTML_BUDGET = 30_000
ITEMS_BUDGET = 80_000
# Every character of a string holding one of these is kept in 2 bytes.
NON_ASCII_BODY = "Café au lait — a paragraph of words, again and again. " * 40


def _crawl(client) -> list[str]:
    """Fetch every feed /feeds.opml lists and every archive page, in every format and coding."""
    paths = every_feed_path(client)
    for path in paths:
        for coding in ("identity", "gzip", "br"):
            assert client.get(path, headers={"Accept-Encoding": coding}).status_code == 200
    return paths


def every_feed_path(client) -> list[str]:
    """Return the path of every feed /feeds.opml lists and of every archive page, in every
    format (the newest archive page read from each feed's Atom)."""
    opml = client.get("/feeds.opml").data.decode()
    stems = {url.rsplit(".", 1)[0] for url in re.findall(r'xmlUrl="https?://[^/"]+([^"]+)"', opml)}
    for stem in list(stems):
        atom = client.get(f"{stem}.atom").data.decode()
        link = re.search(r'<link[^>]*"prev-archive"[^>]*>', atom)
        newest = re.search(r"/archive/([0-9]+)\.atom", link.group(0)) if link else None
        last = int(newest.group(1)) if newest else 0
        stems.update(f"{stem}/archive/{n}" for n in range(1, last + 1))
    return sorted(f"{stem}.{ext}" for stem in stems for ext in ("xml", "atom", "json"))


def test_a_crawl_of_every_feed_keeps_only_what_the_bounded_caches_count(
    write_article, make_app, monkeypatch
):
    monkeypatch.setattr(editions, "RENDER_CACHE_BYTES", RENDER_BUDGET)
    monkeypatch.setattr(
        editions,
        "ItemHtmlMemo",
        functools.partial(ItemHtmlMemo, budget=HTML_BUDGET, items_budget=ITEMS_BUDGET),
    )
    for day in range(1, 25):
        section = ("culture", "science", "sport")[day % 3]
        write_article(
            section,
            f"story-{day:02}",
            body=NON_ASCII_BODY,
            title=f"Story {day}",
            date=f"2026-01-{day:02}",
            tags=[f"Tag {day % 5}", f"Topic {day % 7}"],
            author=f"Writer {day % 4}",
        )
    app = make_app(FEED_ITEMS=5)
    store = app.extensions["feedsvc"]
    paths = _crawl(app.test_client())
    assert len(paths) > 60  # tags, authors, sections and their archives, in three formats

    snapshot = store.snapshot()
    # Outside the caches, no feed keeps a rendering but the subscription feeds (a few).
    kept = {
        name
        for name, edition in snapshot.editions.items()
        if edition._rendered and not edition.spec.archive
    }
    assert all(
        edition._cache is None for name, edition in snapshot.editions.items() if name in kept
    )
    assert not any(e._rendered for e in snapshot.editions.values() if e._cache is not None)

    renders = store._renders
    html = renders.items._entries
    # The item HTML is counted as the strings hold it (2 bytes a character here), not in
    # characters: what is kept stays within the budget counting what it really holds.
    held_html = [value for value, _ in html._entries.values()]
    assert held_html and all(not value.isascii() for value in held_html)
    assert html._used == sum(sys.getsizeof(value) for value in held_html) <= HTML_BUDGET
    assert sum(len(value) for value in held_html) < html._used
    # Each cache keeps its count of what it holds, within its budget, and dropped some.
    for cache, budget in (
        (renders._entries, RENDER_BUDGET),
        (html, HTML_BUDGET),
        (renders.items._items, ITEMS_BUDGET),
    ):
        assert cache._used == sum(size for _, size in cache._entries.values()) <= budget
    assert renders.items.misses > len(held_html)  # the crawl went past the budget
    # Rendered documents were counted with every coding a crawl makes of them (feed text
    # compresses to well under the share counted for a coding not yet made).
    for rep, size in renders._entries._entries.values():
        assert size >= rep.held_bytes()
