"""Our feeds break none of the W3C Feed Validator's rules; the rule checker itself catches each."""

from __future__ import annotations

import pytest

from feedsvc import create_app
from tests.w3c_rules import feed_problems

FEEDS = ["/culture.xml", "/culture.atom", "/feed.xml", "/feed.atom"]


@pytest.fixture
def awkward_site(write_section, write_article, write_media):
    """Articles written to tempt every rule: markup, relative links, odd text, two authors."""
    write_section("culture", "Culture & Ideas", "Arts — “and” the rest.")
    write_media("lead.jpg", b"\xff\xd8\xff" + b"0" * 50)
    write_article(
        "culture",
        "tempting",
        '<p style="color:red" onclick="x()">Styled</p><script>x()</script>'
        '<iframe src="/x"></iframe><object data="/y"></object>\n\n'
        "[relative](../other/) ![pic](pic.png) <a href='javascript:alert(1)'>js</a>\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n<video src='/media/v.mp4' controls></video>",
        summary="Why 3 < 5 & more.",
        author=["Zoë Martin", "Sam Okafor"],
        image={"src": "/media/lead.jpg", "alt": "A <b>bold</b> claim", "credit": "A & B"},
        tags=["x & y", "a < b"],
        related=[{"title": "Elsewhere", "url": "/culture/other/"}],
        updated="2026-03-02T10:00:00+05:30",
    )
    write_article("culture", "other", id="legacy-id-17", date="2026-02-01T08:00:00-08:00")
    write_article("culture", "plain", date="2026-01-01")


@pytest.mark.parametrize("url", FEEDS)
def test_awkward_content_still_gives_clean_feeds(awkward_site, client_factory, url):
    assert feed_problems(client_factory().get(url).data) == []


def test_shipped_sample_site_feeds_are_clean(monkeypatch, tmp_path):
    monkeypatch.delenv("FEEDSVC_CONTENT_DIR", raising=False)
    config = {"SITE_URL": "https://news.example.org", "STATE_DIR": str(tmp_path)}
    app = create_app({"TESTING": True, "WATCH_CONTENT": False, **config})
    client = app.test_client()
    for name in ["feed", *app.extensions["feedsvc"].site.sections]:
        for extension in ("xml", "atom"):
            assert feed_problems(client.get(f"/{name}.{extension}").data) == [], name


RSS = """<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"
 xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
<title>T</title><link>https://example.org/</link><description>D</description>
<atom:link href="https://example.org/f.xml" rel="self" type="application/rss+xml"/>
<item>{item}</item></channel></rss>"""
GOOD_ITEM = (
    "<title>A</title><link>https://example.org/a</link><guid>https://example.org/a</guid>"
    "<description>d</description><pubDate>Sun, 01 Mar 2026 09:00:00 +0000</pubDate>"
)
ATOM = """<feed xmlns="http://www.w3.org/2005/Atom"><id>https://example.org/f</id>
<title>T</title><updated>2026-03-01T09:00:00Z</updated><author><name>N</name></author>
<link href="https://example.org/f.atom" rel="self"/>{entries}</feed>"""
GOOD_ENTRY = (
    "<entry><id>https://example.org/{n}</id><title>A</title>"
    "<updated>2026-03-0{n}T09:00:00Z</updated></entry>"
)


def test_minimal_valid_feeds_pass():
    assert feed_problems(RSS.format(item=GOOD_ITEM).encode()) == []
    entries = GOOD_ENTRY.format(n=1) + GOOD_ENTRY.format(n=2)
    assert feed_problems(ATOM.format(entries=entries).encode()) == []


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (GOOD_ITEM.replace("<guid>https://example.org/a</guid>", ""), "MissingGuid"),
        (GOOD_ITEM.replace("+0000", "+00:00"), "InvalidRFC2822Date"),
        (GOOD_ITEM.replace("Sun,", "Mon,"), "IncorrectDOW"),
        (GOOD_ITEM.replace("2026", "2099"), "ImplausibleDate"),
        (GOOD_ITEM + "<author>Jo Doe</author>", "InvalidContact"),
        (
            GOOD_ITEM + "<author>jo@example.org</author><dc:creator>Jo</dc:creator>",
            "DuplicateItemSemantics",
        ),
        (GOOD_ITEM.replace("<link>https://example.org/a</link>", "<link>/a</link>"), "InvalidLink"),
        (
            GOOD_ITEM.replace(">https://example.org/a</guid>", ">urn:uuid:1</guid>"),
            "InvalidPermalink",
        ),
        (
            GOOD_ITEM + "<content:encoded>&lt;script&gt;x()&lt;/script&gt;</content:encoded>",
            "SecurityRisk",
        ),
        (
            GOOD_ITEM + "<content:encoded>&lt;p onclick='x()'&gt;a&lt;/p&gt;</content:encoded>",
            "SecurityRiskAttr",
        ),
        (
            GOOD_ITEM + "<content:encoded>&lt;a href='/rel'&gt;a&lt;/a&gt;</content:encoded>",
            "ContainsRelRef",
        ),
        (
            GOOD_ITEM.replace(
                "<description>d</description>", "<description>3 &lt; 5</description>"
            ),
            "NotHtml",
        ),
        (
            GOOD_ITEM + '<enclosure url="https://example.org/x" type="image/png"/>',
            "InvalidIntegerAttribute",
        ),
        (
            GOOD_ITEM.replace("<title>A</title>", "<title>&lt;b&gt;A&lt;/b&gt;</title>"),
            "ContainsHTML",
        ),
        (GOOD_ITEM + "<category>&lt;i&gt;x&lt;/i&gt;</category>", "ContainsHTML"),
    ],
)
def test_each_broken_rss_rule_is_reported(item, message):
    problems = feed_problems(RSS.format(item=item).encode())
    assert any(problem.startswith(message) for problem in problems), problems


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (GOOD_ENTRY.format(n=1) * 2, "DuplicateEntries"),
        (GOOD_ENTRY.format(n=1) + GOOD_ENTRY.format(n=1).replace("/1<", "/9<"), "DuplicateUpdated"),
        (GOOD_ENTRY.format(n=1).replace("https://example.org/1", "item-1"), "InvalidFullLink"),
        (GOOD_ENTRY.format(n=1).replace("T09:00:00Z", " 09:00"), "InvalidRFC3339Date"),
        (
            GOOD_ENTRY.format(n=1).replace(
                "</entry>", '<content type="html">&lt;iframe&gt;&lt;/iframe&gt;</content></entry>'
            ),
            "SecurityRisk",
        ),
    ],
)
def test_each_broken_atom_rule_is_reported(entries, message):
    problems = feed_problems(ATOM.format(entries=entries).encode())
    assert any(problem.startswith(message) for problem in problems), problems


def test_atom_entry_without_any_author_is_reported():
    document = ATOM.replace("<author><name>N</name></author>", "").format(
        entries=GOOD_ENTRY.format(n=1)
    )
    assert "MissingAuthor" in feed_problems(document.encode())[0]
