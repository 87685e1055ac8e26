"""The shipped deploy recipes, run as shipped (only paths and ports changed): nginx serving
an export, nginx as a reverse proxy under a path prefix, the systemd unit, `make run PORT=`."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from feedsvc import PROJECT_ROOT, export, pages
from tests.browser import CHROMIUM, Browser
from tests.conftest import PNG, stop_process_group, wait_until
from tests.nginx import DEPLOY, NGINX, fetch, free_port, needs_nginx, recipe, running_nginx

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def site(write_article, write_section, write_stories, write_media, monkeypatch):
    """Write two sections with pagers, tags, authors, a lead image and site-relative links."""
    monkeypatch.setattr(pages, "SECTION_PAGE_SIZE", 2)
    write_section("culture", "Culture")
    write_stories("culture", 5, tags=["Music"], author="Zoë Martin")
    write_article(
        "science",
        "eels",
        body="![Eels](/media/eels.png)\n\nSee [the first story](/culture/story-1/)"
        " and [the next one](../../culture/story-2/).",
        image={"src": "/media/eels.png", "alt": "Eels"},
        related=[{"title": "Story 3", "url": "/culture/story-3/"}],
    )
    write_media("eels.png", PNG)


@pytest.mark.parametrize("name", ["nginx-export.conf", "nginx-proxy.conf"])
@needs_nginx
def test_nginx_accepts_each_recipe_as_shipped(name):
    result = subprocess.run(
        [NGINX, "-t", "-c", str(DEPLOY / name)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@needs_nginx
def test_export_recipe_shows_feeds_to_browsers_and_redirects_as_the_app(site, make_app, tmp_path):
    app = make_app(FEED_ITEMS=2)
    out = tmp_path / "site"
    result = app.test_cli_runner().invoke(args=["freeze", str(out)])
    assert result.exit_code == 0, result.output
    port = free_port()
    config = recipe(
        "nginx-export.conf", tmp_path / "nginx", port, {"root /srv/feedsvc/site;": f"root {out};"}
    )
    client = app.test_client()
    with running_nginx(config, tmp_path / "nginx", port) as server:
        for path in ("/culture.xml", "/feed.atom", "/culture/archive/1.xml"):
            for accept in (BROWSER_ACCEPT, "application/rss+xml, application/atom+xml"):
                status, headers, body = fetch(server, path, Accept=accept)
                expected = client.get(path, headers={"Accept": accept})
                assert status == 200, path
                assert headers["content-type"] == expected.headers["Content-Type"], (path, accept)
                assert headers["cache-control"] == expected.headers["Cache-Control"], path
                assert set(headers["vary"].split(", ")) == {"Accept-Encoding", "Accept"}
                assert body == expected.data
            assert fetch(server, path, Accept=BROWSER_ACCEPT)[1]["content-type"].startswith(
                "application/xml"
            )
        for path in ("/culture", "/culture/story-1", "/tags/music"):
            status, headers, _ = fetch(server, path)
            expected = client.get(path)
            assert (
                (status, headers["location"])
                == (
                    expected.status_code,
                    expected.headers["Location"],
                )
                == (308, path + "/")
            )
        assert fetch(server, "/.for-browsers/culture.xml")[0] == 404


@needs_nginx
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("feed", ["culture.xml", "culture.atom"])
def test_export_recipe_feeds_read_as_a_page_in_a_browser(site, make_app, tmp_path, feed):
    # Shown as bare text unless served to a browser as application/xml, as the app does.
    port = free_port()
    site_url = f"http://127.0.0.1:{port}"
    out = tmp_path / "site"
    result = make_app(SITE_URL=site_url).test_cli_runner().invoke(args=["freeze", str(out)])
    assert result.exit_code == 0, result.output
    config = recipe(
        "nginx-export.conf", tmp_path / "nginx", port, {"root /srv/feedsvc/site;": f"root {out};"}
    )
    (tmp_path / "chromium-profile").mkdir()
    browser = Browser(tmp_path / "chromium-profile")
    try:
        with running_nginx(config, tmp_path / "nginx", port):
            page = browser.new_page()
            page.goto(f"{site_url}/{feed}")
            facts = page.evaluate(
                "({sheets: [...document.styleSheets].map((sheet) => sheet.href),"
                " before: getComputedStyle(document.documentElement, '::before').content})"
            )
            problems = page.problems()
    finally:
        browser.close()
    assert facts["sheets"] == [f"{site_url}/static/feed.css"]
    assert "This is a web feed" in facts["before"]
    # An XML document cannot name an icon, so the browser may ask for /favicon.ico on its own.
    assert [p for p in problems if not p.endswith("/favicon.ico")] == []


def crawl(server: tuple[str, int], site_url: str) -> dict[str, int]:
    """Fetch every page, feed and file reachable from the home page; return path → status.

    Redirects are followed within the site; each link is read as the app's freeze reads it.
    """
    prefix = urlsplit(site_url).path
    seen: dict[str, int] = {}
    queue = deque(["/"])
    referrers = {"/": "start"}
    while queue:
        path = queue.popleft()
        status, headers, body = fetch(server, prefix + path)
        seen[path] = status
        links = []
        if status == 200:
            reader = export.link_reader(headers["content-type"].split(";")[0])
            links = reader(body) if reader else []
        elif status == 308:
            links = [headers["location"]]
        for link in links:
            target = export.site_path(link, site_url + path, site_url)
            if target is None:
                assert not link.startswith("/"), f"{link} (on {path}) leaves {prefix}/"
                continue
            if target not in referrers:
                referrers[target] = path
                queue.append(target)
    broken = {p: (s, referrers[p]) for p, s in seen.items() if s not in (200, 308)}
    assert not broken, broken
    return seen


@needs_nginx
def test_proxy_recipe_under_a_path_prefix_has_no_broken_link(site, serve, tmp_path):
    port = free_port()
    site_url = f"http://127.0.0.1:{port}/news"
    app_port = urlsplit(serve(SITE_URL=site_url)).port
    config = recipe(
        "nginx-proxy.conf",
        tmp_path / "nginx",
        port,
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
            "location / {": "location /news/ {",
        },
    )
    with running_nginx(config, tmp_path / "nginx", port) as server:
        seen = crawl(server, site_url)
        assert {
            "/culture/",
            "/culture/page/2/",
            "/culture/page/3/",
            "/science/eels/",
            "/media/eels.png",
            "/static/style.css",
            "/tags/music/",
            "/authors/zoe-martin/",
            "/culture/story-1/",
            "/culture/story-3/",
            "/feed.xml",
            "/feeds.opml",
        } <= {path for path, status in seen.items() if status == 200}
        status, headers, _ = fetch(server, "/news/culture")
        assert (status, headers["location"]) == (308, "/news/culture/")
        status, headers, _ = fetch(server, "/news/healthz")
        assert status == 200


def unit_for_test(port: int, content_dir: Path, site_url: str) -> str:
    """Return deploy/feedsvc.service with only its paths and port changed for this machine."""
    text = (DEPLOY / "feedsvc.service").read_text()
    changes = {
        "/srv/feedsvc/app/.venv/bin/": f"{Path(sys.executable).parent}/",
        "WorkingDirectory=/srv/feedsvc/app": f"WorkingDirectory={PROJECT_ROOT}",
        "FEEDSVC_CONTENT_DIR=/srv/feedsvc/content": f"FEEDSVC_CONTENT_DIR={content_dir}",
        "FEEDSVC_SITE_URL=https://news.example.org": f"FEEDSVC_SITE_URL={site_url}",
        "--port 8000": f"--port {port}",
    }
    for old, new in changes.items():
        assert text.count(old) == 1, f"deploy/feedsvc.service no longer has {old!r} once"
        text = text.replace(old, new)
    return text


def unit_settings(unit: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(key + "=")]


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="needs systemd-analyze (Debian: systemd)")
def test_systemd_unit_verifies_and_its_command_serves(site, content_dir, tmp_path):
    port = free_port()
    unit = unit_for_test(port, content_dir, f"http://127.0.0.1:{port}")
    path = tmp_path / "feedsvc.service"
    path.write_text(unit)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "feedsvc.service" not in result.stderr, result.stderr
    # Run the unit's command in its directory with its environment, as systemd would.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update(value.split("=", 1) for value in unit_settings(unit, "Environment"))
    [command] = unit_settings(unit, "ExecStart")
    [workdir] = unit_settings(unit, "WorkingDirectory")
    with running(shlex.split(command), workdir, env):
        status = wait_until(
            lambda: _status(("127.0.0.1", port), "/healthz"), "the unit's server answering"
        )
        assert status == 200
        _, _, body = fetch(("127.0.0.1", port), "/culture.xml")
        assert f"http://127.0.0.1:{port}/culture/story-5/".encode() in body


def test_make_run_serves_on_another_port_with_site_url_following(site, content_dir):
    port = free_port()
    venv = Path(sys.executable).parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env["FEEDSVC_CONTENT_DIR"] = str(content_dir)
    command = ["make", "-o", f"{venv}/bin/.installed", "run", f"PORT={port}", f"VENV={venv}"]
    if shutil.which("make") is None:
        pytest.skip("needs make")
    with running(command, PROJECT_ROOT, env):
        wait_until(lambda: _status(("127.0.0.1", port), "/healthz"), "make run answering")
        _, _, body = fetch(("127.0.0.1", port), "/culture.xml")
        assert f"http://127.0.0.1:{port}/culture/story-5/".encode() in body


def _status(address: tuple[str, int], path: str) -> int | None:
    with contextlib.suppress(OSError):
        return fetch(address, path)[0]
    return None


@contextlib.contextmanager
def running(command: list[str], cwd, env: dict):
    """Run a server command in its own process group; stop the group when the block ends."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop_process_group(process)
