"""The publisher's memory: compact file states, a lean assembly, caches a crawl cannot grow.

A 100,000-article archive must fit 400 MB with every feed and page crawled: what each file
keeps is small (one number for its identity, its time shared with its article), the
assembly keeps references rather than sets or URLs per article, and the feeds a crawler
asks for once (tags, authors, archives) keep no items of their own.
"""

from __future__ import annotations

import functools
import gc
import os
import re
import tracemalloc

import pytest

from feedsvc import assembly, editions, snapshot
from feedsvc.addresses import AUTHOR, TAG, is_subscription
from feedsvc.feeds import ATOM, JSON, RSS, document_path, render_feed
from feedsvc.itemhtml import ItemHtmlMemo
from feedsvc.jsonfeed import render_json_feed
from feedsvc.loader import (
    fingerprint_of,
    fingerprint_parts,
    stat_fingerprint,
)
from feedsvc.models import Article
from tests.conftest import fetch_all
from tests.test_assembly import (
    test_incremental_assembly_equals_assembling_from_scratch as assembles_as_from_scratch,
)
from tests.test_crawl_memory import every_feed_path

# Small budgets: a crawl of a few dozen documents fills them and drops the oldest.
RENDER_BUDGET = 60_000
HTML_BUDGET = 30_000
ITEMS_BUDGET = 200_000
PAGE_BUDGET = 40_000


@pytest.mark.parametrize(
    "parts",
    [(1_764_000_000_123_456_789, 4096, 12_345), (-1_000_000_000, 0, 1), (0, 2**40, 2**63)],
)
def test_a_fingerprint_is_one_number_holding_its_three_parts(parts):
    assert fingerprint_parts(fingerprint_of(*parts)) == parts
    others = [fingerprint_of(*(p + (n == i) for n, p in enumerate(parts))) for i in range(3)]
    assert len({fingerprint_of(*parts), *others}) == 4  # any part changed: another number


def test_a_file_state_read_back_from_the_index_keeps_one_time_and_one_identity(
    write_stories, make_app, content_dir
):
    write_stories("culture", 3)
    make_app().extensions["feedsvc"].snapshot()  # reads every file, fills the index
    store = make_app().extensions["feedsvc"]
    store.snapshot()
    for rel, state in store._states.items():
        assert isinstance(state.result, Article)
        assert state.mtime is state.result.file_mtime
        assert state.fingerprint == stat_fingerprint(os.stat(content_dir / rel))


def test_articles_sharing_an_id_hash_are_still_told_apart(tmp_path, monkeypatch):
    """Claims are kept by the id's hash: ids that share one (forced here) are settled apart,
    and every change still assembles the site assembling from scratch makes."""
    monkeypatch.setattr(assembly, "hash", lambda guid: len(guid) % 3, raising=False)
    assembles_as_from_scratch(tmp_path, seed=1)


def test_a_name_written_twice_in_one_article_is_counted_once(write_article, make_app):
    write_article("culture", "twice", tags=["Jazz", "Jazz", "jazz"], author=["Ann", "Ann"])
    write_article("culture", "other", tags=["jazz"])
    store = make_app().extensions["feedsvc"]
    store.snapshot()
    spellings = store._assembler._spellings
    assert spellings[(TAG, "jazz")] == {"Jazz": ["culture/twice.md"], "jazz": ANY_ORDER}
    path = write_article("culture", "twice", tags=["Rock"])
    store.refresh([str(path.relative_to(path.parents[1]))])
    assert spellings[(TAG, "jazz")] == {"jazz": ["culture/other.md"]}
    assert (AUTHOR, "ann") not in spellings
    assert spellings[(TAG, "rock")] == {"Rock": ["culture/twice.md"]}


class _AnyOrder:
    """Equal to a list holding both files that write "jazz", in either order."""

    def __eq__(self, other: object) -> bool:
        return sorted(other) == ["culture/other.md", "culture/twice.md"]  # type: ignore[arg-type]


ANY_ORDER = _AnyOrder()


def _page_paths(client) -> list[str]:
    """The home page, section, tag and author pages, and every article page."""
    opml = client.get("/feeds.opml").data.decode()
    pages = {"/", *(f"/{s}/" for s in ("culture", "science", "sport"))}
    for url in re.findall(r'xmlUrl="https?://[^/"]+(/(?:tags|authors)/[^"]+)\.xml"', opml):
        pages.add(f"{url}/")
    return sorted(pages)


@pytest.fixture
def crawled_site(write_article, make_app, monkeypatch):
    """An app with small caches over 36 articles in 3 sections, tags and authors."""
    monkeypatch.setattr(editions, "RENDER_CACHE_BYTES", RENDER_BUDGET)
    monkeypatch.setattr(
        editions,
        "ItemHtmlMemo",
        functools.partial(ItemHtmlMemo, budget=HTML_BUDGET, items_budget=ITEMS_BUDGET),
    )
    monkeypatch.setattr(snapshot.PageCache.__init__, "__defaults__", (PAGE_BUDGET,))
    for n in range(1, 37):
        write_article(
            ("culture", "science", "sport")[n % 3],
            f"story-{n:02}",
            body=f"Paragraph {n}, about the city. " * 60,
            title=f"Story {n}",
            date=f"2026-01-{n % 28 + 1:02}T{n % 24:02}:00:00+00:00",
            tags=[f"Tag {n % 5}", f"Topic {n % 7}"],
            author=f"Writer {n % 4}",
        )
    return make_app(FEED_ITEMS=5)


def test_feeds_a_crawler_asks_for_once_keep_no_items(crawled_site):
    store = crawled_site.extensions["feedsvc"]
    client = crawled_site.test_client()
    paths = every_feed_path(client)
    subscription = [p for p in paths if is_subscription(p.rsplit(".", 1)[0].lstrip("/"))]
    others = [p for p in paths if p not in subscription]
    assert len(subscription) == 12 and len(others) > 60  # site, 3 sections; tags, archives
    fetch_all(client, subscription)
    items = store._renders.items
    kept, made = items._items._used, items.items_made
    assert kept > 0  # the subscription feeds' items, for the next edit to reuse
    first = fetch_all(client, others)
    assert items.items_made > made  # made for those feeds …
    assert items._items._used == kept  # … and not kept
    # Rendered again once dropped from their small cache: the same bytes.
    assert fetch_all(client, others) == first
    # Each is the feed rendered alone, with no memo at all.
    for name, edition in store.snapshot().editions.items():
        if is_subscription(name):
            continue
        for fmt in (RSS, ATOM, JSON):
            path = document_path(edition.spec, fmt)
            alone = (
                render_json_feed(edition.spec, store.settings)
                if fmt == JSON
                else render_feed(edition.spec, fmt, store.settings)
            )
            assert first[path] == alone, path


def test_repeated_crawls_of_every_feed_and_page_do_not_grow(crawled_site):
    store = crawled_site.extensions["feedsvc"]
    client = crawled_site.test_client()
    paths = every_feed_path(client) + _page_paths(client)
    caches = (
        (store._renders._entries, RENDER_BUDGET),
        (store._renders.items._entries, HTML_BUDGET),
        (store._renders.items._items, ITEMS_BUDGET),
        (store.snapshot().pages, PAGE_BUDGET),
    )
    answers = fetch_all(client, paths)  # the first crawl fills the caches and what stays
    tracemalloc.start()
    try:
        held = []
        for _ in range(3):
            assert fetch_all(client, paths) == answers
            gc.collect()
            held.append(tracemalloc.get_traced_memory()[0])
            for cache, budget in caches:
                assert cache._used == sum(size for _, size in cache._entries.values()) <= budget
    finally:
        tracemalloc.stop()
    # Each crawl after the first drops and renders again what the caches cannot hold, and
    # ends holding what the one before it held: no growth (a few kB of counters aside).
    assert abs(held[2] - held[1]) < 64 * 1024, held
    assert abs(held[1] - held[0]) < 64 * 1024, held
