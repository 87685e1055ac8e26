"""HTML pages: home, section and article content, autodiscovery, escaping, 404s and HTTP."""

from __future__ import annotations

import os

import lxml.html
import pytest

SITE_URL = "https://news.example.org"
RSS_TYPE = "application/rss+xml"
ATOM_TYPE = "application/atom+xml"
JSON_TYPE = "application/feed+json"
FUTURE = "2999-01-01T00:00:00+00:00"

ARTICLE_BODY = """\
Some *emphasis* and a [link to the archive](https://archive.example.com/x).

A second paragraph.
"""


@pytest.fixture
def site(write_article, write_section, make_app):
    """A client on two sections with published, draft and future-dated articles."""
    write_section("culture", "Culture", "Arts and ideas.")
    write_section("science", "Science", "Discoveries.")
    write_article(
        "culture",
        "first",
        title="First Story",
        date="2026-03-01T09:00:00+00:00",
        summary="First summary.",
    )
    write_article(
        "culture",
        "second",
        title="Second Story",
        date="2026-03-03T09:00:00+00:00",
        summary="Second summary.",
    )
    write_article(
        "science",
        "third",
        title="Third Story",
        date="2026-03-02T09:00:00+00:00",
        summary="Third summary.",
    )
    write_article(
        "culture",
        "hidden-draft",
        title="Hidden Draft",
        date="2026-03-04T09:00:00+00:00",
        draft=True,
    )
    write_article("culture", "not-yet", title="Not Yet", date=FUTURE)
    return make_app().test_client()


def parse(response) -> lxml.html.HtmlElement:
    """Parse an HTML response into an element tree."""
    return lxml.html.document_fromstring(response.data)


def alternates(doc) -> set[tuple[str, str]]:
    """Return the (type, href) pairs of the page's feed autodiscovery links."""
    return {
        (link.get("type"), link.get("href")) for link in doc.xpath("//head/link[@rel='alternate']")
    }


def feed_pairs(name: str) -> set[tuple[str, str]]:
    """Return the autodiscovery pairs expected for feed `name`."""
    return {
        (RSS_TYPE, f"{SITE_URL}/{name}.xml"),
        (ATOM_TYPE, f"{SITE_URL}/{name}.atom"),
        (JSON_TYPE, f"{SITE_URL}/{name}.json"),
    }


def listed_titles(doc) -> list[str]:
    """Return the titles of the article list, in page order."""
    return [a.text_content() for a in doc.xpath("//ol[@class='article-list']/li/h3/a")]


def xpath_text(doc, path: str) -> str:
    """Return the whitespace-normalised text of the one element at `path`."""
    (element,) = doc.xpath(path)
    return " ".join(element.text_content().split())


# Home page


def test_home_lists_latest_articles_newest_first(site):
    doc = parse(site.get("/"))
    assert listed_titles(doc) == ["Second Story", "Third Story", "First Story"]


def test_home_lists_every_section(site):
    doc = parse(site.get("/"))
    links = doc.xpath("//ul[@class='sections']/li/a")
    assert [(a.get("href"), a.text_content()) for a in links] == [
        ("/culture/", "Culture"),
        ("/science/", "Science"),
    ]


def test_home_links_to_every_feed(site):
    doc = parse(site.get("/"))
    hrefs = {a.get("href") for a in doc.xpath("//footer//a")}
    expected = feed_pairs("feed") | feed_pairs("culture") | feed_pairs("science")
    assert {href for _, href in expected} <= hrefs


def test_home_autodiscovers_site_feeds(site):
    doc = parse(site.get("/"))
    assert feed_pairs("feed") <= alternates(doc)


def test_home_with_no_content_still_answers(make_app):
    response = make_app().test_client().get("/")
    assert response.status_code == 200
    assert feed_pairs("feed") <= alternates(parse(response))


# Section page


def test_section_lists_its_articles_newest_first(site):
    doc = parse(site.get("/culture/"))
    assert listed_titles(doc) == ["Second Story", "First Story"]


def test_section_shows_title_date_and_summary(site):
    doc = parse(site.get("/culture/"))
    (item,) = doc.xpath("//ol[@class='article-list']/li[h3/a='First Story']")
    assert item.xpath("h3/a/@href") == ["/culture/first/"]
    (time,) = item.xpath(".//time")
    assert time.get("datetime") == "2026-03-01T09:00:00+00:00"
    assert time.text_content() == "1 March 2026"
    assert "First summary." in [p.text_content() for p in item.xpath("p")]


def test_section_heading_and_description(site):
    doc = parse(site.get("/culture/"))
    assert xpath_text(doc, "//main/h1") == "Culture"
    assert xpath_text(doc, "//main/p[@class='lede']") == "Arts and ideas."


@pytest.mark.parametrize("title", ["Hidden Draft", "Not Yet", "Third Story"])
def test_section_leaves_out_drafts_future_and_other_sections(site, title):
    doc = parse(site.get("/culture/"))
    assert title not in listed_titles(doc)


def test_long_section_is_split_into_pages(write_article, client_factory):
    for day in range(1, 56):  # 55 articles: a full first page and 5 on the second
        write_article(
            "culture",
            f"story-{day:02}",
            title=f"Story {day}",
            date=f"2026-01-{day % 28 + 1:02}T{day % 24:02}:00:00Z",
        )
    client = client_factory()
    first = parse(client.get("/culture/"))
    assert len(first.xpath("//ol[@class='article-list']/li")) == 50
    assert first.xpath("//nav[@class='pager']/a[@rel='next']/@href") == ["/culture/page/2/"]
    assert not first.xpath("//a[@rel='prev']")
    second = parse(client.get("/culture/page/2/"))
    assert len(second.xpath("//ol[@class='article-list']/li")) == 5
    assert second.xpath("//nav[@class='pager']/a[@rel='prev']/@href") == ["/culture/"]
    assert not second.xpath("//a[@rel='next']")
    shown = first.xpath("//ol/li//h3/a/text()") + second.xpath("//ol/li//h3/a/text()")
    assert sorted(shown) == sorted(f"Story {day}" for day in range(1, 56))


@pytest.mark.parametrize("path", ["/culture/page/1/", "/culture/page/3/", "/culture/page/x/"])
def test_pages_beyond_the_section_are_404(site, path):
    assert site.get(path).status_code == 404


@pytest.mark.parametrize("path", ["/", "/culture/"])
def test_drafts_and_future_articles_are_not_linked(site, path):
    doc = parse(site.get(path))
    hrefs = doc.xpath("//a/@href")
    assert "/culture/hidden-draft/" not in hrefs
    assert "/culture/not-yet/" not in hrefs


def test_section_autodiscovers_its_feeds(site):
    doc = parse(site.get("/science/"))
    assert feed_pairs("science") <= alternates(doc)
    assert not feed_pairs("culture") & alternates(doc)


def test_section_without_index_is_titled_from_its_slug(write_article, make_app):
    write_article("arts-and-crafts", "knitting")
    doc = parse(make_app().test_client().get("/arts-and-crafts/"))
    assert xpath_text(doc, "//main/h1") == "Arts And Crafts"


# Not found


@pytest.mark.parametrize(
    "path",
    [
        "/nowhere/",
        "/nowhere/first/",
        "/culture/missing/",
        "/culture/hidden-draft/",
        "/culture/not-yet/",
        "/science/first/",
        "/media/",
        "/nowhere.xml",
    ],
)
def test_unknown_pages_answer_a_small_html_404(site, path):
    response = site.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    doc = parse(response)
    assert xpath_text(doc, "//main/h1") == "Not Found"
    assert b"Traceback" not in response.data
    assert len(response.data) < 10_000


# Article page


@pytest.fixture
def full_client(write_section, write_article, make_app):
    """A client on one article that uses every field shown on its page."""
    write_section("culture", "Culture")
    write_article(
        "culture",
        "full",
        body=ARTICLE_BODY,
        title="The Mayor’s “Zero-Tolerance” Policy",
        date="2026-03-01T09:30:00+00:00",
        updated="2026-03-05T10:00:00+00:00",
        author="Ada Lovelace",
        summary="The dek, in one sentence.",
        image={"src": "/media/lead.jpg", "alt": "A red door", "credit": "Photo: Jo Doe"},
        tags=["Art", "City hall"],
        related=[{"title": "Older story", "url": "https://news.example.org/culture/older/"}],
    )
    return make_app().test_client()


@pytest.fixture
def full_article(full_client):
    """The parsed page of the article that uses every field."""
    return parse(full_client.get("/culture/full/"))


def test_article_headline_and_dek(full_article):
    assert xpath_text(full_article, "//article/h1") == "The Mayor’s “Zero-Tolerance” Policy"
    assert xpath_text(full_article, "//article/p[@class='dek']") == "The dek, in one sentence."


def test_article_page_title_names_article_and_site(full_article):
    assert xpath_text(full_article, "//head/title").startswith("The Mayor’s")
    assert xpath_text(full_article, "//head/title").endswith("Test Gazette")


def test_article_kicker_links_to_its_section(full_article):
    (link,) = full_article.xpath("//article/p[@class='kicker']/a")
    assert (link.get("href"), link.text_content()) == ("/culture/", "Culture")


def test_article_dates(full_article):
    times = full_article.xpath("//article/p[@class='meta']/time")
    assert [(t.get("datetime"), t.text_content()) for t in times] == [
        ("2026-03-01T09:30:00+00:00", "1 March 2026"),
        ("2026-03-05T10:00:00+00:00", "5 March 2026"),
    ]


def test_article_lead_image_with_alt_and_credit(full_article):
    (img,) = full_article.xpath("//article/figure/img")
    assert (img.get("src"), img.get("alt")) == ("/media/lead.jpg", "A red door")
    assert xpath_text(full_article, "//article/figure/figcaption") == "Photo: Jo Doe"


def test_article_body_is_rendered_markdown(full_article):
    (body,) = full_article.xpath("//article/div[@class='body']")
    assert [em.text_content() for em in body.xpath(".//em")] == ["emphasis"]
    (link,) = body.xpath(".//a")
    assert (link.get("href"), link.text_content()) == (
        "https://archive.example.com/x",
        "link to the archive",
    )
    assert len(body.xpath("p")) == 2
    assert "*" not in body.text_content()


def test_article_tags(full_article):
    tags = full_article.xpath("//article/ul[@class='tags']/li")
    assert [li.text_content() for li in tags] == ["Art", "City hall"]


def test_article_related_links(full_article):
    links = full_article.xpath("//article/aside[@class='related']//a")
    assert [(a.get("href"), a.text_content()) for a in links] == [
        ("https://news.example.org/culture/older/", "Older story")
    ]


def test_article_autodiscovers_its_section_feeds(full_article):
    assert feed_pairs("culture") <= alternates(full_article)


def test_article_without_optional_fields_has_no_empty_blocks(site):
    doc = parse(site.get("/culture/first/"))
    assert doc.xpath("//article/figure") == []
    assert doc.xpath("//article/ul[@class='tags']") == []
    assert doc.xpath("//article/aside") == []


@pytest.mark.parametrize(
    ("author", "byline"),
    [
        ("Ada Lovelace", "Ada Lovelace"),
        (["Ada Lovelace", "Grace Hopper"], "Ada Lovelace and Grace Hopper"),
        (None, "Gazette Staff"),
    ],
    ids=["one-author", "two-authors", "site-author"],
)
def test_article_byline(write_article, make_app, author, byline):
    fields = {"author": author} if author is not None else {}
    write_article("culture", "story", **fields)
    doc = parse(make_app().test_client().get("/culture/story/"))
    assert xpath_text(doc, "//article//span[@class='byline']") == byline


# Escaping

HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_SUMMARY = "Plain <b>not bold</b> & done"


@pytest.fixture
def hostile(write_article, make_app):
    """A client on an article whose title and summary hold markup."""
    write_article("culture", "hostile", title=HOSTILE_TITLE, summary=HOSTILE_SUMMARY)
    return make_app().test_client()


@pytest.mark.parametrize("path", ["/", "/culture/", "/culture/hostile/"])
def test_markup_in_title_is_shown_as_text(hostile, path):
    doc = parse(hostile.get(path))
    assert doc.xpath("//script") == []
    assert HOSTILE_TITLE in [a.text_content() for a in doc.xpath("//main//a | //main//h1")]


@pytest.mark.parametrize("path", ["/", "/culture/", "/culture/hostile/"])
def test_markup_in_summary_is_shown_as_text(hostile, path):
    doc = parse(hostile.get(path))
    assert doc.xpath("//b") == []
    assert HOSTILE_SUMMARY in [p.text_content() for p in doc.xpath("//main//p")]


def test_markup_in_title_is_text_in_head_title(hostile):
    doc = parse(hostile.get("/culture/hostile/"))
    assert xpath_text(doc, "//head/title").startswith(HOSTILE_TITLE)


# HTTP: HEAD, validators, Host


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/culture/",
        "/culture/first/",
        "/feed.xml",
        "/culture.atom",
        "/nowhere/",
        "/culture/hidden-draft/",
    ],
)
def test_head_answers_like_get_without_body(site, path):
    got = site.get(path)
    head = site.head(path)
    assert head.status_code == got.status_code
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert head.data == b""


PAGES = ["/", "/culture/", "/culture/first/"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_etag_and_last_modified(site, path):
    response = site.get(path)
    assert response.status_code == 200
    assert response.headers.get("ETag")
    assert response.last_modified is not None


@pytest.mark.parametrize("path", PAGES)
def test_if_none_match_with_etag_gives_304(site, path):
    etag = site.get(path).headers["ETag"]
    response = site.get(path, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""


@pytest.mark.parametrize("path", PAGES)
def test_stale_etag_gets_full_page(site, path):
    response = site.get(path, headers={"If-None-Match": '"not-the-etag"'})
    assert response.status_code == 200
    assert response.data


@pytest.mark.parametrize("path", PAGES)
def test_if_modified_since_last_modified_gives_304(site, path):
    last_modified = site.get(path).headers["Last-Modified"]
    response = site.get(path, headers={"If-Modified-Since": last_modified})
    assert response.status_code == 304


def test_article_last_modified_is_its_updated_date(full_client, backdate):
    backdate()
    response = full_client.get("/culture/full/")
    assert response.headers["Last-Modified"] == "Thu, 05 Mar 2026 10:00:00 GMT"


def test_article_last_modified_follows_a_newer_file_time(full_client, content_dir):
    when = 1790000000  # 2026-09-21T14:13:20Z, after the article's updated date
    os.utime(content_dir / "culture" / "full.md", (when, when))
    response = full_client.get("/culture/full/")
    assert response.headers["Last-Modified"] == "Mon, 21 Sep 2026 14:13:20 GMT"


FORGED_HOST = "evil.example"


@pytest.mark.parametrize("path", ["/", "/culture/", "/culture/first/", "/nowhere/"])
def test_forged_host_never_appears_in_links(site, path):
    response = site.get(path, headers={"Host": FORGED_HOST})
    links = parse(response).xpath("//@href | //@src | //@action")
    assert links
    assert not [link for link in links if FORGED_HOST in link]
    assert FORGED_HOST.encode() not in response.data


@pytest.mark.parametrize("path", ["/culture", "/culture/first"])
def test_slash_redirect_ignores_forged_host(site, path):
    response = site.get(path, headers={"Host": FORGED_HOST})
    assert response.status_code == 308
    assert response.headers["Location"] in (path + "/", SITE_URL + path + "/")
