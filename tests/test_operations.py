"""Operations: freeze refuses to publish a site that lost content, /healthz states, settings
checked at start, a SITE_URL with a path, failures said out loud."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from feedsvc import PROJECT_ROOT, SettingsError, create_app
from feedsvc.export import html_links, output_file, site_path
from feedsvc.store import STUCK_REFRESH_SECONDS

BIN = Path(sys.executable).parent
PREFIXED = "https://example.org/news"


@pytest.fixture
def site(write_article, write_section, write_stories, write_media):
    write_section("culture", "Culture")
    write_stories("culture", 3, tags=["Art"])
    write_article(
        "science",
        "eels",
        body="![Eels](/media/eels.png) and [a story](/culture/story-1/), [up](../../feed.xml).",
        image={"src": "/media/eels.png", "alt": "Eels"},
        related=[{"title": "Story 2", "url": "/culture/story-2/"}],
        author="Zoë Martin",
    )
    write_media("eels.png", b"\x89PNG\r\n\x1a\n")


@pytest.fixture
def freeze_into(make_app, tmp_path):
    """Run `flask freeze OUT [options]` on a new app; return the CLI result."""
    out = tmp_path / "out"

    def run(*options: str, **config):
        app = make_app(**config)
        return app.test_cli_runner().invoke(args=["freeze", str(out), *options])

    run.out = out
    return run


def export_state(out: Path) -> tuple[str, dict[str, bytes]]:
    """Return what OUTPUT_DIR serves: its link target and every file's bytes."""
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    return os.readlink(out), files


# --- freeze refuses -------------------------------------------------------------------------


def test_freeze_refuses_to_replace_a_live_site_when_the_content_folder_is_missing(
    site, freeze_into, tmp_path
):
    assert freeze_into().exit_code == 0
    live = export_state(freeze_into.out)
    missing = str(tmp_path / "unmounted")
    result = freeze_into(CONTENT_DIR=missing)
    assert result.exit_code == 1
    assert "refused" in result.output and "content folder does not exist" in result.output
    assert export_state(freeze_into.out) == live
    # Told to ignore problems, it still refuses to publish an empty site over a full one.
    result = freeze_into("--allow-problems", CONTENT_DIR=missing)
    assert result.exit_code == 1
    assert "0 articles and the live export holds 4" in result.output
    assert "--allow-shrink" in result.output
    assert export_state(freeze_into.out) == live


def test_freeze_refuses_a_build_that_lost_articles_unless_allowed(site, freeze_into, content_dir):
    assert freeze_into().exit_code == 0
    live = export_state(freeze_into.out)
    (content_dir / "culture" / "story-2.md").unlink()
    result = freeze_into()
    assert result.exit_code == 1
    assert "3 articles and the live export holds 4" in result.output
    assert export_state(freeze_into.out) == live
    result = freeze_into("--allow-shrink")
    assert result.exit_code == 0, result.output
    assert "culture/story-2/index.html" not in export_state(freeze_into.out)[1]


def test_freeze_refuses_an_empty_first_export_unless_allowed(content_dir, freeze_into):
    (content_dir / "culture").mkdir()
    result = freeze_into()
    assert result.exit_code == 1
    assert "0 articles and there is no live export" in result.output
    assert not freeze_into.out.exists()
    assert freeze_into("--allow-shrink").exit_code == 0
    assert (freeze_into.out / "index.html").is_file()


def test_freeze_refuses_content_with_problems_unless_allowed(site, freeze_into, content_dir):
    assert freeze_into().exit_code == 0
    live = export_state(freeze_into.out)
    for n in range(10):
        (content_dir / "culture" / f"broken-{n}.md").write_text("---\ntitle: [open\n---\n")
    result = freeze_into()
    assert result.exit_code == 1
    assert "refused: 10 content problems" in result.output
    assert "broken-0.md" in result.output and "(and 7 more)" in result.output
    assert "--allow-problems" in result.output
    assert export_state(freeze_into.out) == live
    result = freeze_into("--allow-problems")
    assert result.exit_code == 0, result.output
    assert export_state(freeze_into.out) != live


# --- /healthz ------------------------------------------------------------------------------


def test_healthz_ok(site, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    assert response.get_json()["reasons"] == []
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_degraded_with_problems_still_200(site, content_dir, client_factory):
    (content_dir / "culture" / "broken.md").write_text("---\ndate: 2026-03-01\n---\n")
    response = client_factory().get("/healthz")
    assert response.status_code == 200
    health = response.get_json()
    assert health["status"] == "degraded"
    assert health["reasons"] == ["1 content problem; those files are left out"]
    assert health["articles"] == 4


@pytest.mark.parametrize("case", ["missing folder", "every file broken"])
def test_healthz_failing_when_no_content_can_be_read(content_dir, make_app, tmp_path, case):
    config = {}
    if case == "missing folder":
        config["CONTENT_DIR"] = str(tmp_path / "unmounted")
    else:
        (content_dir / "culture").mkdir()
        for n in range(3):
            (content_dir / "culture" / f"broken-{n}.md").write_text("no front matter\n")
    response = make_app(**config).test_client().get("/healthz")
    assert response.status_code == 503
    health = response.get_json()
    assert health["status"] == "failing"
    assert "no content could be read" in health["reasons"]
    assert health["articles"] == 0


def test_healthz_failing_while_refreshes_fail_then_ok_again(site, make_app, monkeypatch):
    app = make_app()
    client = app.test_client()
    store = app.extensions["feedsvc"]
    assert client.get("/healthz").status_code == 200

    def broken_read(changed):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store, "_read", broken_read)
    with pytest.raises(OSError):
        store.refresh()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["reasons"] == [
        "the last content refresh failed: OSError: [Errno 5] Input/output error"
    ]
    monkeypatch.undo()
    store.refresh()
    assert client.get("/healthz").status_code == 200


def test_healthz_failing_when_a_refresh_runs_far_too_long(site, make_app, monkeypatch):
    app = make_app()
    store = app.extensions["feedsvc"]
    store.snapshot()
    # As if a refresh had started longer ago than a refresh may take.
    started = time.monotonic() - STUCK_REFRESH_SECONDS - 1
    monkeypatch.setattr(store, "_refresh_started", started)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert "has been running for" in response.get_json()["reasons"][0]


def test_healthz_failing_when_the_watcher_stopped(site, make_app):
    app = make_app(WATCH_CONTENT=True)
    client = app.test_client()
    store = app.extensions["feedsvc"]
    assert client.get("/healthz").status_code == 200
    store._watcher.stop()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["reasons"] == ["the content watcher has stopped"]


# --- settings ------------------------------------------------------------------------------

BAD_SETTINGS = [
    ("FEED_ITEMS", "abc", "a whole number of at least 1"),
    ("FEED_ITEMS", "0", "a whole number of at least 1"),
    ("FEED_MAX_AGE", "-5", "a whole number of at least 0"),
    ("TIMEZONE", "Mars/Base", "an IANA time zone name"),
    ("SITE_URL", "news.example.org", "an absolute http:// or https:// URL"),
    ("SITE_URL", "ftp://news.example.org", "an absolute http:// or https:// URL"),
    ("WEBSUB_HUB", "hub.example.net", "an absolute http:// or https:// URL"),
    ("WATCH_CONTENT", "maybe", "true or false"),
    ("LANGUAGE", "English please", "a language tag"),
    ("LOG_LEVEL", "loud", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
]


@pytest.mark.parametrize(("key", "value", "expected"), BAD_SETTINGS)
def test_bad_setting_raises_one_line_naming_key_value_and_expectation(
    make_app, key, value, expected
):
    with pytest.raises(SettingsError) as caught:
        make_app(**{key: value})
    message = str(caught.value)
    assert "\n" not in message
    assert f"FEEDSVC_{key}={value!r}" in message and expected in message


@pytest.mark.parametrize(
    ("value", "watching"),
    [
        *[("False", False), ("no", False), ("OFF", False), ("0", False), ("false", False)],
        *[("True", True), ("yes", True), ("on", True), ("1", True)],
    ],
)
def test_boolean_settings_take_the_usual_spellings(monkeypatch, content_dir, value, watching):
    monkeypatch.setenv("FEEDSVC_WATCH_CONTENT", value)
    monkeypatch.setenv("FEEDSVC_CONTENT_DIR", str(content_dir))
    app = create_app({"TESTING": True})
    assert app.extensions["feedsvc"].settings.watch_content is watching


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update({f"FEEDSVC_{key}": value for key, value in settings.items()})
    return env


@pytest.mark.parametrize(("key", "value", "expected"), BAD_SETTINGS[:5])
def test_bad_setting_stops_the_flask_command_with_one_line(key, value, expected):
    result = subprocess.run(
        [BIN / "flask", "--app", "wsgi", "check"],
        cwd=PROJECT_ROOT,
        env=clean_env(**{key: value}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    # The environment's value as read: "abc" stays text, "0" is read as a number.
    line = rf"feedsvc: bad setting FEEDSVC_{key}='?{re.escape(value)}'?: expected "
    assert re.fullmatch(line + re.escape(expected) + ".*\n", result.stderr), result.stderr


@pytest.mark.parametrize("server", ["gunicorn", "granian"])
def test_bad_setting_stops_the_production_servers(server):
    command = {
        "gunicorn": [BIN / "gunicorn", "--bind", "127.0.0.1:0", "wsgi:app"],
        "granian": [BIN / "granian", "--interface", "wsgi", "--port", "0", "wsgi:app"],
    }[server]
    result = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=clean_env(FEED_ITEMS="abc"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "feedsvc: bad setting FEEDSVC_FEED_ITEMS='abc': expected" in result.stderr
    assert "Traceback" not in result.stderr


def test_log_level_setting_applies_to_the_entry_point():
    code = "import logging, wsgi; print(logging.getLogger().level)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env=clean_env(LOG_LEVEL="warning"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == str(logging.WARNING), result.stderr


# --- SITE_URL with a path ------------------------------------------------------------------


def page_links(html: bytes) -> list[str]:
    return [link for link in html_links(html) if not link.startswith(("data:", "https://else"))]


@pytest.mark.parametrize(
    "path",
    ["/", "/culture/", "/science/eels/", "/tags/art/", "/authors/zoe-martin/", "/no-such/"],
)
def test_pages_under_a_path_prefix_link_only_within_it(site, make_app, path):
    client = make_app(SITE_URL=PREFIXED + "/").test_client()
    # A proxy may pass the path with its prefix, or with the prefix in SCRIPT_NAME.
    for response in (
        client.get("/news" + path),
        client.get(path, environ_base={"SCRIPT_NAME": "/news"}),
    ):
        assert response.status_code == (404 if path == "/no-such/" else 200)
        links = page_links(response.data)
        assert links
        for link in links:
            assert link.startswith(("/news/", PREFIXED + "/", "../")), (path, link)
            assert site_path(link, PREFIXED + path, PREFIXED), (path, link)


def test_redirects_under_a_path_prefix_keep_it(site, make_app):
    client = make_app(SITE_URL=PREFIXED).test_client()
    response = client.get("/news/culture")
    assert (response.status_code, response.headers["Location"]) == (308, "/news/culture/")


def test_lead_image_and_body_links_get_the_prefix(site, make_app):
    html = make_app(SITE_URL=PREFIXED).test_client().get("/news/science/eels/").data.decode()
    assert '<img src="/news/media/eels.png" alt="Eels">' in html
    assert 'href="/news/culture/story-1/"' in html and 'src="/news/media/eels.png"' in html
    assert 'href="../../feed.xml"' in html  # relative links are right as written
    assert 'href="/news/culture/story-2/"' in html


def test_freeze_under_a_path_prefix_writes_links_that_resolve(site, freeze_into):
    assert freeze_into(SITE_URL=PREFIXED).exit_code == 0
    root = freeze_into.out
    pages = sorted(root.rglob("*.html"))
    assert len(pages) > 8
    for page in pages:
        url = PREFIXED + "/" + page.relative_to(root).as_posix().removesuffix("index.html")
        for link in page_links(page.read_bytes()):
            assert link.startswith(("/news/", PREFIXED + "/", "../")), (page, link)
            path = site_path(link, url, PREFIXED)
            assert path is not None, (page, link)
            assert output_file(root, path).is_file(), (page, link)


# --- failures said out loud ----------------------------------------------------------------


def test_new_refuses_a_section_that_does_not_exist(site, make_app, content_dir):
    runner = make_app().test_cli_runner()
    result = runner.invoke(args=["new", "cultrue", "A Typo"])
    assert result.exit_code == 1
    assert "section folder" in result.stderr and "--new-section" in result.stderr
    assert not (content_dir / "cultrue").exists()
    result = runner.invoke(args=["new", "--new-section", "sport", "Derby Day"])
    assert result.exit_code == 0, result.output
    assert (content_dir / "sport" / "derby-day.md").is_file()
