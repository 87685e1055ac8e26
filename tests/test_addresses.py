"""The address model: every path reads back as the address that makes it, and the fixed names."""

import json
import re

import pytest
from conftest import SITE_URL
from lxml import etree

from feedsvc.addresses import (
    ARTICLE,
    AUTHOR,
    MEDIA,
    OPML_PATH,
    RESERVED_SLUGS,
    SECTION,
    SITE,
    TAG,
    Address,
    feed_path,
    is_subscription,
    listing_name,
    named_in,
    parse_path,
)
from feedsvc.edge import SITE_KEY, surrogate_keys
from feedsvc.pages import page_at
from feedsvc.parsing import SLUG

PAGES = [
    ("/", Address(SITE)),
    ("/culture/", Address(SECTION, "culture")),
    ("/culture/page/2/", Address(SECTION, "culture", page=2)),
    ("/tags/music/", Address(TAG, "music")),
    ("/tags/music/page/4/", Address(TAG, "music", page=4)),
    ("/tags/音楽/", Address(TAG, "音楽")),
    ("/authors/zoe-martin/", Address(AUTHOR, "zoe-martin")),
    ("/authors/zoe-martin/page/2/", Address(AUTHOR, "zoe-martin", page=2)),
    ("/culture/story/", Address(ARTICLE, "story", "culture")),
    ("/culture/page/", Address(ARTICLE, "page", "culture")),
]

FEEDS = [
    ("/feed.xml", Address(SITE), "rss"),
    ("/feed.atom", Address(SITE), "atom"),
    ("/feed.json", Address(SITE), "json"),
    ("/culture.xml", Address(SECTION, "culture"), "rss"),
    ("/culture/archive/3.atom", Address(SECTION, "culture", archive=3), "atom"),
    ("/feed/archive/1.json", Address(SITE, archive=1), "json"),
    ("/tags/music.xml", Address(TAG, "music"), "rss"),
    ("/tags/archive.json", Address(TAG, "archive"), "json"),
    ("/authors/zoe-martin.atom", Address(AUTHOR, "zoe-martin"), "atom"),
]


@pytest.mark.parametrize(("path", "address"), PAGES)
def test_a_page_path_reads_back_as_its_address(path, address):
    assert parse_path(path) == (address, "")
    assert address.page_path == path


@pytest.mark.parametrize(("path", "address", "fmt"), FEEDS)
def test_a_feed_path_reads_back_as_its_address_and_format(path, address, fmt):
    assert parse_path(path) == (address, fmt)
    assert address.feed_path(fmt) == path
    assert Address.from_name(address.name) == address


@pytest.mark.parametrize(
    "path",
    ["/culture/page/1/", "/culture/page/x/", "/a/b/c/", "/tags/", "/tags/x/y/", "/x.html", "/x"],
)
def test_a_path_the_site_never_makes_names_nothing(path):
    assert parse_path(path) is None


@pytest.mark.parametrize("name", ["", "culture/story", "a/b/c"])
def test_a_name_the_site_never_makes_is_refused(name):
    with pytest.raises(ValueError):
        Address.from_name(name)


def test_archive_pages_and_listing_pages_share_their_listings_keys():
    music = Address(TAG, "music")
    assert music.name == "tags/music"
    assert music.archive_page(2).name == music.archive_name(2) == "tags/music/archive/2"
    assert music.archive_page(2).page_path == music.page_path == "/tags/music/"
    assert Address(TAG, "music", page=3).page_key == music.page_key == "list:tags/music"
    assert Address.article("culture", "story").page_key == "article:culture/story"


@pytest.mark.parametrize(
    ("path", "keys"),
    [
        ("/", ("list:feed", SITE_KEY)),
        ("/culture/page/2/", ("list:culture", SITE_KEY)),
        ("/tags/caf%C3%A9/", ("list:tags/caf%C3%A9", SITE_KEY)),
        ("/tags/zoë/page/2/", ("list:tags/zo%C3%AB", SITE_KEY)),
        ("/culture/story/", ("article:culture/story", SITE_KEY)),
        ("/culture/archive/2.xml", ("feed:culture/archive/2",)),
        ("/authors/zoe.json", ("feed:authors/zoe",)),
        (OPML_PATH, ("feed:feeds",)),
    ],
)
def test_surrogate_keys_are_made_from_the_address(path, keys):
    assert surrogate_keys(path) == keys


def _first_segment(rule: str) -> str:
    return rule.lstrip("/").split("/", 1)[0].split(".", 1)[0]


def test_reserved_names_are_the_first_segments_of_the_sites_own_addresses(make_app, client):
    app = make_app()
    fixed = {_first_segment(rule.rule) for rule in app.url_map.iter_rules()}
    # Answered without Flask's routes: feeds, the OPML file (and pages, when precomputed).
    made = [OPML_PATH, Address(TAG, "x").page_path, Address(AUTHOR, "x").page_path]
    made += [
        Address(kind, "x").feed_path(fmt) for kind in (SITE, TAG, AUTHOR) for fmt in ("rss", "json")
    ]
    fixed |= {_first_segment(path) for path in made}
    # A segment that could be a section folder's name is reserved; "" (home) and "_preview" cannot.
    assert {name for name in fixed if "<" not in name and SLUG.match(name)} == RESERVED_SLUGS
    assert client.get(OPML_PATH).status_code == 200


# content/media is the media folder, never a section.
@pytest.mark.parametrize("name", sorted(RESERVED_SLUGS - {MEDIA}))
def test_a_section_folder_may_not_take_a_reserved_name(write_article, client, name):
    write_article(name, "story")
    assert client.get(f"/{name}/story/").status_code == 404
    problems = client.get("/healthz").get_json()["problems"]
    assert any("reserved" in problem["reason"] for problem in problems)


def test_an_articles_guid_is_its_first_address(write_article, client_factory):
    write_article("culture", "story", title="A story")
    write_article("culture", "moved", title="Moved", aliases=["/culture/first-name/"])
    write_article("culture", "tagged", title="Tagged", id="tag:news.example.org,2026:tagged")
    client = client_factory()
    rss = etree.fromstring(client.get("/culture.xml").data)
    guids = {item.findtext("title"): item.findtext("guid") for item in rss.iter("item")}
    assert guids == {
        "A story": f"{SITE_URL}/culture/story/",
        "Moved": f"{SITE_URL}/culture/first-name/",
        "Tagged": "tag:news.example.org,2026:tagged",
    }
    atom = etree.fromstring(client.get("/culture.atom").data)
    ids = [e.text for e in atom.iter("{http://www.w3.org/2005/Atom}id")][1:]
    items = json.loads(client.get("/culture.json").data)["items"]
    assert sorted(ids) == sorted(item["id"] for item in items) == sorted(guids.values())


def test_every_served_feed_path_reads_back_as_its_address(write_stories, make_app):
    write_stories("culture", 7, tags=["Music"], author=["Zoë Martin"])
    app = make_app(FEED_ITEMS=3)
    snapshot = app.extensions["feedsvc"].snapshot()
    paths = [path for edition in snapshot.editions.values() for path in edition.paths()]
    assert {"/culture/archive/2.json", "/tags/music.atom", "/authors/zoe-martin.xml"} <= set(paths)
    for path in paths:
        address, fmt = parse_path(path)
        assert address.feed_path(fmt) == path
    for name, listing in snapshot.listings.items():
        assert Address.from_name(name).page_path == listing.page_path
        assert re.fullmatch(r"/([^/]+/)*", listing.page_path)


@pytest.mark.parametrize(("path", "address", "fmt"), FEEDS)
def test_the_string_shortcuts_agree_with_the_address(path, address, fmt):
    """The plain-string helpers that run per article or per feed give the Address's strings."""
    assert feed_path(address.name, fmt) == path
    eager = address.kind in (SITE, SECTION) and not address.archive
    assert is_subscription(address.name) == eager
    if not address.archive:
        assert listing_name(address.kind, address.slug) == address.name


def test_an_articles_listing_names_are_its_tags_then_its_authors(write_article, make_app):
    write_article("culture", "story", tags=["Music", "!!!", "Art"], author=["Zoë Martin"])
    [article] = make_app().extensions["feedsvc"].snapshot().site.articles
    assert named_in(article) == [
        (Address(TAG, "music").name, "Music"),
        (Address(TAG, "art").name, "Art"),
        (Address(AUTHOR, "zoe-martin").name, "Zoë Martin"),
    ]
    assert article.path == Address.article("culture", "story").page_path == "/culture/story/"


@pytest.mark.parametrize(("path", "address"), PAGES)
def test_pages_are_looked_up_by_their_address(path, address):
    assert page_at(path) == address


@pytest.mark.parametrize("path", ["/Culture/", "/culture/Story/", "/culture.xml", "/tags/"])
def test_a_path_no_page_can_have_is_no_page(path):
    assert page_at(path) is None
