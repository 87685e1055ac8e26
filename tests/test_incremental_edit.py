"""What one edit carries over equals a fresh start, for every kind of edit (issue 11).

An edit re-describes only the listings and feeds it touched and reuses the rest; these
tests compare the store's snapshot after each edit with one built from scratch on the
same files: listings, URL map, specs, next releases and every document, byte for byte.
"""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, timedelta

import feedparser
import pytest

from feedsvc import create_app
from feedsvc.assembly import SiteAssembler, _schedule
from feedsvc.catalog import feed_specs, listings, next_releases
from feedsvc.loader import assemble_site, scan_tree
from feedsvc.media import media_sizes
from tests.conftest import SITE_URL, wait_until
from tests.test_assembly import _operate, _reread


def _assert_same_as_fresh(store, snapshot, make_app, folder, label: str) -> None:
    fresh = make_app(FEED_ITEMS=2, STATE_DIR=str(folder / f"fresh-{label}"))
    expected = fresh.extensions["feedsvc"].snapshot()
    assert list(snapshot.listings.items()) == list(expected.listings.items()), label
    assert snapshot._feed_paths.keys() == expected._feed_paths.keys(), label
    assert list(snapshot.editions) == list(expected.editions), label
    current = {id(edition) for edition in snapshot.editions.values()}
    for path, (edition, _) in snapshot._feed_paths.items():
        assert id(edition) in current, path  # no edition of an earlier snapshot
        assert edition.spec == expected._feed_paths[path][0].spec, (label, path)
        assert snapshot.feed(path).variants == expected.feed(path).variants, (label, path)
    assert snapshot.documents.keys() == expected.documents.keys()
    for path, document in snapshot.documents.items():
        assert document.variants == expected.documents[path].variants, (label, path)
    assert snapshot.next_release == expected.next_release, label
    releases = next_releases(snapshot.site, snapshot.as_of, store.settings)
    assert {n: e.expires_at for n, e in snapshot.editions.items()} == {
        n: None if e.spec.archive else releases.get(n) for n, e in snapshot.editions.items()
    }
    assert [a.key for a in snapshot.site.articles] == [a.key for a in expected.site.articles]
    for article in expected.site.articles:
        found = snapshot.site.find(article.section, article.slug, snapshot.as_of)
        assert found == expected.site.find(article.section, article.slug, expected.as_of)


def _later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")


def test_every_kind_of_edit_carries_over_what_a_fresh_start_builds(
    write_article, make_app, content_dir
):
    for day in range(1, 10):
        for section, tags in (("culture", ["Jazz", "Folk"]), ("science", ["Space"])):
            write_article(
                section,
                f"story-{day}",
                title=f"{section} {day}",
                date=f"2026-01-0{day}",
                tags=tags[: 1 + day % 2],
                author=f"Writer {day % 3}",
            )
    write_article("science", "far", title="Far off", date="2999-01-01", tags=["Space"])
    store = make_app(FEED_ITEMS=2).extensions["feedsvc"]
    store.snapshot()
    edits = [
        ("retitle", "culture/story-5.md", {"title": "Retitled", "tags": ["Jazz"]}),
        ("retag", "culture/story-5.md", {"title": "Retitled", "tags": ["Blues"]}),
        ("add", "culture/story-10.md", {"title": "Added", "date": "2026-01-04T12:00:00"}),
        ("add newest", "science/new.md", {"title": "Newest", "date": "2026-02-01"}),
        ("feeds off", "science/story-3.md", {"title": "Hidden", "feeds": False}),
        ("feeds on", "science/story-3.md", {"title": "Shown again"}),
        ("remove", "culture/story-2.md", None),
        ("remove last of a tag", "culture/story-10.md", None),
    ]
    for label, rel, fields in edits:
        section, slug = rel[:-3].split("/")
        if fields is None:
            (content_dir / rel).unlink()
        else:
            day = slug.split("-")[-1]
            fields.setdefault("date", f"2026-01-0{day}" if day.isdigit() else "2026-01-05")
            write_article(section, slug, **fields)
        after = store.refresh([rel])
        _assert_same_as_fresh(store, after, make_app, content_dir.parent, label)
    # A move between sections: the file goes, another comes.
    moved = content_dir / "culture" / "story-7.md"
    moved.rename(content_dir / "science" / "story-7.md")
    after = store.refresh(["culture/story-7.md", "science/story-7.md"])
    _assert_same_as_fresh(store, after, make_app, content_dir.parent, "move")
    assert ("science", "story-7") in {a.key for a in after.published()}
    # A scheduled article, which comes out by the clock alone: no file changed.
    write_article("culture", "soon", title="Soon", date=_later(6), tags=["Jazz"])
    after = store.refresh(["culture/soon.md"])
    assert "Soon" not in [a.title for a in after.published()]
    _assert_same_as_fresh(store, after, make_app, content_dir.parent, "scheduled")
    wait_until(lambda: time.time() >= after.next_release, "release due", deadline=15)
    released = store.refresh(())
    assert "Soon" in [a.title for a in released.published("tags/jazz")]
    _assert_same_as_fresh(store, released, make_app, content_dir.parent, "released")
    parsed = feedparser.parse(released.feed("/culture.atom").variants["identity"].body)
    assert parsed.bozo == 0 and parsed.entries[0].title == "Soon"


def test_an_edit_leaves_the_listings_and_archive_pages_it_did_not_touch(
    write_article, make_app, content_dir
):
    for day in range(1, 10):
        write_article("culture", f"c-{day}", title=f"C {day}", date=f"2026-01-0{day}")
        write_article("science", f"s-{day}", title=f"S {day}", date=f"2026-01-0{day}")
    store = make_app(FEED_ITEMS=2).extensions["feedsvc"]
    before = store.snapshot()
    write_article("culture", "c-9", title="Newest, retitled", date="2026-01-09")
    after = store.refresh(["culture/c-9.md"])
    assert after.listings["science"] is before.listings["science"]
    assert after.site.find("science", "s-1", after.as_of) is before.site.find(
        "science", "s-1", before.as_of
    )
    pages = [n for n in before.editions if n.startswith(("feed/archive/", "culture/archive/"))]
    kept = [n for n in pages if "c-9" not in {a.slug for a in before.editions[n].spec.articles}]
    assert len(kept) == len(pages) - 1  # all but the site's newest archive page
    assert all(after.editions[n].spec is before.editions[n].spec for n in kept)
    _assert_same_as_fresh(store, after, make_app, content_dir.parent, "newest retitled")


@pytest.mark.parametrize("seed", range(4))
def test_what_the_assembler_hands_over_describes_the_feeds_a_fresh_start_does(tmp_path, seed):
    """Random edits: listings, specs (archive pages kept by what remade() says) and releases."""
    rng = random.Random(seed)
    content = tmp_path / "content"
    content.mkdir()
    config = {"CONTENT_DIR": str(content), "SITE_URL": SITE_URL, "STATE_DIR": str(tmp_path / "s")}
    app = create_app({**config, "FEED_ITEMS": 2})
    settings = app.extensions["feedsvc"].settings
    assembler = SiteAssembler(settings)
    states: dict = {}
    published = None
    kept = 0
    for _ in range(5):  # enough articles for archive pages
        (content / "culture").mkdir(exist_ok=True)
        _operate(rng, content)
    for step in range(70):
        touched = _operate(rng, content)
        tree = scan_tree(content)
        sizes = media_sizes(content)
        if any(rel.startswith("media/") for rel in touched):
            states, touched = {}, None
        states, changed = _reread(content, tree, states, touched, settings, sizes)
        site = assembler.assemble(tree, states, sizes, changed)
        reference = assemble_site(tree, states, sizes, settings)
        now = datetime.now(UTC)
        if rng.random() < 0.2:  # sometimes assembled, never published
            continue
        groups = assembler.listings(site, now)
        expected = listings(reference, reference.published(now))
        assert list(groups.items()) == list(expected.items()), (seed, step)
        remade = assembler.remade()
        specs = feed_specs(site, groups, now, settings, published, False, remade)
        fresh = feed_specs(reference, expected, now, settings)
        assert list(specs.items()) == list(fresh.items()), (seed, step)
        assert assembler.releases(site, now) == next_releases(reference, now, settings)
        if published is not None:
            kept += sum(spec is published[1].get(name) for name, spec in specs.items())
        published = (groups, specs)
    assert kept > 20
    app.extensions["feedsvc"].close()


def test_superseded_moments_do_not_pile_up():
    """Re-timing the same files again and again (a taken-down article edited daily) keeps
    the heap near the number of files, with every current moment still in it."""
    heap: list[tuple[float, str]] = []
    moments: dict[str, float] = {}
    for n in range(10_000):
        rel = f"culture/a{n % 10}.md"
        moments[rel] = math.inf if n % 2 else float(n)
        _schedule(heap, moments, rel, moments[rel])
        assert len(heap) <= 2 * len(moments) + 64
    assert {(at, rel) for rel, at in moments.items()} <= set(heap)
    assert all(heap[(i - 1) // 2] <= heap[i] for i in range(1, len(heap)))  # still a heap


def test_a_site_emptied_and_filled_again_lists_what_a_fresh_start_does(
    write_article, make_app, content_dir
):
    """The first listing of all appends each article in order (a restart's shortcut); it is
    taken again once every article is gone, with the listings of before still known."""
    stories = [("culture", f"c-{day}", f"2026-01-0{day}") for day in range(1, 6)]
    stories.append(("science", "far", "2999-01-01"))  # timed: its release is settled too
    for section, slug, date in stories:
        write_article(section, slug, title=slug, date=date, tags=["Jazz"])
    store = make_app(FEED_ITEMS=2).extensions["feedsvc"]
    _assert_same_as_fresh(store, store.snapshot(), make_app, content_dir.parent, "first")
    for section, slug, _ in stories:
        (content_dir / section / f"{slug}.md").unlink()
    rels = [f"{section}/{slug}.md" for section, slug, _ in stories]
    emptied = store.refresh(rels)
    assert emptied.published() == ()
    _assert_same_as_fresh(store, emptied, make_app, content_dir.parent, "emptied")
    for section, slug, date in reversed(stories):
        write_article(section, slug, title=f"{slug} again", date=date, tags=["Jazz"])
    filled = store.refresh(rels)
    assert [a.title for a in filled.published("tags/jazz")][:2] == ["c-5 again", "c-4 again"]
    _assert_same_as_fresh(store, filled, make_app, content_dir.parent, "filled")
