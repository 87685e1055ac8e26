"""A worker that follows answers every address as the publisher does, holding no site."""

from __future__ import annotations

import http.client
import json
import re
from urllib.parse import urlsplit

from tests.conftest import free_port, wait_until
from tests.test_publisher import everywhere, get, granian, validators

HREF = re.compile(rb"""(?:href|xmlUrl|htmlUrl|url)=["']([^"']+)["']""")
JSON_URL = re.compile(rb'"(?:url|next_url|home_page_url|feed_url)": ?"([^"]+)"')


def reports(port: int, tries: int = 12) -> dict[int, dict]:
    """Return what /healthz says of each worker answering it: role and what it serves."""
    seen = {}
    for _ in range(tries):
        report = json.loads(get(port, "/healthz")[2])["publishing"]
        seen[report["pid"]] = report
    return seen


def ask(port: int, path: str, **headers: str) -> tuple[int, str | None, bytes]:
    """GET with request headers on a fresh connection; return (status, ETag, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        named = {key.replace("_", "-"): value for key, value in headers.items()}
        connection.request("GET", path, headers=named)
        response = connection.getresponse()
        return response.status, response.headers["ETag"], response.read()
    finally:
        connection.close()


def crawl(port: int) -> dict[str, tuple]:
    """Follow every link of the site from / and /feeds.opml; return each path's validators."""
    site = f"http://127.0.0.1:{port}"
    queue, found = ["/", "/feeds.opml"], {}
    while queue:
        path = queue.pop()
        if path in found:
            continue
        found[path] = validators(port, path)  # every worker: the same bytes, ETag, date
        body = found[path][2]
        for raw in HREF.findall(body) + JSON_URL.findall(body):
            link = raw.decode().replace("&amp;", "&")
            if link.startswith(site):
                link = link[len(site) :]
            parts = urlsplit(link)
            if parts.scheme or not parts.path.startswith("/") or parts.query:
                continue
            if parts.path.startswith(("/static/", "/media/")):
                continue
            queue.append(parts.path)
    return found


def write_site(write_article, backdate) -> None:
    for n in range(6):
        section = ("culture", "city")[n % 2]
        write_article(
            section,
            f"story-{n}",
            title=f"Story {n}",
            date=f"2026-01-0{n + 1}",
            tags=["Bridge", f"Topic {n % 3}"],
            author=["Zoë Martin", "Sam Okafor"][n % 2],
        )
    backdate()


def test_every_address_is_the_same_from_every_worker_and_the_follower_loads_no_site(
    write_article, backdate, content_dir, tmp_path
):
    write_site(write_article, backdate)
    state, log = tmp_path / "state", tmp_path / "server.log"
    address = free_port()
    # Two items a feed: archive pages exist, so the crawl reaches them too.
    with granian(address, content_dir, state, log, WATCH_CONTENT="true", FEED_ITEMS="2") as (
        port,
        _,
    ):
        wait_until(lambda: len(reports(port)) == 2, "both workers answering")
        found = crawl(port)
        kinds = {
            "/",
            "/culture/",
            "/culture/story-0/",
            "/tags/bridge/",
            "/tags/bridge.xml",
            "/authors/zoe-martin.atom",
            "/feed/archive/1.xml",
            "/culture/archive/1.atom",
            "/feeds.opml",
        }
        assert kinds <= found.keys(), sorted(kinds - found.keys())
        # Compressed and conditional answers agree too: same ETag per coding, 304 everywhere.
        for path in ("/tags/bridge.xml", "/city/story-1/", "/feeds.opml"):
            gzipped = {ask(port, path, Accept_Encoding="gzip") for _ in range(8)}
            assert len(gzipped) == 1, path
            status, etag, _ = gzipped.pop()
            assert status == 200 and etag.endswith('-gz"'), (path, etag)
            assert {ask(port, path, If_None_Match=found[path][0])[0] for _ in range(8)} == {304}
        for path in ("/no-such-page/", "/culture/no-such-story/", "/media/missing.jpg"):
            answers = {get(port, path)[0::2] for _ in range(8)}
            assert len(answers) == 1 and answers.pop()[0] == 404, path

        write_article(
            "culture",
            "story-4",
            title="Story 4, corrected",
            date="2026-01-05",
            tags=["Bridge"],
            author="Zoë Martin",
        )
        for path in ("/culture/story-4/", "/tags/bridge.xml", "/authors/zoe-martin/"):
            wait_until(lambda path=path: everywhere(port, path, b"Story 4, corrected"), path)
            validators(port, path)

        followers = [r for r in reports(port).values() if r["role"] == "follower"]
        assert followers and all(r["serving"] == "index" for r in followers), followers
    text = log.read_text()
    assert "answers the publisher's feeds from the index, holding no site" in text
    assert "loading the site" not in text and "no publisher to ask" not in text
