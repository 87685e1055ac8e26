"""`flask freeze`: a static export with .gz twins, swapped in atomically, served by real nginx."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import json
import os
import re
from collections import deque
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest

from feedsvc import export, freeze, pages
from feedsvc.responses import parse_http_date
from tests.conftest import SITE_URL
from tests.nginx import fetch, free_port, needs_nginx, recipe, running_nginx

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">' + b" " * 2000 + b"</svg>"
TEXT_SUFFIXES = (".html", ".xml", ".atom", ".json", ".opml", ".css", ".svg", ".txt")
LEAD_BODY = (
    "![Tide chart](/media/charts/tide.svg)\n\n"
    "See [the first story](../story-1/) and [another site](https://elsewhere.example/away/)."
)


@pytest.fixture
def site(write_article, write_section, write_stories, write_media, backdate, monkeypatch):
    """Write three sections, enough articles for archives and a second section page, media."""
    monkeypatch.setattr(pages, "SECTION_PAGE_SIZE", 4)
    write_section("culture", "Culture", "Arts in town.")
    write_section("science", "Science")
    write_stories("culture", 7, tags=["Music"], author="Zoë Martin")
    write_article(
        "culture",
        "lead",
        body=LEAD_BODY,
        date="2026-03-09T09:00:00+00:00",
        image={"src": "/media/lead.png", "alt": "The lead", "credit": "Ana Pérez"},
        related=[{"title": "Gone", "url": "/culture/gone-missing/"}],
    )
    write_article("science", "eels", image={"src": "/media/my photo.png", "alt": "Eels"})
    write_article("city", "night-buses")
    write_article("city", "not-yet", draft=True)
    write_article("city", "next-year", date="2099-01-01T09:00:00+00:00")
    write_media("lead.png", PNG)
    write_media("my photo.png", PNG)
    write_media("charts/tide.svg", SVG)
    write_media("unlinked.txt", b"Notes nobody links to.\n" * 80)
    backdate()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def run_freeze(make_app, out: Path):
    """Run `flask freeze OUT` on a new app over the content as it is now; return (app, result)."""

    def run(*options: str, **config):
        app = make_app(**{"FEED_ITEMS": 3, **config})
        result = app.test_cli_runner().invoke(args=["freeze", str(out), *options])
        return app, result

    return run


def exported_files(root: Path) -> set[str]:
    """Return the relative paths of every file in an export."""
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def url_of(name: str) -> str:
    """Return the site path a file of the export serves: a/index.html → /a/."""
    if name == "index.html" or name.endswith("/index.html"):
        name = name.removesuffix("index.html")
    return "/" + quote(name)


def get(client, path: str, **headers: str):
    """Request `path` from the app; return status, headers and body, the response closed."""
    with contextlib.closing(client.get(path, headers=headers)) as response:
        return response.status_code, response.headers, response.get_data()


def builds(out: Path) -> list[str]:
    """Return the names of the exports kept beside `out`, oldest first."""
    return sorted(path.name for path in out.parent.iterdir() if ".build-" in path.name)


def test_export_holds_every_page_feed_archive_and_file(site, run_freeze, out, caplog):
    _, result = run_freeze()
    assert result.exit_code == 0, result.output
    assert out.is_symlink() and os.readlink(out) in builds(out)
    files = exported_files(out)
    for page in (
        "index.html",
        "culture/index.html",
        "culture/page/2/index.html",
        "culture/lead/index.html",
        "science/eels/index.html",
        "city/night-buses/index.html",
        "tags/music/index.html",
        "authors/zoe-martin/index.html",
        "404.html",
    ):
        assert page in files and page + ".gz" in files
    for stem in ("feed", "culture", "science", "city", "tags/music", "culture/archive/1"):
        assert {f"{stem}.xml", f"{stem}.atom", f"{stem}.json"} <= files
    assert {"feeds.opml", "static/style.css"} <= files
    assert {"media/lead.png", "media/my photo.png", "media/charts/tide.svg"} <= files
    assert "media/unlinked.txt" in files  # every media file, linked or not
    assert not any("not-yet" in name or "next-year" in name for name in files)
    assert not any("elsewhere" in name or "away" in name for name in files)
    summary = re.fullmatch(r"wrote (\d+) files \((\d+) bytes\) to (.+) \((.+)\)\n", result.stdout)
    assert summary is not None
    assert int(summary[1]) == len(files)
    assert int(summary[2]) == sum((out / name).stat().st_size for name in files)
    assert summary[4] == os.readlink(out)
    broken = [message for message in caplog.messages if message.startswith("broken link")]
    assert broken == [
        "broken link: /culture/gone-missing/ (linked from /culture/lead/) answers 404"
    ]


def test_each_file_holds_the_bytes_the_app_sends(site, run_freeze, out):
    app, result = run_freeze()
    assert result.exit_code == 0, result.output
    client = app.test_client()
    for name in exported_files(out) - {"404.html", "404.html.gz"}:
        if name.endswith(".gz"):
            continue
        status, headers, body = get(client, url_of(name))
        assert status == 200, name
        assert (out / name).read_bytes() == body, name
        if "Last-Modified" in headers:  # nginx dates its answers by the file
            modified = parse_http_date(headers["Last-Modified"])
            assert (out / name).stat().st_mtime == modified, name
    assert b"There is nothing at this address" in (out / "404.html").read_bytes()


def test_text_files_have_gzip_twins_with_the_same_bytes(site, run_freeze, out):
    _, result = run_freeze()
    assert result.exit_code == 0, result.output
    files = exported_files(out)
    for name in files:
        if name.endswith(".gz"):
            assert name[:-3] in files
            assert gzip.decompress((out / name).read_bytes()) == (out / name[:-3]).read_bytes()
        elif name.endswith(TEXT_SUFFIXES) and (out / name).stat().st_size > 1024:
            assert name + ".gz" in files, name
    assert not any(name.endswith(".png.gz") for name in files)
    # feedsvc's own gzip bytes are taken as they are: deterministic, with no timestamp.
    assert (out / "culture.atom.gz").read_bytes()[4:8] == b"\0\0\0\0"


def test_unchanged_content_gets_identical_files_in_the_next_export(site, run_freeze, out):
    run_freeze()
    first = out.resolve()
    _, result = run_freeze()
    assert result.exit_code == 0, result.output
    second = out.resolve()
    assert first != second and first.is_dir()
    for name in exported_files(first) - {"404.html", "404.html.gz"}:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
        # Same bytes and same time: nginx's ETag and Last-Modified stay, pollers get 304.
        assert (first / name).stat().st_mtime == (second / name).stat().st_mtime, name


def test_each_freeze_swaps_the_link_and_keeps_the_previous_export(
    site, run_freeze, out, write_article
):
    run_freeze()
    first = os.readlink(out)
    write_article("culture", "fresh", date="2026-04-01T09:00:00+00:00")
    _, result = run_freeze()
    assert result.exit_code == 0, result.output
    second = os.readlink(out)
    assert second != first
    assert builds(out) == [first, second]
    assert not (out.parent / first / "culture" / "fresh").exists()
    assert (out / "culture" / "fresh" / "index.html").is_file()
    run_freeze()
    third = os.readlink(out)
    assert builds(out) == [second, third]  # two kept: the new export and the one before
    _, result = run_freeze("--keep", "1")
    assert result.exit_code == 0, result.output
    assert builds(out) == [os.readlink(out)]
    assert not any(".partial-" in path.name for path in out.parent.iterdir())


def test_failed_freeze_leaves_the_published_export_alone(site, run_freeze, out, monkeypatch):
    run_freeze()
    published = os.readlink(out)
    before = exported_files(out)
    real_write, calls = export.write_file, []

    def write_until_disk_full(file, data, mtime):
        calls.append(file)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(file, data, mtime)

    monkeypatch.setattr(export, "write_file", write_until_disk_full)
    _, result = run_freeze()
    assert result.exit_code == 1
    assert "No space left on device" in result.stderr
    assert os.readlink(out) == published and builds(out) == [published]
    assert exported_files(out) == before
    assert not any(".partial-" in path.name for path in out.parent.iterdir())


def test_unfinished_export_of_a_stopped_freeze_is_removed(site, run_freeze, out, caplog):
    leftover = out.with_name("out.partial-20260101T000000.000000Z")
    (leftover / "culture").mkdir(parents=True)
    _, result = run_freeze()
    assert result.exit_code == 0, result.output
    assert not leftover.exists()
    assert any("left unfinished" in record.getMessage() for record in caplog.records)


def test_content_changed_during_the_export_publishes_nothing(
    site, run_freeze, out, write_article, make_app, monkeypatch
):
    real_save = export.save_not_found_page

    def edit_then_save(client, root, export):
        write_article("culture", "late-edit")
        client.application.extensions["feedsvc"].refresh()
        real_save(client, root, export)

    monkeypatch.setattr(export, "save_not_found_page", edit_then_save)
    _, result = run_freeze()
    assert result.exit_code == 1
    assert "content changed during the export" in result.stderr
    assert not out.exists() and not list(out.parent.glob("out.*"))


def test_one_freeze_at_a_time_into_one_folder(site, run_freeze, out):
    out.parent.mkdir(exist_ok=True)
    with out.with_name(".out.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a freeze still running would
        _, result = run_freeze()
    assert result.exit_code == 1
    assert "another freeze" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("kind", ["folder", "file", "foreign link"])
def test_refuses_to_replace_what_is_not_an_export(site, run_freeze, out, tmp_path, kind):
    if kind == "folder":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif kind == "file":
        out.write_text("mine")
    else:
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    _, result = run_freeze()
    assert result.exit_code == 1
    assert str(out) in result.stderr and "not" in result.stderr
    assert not list(tmp_path.glob("out.build-*"))
    if kind == "folder":
        assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_only_on_a_terminal(site, run_freeze, monkeypatch, terminal):
    monkeypatch.setattr(freeze, "stderr_is_terminal", lambda: terminal)
    _, result = run_freeze()
    assert result.exit_code == 0, result.output
    assert ("freezing" in result.stderr) is terminal
    assert result.stdout.startswith("wrote ")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/", "index.html"),
        ("/culture/", "culture/index.html"),
        ("/culture/page/2/", "culture/page/2/index.html"),
        ("/culture.xml", "culture.xml"),
        ("/tags/music.atom", "tags/music.atom"),
        ("/media/my%20photo.png", "media/my photo.png"),
        ("/media/caf%C3%A9.txt", "media/café.txt"),
    ],
)
def test_url_paths_map_to_files(tmp_path, path, name):
    assert export.output_file(tmp_path, path) == tmp_path / name


@pytest.mark.parametrize("path", ["/../etc/passwd", "/a/%2e%2e/b", "/a%2Fb", "//x", "/a/./b"])
def test_paths_without_a_file_of_their_own_are_refused(tmp_path, path):
    with pytest.raises(ValueError):
        export.output_file(tmp_path, path)


@pytest.mark.parametrize(
    ("link", "path"),
    [
        ("/culture/", "/culture/"),
        ("../story-1/", "/culture/story-1/"),
        ("image.png", "/culture/lead/image.png"),
        (f"{SITE_URL}/feed.atom", "/feed.atom"),
        ("HTTPS://NEWS.EXAMPLE.ORG/a/", "/a/"),
        ("/culture/#comments", "/culture/"),
        ("/culture/?page=2", "/culture/"),
        ("/media/my photo.png", "/media/my%20photo.png"),
        ("/media/my%20photo.png", "/media/my%20photo.png"),
        ("https://elsewhere.example/culture/", None),
        ("http://news.example.org/culture/", None),
        ("//elsewhere.example/x", None),
        ("mailto:desk@news.example.org", None),
        ("javascript:void(0)", None),
    ],
)
def test_links_are_followed_only_within_the_site(link, path):
    assert export.site_path(link, f"{SITE_URL}/culture/lead/", SITE_URL) == path


def test_links_of_a_site_under_a_path_prefix():
    site = "https://example.org/news"
    assert export.site_path("https://example.org/news/a.xml", site + "/", site) == "/a.xml"
    assert export.site_path("https://example.org/other/", site + "/", site) is None


def test_links_read_from_pages_feeds_opml_and_json_feeds():
    page = (
        '<link rel="alternate" href="/feed.atom"><a href="/a/#top">a</a><a href="">x</a>'
        '<img src="pic.png" srcset="pic-2x.png 2x, pic-3x.png 3x"><p title="/no/">t</p>'
        '<audio><source src="/media/s.mp3"></audio>'
    )
    assert export.html_links(page.encode()) == [
        "/feed.atom",
        "/a/#top",
        "pic.png",
        "pic-2x.png",
        "pic-3x.png",
        "/media/s.mp3",
    ]
    assert export.html_links(b"") == []
    feed = (
        b'<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="/static/feed.xsl"?>\n'
        b"<rss><channel><link>https://news.example.org/</link>"
        b'<item><enclosure url="/media/a.png"/></item></channel></rss>'
    )
    assert export.xml_links(feed) == [
        "/static/feed.xsl",
        "https://news.example.org/",
        "/media/a.png",
    ]
    opml = b'<opml><body><outline xmlUrl="/feed.xml" htmlUrl="/"/></body></opml>'
    assert export.xml_links(opml) == ["/feed.xml", "/"]
    assert sorted(export.json_links(b'{"items": [{"url": "/x/", "image": "/i.png"}]}')) == [
        "/i.png",
        "/x/",
    ]


def reachable(client, seeds: list[str]) -> set[str]:
    """Return every site path answering 200 that the app's own links lead to from `seeds`."""
    found, queue = set(), deque(seeds)
    seen = set(queue)
    while queue:
        path = queue.popleft()
        status, headers, body = get(client, path)
        if status != 200:
            continue
        found.add(path)
        reader = export.link_reader(headers["Content-Type"].split(";")[0])
        for link in reader(body) if reader else []:
            target = export.site_path(link, SITE_URL + path, SITE_URL)
            if target is not None and target not in seen:
                seen.add(target)
                queue.append(target)
    return found


def test_every_document_of_the_snapshot_is_written_without_a_request(site, make_app, out):
    app = make_app(FEED_ITEMS=3)
    snapshot = app.extensions["feedsvc"].snapshot()
    requested, serve = [], app.wsgi_app

    def counting(environ, start_response):
        requested.append(environ["PATH_INFO"])
        return serve(environ, start_response)

    app.wsgi_app = counting
    reports = []
    out.mkdir()
    with app.app_context():
        result = export.export_site(app, out, lambda done, known: reports.append((done, known)))
    # The 404 page is an error page the app renders: the one answer asked of it.
    assert requested == [export.MISSING_PATH]
    written = {url_of(name) for name in exported_files(out) if not name.endswith(".gz")}
    assert result.files == len(exported_files(out))
    app.wsgi_app = serve
    # Everything a crawl through the app reaches, every feed of every edition, every file.
    client = app.test_client()
    feeds = [path for edition in snapshot.editions.values() for path in edition.paths()]
    crawled = reachable(client, ["/", "/feeds.opml", *map(export.normal_path, feeds)])
    assert crawled <= written, crawled - written
    # Besides: files nothing links to (a stylesheet only an accent colour uses), the 404 page.
    assert written - crawled == {"/404.html", "/media/unlinked.txt", "/static/palette.css"}
    assert {"/culture/", "/tags/music/", "/authors/zoe-martin/", "/feeds.opml"} <= written
    assert "/culture/page/2/" in written and "/culture/page/3/" not in written
    assert {f"/{a.section}/{a.slug}/" for a in snapshot.published()} <= written
    done, known = zip(*reports, strict=True)
    assert list(done) == list(range(1, len(reports) + 1)) and set(known) == {len(reports)}


def test_links_are_checked_against_the_export(
    write_article, write_media, backdate, make_app, out, caplog
):
    links = [
        "[moved](/culture/old-name/)",  # an alias: the redirect map answers it
        "[slashless](/culture)",  # nginx adds the slash
        "[picture](/media/there.png)",
        "[no picture](/media/missing.png)",
        "[takedown](/culture/libel/)",
        "[nowhere](/nowhere/)",
    ]
    write_article("culture", "links", "\n\n".join(links))
    write_article("culture", "new-name", aliases=["/culture/old-name/"])
    write_article("culture", "libel", takedown="Legal")
    write_media("there.png", PNG)
    backdate()
    app = make_app()
    out.mkdir()
    with app.app_context():
        export.export_site(app, out)
    broken = sorted(message for message in caplog.messages if message.startswith("broken link"))
    assert broken == [
        "broken link: /culture/libel/ (linked from /culture/links/) answers 410",
        "broken link: /media/missing.png (linked from /culture/links/) answers 404",
        "broken link: /nowhere/ (linked from /culture/links/) answers 404",
    ]


# --- Served by real nginx -------------------------------------------------------------------


@pytest.fixture
def nginx(tmp_path: Path):
    """Serve an export with deploy/nginx-export.conf on a free port; `nginx(root)` starts it."""
    with contextlib.ExitStack() as stack:

        def start(root: Path) -> tuple[str, int]:
            port = free_port()
            work = tmp_path / f"nginx-{port}"
            config = recipe(
                "nginx-export.conf", work, port, {"root /srv/feedsvc/site;": f"root {root};"}
            )
            return stack.enter_context(running_nginx(config, work, port))

        yield start


def entries(document: bytes) -> list[tuple[str, str, str]]:
    """Read a feed as a feed reader does; return each entry's id, link and title."""
    if document.lstrip().startswith(b"{"):  # JSON Feed: feedparser 6.0 does not read it
        return [(i["id"], i["url"], i["title"]) for i in json.loads(document)["items"]]
    parsed = feedparser.parse(document)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return [(e.id, e.link, e.title) for e in parsed.entries]


def feed_paths(app) -> list[str]:
    snapshot = app.extensions["feedsvc"].snapshot()
    return sorted(path for edition in snapshot.editions.values() for path in edition.paths())


@needs_nginx
def test_nginx_serves_the_export_as_the_app_does(site, run_freeze, out, nginx):
    app, result = run_freeze()
    assert result.exit_code == 0, result.output
    server = nginx(out)
    client = app.test_client()
    feeds = feed_paths(app)
    assert "/culture/archive/1.atom" in feeds
    for path in [*feeds, "/feeds.opml"]:
        _, expected, expected_body = get(client, path)
        status, headers, body = fetch(server, path)
        assert status == 200, path
        assert body == expected_body, path
        assert headers["content-type"] == expected["Content-Type"], path
        assert headers["cache-control"] == expected["Cache-Control"], path
        vary = {"Accept-Encoding"} | ({"Accept"} if path.endswith((".xml", ".atom")) else set())
        assert set(headers["vary"].split(", ")) == vary, path
        status, zipped_headers, zipped = fetch(server, path, **{"Accept-Encoding": "gzip"})
        assert zipped_headers["content-encoding"] == "gzip", path
        assert gzip.decompress(zipped) == body, path
        if path != "/feeds.opml":
            assert entries(body) == entries(gzip.decompress(zipped)) == entries(expected_body)
            assert entries(body), path
    assert re.search(r"max-age=86400$", fetch(server, "/culture/archive/1.xml")[1]["cache-control"])


@needs_nginx
def test_nginx_serves_pages_media_errors_and_revalidation(site, run_freeze, out, nginx):
    app, result = run_freeze()
    assert result.exit_code == 0, result.output
    server = nginx(out)
    client = app.test_client()
    for name in sorted(exported_files(out) - {"404.html"}):
        if name.endswith(".gz"):
            continue
        path = url_of(name)
        status, headers, body = fetch(server, path)
        _, expected, expected_body = get(client, path)
        assert status == 200 and body == expected_body, path
        assert headers["content-type"] == expected["Content-Type"], path
        if name.endswith(".html"):
            assert headers["content-type"] == "text/html; charset=utf-8"
            assert headers["cache-control"] == expected["Cache-Control"], path
        elif name.startswith(("media/", "static/")):
            assert headers["cache-control"] == "public, max-age=3600", path
    status, headers, body = fetch(server, "/culture/no-such-story/")
    assert status == 404 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == (out / "404.html").read_bytes()
    status, headers, _ = fetch(server, "/culture")
    assert (status, headers["location"]) == (308, "/culture/")  # as the app answers
    _, headers, _ = fetch(server, "/feed.atom")
    status, again, body = fetch(server, "/feed.atom", **{"If-None-Match": headers["etag"]})
    assert (status, body, again["cache-control"]) == (304, b"", headers["cache-control"])


@needs_nginx
def test_nginx_serves_a_new_export_at_once(site, run_freeze, out, nginx, write_article):
    run_freeze()
    server = nginx(out)
    _, _, before = fetch(server, "/culture.atom")
    write_article("culture", "breaking", title="Breaking News", date="2026-05-01T09:00:00+00:00")
    _, result = run_freeze()
    assert result.exit_code == 0, result.output
    status, _, after = fetch(server, "/culture.atom")
    assert status == 200
    assert "Breaking News" not in [title for _, _, title in entries(before)]
    assert entries(after)[0][2] == "Breaking News"
    assert fetch(server, "/culture/breaking/")[0] == 200
