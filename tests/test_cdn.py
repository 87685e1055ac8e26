"""Behind a CDN: Debian's varnishd with deploy/varnish.vcl in front of a real feedsvc server.

The origin is a real HTTP server on 127.0.0.1 that counts what reaches it; clients only
ever talk to Varnish. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import pytest
from werkzeug.serving import make_server

from feedsvc import purge
from feedsvc.purge import Invalidation, invalidations
from feedsvc.settings import SettingsError
from tests import varnish
from tests.conftest import stop_process_group, wait_until
from tests.nginx import free_port

needs_varnish = pytest.mark.skipif(bool(varnish.missing()), reason=varnish.missing() or "-")

NEWSBOAT = shutil.which("newsboat")
HOURS = 3 * 3600
GZIP = {"Accept-Encoding": "gzip"}


@dataclass
class Origin:
    """A feedsvc server on 127.0.0.1 that records each request reaching it."""

    port: int
    seen: list[tuple[str, str, int, str]] = field(default_factory=list)  # method, path, status, INM
    stop: Callable[[], None] = lambda: None

    def count(self, path: str, method: str = "GET") -> int:
        return sum(1 for m, p, _, _ in self.seen if (m, p) == (method, path))

    def statuses(self, path: str) -> list[tuple[int, str]]:
        return [(status, inm) for _, p, status, inm in self.seen if p == path]


def counting(app, seen: list) -> Callable:
    """Wrap a WSGI app so each request (but the edge's health checks) is recorded."""

    def wsgi(environ, start_response):
        def start(status, headers, *args):
            if environ.get("PATH_INFO") != "/healthz":
                seen.append(
                    (
                        environ["REQUEST_METHOD"],
                        environ.get("PATH_INFO", ""),
                        int(status.split()[0]),
                        environ.get("HTTP_IF_NONE_MATCH", ""),
                    )
                )
            return start_response(status, headers, *args)

        return app(environ, start_response=start)

    return wsgi


@dataclass
class Edge:
    """Varnish on 127.0.0.1:port in front of `origin`; `url` is the site's public address."""

    port: int
    origin: Origin
    work: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **headers) -> tuple[int, http.client.HTTPMessage, bytes]:
        return request(self.port, "GET", path, headers)


def request(port: int, method: str, path: str, headers: dict, source: str = "127.0.0.1"):
    """Send one request to 127.0.0.1:port from address `source` on a fresh connection."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.fixture
def edge(make_app, tmp_path):
    """Start feedsvc and Varnish in front of it; `edge(**config)` returns the Edge."""
    stops = []

    def start(purge: bool = True, **config) -> Edge:
        port, origin_port = free_port(), free_port()
        settings = {"SITE_URL": f"http://127.0.0.1:{port}", "EDGE_MAX_AGE": HOURS, **config}
        if purge:
            settings["PURGE_URLS"] = f"http://127.0.0.1:{port}"
        origin = Origin(origin_port)
        app = counting(make_app(**settings), origin.seen)
        server = make_server("127.0.0.1", origin_port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()

        def stop_origin():
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

        origin.stop = stop_origin
        stops.append(stop_origin)
        work = tmp_path / "varnish"
        work.mkdir()
        log_path = work / "varnishd.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                varnish.varnishd_argv(work, port, origin_port),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        stops.append(lambda: stop_process_group(process))
        varnish.wait_for_varnish(port, process, log_path)
        return Edge(port, origin, work)

    yield start
    for stop in reversed(stops):
        with contextlib.suppress(OSError):
            stop()


@pytest.fixture
def story(write_section, write_article, backdate):
    write_section("culture", "Culture")
    write_article("culture", "story", "The quartet played.", title="Story", tags=["Music"])
    write_article("culture", "older", title="Older", date="2026-01-01T09:00:00Z")
    backdate()


# --- without Varnish: the headers, what a publish purges, and who sends it --------------


def test_edge_headers_only_when_an_edge_lifetime_is_set(story, client_factory):
    plain = client_factory().get("/culture.xml")
    assert "Surrogate-Control" not in plain.headers and "xkey" not in plain.headers
    client = client_factory(EDGE_MAX_AGE=HOURS, FEED_ITEMS=1)
    feed = client.get("/culture.xml")
    steady = f"max-age={HOURS}, stale-while-revalidate=30, stale-if-error=86400"
    assert feed.headers["Cache-Control"] == "public, max-age=300"
    assert feed.headers["Surrogate-Control"] == feed.headers["CDN-Cache-Control"] == steady
    assert feed.headers["xkey"] == feed.headers["Surrogate-Key"] == "feed:culture"
    # The 304 that revalidates an edge's copy renews its lifetime too.
    again = client.get("/culture.xml", headers={"If-None-Match": feed.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Surrogate-Control"] == steady
    expected = {
        "/culture/story/": "article:culture/story site",
        "/culture/": "list:culture site",
        "/": "list:feed site",
        "/tags/music/": "list:tags/music site",
        "/feeds.opml": "feed:feeds",
        "/feed/archive/1.json": "feed:feed/archive/1",
        "/culture/nowhere/": None,  # a 404 says nothing to the edge
    }
    for path, keys in expected.items():
        for _ in range(2):  # rendered by Flask, then answered from the snapshot
            answer = client.get(path)
            assert answer.headers.get("xkey") == keys, path


def test_edge_lifetime_never_runs_past_a_release(story, write_article, client_factory):
    release = int(time.time()) + 100
    write_article("culture", "due", title="Due", date=datetime.fromtimestamp(release, UTC))
    client = client_factory(EDGE_MAX_AGE=HOURS)
    for path in ("/culture.xml", "/culture/"):
        control = client.get(path).headers["Surrogate-Control"]
        lifetime = int(control.split("max-age=")[1].split(",")[0])
        assert 90 <= lifetime <= 100 and "stale-while-revalidate" not in control, control


@pytest.mark.parametrize(
    ("key", "value"),
    [("PURGE_URLS", "ftp://127.0.0.1"), ("PURGE_URLS", "127.0.0.1:6081"), ("EDGE_MAX_AGE", "-1")],
)
def test_settings_are_checked(make_app, key, value):
    with pytest.raises(SettingsError, match=f"FEEDSVC_{key}"):
        make_app(**{key: value})


def test_settings_take_several_endpoints(make_app):
    app = make_app(PURGE_URLS="http://127.0.0.1:6081/, http://127.0.0.1:6082")
    endpoints = app.extensions["feedsvc"].settings.purge_urls
    assert endpoints == ("http://127.0.0.1:6081", "http://127.0.0.1:6082")


def test_invalidations_of_an_edit(story, write_article, make_app):
    store = make_app().extensions["feedsvc"]
    before = store.snapshot()
    write_article("culture", "story", "The quartet played.", title="Edited", tags=["Music"])
    after = store.refresh(["culture/story.md"])
    found = invalidations(before, after, store.settings)
    paths = {item.path for item in found if item.path}
    feeds = ("feed", "culture", "tags/music", "authors/gazette-staff")
    assert paths == {f"/{name}.{ext}" for name in feeds for ext in ("xml", "atom", "json")}
    assert [item.key for item in found if item.key] == [
        "list:authors/gazette-staff",
        "list:culture",
        "list:feed",
        "list:tags/music",
        "article:culture/story",
    ]


def test_invalidations_of_a_new_section_and_a_removal(story, write_article, make_app, content_dir):
    store = make_app(SITE_URL="https://example.org/news").extensions["feedsvc"]
    before = store.snapshot()
    (content_dir / "culture" / "older.md").unlink()
    write_article("science", "eels", title="Eels")
    after = store.refresh(None)
    found = invalidations(before, after, store.settings)
    assert Invalidation(key="site") in found  # the navigation of every page changed
    assert Invalidation(path="/news/science.xml") in found
    assert Invalidation(path="/news/feeds.opml") in found
    assert not any(item.key.startswith("article:") for item in found)


@dataclass
class StandInCache:
    """Records each PURGE as (path, xkey, Host); answers 200, or 503 for the first `fail`."""

    port: int = 0
    purges: list[tuple[str, str, str]] = field(default_factory=list)
    fail: int = 0
    delay: float = 0.0
    answered: list[float] = field(default_factory=list)  # time.monotonic() of each answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def stand_in_cache():
    cache = StandInCache()

    class Handler(BaseHTTPRequestHandler):
        def do_PURGE(self):
            cache.purges.append((self.path, self.headers.get("xkey", ""), self.headers["Host"]))
            failing = len(cache.purges) <= cache.fail
            time.sleep(cache.delay)
            self.send_response(503 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            cache.answered.append(time.monotonic())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    cache.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield cache
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_purges_go_to_every_endpoint_once_per_change(
    story, write_article, make_app, stand_in_cache, hub, monkeypatch
):
    first, second = stand_in_cache, StandInCache()
    second.port = free_port()  # nothing listens: its purges fail and are retried
    monkeypatch.setattr(purge, "IDLE_WAIT", 0.2)  # how long pings wait for the purges
    endpoints = f"{first.url} {second.url}"
    apps = [make_app(PURGE_URLS=endpoints, WEBSUB_HUB=hub[0]) for _ in range(2)]
    stores = [app.extensions["feedsvc"] for app in apps]
    for store in stores:
        store.snapshot()
    write_article("culture", "story", "The quartet played.", title="Edited", tags=["Music"])
    for store in stores:  # two workers publish the same change; one holds the lock
        store.refresh(["culture/story.md"])
    wait_until(lambda: len(first.purges) >= 17, "the purges")
    time.sleep(0.3)
    assert len(first.purges) == 17, first.purges  # 12 feed URLs, 5 keys: once each
    assert {host for *_, host in first.purges} == {"news.example.org"}
    assert ("/culture.atom", "", "news.example.org") in first.purges
    assert ("/", "article:culture/story", "news.example.org") in first.purges
    wait_until(lambda: len(hub[1]) >= 12, "the hub pings")  # the same lock holder pings


def test_the_hub_is_pinged_once_the_caches_dropped_the_old_feed(
    story, write_article, make_app, stand_in_cache, hub
):
    stand_in_cache.delay = 0.05  # the hub would otherwise fetch the feed from the edge first
    arrived = []
    store = make_app(PURGE_URLS=stand_in_cache.url, WEBSUB_HUB=hub[0]).extensions["feedsvc"]
    store.snapshot()
    write_article("culture", "story", "The quartet played.", title="Edited", tags=["Music"])
    store.refresh(["culture/story.md"])
    wait_until(lambda: hub[1] and arrived.append(time.monotonic()) is None, "the first ping")
    assert len(stand_in_cache.answered) == 17  # every purge was answered before any ping
    assert max(stand_in_cache.answered) < arrived[0]


def test_a_failed_purge_is_retried(story, write_article, make_app, stand_in_cache):
    stand_in_cache.fail = 1
    store = make_app(PURGE_URLS=stand_in_cache.url).extensions["feedsvc"]
    store.snapshot()
    write_article("culture", "story", "The quartet played.", title="Edited", tags=["Music"])
    store.refresh(["culture/story.md"])
    wait_until(lambda: len(stand_in_cache.purges) >= 18, "every purge and one retry")
    first_path = stand_in_cache.purges[0][:2]
    assert stand_in_cache.purges.count((*first_path, "news.example.org")) == 2


@needs_varnish
def test_feeds_and_pages_are_served_from_the_edge(story, edge):
    cdn = edge()
    paths = ["/culture.xml", "/feed.atom", "/culture/story/", "/culture/", "/feeds.opml"]
    for _ in range(20):
        for path in paths:
            status, headers, _ = cdn.get(path, **GZIP)
            assert status == 200
    for path in paths:
        assert cdn.origin.count(path) == 1, (path, cdn.origin.seen)
    status, headers, body = cdn.get("/culture.xml", **GZIP)
    # Readers are told what they were told before; the edge's own headers stay at the edge.
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["Content-Encoding"] == "gzip"
    for name in ("Surrogate-Control", "CDN-Cache-Control", "xkey", "Surrogate-Key"):
        assert name not in headers
    direct = request(cdn.origin.port, "GET", "/culture.xml", GZIP)
    assert (headers["ETag"], headers["Last-Modified"], body) == (
        direct[1]["ETag"],
        direct[1]["Last-Modified"],
        direct[2],
    )
    assert direct[1]["Surrogate-Control"].startswith(f"max-age={HOURS},")


@needs_varnish
def test_each_encoding_is_its_own_object_with_its_own_etag(story, edge):
    cdn = edge()
    tags = set()
    for accept in ("br", "gzip, deflate", "", "gzip;q=0, identity", "br;q=0, gzip"):
        for _ in range(3):
            status, headers, _ = cdn.get("/culture.xml", **{"Accept-Encoding": accept})
            assert status == 200
        tags.add((headers.get("Content-Encoding"), headers["ETag"]))
    assert len(tags) == 3
    assert cdn.origin.count("/culture.xml") == 3


@needs_varnish
def test_an_edit_is_visible_through_the_edge_at_once(story, edge, write_article):
    cdn = edge(WATCH_CONTENT=True)
    watched = ["/culture.xml", "/feed.json", "/culture/story/", "/culture/", "/", "/tags/music/"]
    for path in watched:
        assert b"Story" in cdn.get(path)[2]
    write_article("culture", "story", "The quartet played.", title="Edited", tags=["Music"])
    written = time.monotonic()
    for path in watched:
        wait_until(lambda path=path: b"Edited" in cdn.get(path)[2], f"the edit at {path}")
    seen_after = time.monotonic() - written
    # The edge would keep its copies for three hours: only a purge shows the edit.
    assert seen_after < 5.0, seen_after
    # Unchanged documents stay at the edge: /older/ was not purged.
    cdn.get("/culture/older/")
    cdn.get("/culture/older/")
    assert cdn.origin.count("/culture/older/") == 1


@needs_varnish
def test_a_scheduled_article_appears_through_the_edge_on_time(story, edge, write_article):
    release = int(time.time()) + 6  # time for the edge and the origin to start on a busy machine
    when = datetime.fromtimestamp(release, UTC).isoformat()
    write_article("culture", "due", title="Due Now", date=when)
    cdn = edge(purge=False, WATCH_CONTENT=True)  # no purge: the edge lifetime alone
    assert b"Due Now" not in cdn.get("/culture.xml")[2]
    direct = request(cdn.origin.port, "GET", "/culture.xml", {})[1]
    assert int(direct["Surrogate-Control"].split("max-age=")[1].split(",")[0]) <= 6
    assert "stale-while-revalidate" not in direct["Surrogate-Control"]
    seen = wait_until(
        lambda: b"Due Now" in cdn.get("/culture.xml")[2] and time.time(), "the release"
    )
    assert release <= seen < release + 3


@needs_varnish
def test_the_edge_serves_through_an_origin_outage(story, edge):
    cdn = edge(EDGE_MAX_AGE=1)
    paths = ["/culture.xml", "/culture/story/"]
    first = {path: cdn.get(path, **GZIP) for path in paths}
    cdn.origin.stop()
    time.sleep(1.5)  # every copy is past its edge lifetime now
    for _ in range(3):  # before and after the edge's health checks notice
        for path, (_, headers, body) in first.items():
            status, again, stale = cdn.get(path, **GZIP)
            assert (status, stale) == (200, body), path
            status, again, empty = cdn.get(path, **GZIP, **{"If-None-Match": headers["ETag"]})
            assert (status, empty) == (304, b"")
            assert again["ETag"] == headers["ETag"]
            since = {"If-Modified-Since": headers["Last-Modified"]}
            assert cdn.get(path, **GZIP, **since)[0] == 304
        time.sleep(1.5)


@needs_varnish
def test_the_edge_revalidates_with_the_origin_by_304(story, edge):
    cdn = edge(EDGE_MAX_AGE=1)
    _, headers, body = cdn.get("/culture.xml", **GZIP)
    time.sleep(1.5)  # past its edge lifetime: the next request has it fetched again
    wait_until(
        lambda: cdn.get("/culture.xml", **GZIP) and len(cdn.origin.statuses("/culture.xml")) >= 2,
        "a revalidation",
    )
    first, second = cdn.origin.statuses("/culture.xml")[:2]
    assert first == (200, "")
    assert second == (304, headers["ETag"])
    status, again, same = cdn.get("/culture.xml", **GZIP)
    assert (status, again["ETag"], same) == (200, headers["ETag"], body)


@needs_varnish
def test_purge_is_refused_from_other_addresses(story, edge):
    cdn = edge()
    cdn.get("/culture.xml")
    # A real connection from another loopback address, to 127.0.0.1 as always.
    outsider = "127.0.0.2"
    assert request(cdn.port, "PURGE", "/culture.xml", {}, outsider)[0] == 403
    assert request(cdn.port, "PURGE", "/", {"xkey": "feed:culture"}, outsider)[0] == 403
    cdn.get("/culture.xml")
    assert cdn.origin.count("/culture.xml") == 1
    assert request(cdn.port, "PURGE", "/", {"xkey": "feed:culture"})[0] == 200
    cdn.get("/culture.xml")
    assert cdn.origin.count("/culture.xml") == 2


@needs_varnish
def test_a_page_is_purged_by_its_key(story, edge):
    cdn = edge()
    pages = ["/culture/story/", "/culture/", "/tags/music/", "/", "/culture/older/"]
    for path in pages:
        cdn.get(path)
    status, _, body = request(cdn.port, "PURGE", "/", {"xkey": "article:culture/story"})
    assert (status, b"Purged 1" in body) == (200, True), body
    for path in pages:
        cdn.get(path)
    assert [cdn.origin.count(path) for path in pages] == [2, 1, 1, 1, 1]


def log_text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@needs_varnish
@pytest.mark.skipif(NEWSBOAT is None, reason="newsboat is not installed (apt-get install newsboat)")
def test_newsboat_gets_304s_from_the_edge(story, edge, tmp_path):
    cdn = edge()
    log_path = tmp_path / "edge.log"
    ncsa = subprocess.Popen(
        [
            varnish.VARNISHNCSA,
            "-n",
            str(cdn.work / "instance"),
            "-F",
            "%m %U %s %{If-None-Match}i",
            "-w",
            str(log_path),
        ],
        start_new_session=True,
    )
    try:
        # varnishncsa attaches to the running instance: wait until it logs a request.
        wait_until(
            lambda: cdn.get("/ncsa-ready") and "/ncsa-ready" in log_text(log_path),
            "varnishncsa logging",
            interval=0.2,
        )
        (tmp_path / "urls").write_text(f"{cdn.url}/culture.atom\n")
        cache = tmp_path / "cache.db"
        for _ in range(3):
            subprocess.run(
                [NEWSBOAT, "-u", tmp_path / "urls", "-c", cache, "-C", "/dev/null", "-x", "reload"],
                check=True,
                timeout=60,
                capture_output=True,
            )

        def reloads() -> list[list[str]]:
            lines = log_text(log_path).splitlines()
            return [line.split(" ", 3) for line in lines if "/culture.atom" in line]

        answers = wait_until(lambda: len(reloads()) >= 3 and reloads(), "the log of 3 reloads")
    finally:
        stop_process_group(ncsa)
    # newsboat keeps the validators from its second reload on; the edge answers them.
    conditional = [status for _, _, status, inm in answers if inm != "-"]
    assert conditional and set(conditional) == {"304"}, answers
    assert answers[-1][2] == "304", answers
    assert cdn.origin.count("/culture.atom") == 1
    with sqlite3.connect(cache) as db:
        assert sorted(title for (title,) in db.execute("SELECT title FROM rss_item")) == [
            "Older",
            "Story",
        ]
    assert feedparser.parse(cdn.get("/culture.atom")[2]).bozo == 0


@needs_varnish
@pytest.mark.parametrize("settings", [{"EDGE_MAX_AGE": 1}, {"EDGE_MAX_AGE": 0, "FEED_MAX_AGE": 1}])
def test_an_expired_copy_is_revalidated_by_304(story, edge, settings):
    cdn = edge(**settings)
    headers = cdn.get("/culture.xml", **GZIP)[1]
    for _ in range(3):
        time.sleep(1.5)
        cdn.get("/culture.xml", **GZIP)
    time.sleep(0.5)
    seen = cdn.origin.statuses("/culture.xml")
    assert seen[0] == (200, "")
    assert set(seen[1:]) == {(304, headers["ETag"])}, seen
