"""Feeds and the OPML file are answered by the fast path alone, whatever the method."""

from __future__ import annotations

import pytest

from tests.conftest import article_text


@pytest.fixture
def site(write_section, write_stories):
    write_section("culture", "Culture")
    write_stories("culture", 2, tags=["Tides"])


@pytest.mark.parametrize(
    "path",
    ["/feed.xml", "/culture.atom", "/culture.json", "/tags/tides.xml", "/feeds.opml"],
)
def test_documents_answer_get_and_head_and_refuse_other_methods(site, client, path):
    got = client.get(path)
    assert got.status_code == 200 and got.data
    head = client.head(path)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == got.headers["ETag"]
    for method in ("POST", "PUT", "DELETE"):
        refused = client.open(path, method=method)
        assert refused.status_code == 405
        assert refused.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/nowhere.xml", "/tags/nobody.atom", "/culture/archive/9.xml"])
def test_unknown_feed_is_the_404_page(site, client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_a_renamed_sections_old_feed_still_redirects(site, content_dir, client_factory):
    (content_dir / "culture" / "_index.md").write_text(
        article_text("", title="Culture", aliases=["kultur"]), encoding="utf-8"
    )
    response = client_factory().get("/kultur.xml")
    assert response.status_code == 301
    assert response.headers["Location"] == "/culture.xml"


def test_home_page_links_the_opml_under_the_site_prefix(site, client_factory):
    client = client_factory(SITE_URL="https://example.org/news")
    page = client.get("/news/")
    assert b'href="/news/feeds.opml"' in page.data
    assert client.get("/news/feeds.opml").status_code == 200
