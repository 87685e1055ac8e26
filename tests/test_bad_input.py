"""Bad content files: each costs only itself, never a 500, and is reported once with where and why.

Every test writes two good articles plus one bad thing, builds an app, and checks that the good
articles are still served (feeds read back by feedparser and the W3C rules, the section page),
that nothing answers 500, that /healthz names the file with a plain reason (and its line where the
problem has one), and that the problem is logged exactly once however many requests follow.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree, html

from feedsvc import create_app, loader
from feedsvc.loader import load_site
from feedsvc.settings import Settings
from tests.conftest import SITE_URL, article_text
from tests.w3c_rules import feed_problems

GOOD = {"first-good": "First Good Article", "second-good": "Second Good Article"}
GOOD_LINKS = {f"{SITE_URL}/culture/{slug}/" for slug in GOOD}
FEEDS = ["/feed.xml", "/feed.atom", "/culture.xml", "/culture.atom"]
PAGES = ["/", "/culture/", *FEEDS, "/healthz"]
VALID_DATE = "2026-03-03T09:00:00Z"
MAX_FILE_BYTES = getattr(loader, "MAX_FILE_BYTES", 2 * 1024 * 1024)


@dataclass(frozen=True)
class Problem:
    """What /healthz and the log must say about one bad file."""

    path: str  # relative to content/, as the admin knows it
    words: tuple[str, ...]  # the reason must contain one of these (case-insensitive)
    line: int | None = None  # checked when the problem has a place in the file
    unpublished: tuple[str, ...] = ()  # site paths of articles that must not be served


@pytest.fixture
def site(content_dir, write_article):
    """Two good articles in the culture section; each test adds one bad thing next to them."""
    write_article("culture", "first-good", title=GOOD["first-good"], date="2026-03-01T09:00:00Z")
    write_article("culture", "second-good", title=GOOD["second-good"], date="2026-03-02T09:00:00Z")
    return content_dir


def write_raw(content_dir: Path, relative: str, data: bytes | str) -> Path:
    """Write a content file byte for byte, creating its folder."""
    path = content_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def names_path(reported: str, relative: str) -> bool:
    """Tell whether a reported path (absolute or relative to content/) is `relative` or in it."""
    reported = reported.replace(os.sep, "/")
    return (
        reported == relative
        or reported.endswith("/" + relative)
        or reported.startswith(relative + "/")
        or f"/{relative}/" in reported
    )


def log_records_naming(caplog, relative: str) -> list[logging.LogRecord]:
    """Return the WARNING-or-worse records whose message names `relative` as a whole path."""
    pattern = re.compile(rf"(?<![\w.-]){re.escape(relative)}(?![\w.-])")
    return [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and pattern.search(record.getMessage())
    ]


def feed_links(client, url: str) -> set[str]:
    """GET a feed; check feedparser and the W3C rules find nothing wrong; return its item links."""
    response = client.get(url)
    assert response.status_code == 200, url
    parsed = feedparser.parse(response.data)
    assert parsed.bozo == 0, f"{url}: {parsed.get('bozo_exception')}"
    assert feed_problems(response.data) == [], url
    return {entry.link for entry in parsed.entries}


def page_paths(client, url: str) -> set[str]:
    """GET an HTML page and return the paths its links point to."""
    response = client.get(url)
    assert response.status_code == 200, url
    document = html.fromstring(response.data)
    return {urlsplit(href).path for href in document.xpath("//a/@href")}


def assert_good_articles_served(client, unpublished: tuple[str, ...] = ()) -> None:
    """Check the good articles are in every feed and the section page, the bad ones nowhere."""
    refused = {SITE_URL + path for path in unpublished}
    for url in FEEDS:
        links = feed_links(client, url)
        assert links >= GOOD_LINKS, url
        assert not links & refused, url
    assert page_paths(client, "/culture/") >= {f"/culture/{slug}/" for slug in GOOD}
    for path in unpublished:
        assert client.get(path).status_code == 404, path


def assert_no_server_error(client, extra_urls=()) -> None:
    """Check no page, feed or health answer is a 500."""
    for url in [*PAGES, *extra_urls]:
        assert client.get(url).status_code < 500, url


def health_problems(client) -> list[dict]:
    """Return the content problems /healthz lists, after checking it answers JSON."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    return response.get_json()["problems"]


def assert_reported_once(make_app, caplog, expected: Problem) -> dict:
    """Build the app, check all a bad file must and must not cause; return its /healthz entry."""
    caplog.set_level(logging.WARNING)
    client = make_app().test_client()
    assert_no_server_error(client, expected.unpublished)
    assert_good_articles_served(client, expected.unpublished)
    found = [p for p in health_problems(client) if names_path(p["path"], expected.path)]
    assert len(found) == 1, health_problems(client)
    problem = found[0]
    reason = problem["reason"].lower()
    assert any(word.lower() in reason for word in expected.words), problem
    if expected.line is not None:
        assert problem["line"] == expected.line, problem
    logged = log_records_naming(caplog, expected.path)
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert logged[0].levelno == logging.WARNING
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
        assert client.get("/feed.xml").status_code == 200
        assert client.get("/culture/").status_code == 200
    assert len(log_records_naming(caplog, expected.path)) == 1
    return problem


# --- files that cannot be read ---------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_unreadable_file_is_reported(site, make_app, caplog):
    path = write_raw(site, "culture/locked.md", article_text(title="Locked", date=VALID_DATE))
    path.chmod(0)
    try:
        assert_reported_once(
            make_app,
            caplog,
            Problem("culture/locked.md", ("read", "permission"), unpublished=("/culture/locked/",)),
        )
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize("target", ["gone.md", "link.md"], ids=["dangling", "loop"])
def test_unreadable_symlink_is_reported(site, make_app, caplog, target):
    # Unlike chmod 000, a link to nothing (or to itself) cannot be read even by root.
    (site / "culture" / "link.md").symlink_to(target)
    assert_reported_once(
        make_app,
        caplog,
        Problem("culture/link.md", ("read", "link", "exist"), unpublished=("/culture/link/",)),
    )


def test_file_not_utf8_is_reported(site, make_app, caplog):
    latin1 = f"---\ntitle: Café crème\ndate: {VALID_DATE}\n---\nÀ la carte.\n".encode("latin-1")
    write_raw(site, "culture/latin.md", latin1)
    assert_reported_once(
        make_app,
        caplog,
        Problem("culture/latin.md", ("utf-8", "utf8"), line=2, unpublished=("/culture/latin/",)),
    )


# --- front matter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"---\ntitle: Broken\ndate: {VALID_DATE}\nsummary: one: two\n---\nBody.\n", 4),
        (f"---\ntitle: Tabbed\n\tdate: {VALID_DATE}\n---\nBody.\n", 3),
    ],
    ids=["mapping-in-value", "tab-indent"],
)
def test_broken_yaml_is_reported(site, make_app, caplog, text, line):
    write_raw(site, "culture/broken.md", text)
    assert_reported_once(
        make_app,
        caplog,
        Problem("culture/broken.md", ("yaml",), line=line, unpublished=("/culture/broken/",)),
    )


@pytest.mark.parametrize(
    "front",
    ["- a list\n- of things\n", "just a sentence\n", "42\n"],
    ids=["list", "string", "number"],
)
def test_front_matter_not_a_mapping_is_reported(site, make_app, caplog, front):
    write_raw(site, "culture/not-mapping.md", f"---\n{front}---\nBody.\n")
    assert_reported_once(
        make_app,
        caplog,
        Problem(
            "culture/not-mapping.md", ("mapping", "field"), unpublished=("/culture/not-mapping/",)
        ),
    )


def test_file_without_front_matter_is_reported(site, make_app, caplog):
    write_raw(site, "culture/bare.md", "Just a body, no front matter.\n\nSecond paragraph.\n")
    assert_reported_once(
        make_app,
        caplog,
        Problem(
            "culture/bare.md", ("front matter", "---"), line=1, unpublished=("/culture/bare/",)
        ),
    )


def test_unclosed_front_matter_is_reported(site, make_app, caplog):
    write_raw(site, "culture/unclosed.md", f"---\ntitle: Unclosed\ndate: {VALID_DATE}\n")
    assert_reported_once(
        make_app,
        caplog,
        Problem(
            "culture/unclosed.md",
            ("close", "unterminated"),
            line=1,
            unpublished=("/culture/unclosed/",),
        ),
    )


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"", ("empty", "front matter")), (b"\xef\xbb\xbf", ("empty", "front matter"))],
    ids=["zero-bytes", "only-bom"],
)
def test_empty_file_is_reported(site, make_app, caplog, data, words):
    write_raw(site, "culture/empty.md", data)
    assert_reported_once(
        make_app, caplog, Problem("culture/empty.md", words, unpublished=("/culture/empty/",))
    )


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"---\n", ("close", "unterminated", "front matter")),
        (b"---", ("close", "unterminated", "front matter")),
        (b"---\n---\n", ("title",)),
    ],
    ids=["fence-newline", "fence-alone", "two-fences"],
)
def test_file_with_only_fence_is_reported(site, make_app, caplog, data, words):
    write_raw(site, "culture/fence.md", data)
    assert_reported_once(
        make_app, caplog, Problem("culture/fence.md", words, unpublished=("/culture/fence/",))
    )


# --- required fields ------------------------------------------------------------------------


def test_missing_title_is_reported(site, make_app, caplog):
    write_raw(site, "culture/untitled.md", article_text(date=VALID_DATE, summary="No headline."))
    assert_reported_once(
        make_app,
        caplog,
        Problem("culture/untitled.md", ("title",), unpublished=("/culture/untitled/",)),
    )


@pytest.mark.parametrize("value", ['""', '"   "', ""], ids=["empty-string", "blank", "null"])
def test_empty_title_is_reported(site, make_app, caplog, value):
    write_raw(site, "culture/untitled.md", f"---\ntitle: {value}\ndate: {VALID_DATE}\n---\nBody.\n")
    assert_reported_once(
        make_app,
        caplog,
        Problem("culture/untitled.md", ("title",), line=2, unpublished=("/culture/untitled/",)),
    )


def test_missing_date_is_reported(site, make_app, caplog):
    write_raw(site, "culture/undated.md", "---\ntitle: Undated\nsummary: When?\n---\nBody.\n")
    assert_reported_once(
        make_app,
        caplog,
        Problem("culture/undated.md", ("date",), unpublished=("/culture/undated/",)),
    )


@pytest.mark.parametrize(
    "value",
    ["2026-02-30", "'2026-02-30'", "2026-02-30T09:00:00Z", "next tuesday-ish"],
    ids=["yaml-date", "quoted-date", "yaml-datetime", "words"],
)
def test_impossible_date_is_reported(site, make_app, caplog, value):
    write_raw(
        site, "culture/no-such-day.md", f"---\ntitle: No Such Day\ndate: {value}\n---\nBody.\n"
    )
    assert_reported_once(
        make_app,
        caplog,
        Problem(
            "culture/no-such-day.md", ("date",), line=3, unpublished=("/culture/no-such-day/",)
        ),
    )


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Bad Name", "UPPER", "under_score"])
def test_bad_article_slug_is_reported(site, make_app, caplog, name):
    write_raw(site, f"culture/{name}.md", article_text(title="Badly Named", date=VALID_DATE))
    assert_reported_once(
        make_app,
        caplog,
        Problem(f"culture/{name}.md", ("slug", "file name"), unpublished=(f"/culture/{name}/",)),
    )


@pytest.mark.parametrize("name", ["Bad Section", "UPPER", "under_score"])
def test_bad_section_folder_name_is_reported(site, make_app, caplog, name):
    write_raw(site, f"{name}/lost.md", article_text(title="Lost Article", date=VALID_DATE))
    assert_reported_once(
        make_app,
        caplog,
        Problem(name, ("section", "slug", "folder"), unpublished=(f"/{name}/lost/",)),
    )


@pytest.mark.parametrize("name", ["feed", "healthz", "static"])
def test_reserved_section_name_is_reported(site, make_app, caplog, name):
    write_raw(site, f"{name}/hidden.md", article_text(title="Hidden Article", date=VALID_DATE))
    assert_reported_once(
        make_app, caplog, Problem(name, ("reserved",), unpublished=(f"/{name}/hidden/",))
    )


def test_media_folder_is_never_a_section(site, make_app):
    # content/media/ is the media folder by contract, so an .md there is a file to serve as-is.
    write_raw(site, "media/notes.md", article_text(title="Notes", date=VALID_DATE))
    client = make_app().test_client()
    assert_no_server_error(client, ["/media.xml", "/media/notes/"])
    assert_good_articles_served(client, unpublished=("/media/notes/",))
    assert client.get("/media.xml").status_code == 404
    with client.get("/media/notes.md") as response:
        assert response.status_code == 200
        assert response.data == (site / "media/notes.md").read_bytes()


def test_duplicate_id_keeps_first_and_reports_second(site, make_app, caplog):
    same_id = "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    write_raw(
        site,
        "culture/dup-a.md",
        f"---\ntitle: Dup A\ndate: 2026-03-04T09:00:00Z\nid: {same_id}\n---\nFirst.\n",
    )
    write_raw(
        site,
        "culture/dup-b.md",
        f"---\ntitle: Dup B\ndate: 2026-03-05T09:00:00Z\nid: {same_id}\n---\nSecond.\n",
    )
    # The reason names the article that keeps the id; the line is the second file's `id:`.
    assert_reported_once(
        make_app, caplog, Problem("culture/dup-b.md", ("culture/dup-a.md",), line=4)
    )
    client = make_app().test_client()
    for url in FEEDS:
        links = feed_links(client, url)
        assert f"{SITE_URL}/culture/dup-a/" in links, url
        assert f"{SITE_URL}/culture/dup-b/" not in links, url
    assert client.get("/culture/dup-a/").status_code == 200
    assert client.get("/culture/dup-b/").status_code == 404
    assert not [p for p in health_problems(client) if names_path(p["path"], "culture/dup-a.md")]


# --- characters and sizes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"---\ntitle: Bell\x00 rings\ndate: {VALID_DATE}\n---\nBody.\n", 2),
        (f"---\ntitle: Bell rings\ndate: {VALID_DATE}\n---\nA vertical\x0btab.\n", 5),
        (f"---\ntitle: Unit\x1fsep\ndate: {VALID_DATE}\n---\nAnd\x1fagain, \x00 too.\n", 2),
        (f'---\ntitle: "Bell \\x07 rings"\ndate: {VALID_DATE}\n---\nBody.\n', 2),
        (f"---\ntitle: Tags\ndate: {VALID_DATE}\ntags: [ok, form\x0cfeed]\n---\nBody.\n", 4),
    ],
    ids=["nul-in-title", "vt-in-body", "us-in-title-and-body", "yaml-escape-bell", "ff-in-tag"],
)
def test_characters_xml_cannot_hold_keep_feeds_valid(site, make_app, caplog, text, line):
    write_raw(site, "culture/control.md", text)
    client = make_app().test_client()
    assert client.get("/culture/control/").status_code in (200, 404)
    for url in FEEDS:
        body = client.get(url).data
        assert feedparser.parse(body).bozo == 0, url
        assert feed_problems(body) == [], url
    caplog.clear()  # the app below must log the problem once on its own
    assert_reported_once(
        make_app,
        caplog,
        Problem("culture/control.md", ("character", "xml", "control"), line=line),
    )


def test_enormous_file_is_reported(site, make_app, caplog):
    paragraph = "All work and no play makes a very long article. " * 20 + "\n\n"
    body = paragraph * (MAX_FILE_BYTES // len(paragraph) + 2)
    write_raw(site, "culture/enormous.md", article_text(body, title="Enormous", date=VALID_DATE))
    assert (site / "culture/enormous.md").stat().st_size > MAX_FILE_BYTES
    assert_reported_once(
        make_app,
        caplog,
        Problem(
            "culture/enormous.md", ("large", "size", "big"), unpublished=("/culture/enormous/",)
        ),
    )


# --- links out of the content folder --------------------------------------------------------


def test_symlinked_file_outside_content_is_refused(site, tmp_path, make_app, caplog):
    secret = write_raw(tmp_path, "outside/secret.md", article_text(title="Secret", date=VALID_DATE))
    (site / "culture" / "escape.md").symlink_to(secret)
    assert_reported_once(
        make_app,
        caplog,
        Problem("culture/escape.md", ("outside",), unpublished=("/culture/escape/",)),
    )


def test_symlinked_section_outside_content_is_refused(site, tmp_path, make_app, caplog):
    write_raw(tmp_path, "elsewhere/secret.md", article_text(title="Secret", date=VALID_DATE))
    (site / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert_reported_once(
        make_app, caplog, Problem("linked", ("outside",), unpublished=("/linked/secret/",))
    )
    client = make_app().test_client()
    linked_feed = client.get("/linked.xml")
    if linked_feed.status_code == 200:
        assert not feedparser.parse(linked_feed.data).entries


# --- not problems -----------------------------------------------------------------------------


def test_drafts_and_future_articles_are_not_problems(site, write_article, make_app, caplog):
    caplog.set_level(logging.WARNING)
    write_article("culture", "a-draft", title="A Draft", date=VALID_DATE, draft=True)
    write_article(
        "culture", "from-the-future", title="From the Future", date="2099-01-01T09:00:00Z"
    )
    client = make_app().test_client()
    unpublished = ("/culture/a-draft/", "/culture/from-the-future/")
    assert_no_server_error(client, unpublished)
    assert_good_articles_served(client, unpublished)
    assert health_problems(client) == []
    assert not log_records_naming(caplog, "culture/a-draft.md")
    assert not log_records_naming(caplog, "culture/from-the-future.md")


# --- property-based: whatever the bytes, the loader returns and the feeds stay valid ----------

CONTROL = [chr(code) for code in range(32)] + [
    "\x7f",
    "\x85",
    "\u2028",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udcff",
]
YAML_ESCAPES = [r"\x07", r"\x00", r"\0", r"\u0000", r"\ud800", r"\udfff", r"\uFFFE", r"\x1f"]
YAML_ESCAPES += [r"\x0b", r"\e", r"\N", r"\L", r"\P", r"\_", "\\\\", '\\"', r"\t"]

junk = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=()), st.sampled_from(CONTROL)),
    max_size=40,
)
yaml_escaped_junk = st.lists(st.one_of(st.sampled_from(YAML_ESCAPES), junk), max_size=6).map(
    "".join
)


@st.composite
def near_valid_files(draw) -> bytes:
    """Build a valid-looking article with junk in its title, date, tags and body."""
    form = draw(st.sampled_from(["title: {}", "title: '{}'", 'title: "{}"']))
    title = form.format(draw(yaml_escaped_junk if '"' in form else junk))
    date = draw(
        st.one_of(st.just(VALID_DATE), junk, st.from_regex(r"\d{4}-\d\d-\d\d", fullmatch=True))
    )
    text = f"---\n{title}\ndate: {date}\ntags: [{draw(junk)}, {draw(junk)}]\n---\n{draw(junk)}\n"
    try:
        return text.encode("utf-8", draw(st.sampled_from(["surrogateescape", "surrogatepass"])))
    except UnicodeEncodeError:  # surrogateescape only covers U+DC80..U+DCFF
        return text.encode("utf-8", "surrogatepass")


raw_files = st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=1024).map(lambda data: b"---\n" + data),
    st.tuples(st.binary(max_size=512), st.binary(max_size=512)).map(
        lambda parts: b"---\n" + parts[0] + b"\n---\n" + parts[1]
    ),
)


def fuzz_config(content_dir: Path) -> dict:
    """Return a complete app configuration on `content_dir`."""
    return {
        "TESTING": True,
        "CONTENT_DIR": str(content_dir),
        "SITE_URL": SITE_URL,
        "SITE_TITLE": "Fuzz Gazette",
        "SITE_DESCRIPTION": "A site made of junk.",
        "SITE_AUTHOR": "Gazette Staff",
        "LANGUAGE": "en",
        "TIMEZONE": "UTC",
        "FEED_ITEMS": 50,
        "FEED_MAX_AGE": 300,
        "WATCH_CONTENT": False,
    }


def assert_junk_file_costs_only_itself(data: bytes) -> None:
    """Load a site of one good article and `data` as a second file; check loader and feeds."""
    with tempfile.TemporaryDirectory() as folder:
        content_dir = Path(folder) / "content"
        write_raw(content_dir, "culture/good.md", article_text(title="Good", date=VALID_DATE))
        write_raw(content_dir, "culture/junk.md", data)
        config = fuzz_config(content_dir)
        site = load_site(Settings.from_config(config))
        assert ("culture", "good") in {article.key for article in site.articles}
        published = any(article.slug == "junk" for article in site.articles)
        reported = any(names_path(p.path, "culture/junk.md") for p in site.problems)
        assert published or reported or b"draft" in data, "junk.md vanished without a word"
        app = create_app(config)
        try:
            client = app.test_client()
            for url in FEEDS:
                response = client.get(url)
                assert response.status_code == 200, url
                etree.fromstring(response.data)
                parsed = feedparser.parse(response.data)
                assert parsed.bozo == 0, f"{url}: {parsed.get('bozo_exception')}"
                assert f"{SITE_URL}/culture/good/" in {entry.link for entry in parsed.entries}, url
        finally:
            app.extensions["feedsvc"].close()


FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(data=raw_files)
def test_arbitrary_bytes_never_break_loader_or_feeds(data):
    assert_junk_file_costs_only_itself(data)


@FUZZ
@given(data=near_valid_files())
def test_near_valid_junk_never_breaks_loader_or_feeds(data):
    assert_junk_file_costs_only_itself(data)
