"""Pages and feeds as a person sees them: Debian's headless Chromium against a real server."""

from __future__ import annotations

import pytest

from tests.browser import CHROMIUM, Browser, BrowserError
from tests.test_media import tiny_png

RSS_TYPE = "application/rss+xml"
ATOM_TYPE = "application/atom+xml"
JSON_TYPE = "application/feed+json"
TITLE = "Dvořák by the Water — the Quartet’s “Finale”"
DEK = "A summer season ends on the pier."
BODY_TEXT = "The quartet played Dvořák as the tide came in."
ARTICLE = {
    "title": TITLE,
    "date": "2026-08-02T20:15:00+02:00",
    "updated": "2026-08-03T10:00:00+02:00",
    "author": ["Zoë Martin", "Sam Okafor"],
    "summary": DEK,
    "image": {"src": "/media/lead.png", "alt": "Lamps on the harbour wall", "credit": "Ana Pérez"},
    "tags": ["Harbour", "Chamber music"],
    "related": [
        {"title": "Older News", "url": "/culture/older-news/"},
        {"title": "The festival programme", "url": "https://festival.example.org/programme"},
    ],
    "id": "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
}
BODY = """\
The quartet played *Dvořák* as the tide came in.

## After the interval

A second paragraph, with a [link to the programme](https://festival.example.org/).
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module, with a new empty profile."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    chromium = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser):
    """A new tab for the test; it must have logged no error and failed no request."""
    tab = browser.new_page()
    yield tab
    problems = tab.problems()
    tab.close()
    assert problems == []


@pytest.fixture
def site(write_section, write_article, write_media, serve):
    """Serve a culture section whose newest article uses every field; return the base URL."""
    write_section("culture", "Culture", "Arts and ideas.")
    write_section("science", "Science", "Nothing published yet.")
    write_media("lead.png", tiny_png())
    write_article("culture", "harbour-concert", BODY, **ARTICLE)
    write_article(
        "culture",
        "older-news",
        title="Older News",
        date="2026-07-01T08:00:00Z",
        summary="Something that happened in July.",
    )
    return serve()


def autodiscovery(page) -> list[dict]:
    """Return the page's <link rel=alternate> entries, each fetched by the page itself."""
    return page.evaluate(
        """Promise.all([...document.querySelectorAll('link[rel="alternate"]')].map(
            async (link) => {
                const response = await fetch(link.href);
                return {type: link.type, href: link.getAttribute("href"), title: link.title,
                        status: response.status, served: response.headers.get("content-type")};
            }))"""
    )


def assert_feeds_discovered(page, base: str, names: list[str]) -> None:
    """Check that the page announces RSS, Atom and JSON Feed of each name, absolute and live."""
    found = {(entry["type"], entry["href"]): entry for entry in autodiscovery(page)}
    for name in names:
        for media_type, extension in ((RSS_TYPE, "xml"), (ATOM_TYPE, "atom"), (JSON_TYPE, "json")):
            entry = found.get((media_type, f"{base}/{name}.{extension}"))
            assert entry is not None, f"no {media_type} link to {name} in {sorted(found)}"
            assert entry["title"]
    for entry in found.values():
        assert entry["href"].startswith(f"{base}/"), entry
        assert entry["status"] == 200, entry
        assert entry["served"].split(";")[0] == entry["type"], entry


def visible_text(page) -> str:
    """Return the text of the page as rendered (innerText leaves out what CSS hides)."""
    return page.evaluate("document.body.innerText")


def test_home_page_lists_articles_sections_and_feeds(site, page):
    page.goto(f"{site}/")

    assert page.evaluate("document.title") == "Test Gazette"
    assert_feeds_discovered(page, site, ["feed", "culture", "science"])
    text = visible_text(page)
    assert text.index(TITLE) < text.index("Older News")
    assert DEK in text and "2 August 2026" in text
    assert "Arts and ideas." in text and "Nothing published yet." in text
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(253, 252, 249)"


def test_section_page_lists_its_articles_newest_first(site, page):
    page.goto(f"{site}/culture/")

    assert page.evaluate("document.querySelector('h1').innerText") == "Culture"
    assert_feeds_discovered(page, site, ["culture", "feed"])
    titles = page.evaluate("[...document.querySelectorAll('main h3')].map(h => h.innerText)")
    assert titles == [TITLE, "Older News"]
    links = page.evaluate("[...document.querySelectorAll('main h3 a')].map(a => a.href)")
    assert links == [f"{site}/culture/harbour-concert/", f"{site}/culture/older-news/"]
    text = visible_text(page)
    assert DEK in text and "Something that happened in July." in text
    assert "2 August 2026" in text and "1 July 2026" in text


def test_article_page_shows_every_part(site, page):
    page.goto(f"{site}/culture/harbour-concert/")

    assert_feeds_discovered(page, site, ["culture", "feed"])
    assert page.evaluate("document.querySelector('h1').innerText") == TITLE
    text = visible_text(page)
    parts = [TITLE, DEK, "By Zoë Martin and Sam Okafor", "2 August 2026", "Ana Pérez", BODY_TEXT]
    positions = [text.find(part) for part in parts]
    assert -1 not in positions, dict(zip(parts, positions, strict=True))
    assert positions == sorted(positions), dict(zip(parts, positions, strict=True))
    assert "After the interval" in text and "Updated 3 August 2026" in text
    assert "Harbour" in text and "Chamber music" in text

    image = page.evaluate(
        """(() => {
            const img = document.querySelector('main img');
            const box = img.getBoundingClientRect();
            return {src: img.src, alt: img.alt, complete: img.complete,
                    naturalWidth: img.naturalWidth, shownWidth: box.width};
        })()"""
    )
    assert image["src"] == f"{site}/media/lead.png"
    assert image["alt"] == "Lamps on the harbour wall"
    assert image["complete"] and image["naturalWidth"] > 0 and image["shownWidth"] > 0
    assert page.evaluate("document.querySelector('main figcaption').innerText") == "Ana Pérez"

    links = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('main a')]"
        ".map((a) => [a.innerText, a.href]))"
    )
    assert links["Older News"] == f"{site}/culture/older-news/"
    assert links["The festival programme"] == "https://festival.example.org/programme"
    assert links["link to the programme"] == "https://festival.example.org/"
    assert page.evaluate("document.querySelector('main em').innerText") == "Dvořák"


# Everything needed to judge a feed shown through feed.css, read in one evaluation.
FEED_FACTS = """(() => {
    const root = document.documentElement;
    const shown = (element) => element.checkVisibility() && element.getClientRects().length > 0;
    const child = (parent, name) => [...parent.children].find((e) => e.localName === name);
    const items = [...root.querySelectorAll("item, entry")];
    const bodies = [
        ...document.getElementsByTagNameNS("http://purl.org/rss/1.0/modules/content/", "encoded"),
        ...document.getElementsByTagNameNS("http://www.w3.org/2005/Atom", "content"),
    ];
    return {
        contentType: document.contentType,
        root: root.localName,
        stylesheets: [...document.styleSheets].map((sheet) => sheet.href),
        explanation: getComputedStyle(root, "::before").content,
        background: getComputedStyle(root).backgroundColor,
        titles: items.map((item) => child(item, "title")).filter(shown).map((t) => t.textContent),
        summaries: items.map((item) => child(item, "description") || child(item, "summary"))
            .filter(shown).map((s) => s.textContent),
        hiddenIds: items.map((item) => child(item, "guid") || child(item, "id"))
            .every((id) => !shown(id)),
        hiddenBodies: bodies.length === items.length && bodies.every((body) => !shown(body)),
        parseErrors: document.getElementsByTagName("parsererror").length,
    };
})()"""


@pytest.mark.parametrize("feed, root", [("culture.xml", "rss"), ("culture.atom", "feed")])
def test_feed_reads_as_a_page_through_its_stylesheet(site, page, feed, root):
    # Chromium shows application/rss+xml and atom+xml as plain text; feedsvc sends the
    # same bytes to a browser (it asks for text/html) as application/xml, which it styles.
    page.goto(f"{site}/{feed}")

    facts = page.evaluate(FEED_FACTS)
    assert facts["root"] == root
    assert facts["parseErrors"] == 0
    assert facts["stylesheets"] == [f"{site}/static/feed.css"]
    assert "This is a web feed" in facts["explanation"]
    assert "feed reader to subscribe" in facts["explanation"]
    assert facts["background"] == "rgb(253, 252, 249)"
    assert facts["titles"] == [TITLE, "Older News"]
    assert facts["summaries"] == [DEK, "Something that happened in July."]
    assert facts["hiddenIds"], "item ids (guid, id) are shown"
    assert facts["hiddenBodies"], "full article bodies (content:encoded, content) are shown"


def test_empty_feed_says_so(site, page):
    page.goto(f"{site}/science.xml")

    channel = "document.documentElement.firstElementChild"
    assert page.evaluate(f"getComputedStyle({channel}, '::after').content") == '"No articles yet."'


def test_browser_reports_errors_and_failed_requests(site, browser):
    tab = browser.new_page()
    try:
        tab.goto(f"{site}/no-such-section/")
        with pytest.raises(BrowserError, match="ReferenceError"):
            tab.evaluate("no_such_variable")
        tab.evaluate("console.error('deliberate')")
        problems = tab.problems()
    finally:
        tab.close()
    assert f"HTTP 404: {site}/no-such-section/" in problems
    assert "console: deliberate" in problems
