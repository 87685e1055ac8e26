"""One edit costs what it changed: counted work, not timed (speed targets are in bench/)."""

from __future__ import annotations

import time

import feedparser
import pytest

from feedsvc import itemhtml
from feedsvc.assembly import SiteAssembler
from tests.conftest import wait_until


def _count_sanitised(monkeypatch) -> list[str]:
    calls: list[str] = []
    made = itemhtml._article_html

    def counting(article, settings, full):
        calls.append(article.slug)
        return made(article, settings, full)

    monkeypatch.setattr(itemhtml, "_article_html", counting)
    return calls


def test_one_edit_sanitises_only_the_edited_body(write_article, make_app, monkeypatch):
    for day in range(1, 11):
        write_article("culture", f"story-{day:02}", title=f"Story {day}", date=f"2026-01-{day:02}")
    calls = _count_sanitised(monkeypatch)
    app = make_app()
    client = app.test_client()
    for path in ("/feed.xml", "/feed.atom", "/feed.json", "/culture.xml"):
        assert client.get(path).status_code == 200
    assert sorted(set(calls)) == [f"story-{day:02}" for day in range(1, 11)]
    assert len(calls) == 10  # once per article, whatever the feed or format
    calls.clear()
    path = write_article(
        "culture", "story-03", "New body.", title="Story 3, edited", date="2026-01-03"
    )
    app.extensions["feedsvc"].refresh([str(path.relative_to(path.parent.parent))])
    for path in ("/feed.xml", "/feed.atom", "/feed.json", "/culture.json"):
        assert client.get(path).status_code == 200
    assert calls == ["story-03"]
    parsed = feedparser.parse(client.get("/culture.atom").data)
    assert parsed.bozo == 0
    assert "Story 3, edited" in [entry.title for entry in parsed.entries]
    calls.clear()
    path = write_article("culture", "story-03", "New body.", title="Retitled", date="2026-01-03")
    app.extensions["feedsvc"].refresh([str(path.relative_to(path.parent.parent))])
    assert client.get("/feed.xml").status_code == 200
    assert calls == []  # a new title leaves the item HTML as it was


def test_a_rescan_places_only_the_files_it_finds_changed(write_article, make_app, monkeypatch):
    """The safety rescan (every 60 s) checks every file's identity; at 100,000 articles,
    assembling the site again from all of them would cost seconds of CPU each time."""
    for day in range(1, 11):
        write_article("culture", f"story-{day:02}", title=f"Story {day}", date=f"2026-01-{day:02}")
    placed: list[str] = []
    place = SiteAssembler._place

    def counting(self, rel, *args):
        placed.append(rel)
        return place(self, rel, *args)

    monkeypatch.setattr(SiteAssembler, "_place", counting)
    app = make_app()
    client = app.test_client()
    assert client.get("/culture.xml").status_code == 200
    assert len(placed) == 10
    placed.clear()
    app.extensions["feedsvc"].refresh(None)
    assert placed == []
    write_article("culture", "story-03", title="Story 3, edited", date="2026-01-03")
    app.extensions["feedsvc"].refresh(None)
    assert placed == ["culture/story-03.md"]
    titles = [e.title for e in feedparser.parse(client.get("/culture.xml").data).entries]
    assert "Story 3, edited" in titles


def test_item_html_memo_stays_within_its_budget(write_article, make_app):
    write_article("culture", "long", body="Words. " * 2000, title="Long")
    write_article("culture", "short", title="Short")
    settings = make_app().extensions["feedsvc"].settings
    site = make_app().extensions["feedsvc"].site
    memo = itemhtml.ItemHtmlMemo(budget=5000)
    for article in site.articles:
        assert memo.html(article, settings, True) == itemhtml.article_html(article, settings)
    assert memo.misses == 2
    for article in site.articles:
        memo.html(article, settings, True)
    assert memo.misses == 3  # the long body did not fit; the short one was kept


def test_one_edit_describes_again_only_the_feeds_and_pages_holding_it(
    write_article, make_app, backdate
):
    for day in range(1, 13):
        for section in ("culture", "science"):
            tags = ["Jazz"] if day % 2 else ["Folk"]
            write_article(
                section,
                f"story-{day:02}",
                title=f"{section} {day}",
                date=f"2026-01-{day:02}",
                tags=tags,
            )
    backdate()
    store = make_app(FEED_ITEMS=3).extensions["feedsvc"]
    before = store.snapshot()
    assert "culture/archive/3" in before.editions
    path = write_article(
        "culture", "story-02", title="Edited", date="2026-01-02", tags=["Folk"]
    )  # on the first archive page of the site feed and of culture
    after = store.refresh(["culture/story-02.md"])
    remade = {n for n, e in after.editions.items() if e.spec is not before.editions[n].spec}
    assert remade <= {"feed", "culture", "tags/folk", "authors/gazette-staff"} | {
        n for n in after.editions if n.startswith(("feed/archive/", "culture/archive/"))
    }
    # Pages after the one holding it keep their specs, and so their rendered documents.
    assert "culture/archive/1" in remade and "culture/archive/4" not in remade
    assert not {n for n in remade if n.startswith("science")}
    assert after.listings["science"] is before.listings["science"]
    assert after.listings["tags/jazz"] is before.listings["tags/jazz"]
    assert [a.title for a in after.editions["culture/archive/1"].spec.articles].count("Edited") == 1
    assert path.exists()


def test_a_refresh_of_named_paths_sees_files_and_folders_come_and_go(
    write_article, make_app, content_dir
):
    write_article("culture", "one", title="One", date="2026-01-01")
    store = make_app().extensions["feedsvc"]
    assert [a.slug for a in store.snapshot().published()] == ["one"]
    write_article("culture", "two", title="Two", date="2026-01-02")
    assert [a.slug for a in store.refresh(["culture/two.md"]).published()] == ["two", "one"]
    (content_dir / "culture" / "one.md").unlink()
    assert [a.slug for a in store.refresh(["culture/one.md"]).published()] == ["two"]
    write_article("science", "three", title="Three", date="2026-01-03")  # a new section folder
    snapshot = store.refresh(["science", "science/three.md"])
    assert [a.slug for a in snapshot.published()] == ["three", "two"]
    assert list(snapshot.site.sections) == ["culture", "science"]
    write_article("culture", "deep/four", title="Four")  # below a section: not content
    assert store.refresh(["culture/deep", "culture/deep/four.md"]).published("culture")[0].slug == (
        "two"
    )
    (content_dir / "culture" / "two.md").rename(content_dir / "science" / "two.md")
    snapshot = store.refresh(["culture/two.md", "science/two.md"])
    assert [(a.section, a.slug) for a in snapshot.published()] == [
        ("science", "three"),
        ("science", "two"),
    ]
    assert store.refresh(None) is snapshot  # a full rescan finds nothing it missed


def test_what_an_edit_carries_over_equals_a_fresh_start(write_article, make_app, content_dir):
    for day in range(1, 10):
        for section in ("culture", "science"):
            write_article(section, f"story-{day}", title=f"{section} {day}", date=f"2026-01-0{day}")
    store = make_app(FEED_ITEMS=2).extensions["feedsvc"]
    store.snapshot()
    edits = [
        ("culture/story-4.md", {"title": "Out of feeds"}),
        ("culture/story-3.md", {"title": "Retitled"}),
        ("culture/story-4.md", {"title": "Out of feeds", "feeds": False}),  # filtered again
        ("science/story-9.md", None),  # removed: its archive page goes
        ("culture/story-4.md", {"title": "Back in feeds"}),
        ("science/story-10.md", {"title": "New"}),  # a new archive page
    ]
    hidden = [False, False, True, True, True, True]  # "Out of feeds" left out of every feed
    for (rel, fields), left_out in zip(edits, hidden, strict=True):
        section, slug = rel[:-3].split("/")
        day = min(int(slug.split("-")[1]), 9)
        if fields is None:
            (content_dir / rel).unlink()
        else:
            write_article(section, slug, date=f"2026-01-0{day}", **fields)
        after = store.refresh([rel])
        fresh = make_app(FEED_ITEMS=2, STATE_DIR=str(content_dir.parent / f"fresh-{rel}"))
        expected = fresh.extensions["feedsvc"].snapshot()
        assert after._feed_paths.keys() == expected._feed_paths.keys()
        shown = b"".join(
            after.feed(path).variants["identity"].body
            for path in after._feed_paths
            if path.startswith("/culture") and path.endswith(".xml")
        )
        assert (b"Out of feeds" not in shown) == left_out
        current = {id(edition) for edition in after.editions.values()}
        for path, (edition, _) in after._feed_paths.items():
            assert id(edition) in current, path  # no edition of an earlier snapshot
            assert edition.spec == expected._feed_paths[path][0].spec, path
            assert after.feed(path).variants == expected.feed(path).variants, path
    assert b"Back in feeds" in shown


def test_a_second_change_within_its_second_is_served_from_the_next_and_nothing_sleeps(
    write_article, make_app
):
    write_article("culture", "one", title="First", date="2026-01-01")
    app = make_app()
    client = app.test_client()
    store = app.extensions["feedsvc"]
    client.get("/culture.xml")
    for _ in range(5):  # until both edits fall within one second
        time.sleep(1.0 - time.time() % 1.0)
        write_article("culture", "one", title="Edit A", date="2026-01-01")
        store.refresh(["culture/one.md"])
        shown = client.get("/culture.xml")
        write_article("culture", "one", title="Edit B", date="2026-01-01")
        served = store.refresh(["culture/one.md"], wait=False)
        if store._pending is not None:
            break
    else:
        pytest.fail("no two edits within one second")
    # Edit B waits for the next second to be served, and nothing waits holding the lock.
    assert not store._refresh_lock.locked()
    assert b"Edit A" in served.feed("/culture.xml").variants["identity"].body
    now = client.get("/culture.xml")
    if store._pending is not None:  # (unless the second turned meanwhile)
        assert now.data == shown.data and now.last_modified == shown.last_modified
    wait_until(lambda: b"Edit B" in client.get("/culture.xml").data, "edit B served")
    after = client.get("/culture.xml")
    assert after.last_modified.timestamp() == shown.last_modified.timestamp() + 1
    assert after.last_modified.timestamp() <= time.time()  # never ahead of the clock
    assert (
        client.get(
            "/culture.xml", headers={"If-Modified-Since": shown.headers["Last-Modified"]}
        ).status_code
        == 200
    )


@pytest.fixture
def small_chunks(monkeypatch):
    from feedsvc import chunks

    monkeypatch.setattr(chunks, "CHUNK", 4)


def test_chunked_articles_behave_as_the_tuple_of_their_items(small_chunks):
    from feedsvc.chunks import Chunked, ChunkedList

    listed = ChunkedList(key=lambda item: int(item.split()[1]))
    order = [7, 3, 9, 1, 5, 8, 2, 6, 4, 0, 11, 10]
    for key in order:
        listed.insert(f"item {key}")
    for key in (3, 11, 0):
        listed.remove(f"item {key}")
    expected = tuple(f"item {key}" for key in sorted(set(order) - {3, 11, 0}))
    made = listed.frozen()
    assert isinstance(made, Chunked)  # 9 items in chunks of at most 2 × CHUNK
    assert made == expected and expected == made and hash(made) == hash(expected)
    assert list(made) == list(expected) and list(reversed(made)) == list(reversed(expected))
    assert len(made) == len(expected) and listed.first_key() == 1
    assert [made[i] for i in range(-9, 9)] == [expected[i] for i in range(-9, 9)]
    for start in range(-10, 11):
        for stop in range(-10, 11):
            assert made[start:stop] == expected[start:stop]
            assert type(made[start:stop]) is tuple
    assert made[::2] == expected[::2] and made[::-1] == expected[::-1]
    with pytest.raises(IndexError):
        made[9]
    with pytest.raises(KeyError):
        listed.remove("item 3")
    assert listed.frozen() is made  # nothing changed: the same version
    for key in sorted(set(order) - {3, 11, 0}):
        listed.remove(f"item {key}")
    assert listed.frozen() == () and not listed


def test_an_edit_copies_the_chunk_it_changed_not_the_archive(
    write_stories, write_article, make_app, small_chunks
):
    """The site's articles and its listings share every chunk an edit left alone."""
    write_stories("culture", 40, tags=["Jazz"])
    write_stories("science", 40, first="2025-01-01T09:00:00+00:00")
    store = make_app().extensions["feedsvc"]
    before = store.snapshot()
    old = {name: before.listings[name].articles for name in ("feed", "culture", "tags/jazz")}
    old["site"] = before.site.articles
    assert [len(articles) for articles in old.values()] == [80, 40, 40, 80]
    newest = before.published("culture")[0]
    write_article(
        "culture", newest.slug, title="Edited", date=newest.date.isoformat(), tags=["Jazz"]
    )
    after = store.refresh([f"culture/{newest.slug}.md"])
    new = {name: after.listings[name].articles for name in ("feed", "culture", "tags/jazz")}
    new["site"] = after.site.articles
    for name, articles in new.items():
        assert articles != old[name] and articles[0].title == "Edited", name
        assert articles[1:] == old[name][1:], name
        kept = {id(chunk) for chunk in old[name]._chunks} & {id(c) for c in articles._chunks}
        assert len(kept) == len(articles._chunks) - 1, name  # all but the edited chunk
    assert after.listings["science"] is before.listings["science"]


def test_chunked_listings_publish_what_a_fresh_start_publishes(
    write_stories, write_article, make_app, content_dir, small_chunks
):
    write_stories("culture", 30, tags=["Jazz"])
    write_stories("science", 25, first="2025-06-01T09:00:00+00:00", tags=["Jazz"])
    store = make_app(FEED_ITEMS=7).extensions["feedsvc"]
    store.snapshot()
    slugs = sorted(a.slug for a in store.snapshot().published("culture"))
    edits = [  # the newest, one in the middle (an archive page), a new oldest, a removal
        ("culture", slugs[-1], {"title": "Retitled", "date": "2026-03-01T09:00:00+00:00"}),
        ("culture", slugs[10], {"title": "Moved", "date": "2024-01-01T09:00:00+00:00"}),
        ("science", "new-oldest", {"title": "Oldest", "date": "2023-01-01T09:00:00+00:00"}),
        ("culture", slugs[3], None),
    ]
    for section, slug, fields in edits:
        if fields is None:
            (content_dir / section / f"{slug}.md").unlink()
        else:
            write_article(section, slug, tags=["Jazz"], **fields)
        after = store.refresh([f"{section}/{slug}.md"])
        fresh = make_app(FEED_ITEMS=7, STATE_DIR=str(content_dir.parent / f"fresh-{slug}"))
        expected = fresh.extensions["feedsvc"].snapshot()
        assert after.site.articles == expected.site.articles
        assert after._feed_paths.keys() == expected._feed_paths.keys()
        for path in after._feed_paths:
            assert after.feed(path).variants == expected.feed(path).variants, path
        for name, listing in expected.listings.items():
            assert after.listings[name] == listing, name
