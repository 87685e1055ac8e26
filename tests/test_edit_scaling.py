"""An edit costs what it changed, in the publisher and in every follower (issue 11).

The publisher describes again only the listings an edit touched, in copies of the previous
specs, editions and URL map; a follower takes up a publication the same way, finding the
changed file states by generation. These tests prove the behaviour (what is kept, what
is written when, that everything equals a fresh start); the speed is measured in
bench/publisher_bench.py.
"""

from __future__ import annotations

import sqlite3

import pytest

from feedsvc import index as index_module
from feedsvc.addresses import OPML_PATH

SECTIONS = ("culture", "science")


@pytest.fixture
def site(write_article):
    """Two sections of nine articles each, with tags and authors, two items per feed page."""
    for day in range(1, 10):
        for section in SECTIONS:
            write_article(
                section,
                f"story-{day}",
                title=f"{section} {day}",
                date=f"2026-01-0{day}",
                tags=["Jazz", "Folk"][: 1 + day % 2] if section == "culture" else ["Space"],
                author=f"Writer {day % 3}",
            )


def _documents(snapshot) -> dict[str, tuple]:
    """Every feed and document of a snapshot: bytes, ETag and Last-Modified."""
    found = {}
    for path in sorted(snapshot._feed_paths):
        rep = snapshot.feed(path)
        found[path] = (rep.variants["identity"].body, rep.variants["identity"].etag)
        found[path] += (rep.last_modified,)
    for path, rep in snapshot.documents.items():
        found[path] = (rep.variants["identity"].body, rep.variants["identity"].etag)
        found[path] += (rep.last_modified,)
    return found


def _bodies(snapshot) -> dict[str, bytes]:
    return {path: parts[0] for path, parts in _documents(snapshot).items()}


def _pair(make_app):
    """A publisher and a follower serving the same content from one state folder."""
    publisher = make_app(FEED_ITEMS=2, WATCH_CONTENT=True).extensions["feedsvc"]
    publisher.snapshot()
    follower = make_app(FEED_ITEMS=2, WATCH_CONTENT=True).extensions["feedsvc"]
    follower.snapshot()
    assert (publisher.following, follower.following) == (False, True)
    return publisher, follower


def test_a_follower_takes_up_each_edit_as_the_publisher_and_a_fresh_start_have_it(
    site, write_article, make_app, content_dir, tmp_path
):
    publisher, follower = _pair(make_app)
    edits = [
        ("retitle", "culture/story-5.md", {"title": "Retitled", "date": "2026-01-05"}),
        ("retag", "culture/story-9.md", {"title": "Retagged", "tags": ["Blues"]}),
        ("add", "science/story-10.md", {"title": "Added", "date": "2026-01-10"}),
        ("remove", "culture/story-2.md", None),
    ]
    for label, rel, fields in edits:
        if fields is None:
            (content_dir / rel).unlink()
        else:
            section, slug = rel[:-3].split("/")
            fields.setdefault("date", f"2026-01-0{slug[-1]}")
            write_article(section, slug, **fields)
        published = publisher.refresh([rel])
        followed = follower.follow()
        assert follower.role()["generation"] == publisher.role()["generation"], label
        assert _documents(followed) == _documents(published), label
        assert list(followed.editions) == list(published.editions), label
        fresh = make_app(FEED_ITEMS=2, STATE_DIR=str(tmp_path / f"fresh-{len(label)}-{label}"))
        assert _bodies(followed) == _bodies(fresh.extensions["feedsvc"].snapshot()), label


def test_an_edit_keeps_every_edition_spec_and_document_it_did_not_touch(
    site, write_article, make_app
):
    publisher, follower = _pair(make_app)
    befores = [store.snapshot() for store in (publisher, follower)]
    write_article(
        "culture",
        "story-9",
        title="Only the title",
        date="2026-01-09",
        tags=["Jazz", "Folk"],
        author="Writer 0",
    )
    publisher.refresh(["culture/story-9.md"])
    afters = [publisher.snapshot(), follower.follow()]
    for before, after in zip(befores, afters, strict=True):
        changed = {
            name for name, edition in after.editions.items() if before.editions[name] is not edition
        }
        # The feeds that hold the article: the site's, its section's, its tags' and author's,
        # and the archive page it is on.
        holding = {
            name
            for name, edition in after.editions.items()
            if ("culture", "story-9") in {a.key for a in edition.spec.articles}
        }
        assert {"feed", "culture", "tags/jazz", "tags/folk", "authors/writer-0"} <= holding
        assert changed == holding
        assert after.editions.specs["science"] is before.editions.specs["science"]
        assert all(
            after.editions.specs[name] is before.editions.specs[name]
            for name in after.editions
            if name not in changed
        )
        assert after.listings["science"] is before.listings["science"]
        for path, (edition, _) in after._feed_paths.items():
            assert edition is after.editions[edition.spec.path_stem or edition.spec.name], path
        # No feed came or went: /feeds.opml is the very same document.
        assert after.documents[OPML_PATH] is before.documents[OPML_PATH]


def test_a_new_tag_lists_its_feed_in_the_opml_and_everything_else_as_a_fresh_start(
    site, write_article, make_app, tmp_path
):
    publisher, follower = _pair(make_app)
    opml = publisher.snapshot().documents[OPML_PATH]
    write_article("science", "story-9", title="New tag", date="2026-01-09", tags=["Comets"])
    published = publisher.refresh(["science/story-9.md"])
    followed = follower.follow()
    assert published.documents[OPML_PATH] is not opml
    assert b"Comets" in published.documents[OPML_PATH].variants["identity"].body
    assert _documents(followed) == _documents(published)
    fresh = make_app(FEED_ITEMS=2, STATE_DIR=str(tmp_path / "fresh"))
    assert _bodies(published) == _bodies(fresh.extensions["feedsvc"].snapshot())


def test_a_publication_is_written_in_one_transaction_that_a_follower_sees_whole(
    site, write_article, make_app, monkeypatch
):
    publisher = make_app(FEED_ITEMS=2).extensions["feedsvc"]  # no watcher to write meanwhile
    publisher.snapshot()
    database = publisher.settings.state_dir / index_module.INDEX_NAME

    def stored() -> tuple:
        """What another process reads now: the generation and the site feed's validator."""
        with sqlite3.connect(database) as conn:
            generation = conn.execute("SELECT value FROM meta WHERE key = 'generation'")
            validator = conn.execute("SELECT moment FROM validators WHERE path = '/feed.xml'")
            document = conn.execute("SELECT key FROM documents WHERE path = '/feed.xml'")
            return generation.fetchone(), validator.fetchone(), document.fetchone()

    before = stored()
    transactions = []
    seen_before_save = []
    immediate = index_module._immediate
    save = index_module.ContentIndex.save

    def counting(conn):
        transactions.append(conn)
        return immediate(conn)

    def saving(self, *args, **kwargs):
        seen_before_save.append(stored())
        return save(self, *args, **kwargs)

    monkeypatch.setattr(index_module, "_immediate", counting)
    monkeypatch.setattr(index_module.ContentIndex, "save", saving)
    write_article("culture", "story-9", title="Newest, retitled", date="2026-01-09")
    publisher.refresh(["culture/story-9.md"])
    # Rendered feeds and their validators were held until the save, and written with it.
    assert seen_before_save == [before]
    assert len(transactions) == 1
    after = stored()
    assert all(new != old for new, old in zip(after, before, strict=True))


def test_a_follower_finds_what_changed_by_generation_not_by_reading_every_state(site, make_app):
    publisher, _ = _pair(make_app)
    database = publisher.settings.state_dir / index_module.INDEX_NAME
    with sqlite3.connect(database) as conn:
        for table in ("files", "gone"):
            plan = conn.execute(
                f"EXPLAIN QUERY PLAN SELECT rel FROM {table} WHERE generation > 1"
            ).fetchall()
            assert f"{table}_by_generation" in str(plan), plan
