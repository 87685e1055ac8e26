"""JSON Feed 1.1: valid against the specification, and the same items as RSS and Atom."""

from __future__ import annotations

import json

import feedparser
import jsonschema
import pytest

from tests.conftest import SITE_URL

# JSON Feed 1.1 (https://jsonfeed.org/version/1.1) written as a JSON Schema: the fields the
# specification defines, their types, and what it requires.
_AUTHOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "avatar": {"type": "string", "format": "uri"},
    },
    "anyOf": [{"required": ["name"]}, {"required": ["url"]}, {"required": ["avatar"]}],
}
_DATE = {"type": "string", "format": "date-time"}
JSON_FEED_SCHEMA = {
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": {"type": "string"},
        "home_page_url": {"type": "string", "format": "uri"},
        "feed_url": {"type": "string", "format": "uri"},
        "description": {"type": "string"},
        "user_comment": {"type": "string"},
        "next_url": {"type": "string", "format": "uri"},
        "icon": {"type": "string", "format": "uri"},
        "favicon": {"type": "string", "format": "uri"},
        "authors": {"type": "array", "items": _AUTHOR},
        "language": {"type": "string"},
        "expired": {"type": "boolean"},
        "hubs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "url"],
                "properties": {"type": {"type": "string"}, "url": {"type": "string"}},
            },
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "anyOf": [{"required": ["content_html"]}, {"required": ["content_text"]}],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "url": {"type": "string", "format": "uri"},
                    "external_url": {"type": "string", "format": "uri"},
                    "title": {"type": "string"},
                    "content_html": {"type": "string"},
                    "content_text": {"type": "string"},
                    "summary": {"type": "string"},
                    "image": {"type": "string", "format": "uri"},
                    "banner_image": {"type": "string", "format": "uri"},
                    "date_published": _DATE,
                    "date_modified": _DATE,
                    "authors": {"type": "array", "items": _AUTHOR},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "language": {"type": "string"},
                },
            },
        },
    },
}
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


@pytest.fixture
def newsroom(write_section, write_article, write_media):
    """A section with an article using every field, and a plain one."""
    write_section("culture", "Culture", "Arts and ideas.")
    write_media("stage.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    write_article(
        "culture",
        "full",
        "The “first” paragraph.\n\nA [relative link](../other/).",
        title="A Night at the Harbour — “Live”",
        date="2026-03-01T09:30:00-07:00",
        updated="2026-03-02T10:00:00+01:00",
        author=["Zoë Martin", "Sam Okafor"],
        summary="The dek.",
        image={"src": "/media/stage.png", "alt": "The stage", "credit": "Ana Pérez"},
        tags=["Music", "Harbour"],
        id="tag:news.example.org,2026:harbour",
    )
    write_article("culture", "plain", title="Plain", date="2026-02-01T08:00:00Z")


def test_document_is_valid_json_feed_1_1(newsroom, client):
    response = client.get("/culture.json")
    assert response.status_code == 200
    assert response.content_type == "application/feed+json; charset=utf-8"
    document = json.loads(response.data)
    jsonschema.validate(document, JSON_FEED_SCHEMA, format_checker=FORMATS)
    assert document["feed_url"] == f"{SITE_URL}/culture.json"
    assert document["home_page_url"] == f"{SITE_URL}/culture/"
    assert document["title"] == "Culture — Test Gazette"


def test_item_carries_every_field(newsroom, client):
    item = json.loads(client.get("/culture.json").data)["items"][0]
    assert item["id"] == "tag:news.example.org,2026:harbour"
    assert item["url"] == f"{SITE_URL}/culture/full/"
    assert item["title"] == "A Night at the Harbour — “Live”"
    assert item["summary"] == "The dek."
    assert item["date_published"] == "2026-03-01T09:30:00-07:00"
    assert item["date_modified"] == "2026-03-02T10:00:00+01:00"
    assert item["authors"] == [{"name": "Zoë Martin"}, {"name": "Sam Okafor"}]
    assert item["tags"] == ["Music", "Harbour"]
    assert item["image"] == f"{SITE_URL}/media/stage.png"
    html = item["content_html"]
    assert f'<img src="{SITE_URL}/media/stage.png" alt="The stage"' in html
    assert "<figcaption>Ana Pérez</figcaption>" in html
    assert f'href="{SITE_URL}/culture/other/"' in html


@pytest.mark.parametrize("name", ["culture", "feed"])
def test_same_items_as_atom(newsroom, client, name):
    items = json.loads(client.get(f"/{name}.json").data)["items"]
    atom = feedparser.parse(client.get(f"/{name}.atom").data).entries
    assert [(i["id"], i["url"], i["title"]) for i in items] == [
        (e.id, e.link, e.title) for e in atom
    ]


def test_answers_conditional_get_like_the_other_feeds(newsroom, client):
    first = client.get("/feed.json", headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip"
    again = client.get(
        "/feed.json", headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.headers["Last-Modified"] == first.headers["Last-Modified"]


def test_empty_section_gives_a_valid_document(write_section, write_article, client_factory):
    write_section("quiet", "Quiet")
    write_article("culture", "story")
    document = json.loads(client_factory().get("/quiet.json").data)
    jsonschema.validate(document, JSON_FEED_SCHEMA, format_checker=FORMATS)
    assert document["items"] == []
