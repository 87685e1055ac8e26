"""Memory stays bounded: caches count what they really hold; a crawl gives back what it frees."""

from __future__ import annotations

import gc
import http.client
import os
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from feedsvc import heap
from feedsvc.bounded import BoundedCache
from feedsvc.responses import BROTLI, GZIP, IDENTITY, build_representation
from tests.conftest import free_port, stop_process_group, wait_until
from tests.test_publisher import GRANIAN, PROJECT_ROOT, children

GLIBC = heap._glibc() is not None
# A page-like body: markup repeated, with words that vary so it compresses as pages do.
PAGE = "".join(
    f"<p>Paragraph {n} of the story, about the harbour and the {n * 7}th ship.</p>"
    for n in range(120)
)


def _traced(make):
    """Return what make() returns and the bytes tracemalloc saw it keep."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made = make()
        gc.collect()
        return made, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("browser_type", [None, "application/xml; charset=utf-8"])
def test_a_representation_counts_what_it_holds_within_a_few_percent(browser_type):
    def make():
        reps = []
        for n in range(100):
            body = f"{PAGE}<p>{n}</p>".encode()
            rep = build_representation(
                body,
                "text/html; charset=utf-8",
                1_700_000_000,
                60,
                browser_content_type=browser_type,
            )
            for prepared in (rep._prepared, rep._for_browsers or rep._prepared):
                for coding in (IDENTITY, GZIP, BROTLI):
                    prepared[coding].ok()  # every coding asked for, as a crawl does
            reps.append(rep)
        return reps

    reps, held = _traced(make)
    counted = sum(rep.held_bytes() for rep in reps)
    assert abs(counted - held) <= 0.05 * held


def test_a_bounded_cache_gives_freed_pages_back_once_it_dropped_enough(monkeypatch):
    trims = []
    monkeypatch.setattr(heap, "give_back_memory", lambda: trims.append(1))
    monkeypatch.setattr(heap.Reclaimer.__init__, "__defaults__", (1000,))
    cache: BoundedCache[int, bytes] = BoundedCache(2000, len)
    for n in range(4):
        cache.put(n, bytes(500))
    assert not trims  # within the budget: nothing dropped
    cache.put(4, bytes(500))
    assert not trims  # 500 bytes dropped so far
    cache.put(5, bytes(500))
    assert len(trims) == 1  # 1,000 bytes dropped: given back once
    cache.put(6, bytes(500))
    assert len(trims) == 1  # counted again from nothing
    assert cache._used == sum(size for _, size in cache._entries.values()) <= 2000


@pytest.mark.skipif(not GLIBC, reason="the allocator settings are glibc's")
def test_the_c_allocator_takes_feedsvcs_settings():
    assert heap.tune_allocator()
    heap.give_back_memory()  # harmless at any time


def _rss_kb(pid: int) -> int:
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return int(re.search(r"^Rss:\s+(\d+) kB", text, re.M).group(1))


def _get(port: int, path: str, coding: str = IDENTITY) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Accept-Encoding": coding})
        response = connection.getresponse()
        assert response.status == 200, path
        return response.read()
    finally:
        connection.close()


def _crawl(port: int, pages: list[str]) -> int:
    """Fetch every page and every feed /feeds.opml lists, each feed in every coding."""
    opml = _get(port, "/feeds.opml").decode()
    feeds = [url.split(str(port), 1)[1] for url in re.findall(r'xmlUrl="([^"]+)"', opml)]
    stems = {feed.rsplit(".", 1)[0] for feed in feeds}
    paths = [f"{stem}.{ext}" for stem in sorted(stems) for ext in ("xml", "atom", "json")]
    for path in paths:
        for coding in (IDENTITY, GZIP, BROTLI):
            _get(port, path, coding)
    listed = [f"{stem}/" for stem in sorted(stems) if stem.startswith(("/tags/", "/authors/"))]
    for path in [*pages, *listed]:
        _get(port, path)
    return len(paths) + len(pages) + len(listed)


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_crawling_again_and_again_through_granian_leaves_memory_flat(
    write_article, content_dir, tmp_path
):
    pages = ["/"]
    for n in range(60):
        section = ("culture", "science", "sport")[n % 3]
        write_article(
            section,
            f"story-{n}",
            body=PAGE.replace("harbour", f"harbour {n}"),
            title=f"Story {n}",
            date=f"2026-01-{1 + n % 28:02}T{n % 24:02}:00:00+00:00",
            tags=[f"Tag {n % 9}", f"Topic {n % 11}"],
            author=f"Writer {n % 6}",
        )
        pages.append(f"/{section}/story-{n}/")
    port, log = free_port(), tmp_path / "server.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")},
        "FEEDSVC_CONTENT_DIR": str(content_dir),
        "FEEDSVC_STATE_DIR": str(tmp_path / "state"),
        "FEEDSVC_SITE_URL": f"http://127.0.0.1:{port}",
        "FEEDSVC_WATCH_CONTENT": "false",
    }
    argv = [sys.executable, *GRANIAN, "--port", str(port), "tests.small_caches_wsgi:app"]
    argv[argv.index("--workers") + 1] = "1"
    with log.open("a") as out:
        server = subprocess.Popen(
            argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )
    try:
        wait_until(lambda: "Started worker" in log.read_text(), "the worker started", 30)
        worker = wait_until(lambda: children(server.pid), "the worker process", 30)[0]
        rss = []
        for _ in range(5):
            assert _crawl(port, pages) > 150
            time.sleep(0.2)
            rss.append(_rss_kb(worker))
        # The first crawls fill the caches and the heap; the later ones drop what they
        # render and give the pages back, so memory no longer grows.
        assert rss[-1] - rss[1] < 4 * 1024, rss
    finally:
        stop_process_group(server)
