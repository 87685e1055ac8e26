"""Content a magazine really has: image-led bodies, Word pastes, old archives, non-Latin names.

Each test writes what an editor would, then reads it back as feed readers, the W3C
validator's rules, pages and `flask check` do.
"""

from __future__ import annotations

import calendar
import json
import urllib.request
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc import create_app, fastpath, slugs
from tests import test_freeze
from tests.conftest import SITE_URL, article_text
from tests.test_freeze import fetch, needs_nginx
from tests.w3c_rules import feed_problems

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"


# The freeze tests' fixture that starts a real nginx, used here as `nginx_server`.
nginx_server = test_freeze.nginx


def check(make_app) -> tuple[int, list[str], dict]:
    """Run `flask check` and `flask check --json`; return exit code, lines and the report."""
    runner = make_app().test_cli_runner()
    text = runner.invoke(args=["check"])
    report = json.loads(runner.invoke(args=["check", "--json"]).stdout)
    return text.exit_code, text.stdout.splitlines(), report


def problems_of(report: dict, name: str) -> list[dict]:
    """Return the reported problems of the file whose path ends with `name`."""
    return [p for p in report["problems"] if p["path"].endswith(name)]


def parsed(client, url: str):
    """GET a feed; feedparser must read it cleanly and the validator's rules must pass."""
    response = client.get(url)
    assert response.status_code == 200, url
    if not url.endswith(".json"):
        assert feed_problems(response.data) == [], url
    result = feedparser.parse(response.data)
    assert result.bozo == 0, result.get("bozo_exception")
    return result


def dek_of(client, url: str) -> str:
    page = etree.HTML(client.get(url).data)
    return "".join(page.xpath("//p[@class='dek']//text()")).strip()


# --- 2. a body that starts with an image ------------------------------------------------


IMAGE_FIRST = "![The reading room](/media/room.jpg)\n\nThe doors opened at nine.\n\nMore text."


def test_summary_of_an_image_led_body_is_its_first_text(write_article, write_media, client):
    write_media("room.jpg", b"\xff\xd8\xff" + b"0" * 20)
    write_article("culture", "room", IMAGE_FIRST)
    rss = etree.fromstring(client.get("/culture.xml").data)
    [item] = rss.iter("item")
    assert item.findtext("description") == "The doors opened at nine."
    assert "reading room" in item.findtext(CONTENT_ENCODED)
    atom = etree.fromstring(client.get("/culture.atom").data)
    assert atom.find(f"{ATOM}entry/{ATOM}summary").text == "The doors opened at nine."
    item = client.get("/culture.json").get_json()["items"][0]
    assert item["summary"] == "The doors opened at nine."
    assert dek_of(client, "/culture/room/") == "The doors opened at nine."
    for url in ("/culture.xml", "/culture.atom"):
        parsed(client, url)


def test_body_without_any_text_gives_no_blank_summary(write_article, write_media, client):
    write_media("room.jpg", b"\xff\xd8\xff" + b"0" * 20)
    write_article("culture", "photo", "![Only a picture](/media/room.jpg)")
    for url in ("/culture.xml", "/culture.atom"):
        parsed(client, url)
    rss = etree.fromstring(client.get("/culture.xml").data)
    assert rss.find("channel/item").find(CONTENT_ENCODED) is not None
    assert "summary" not in client.get("/culture.json").get_json()["items"][0]


# --- 13. the automatic summary leaves script text out ------------------------------------


def test_summary_leaves_out_script_and_style_text(write_article, client):
    write_article("culture", "oars", "Oars <script>alert(1)</script><style>p{}</style> and boats.")
    atom = etree.fromstring(client.get("/culture.atom").data)
    assert atom.find(f"{ATOM}entry/{ATOM}summary").text == "Oars and boats."
    assert client.get("/culture.json").get_json()["items"][0]["summary"] == "Oars and boats."
    assert dek_of(client, "/culture/oars/") == "Oars and boats."


# --- 3. text pasted from Word ------------------------------------------------------------


def test_windows_1252_characters_become_the_ones_meant(content_dir, make_app):
    path = content_dir / "culture" / "word.md"
    path.parent.mkdir()
    text = "---\ntitle: Don\x92t\ndate: 2026-03-01\n---\nPages 3\x964, \x93quoted\x94.\n"
    path.write_text(text, encoding="utf-8")
    client = make_app().test_client()
    for url in ("/culture.xml", "/culture.atom"):
        feed = parsed(client, url)
        assert feed.entries[0].title == "Don’t"
        assert "Pages 3–4, “quoted”." in feed.entries[0].content[0].value
    code, lines, report = check(make_app)
    [problem] = problems_of(report, "culture/word.md")
    assert problem["line"] == 2 and problem["severity"] == "warning"
    assert "Windows-1252" in problem["reason"]
    assert code == 0  # a warning: the article is published
    assert any(line.endswith("culture/word.md:2: warning: " + problem["reason"]) for line in lines)


def test_windows_1252_escapes_in_yaml_are_mapped_too(content_dir, make_app):
    path = content_dir / "culture" / "escaped.md"
    path.parent.mkdir()
    path.write_text(
        '---\ntitle: "It\\x92s"\ndate: 2026-03-01\ntags: ["caf\\xe9 \\x96 bar"]\n---\nBody.\n'
    )
    client = make_app().test_client()
    feed = parsed(client, "/culture.atom")
    assert feed.entries[0].title == "It’s"
    _, _, report = check(make_app)
    [problem] = problems_of(report, "culture/escaped.md")
    assert problem["line"] == 2


# --- 4. non-Latin tags and authors ---------------------------------------------------------


def test_non_latin_tags_and_authors_get_working_addresses(write_article, make_app, tmp_path):
    write_article(
        "culture", "concert", tags=["音楽", "ثقافة", "Zoë"], author=["سارة", "Zoë Martin"]
    )
    app = make_app()
    client = app.test_client()
    for kind, name in (("tags", "音楽"), ("tags", "ثقافة"), ("authors", "سارة")):
        encoded = quote(name)
        page = client.get(f"/{kind}/{encoded}/")
        assert page.status_code == 200, name
        assert name in page.get_data(as_text=True)
        for ext in ("xml", "atom", "json"):
            assert client.get(f"/{kind}/{encoded}.{ext}").status_code == 200, (name, ext)
        feed = parsed(client, f"/{kind}/{encoded}.atom")
        assert feed.feed.links[0].href.startswith(SITE_URL)
        self_links = [link.href for link in feed.feed.links if link.rel == "self"]
        assert self_links == [f"{SITE_URL}/{kind}/{encoded}.atom"]
    article = client.get("/culture/concert/").get_data(as_text=True)
    assert f'href="/tags/{quote("音楽")}/"' in article
    assert f'href="/authors/{quote("سارة")}/"' in article
    # Latin names keep the addresses they always had.
    assert client.get("/authors/zoe-martin/").status_code == 200
    assert client.get("/tags/zoe/").status_code == 200
    opml = etree.fromstring(client.get("/feeds.opml").data)
    urls = {o.get("xmlUrl") for o in opml.iter("outline") if o.get("xmlUrl")}
    assert f"{SITE_URL}/tags/{quote('音楽')}.xml" in urls
    code, _, report = check(make_app)
    assert report["problems"] == [] and code == 0


def test_non_latin_addresses_are_frozen_as_files(write_article, make_app, tmp_path):
    write_article("culture", "concert", tags=["音楽"], author="سارة")
    app = make_app(SITE_URL=SITE_URL)
    out = tmp_path / "site"
    result = app.test_cli_runner().invoke(args=["freeze", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "tags" / "音楽" / "index.html").is_file()
    assert (out / "tags" / "音楽.atom").is_file()
    assert (out / "authors" / "سارة.xml").is_file()
    assert not list(out.rglob("*%*")), "no percent-encoded file names"


@needs_nginx
def test_nginx_serves_frozen_non_latin_addresses(write_article, make_app, tmp_path, nginx_server):
    write_article("culture", "concert", tags=["音楽"], author="سارة")
    out = tmp_path / "site"
    assert make_app().test_cli_runner().invoke(args=["freeze", str(out)]).exit_code == 0
    server = nginx_server(out)
    for path in ("/tags/音楽/", "/tags/音楽.atom", "/authors/سارة.xml", "/authors/سارة/"):
        status, _, body = fetch(server, quote(path))
        assert status == 200, path
        assert "音楽" in body.decode() or "سارة" in body.decode()


# --- 5. images that do not exist -------------------------------------------------------------


def test_check_reports_missing_media_and_unserved_relative_images(
    content_dir, write_media, make_app
):
    write_media("here.jpg", b"\xff\xd8\xff")
    path = content_dir / "culture" / "pics.md"
    path.parent.mkdir()
    body = "Intro.\n\n![here](/media/here.jpg)\n\n![a](pic.png)\n\n![gone](/media/gone.png)\n"
    path.write_text(
        article_text(body, title="Pictures", date="2026-03-01", image="/media/missing.jpg"),
        encoding="utf-8",
    )
    code, _, report = check(make_app)
    found = {(p["line"], p["severity"]) for p in problems_of(report, "culture/pics.md")}
    reasons = " | ".join(p["reason"] for p in problems_of(report, "culture/pics.md"))
    assert found == {(4, "warning"), (10, "warning"), (12, "warning")}, reasons
    assert "/media/missing.jpg" in reasons and "pic.png" in reasons
    assert "/media/gone.png" in reasons and "here.jpg" not in reasons
    assert code == 0
    # Adding the file while serving clears the warning.
    app = make_app()
    client = app.test_client()
    write_media("missing.jpg", b"\xff\xd8\xff")
    app.extensions["feedsvc"].refresh(["media/missing.jpg"])
    reasons = [p["reason"] for p in client.get("/healthz").get_json()["problems"]]
    assert not any("missing.jpg" in r for r in reasons)


# --- 6. an implausible `updated` -----------------------------------------------------------


def test_future_updated_is_reported_and_no_feed_announces_it(
    write_article, write_section, make_app
):
    write_section("empty", "Empty")
    write_article(
        "culture", "typo", date="2026-03-01T09:00:00Z", updated="2999-01-01", author="Ann"
    )
    client = make_app().test_client()
    now = datetime.now(UTC)
    for url in ("/culture", "/feed", "/empty", "/authors/ann"):
        rss = etree.fromstring(client.get(f"{url}.xml").data)
        build = parsedate_to_datetime(rss.findtext("channel/lastBuildDate"))
        assert build <= now, url
        feed = parsed(client, f"{url}.atom")
        assert calendar.timegm(feed.feed.updated_parsed) <= now.timestamp(), url
        for entry in feed.entries:
            assert calendar.timegm(entry.updated_parsed) <= now.timestamp(), url
        json_feed = client.get(f"{url}.json").get_json()
        for item in json_feed["items"]:
            assert datetime.fromisoformat(item["date_modified"]) <= now, url
    _, _, report = check(make_app)
    [problem] = problems_of(report, "culture/typo.md")
    assert problem["line"] == 3 and problem["severity"] == "warning"
    assert "2999" in problem["reason"]


# --- 7. same-zone dates compared as instants ----------------------------------------------


def test_dates_across_a_clock_change_compare_as_instants(write_article, client):
    write_article(
        "culture",
        "spring",
        date="2026-03-29 01:30 Europe/Paris",
        updated="2026-03-29 03:10 Europe/Paris",
    )
    write_article(
        "culture",
        "gap",
        date="2026-03-29 02:30 Europe/Paris",
        updated="2026-03-29 03:10 Europe/Paris",
    )
    feed = parsed(client, "/culture.atom")
    for entry in feed.entries:
        published = calendar.timegm(entry.published_parsed)
        assert published <= calendar.timegm(entry.updated_parsed), entry.link
    for item in client.get("/culture.json").get_json()["items"]:
        published = datetime.fromisoformat(item["date_published"])
        assert published <= datetime.fromisoformat(item["date_modified"])


# --- 8. offsets with seconds and very old years -----------------------------------------


@pytest.mark.parametrize(
    ("written", "instant"),
    [
        ("1971-06-01 12:00 Africa/Monrovia", datetime(1971, 6, 1, 12, 44, 30, tzinfo=UTC)),
        ("1885-03-02 08:00 Europe/Paris", datetime(1885, 3, 2, 7, 50, 39, tzinfo=UTC)),
        ("1901-01-01T10:00:00+00:09:21", datetime(1901, 1, 1, 9, 50, 39, tzinfo=UTC)),
    ],
)
def test_offsets_with_seconds_publish_valid_dates_of_the_same_instant(
    write_article, client, written, instant
):
    write_article("archive", "old", date=written)
    for url in ("/archive.xml", "/archive.atom"):
        response = client.get(url)
        date_rules = [
            p for p in feed_problems(response.data) if p.startswith(("InvalidRFC", "Incorrect"))
        ]
        assert date_rules == [], url
        feed = feedparser.parse(response.data)
        assert feed.bozo == 0
        assert calendar.timegm(feed.entries[0].published_parsed) == instant.timestamp(), url
    item = client.get("/archive.json").get_json()["items"][0]
    assert datetime.fromisoformat(item["date_published"]) == instant
    assert item["date_published"].endswith("+00:00")


def test_years_before_1000_are_reported(content_dir, write_article, make_app):
    write_article("archive", "fine")
    write_article("archive", "ancient", date="0999-01-01")
    client = make_app().test_client()
    assert client.get("/archive/ancient/").status_code == 404
    parsed(client, "/archive.xml")
    code, _, report = check(make_app)
    [problem] = problems_of(report, "archive/ancient.md")
    assert problem["line"] == 2 and "1000" in problem["reason"]
    assert code == 1


# --- 10. "Name <email>" authors ------------------------------------------------------------


def test_name_and_email_authors_publish_the_name(write_article, make_app):
    write_article("culture", "mail", author=["Jane Doe <jane@x.org>", "bob@x.org (Bob Roe)"])
    client = make_app().test_client()
    feed = parsed(client, "/culture.atom")
    assert [a.name for a in feed.entries[0].authors] == ["Jane Doe", "Bob Roe"]
    author_feed = parsed(client, "/authors/jane-doe.atom")
    assert author_feed.feed.title.startswith("Jane Doe — ")
    assert "jane@x.org" not in client.get("/culture/mail/").get_data(as_text=True)
    for url in ("/culture.xml", "/culture.json"):
        assert b"jane@x.org" not in client.get(url).data


# --- the validator's rules these items rely on ------------------------------------------


ENTRY = (
    '<feed xmlns="http://www.w3.org/2005/Atom"><id>https://example.org/feed</id><title>T</title>'
    '<link rel="self" href="https://news.example.org/x.atom"/>'
    "<updated>2026-01-01T00:00:00Z</updated><entry><id>https://example.org/entry</id><title>{title}</title>"
    "<updated>2026-01-01T00:00:00Z</updated><author><name>{name}</name></author>"
    "<summary>{summary}</summary></entry></feed>"
)


@pytest.mark.parametrize(
    ("fields", "rule"),
    [
        ({"title": "Don\x92t"}, "BadCharacters"),
        ({"title": "Broken \ufffd"}, "BadCharacters"),
        ({"summary": ""}, "NotBlank"),
        ({"name": "Jane &lt;jane@x.org&gt;"}, "ContainsEmail"),
    ],
)
def test_rule_checker_catches_what_the_validator_does(fields, rule):
    values = {"title": "T", "name": "Jane", "summary": "S", **fields}
    document = ENTRY.format(**values).encode()
    assert feed_problems(ENTRY.format(title="T", name="Jane", summary="S").encode()) == []
    assert any(p.startswith(rule) for p in feed_problems(document)), feed_problems(document)


def test_non_latin_addresses_work_through_a_real_server(write_article, live_server, make_app):
    write_article("culture", "concert", tags=["音楽"])
    for path in ("/tags/音楽/", "/tags/音楽.xml", "/tags/音楽/"):  # the page twice: then cached
        with urllib.request.urlopen(live_server + quote(path)) as response:
            assert response.status == 200, path
            assert "音楽" in response.read().decode("utf-8")


def test_fast_path_finds_non_latin_paths_as_wsgi_spells_them():
    wsgi_path = "/tags/音楽.xml".encode().decode("latin-1")  # PEP 3333: bytes as Latin-1
    assert fastpath._site_path(wsgi_path) == "/tags/音楽.xml"
    assert fastpath._site_path("/culture.xml") == "/culture.xml"


def test_symbol_names_keep_their_symbols_and_punctuation_is_reported(write_article, make_app):
    write_article("culture", "notes", tags=["🎵", "★", "…", "—"])
    client = make_app().test_client()
    for name in ("🎵", "★"):
        assert client.get(f"/tags/{quote(name)}/").status_code == 200, name
        parsed(client, f"/tags/{quote(name)}.atom")
    code, _, report = check(make_app)
    reasons = [p["reason"] for p in report["problems"]]
    assert len(reasons) == 2 and all("no letter, digit or symbol" in r for r in reasons), reasons
    assert not any("share the address" in r for r in reasons)
    assert code == 0


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Zoë Martin", "zoe-martin"),
        ("Diyarbakır", "diyarbakr"),  # Latin: as it always was
        ("rock’n’roll", "rocknroll"),
        ("C++", "c"),
        ("Ærø", "aero"),
        ("音楽", "音楽"),
        ("K-pop 音楽", "k-pop-音楽"),
        ("Москва", "москва"),
        ("हिन्दी संगीत", "हिन्दी-संगीत"),  # vowel signs stay with their letters
        ("Café ثقافة", "cafe-ثقافة"),
        ("🎵", "🎵"),
        ("—", ""),
    ],
)
def test_name_slugs(name, slug):
    assert slugs.name_slug(name) == slug


def test_long_name_slugs_stay_valid_file_names():
    slug = slugs.name_slug("𠀀" * 100)
    assert 0 < len(slug.encode()) <= slugs.MAX_NAME_SLUG_BYTES


@settings(max_examples=40, deadline=None, database=None)
@given(names=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=3))
def test_any_tag_or_author_name_gets_a_working_address_or_a_report(tmp_path_factory, names):
    content_dir = tmp_path_factory.mktemp("content")
    path = content_dir / "culture" / "any.md"
    path.parent.mkdir()
    path.write_text(article_text(title="Any", date="2026-03-01", tags=names, author=names))
    app = create_app({**FUZZ_CONFIG, "CONTENT_DIR": str(content_dir)})
    try:
        client = app.test_client()
        snapshot = app.extensions["feedsvc"].snapshot()
        for name in snapshot.listings:
            if name.startswith(("tags/", "authors/")):
                page = client.get(quote(f"/{name}/"))
                assert page.status_code == 200, name
                for ext in ("xml", "atom"):
                    feed = client.get(quote(f"/{name}.{ext}")).data
                    assert feed_problems(feed) == [], (name, ext)
                    assert feedparser.parse(feed).bozo == 0, (name, ext)
        addressed = {n.split("/", 1)[1] for n in snapshot.listings if "/" in n}
        reported = " ".join(p.reason for p in snapshot.site.problems)
        for value in (*snapshot.site.articles[0].tags, *snapshot.site.articles[0].authors):
            assert slugs.name_slug(value) in addressed or repr(value) in reported, value
    finally:
        app.extensions["feedsvc"].close()


FUZZ_CONFIG = {
    "TESTING": True,
    "SITE_URL": SITE_URL,
    "SITE_TITLE": "Fuzz Gazette",
    "SITE_DESCRIPTION": "Names of every kind.",
    "SITE_AUTHOR": "Staff",
    "WATCH_CONTENT": False,
}
