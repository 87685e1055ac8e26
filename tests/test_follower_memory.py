"""A worker that follows holds no site: it answers the publisher's feeds from the index.

Every worker serves the same bytes, ETag and Last-Modified; a follower asks the publisher
for the rest (a page, a tag feed) rather than load the site, and becomes the publisher,
losing nothing, when the publisher dies.
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import signal
import types

import brotli

from feedsvc.models import Article
from feedsvc.responses import IDENTITY
from tests.conftest import free_port, wait_until
from tests.test_publisher import children, everywhere, get, granian, validators, write_site

# Every site and section feed of the content below, in each format: what a follower answers.
SUBSCRIPTIONS = [
    f"/{name}.{ext}" for name in ("feed", "culture", "news") for ext in ("xml", "atom", "json")
]
# What a follower asks the publisher for: pages, a tag feed, the OPML file.
SITE_ONLY = ["/", "/culture/", "/culture/story-1/", "/tags/bridge.xml", "/feeds.opml"]


def write_two_sections(write_article, backdate) -> None:
    write_site(write_article, backdate)  # culture: story-0 … story-2
    write_article("culture", "story-1", title="Story 1", date="2026-01-02", tags=["Bridge"])
    write_article("news", "brief", title="A brief", date="2026-01-05", tags=["Bridge"])
    backdate()


def roles(port: int, tries: int = 16) -> dict[int, tuple[str, str]]:
    """Return (role, what it serves from) by worker pid, as /healthz says."""
    seen = {}
    for _ in range(tries):
        report = json.loads(get(port, "/healthz")[2])["publishing"]
        seen[report["pid"]] = (report["role"], report["serving"])
    return seen


def held_articles(root: object) -> int:
    """Count the Article objects reachable from `root` through its data (not through code)."""
    skipped = (type, types.ModuleType, types.FunctionType, types.MethodType, types.CodeType)
    seen, stack, count = set(), [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skipped):
            continue
        seen.add(id(obj))
        if isinstance(obj, Article):
            count += 1
            continue
        stack.extend(gc.get_referents(obj))
    return count


def test_every_worker_answers_alike_and_a_follower_holds_no_site(
    write_article, backdate, content_dir, tmp_path
):
    write_two_sections(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    with granian(free_port(), content_dir, state, log, WATCH_CONTENT="true") as (port, _):
        wait_until(lambda: len(roles(port)) == 2, "both workers answering")
        assert sorted(roles(port).values()) == [("follower", "index"), ("publisher", "live")]
        before = {path: validators(port, path) for path in SUBSCRIPTIONS}

        write_article("culture", "story-1", title="Story 1, corrected", date="2026-01-02")
        wait_until(lambda: everywhere(port, "/culture.atom", b"Story 1, corrected"), "the edit")
        after = {path: validators(port, path) for path in SUBSCRIPTIONS}  # one answer each
        assert after["/culture.atom"][:2] != before["/culture.atom"][:2]
        assert after["/news.atom"] == before["/news.atom"]  # untouched: same validators
        assert sorted(roles(port).values()) == [("follower", "index"), ("publisher", "live")]

        # A page, a tag feed, the OPML file: the follower asks the publisher, and agrees.
        for path in SITE_ONLY:
            validators(port, path, tries=12)
        assert sorted(roles(port).values()) == [("follower", "index"), ("publisher", "live")]
        assert {path: validators(port, path) for path in SUBSCRIPTIONS} == after


def test_a_restarted_follower_answers_from_the_index_at_once(
    write_article, backdate, content_dir, tmp_path
):
    write_two_sections(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    address = free_port()
    with granian(address, content_dir, state, log, WATCH_CONTENT="true") as (port, _):
        before = {path: validators(port, path) for path in SUBSCRIPTIONS}
    with granian(address, content_dir, state, log, WATCH_CONTENT="true") as (port, _):
        assert {path: validators(port, path) for path in SUBSCRIPTIONS} == before
        wait_until(lambda: ("follower", "index") in roles(port).values(), "a follower")
        live = [role for role, serving in roles(port).values() if serving == "live"]
        assert live == ["publisher"]


def test_a_killed_publisher_is_replaced_by_a_follower_with_nothing_lost(
    write_article, backdate, content_dir, tmp_path
):
    write_two_sections(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    options = ("--respawn-failed-workers",)
    with granian(free_port(), content_dir, state, log, *options, WATCH_CONTENT="true") as (
        port,
        server,
    ):
        wait_until(lambda: len(roles(port)) == 2, "both workers answering")
        found = roles(port)
        assert sorted(found.values()) == [("follower", "index"), ("publisher", "live")]
        victim = next(pid for pid, (role, _) in found.items() if role == "publisher")
        for n in range(50):
            write_article("news", f"batch-{n:02}", title=f"Batch {n}", date="2026-02-01")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in children(server.pid), "the publisher gone")
        status, _, body = get(port, "/feed.json")  # meanwhile: a whole publication
        assert status == 200 and json.loads(body)["items"]
        wait_until(lambda: everywhere(port, "/news.atom", b"Batch 49"), "the batch", deadline=30)
        wait_until(
            lambda: (
                [role for role, _ in roles(port).values()].count("publisher") == 1
                and len(roles(port)) == 2
            ),
            "one publisher and a respawned follower",
            deadline=30,
        )
        write_article("culture", "story-2", title="After the takeover", date="2026-01-03")
        wait_until(lambda: everywhere(port, "/culture.xml", b"After the takeover"), "a later edit")
        for path in SUBSCRIPTIONS:
            validators(port, path, tries=12)
        # The follower took over, or the respawned worker found the lock free first.
        assert log.read_text().count("takes over publishing") <= 1


def test_a_follower_holds_no_article_until_the_site_is_asked_for(write_article, backdate, make_app):
    write_two_sections(write_article, backdate)
    publisher = make_app(WATCH_CONTENT=True)
    publisher_client = publisher.test_client()
    assert publisher_client.get("/culture.atom").status_code == 200
    follower = make_app(WATCH_CONTENT=True)
    store, client = follower.extensions["feedsvc"], follower.test_client()

    def same_answers() -> bool:
        return all(
            (a.data, a.headers["ETag"], a.headers["Last-Modified"])
            == (b.data, b.headers["ETag"], b.headers["Last-Modified"])
            for a, b in ((publisher_client.get(p), client.get(p)) for p in SUBSCRIPTIONS)
        )

    assert same_answers()
    assert store.role()["serving"] == "index"
    assert held_articles(store) == 0
    # What it keeps: the subscription feeds of one publication (and one due next).
    assert sorted(store.stored_publication().documents) == sorted(SUBSCRIPTIONS)

    untouched = store.stored_publication().documents["/culture.atom"]
    write_article("news", "later", title="Later news", date="2026-01-09")
    wait_until(lambda: b"Later news" in client.get("/news.atom").data, "the edit followed")
    wait_until(same_answers, "the same answers as the publisher")
    assert held_articles(store) == 0
    # A feed the edit left alone is the same answer, its compressed codings made once.
    assert store.stored_publication().documents["/culture.atom"] is untouched

    for path in SITE_ONLY:  # the publisher's answers, not a site of its own
        mine, theirs = client.get(path), publisher_client.get(path)
        assert (mine.data, mine.headers["ETag"]) == (theirs.data, theirs.headers["ETag"])
    assert store.role()["serving"] == "index"
    assert held_articles(store) == 0
    assert same_answers()


def test_a_follower_holds_its_feeds_compressed_only_and_answers_every_coding_alike(
    write_article, backdate, make_app
):
    write_two_sections(write_article, backdate)
    publisher = make_app(WATCH_CONTENT=True).test_client()
    assert publisher.get("/culture.atom").status_code == 200
    follower = make_app(WATCH_CONTENT=True)
    store, client = follower.extensions["feedsvc"], follower.test_client()
    compressed = dict.fromkeys(SUBSCRIPTIONS, 0)
    for path in SUBSCRIPTIONS:
        for coding in ("", "gzip", "br"):
            for method in ("GET", "HEAD"):
                mine, theirs = (
                    side.open(path, method=method, headers={"Accept-Encoding": coding})
                    for side in (client, publisher)
                )
                assert (mine.status_code, mine.data, mine.headers.to_wsgi_list()) == (
                    theirs.status_code,
                    theirs.data,
                    theirs.headers.to_wsgi_list(),
                )
            if coding:  # the compressed body's length, as the HEAD said
                compressed[path] += int(theirs.headers["Content-Length"])
    assert store.role()["serving"] == "index"
    # What it keeps of each feed, once packed: the gzip and brotli bytes sent, not the plain.
    held = store.stored_publication().documents
    wait_until(
        lambda: {path: held[path].variants.held_bytes() for path in SUBSCRIPTIONS} == compressed,
        "the feeds packed",
    )
    assert all(client.get(path).data == publisher.get(path).data for path in SUBSCRIPTIONS)


def test_the_publisher_holds_its_feeds_compressed_only_once_read_and_answers_alike(
    write_article, backdate, make_app
):
    """As a follower does, once a reader asks for gzip: a feed nobody asks for keeps its
    plain bytes rather than cost a compression on every edit."""
    write_two_sections(write_article, backdate)
    app = make_app(WATCH_CONTENT=True)
    store, client = app.extensions["feedsvc"], app.test_client()
    first = {path: client.get(path) for path in SUBSCRIPTIONS}
    snapshot = store.snapshot()
    held = [snapshot.feed(path) for path in SUBSCRIPTIONS]
    assert all(rep.variants.keeps(IDENTITY) for rep in held)  # no reader asked for gzip

    for path in SUBSCRIPTIONS:
        zipped = client.get(path, headers={"Accept-Encoding": "gzip"})
        plain = client.get(path)
        assert (plain.data, plain.headers["ETag"]) == (
            first[path].data,
            first[path].headers["ETag"],
        )
        assert plain.headers["Last-Modified"] == first[path].headers["Last-Modified"]
        assert gzip.decompress(zipped.data) == plain.data
        squeezed = client.get(path, headers={"Accept-Encoding": "br"})
        assert brotli.decompress(squeezed.data) == plain.data
        assert len({plain.headers["ETag"], zipped.headers["ETag"], squeezed.headers["ETag"]}) == 3
    # Kept: the gzip and brotli bytes sent, not the plain ones.
    assert not any(rep.variants.keeps(IDENTITY) for rep in held)
    assert all(rep.variants.held_bytes() < rep.variants.size() for rep in held)
