"""Parsing content text into articles and sections: fields, defaults, dates and errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from feedsvc.dates import DateError, to_datetime
from feedsvc.markup import excerpt
from feedsvc.models import ContentError, Image, RelatedLink
from feedsvc.parsing import ParseContext, parse_article, parse_section_index

PATH = "content/culture/an-article.md"
CONTEXT = ParseContext(ZoneInfo("Europe/Paris"), "Site Staff")

FULL_ARTICLE = """\
---
title: "Why Did It Take So Long to Speak Up About the Council’s “Zero-Tolerance” Policy?"
date: 2026-06-21T10:15:00-07:00
updated: 2026-06-22T08:00:00-07:00
author: [Zoë Martin, Dvořák Jones]
summary: The mayor finally spoke up — and called it “heartbreaking”.
image:
  src: /media/lead.jpg
  alt: The mayor at the podium
  credit: Ana Pérez/Northbridge Photo
tags: [Politics, City hall]
related:
  - title: Councillors speak out
    url: /culture/councillors-speak-out/
id: urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427
kicker: Culture
---
For the past couple of weeks, *the mayor* has said nothing…

## Then

She spoke: “I think it’s heartbreaking.”
"""


def parse(text: str, slug: str = "an-article"):
    return parse_article(text, PATH, "culture", slug, CONTEXT)


def article(body: str = "Body.", **fields) -> str:
    lines = "".join(f"{key}: {value}\n" for key, value in fields.items())
    return f"---\n{lines}---\n{body}\n"


def test_every_field_is_read():
    parsed = parse(FULL_ARTICLE)
    assert parsed.title == (
        "Why Did It Take So Long to Speak Up About the Council’s “Zero-Tolerance” Policy?"
    )
    assert parsed.date == datetime(2026, 6, 21, 17, 15, tzinfo=UTC)
    assert parsed.date.utcoffset() == timedelta(hours=-7)
    assert parsed.updated == datetime(2026, 6, 22, 15, 0, tzinfo=UTC)
    assert parsed.authors == ("Zoë Martin", "Dvořák Jones")
    assert parsed.summary == "The mayor finally spoke up — and called it “heartbreaking”."
    assert parsed.dek == parsed.summary
    assert parsed.image == Image(
        src="/media/lead.jpg", alt="The mayor at the podium", credit="Ana Pérez/Northbridge Photo"
    )
    assert parsed.tags == ("Politics", "City hall")
    assert parsed.related == (
        RelatedLink("Councillors speak out", "/culture/councillors-speak-out/"),
    )
    assert parsed.explicit_id == "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert parsed.path == "/culture/an-article/"
    assert parsed.source_path == PATH
    assert dict(parsed.extra) == {"kicker": "Culture"}


def test_body_is_commonmark_html_with_typography_kept():
    parsed = parse(FULL_ARTICLE)
    assert "<em>the mayor</em> has said nothing…" in parsed.body_html
    assert "<h2>Then</h2>" in parsed.body_html
    assert "“I think it’s heartbreaking.”" in parsed.body_html


def test_defaults_when_optional_fields_are_absent():
    parsed = parse(article("First *paragraph* here.\n\nSecond.", title="T", date="2026-01-05"))
    assert parsed.updated == parsed.date
    assert parsed.authors == ("Site Staff",)
    assert parsed.summary == "First paragraph here."
    assert parsed.dek == ""
    assert parsed.image is None
    assert parsed.tags == ()
    assert parsed.related == ()
    assert parsed.explicit_id is None


def test_single_author_and_single_tag_as_text():
    parsed = parse(article(title="T", date="2026-01-05", author="Ana Pérez", tags="solo"))
    assert parsed.authors == ("Ana Pérez",)
    assert parsed.tags == ("solo",)


def test_default_summary_is_cut_at_a_word_boundary():
    words = " ".join(["word"] * 200)
    parsed = parse(article(words, title="T", date="2026-01-05"))
    assert parsed.summary.endswith("word…")
    assert len(parsed.summary) <= 281


def test_excerpt_leaves_short_text_alone():
    assert excerpt("Short and sweet.") == "Short and sweet."


def test_image_given_as_plain_text_is_its_src():
    parsed = parse(article(title="T", date="2026-01-05", image="https://cdn.example.org/a.png"))
    assert parsed.image == Image(src="https://cdn.example.org/a.png")


@pytest.mark.parametrize("value", ["true", "yes", "True"])
def test_draft_is_not_an_article(value):
    assert parse(article(title="T", date="2026-01-05", draft=value)) is None


def test_draft_false_is_published():
    assert parse(article(title="T", date="2026-01-05", draft="false")) is not None


@pytest.mark.parametrize(
    ("written", "expected", "offset_hours"),
    [
        # An explicit offset is kept as written.
        ("2026-06-21T10:15:00-07:00", datetime(2026, 6, 21, 17, 15, tzinfo=UTC), -7),
        ("2026-06-21T10:15:00Z", datetime(2026, 6, 21, 10, 15, tzinfo=UTC), 0),
        ('"Sun, 21 Jun 2026 10:15:00 +0530"', datetime(2026, 6, 21, 4, 45, tzinfo=UTC), 5.5),
        # No offset: the site's time zone (Europe/Paris, summer time in June).
        ("2026-06-21 10:15:00", datetime(2026, 6, 21, 8, 15, tzinfo=UTC), 2),
        ('"June 21, 2026 10:15"', datetime(2026, 6, 21, 8, 15, tzinfo=UTC), 2),
        ("2026-01-10", datetime(2026, 1, 9, 23, 0, tzinfo=UTC), 1),
        # A named IANA zone after the time.
        ('"2026-06-21 10:15 America/New_York"', datetime(2026, 6, 21, 14, 15, tzinfo=UTC), -4),
        ('"2026-12-21 10:15 America/New_York"', datetime(2026, 12, 21, 15, 15, tzinfo=UTC), -5),
        ('"2026-06-21 10:15 UTC"', datetime(2026, 6, 21, 10, 15, tzinfo=UTC), 0),
    ],
)
def test_dates_keep_their_offset_or_take_the_site_zone(written, expected, offset_hours):
    parsed = parse(article(title="T", date=written))
    assert parsed.date == expected
    assert parsed.date.utcoffset() == timedelta(hours=offset_hours)


def test_to_datetime_accepts_date_objects_and_naive_datetimes():
    paris = ZoneInfo("Europe/Paris")
    assert to_datetime(date(2026, 1, 10), paris) == datetime(2026, 1, 10, tzinfo=paris)
    assert to_datetime(datetime(2026, 1, 10, 8), UTC) == datetime(2026, 1, 10, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", ["not a date", "2026-13-45", "10:15 Mars/Olympus", "EST5EDT??", 42]
)
def test_to_datetime_refuses_nonsense(value):
    with pytest.raises(DateError):
        to_datetime(value, UTC)


def test_updated_before_date_is_raised_to_the_date():
    parsed = parse(article(title="T", date="2026-02-01T00:00:00Z", updated="2025-01-01T00:00:00Z"))
    assert parsed.updated == parsed.date


def test_control_characters_are_dropped():
    parsed = parse(
        article("Bell\x07 and form\x0cfeed.", title='"Ding\\x07 dong"', date="2026-01-05")
    )
    assert parsed.title == "Ding dong"
    assert "\x07" not in parsed.body_html and "\x0c" not in parsed.body_html


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("no front matter\n", 1, "must start with a '---' line"),
        ("---\ntitle: T\n", 1, "not closed"),
        ("---\ntitle: T\ndate: [unclosed\n---\n", 4, "not valid YAML"),
        ("---\n- a\n- b\n---\n", 2, "must be a mapping"),
        ("---\ndate: 2026-01-05\n---\n", 1, "missing required field 'title'"),
        ("---\ntitle: '   '\ndate: 2026-01-05\n---\n", 2, "field 'title' is empty"),
        ("---\ntitle: T\n---\n", 1, "missing required field 'date'"),
        ("---\ntitle: T\ndate:\n---\n", 3, "missing required field 'date'"),
        ("---\ntitle: T\ndate: yesterday-ish\n---\n", 3, "field 'date'"),
        ("---\ntitle: T\ndate: 2026-13-45\n---\n", 3, "field 'date': cannot read"),
        ("---\ntitle: T\ndate: 2026-02-30 10:00:00\n---\n", 3, "field 'date': cannot read"),
        ("---\ntitle: T\nx: !!python/object:os.system {}\n---\n", 3, "not valid YAML"),
        ("---\ntitle: T\ndate: 2026-01-05\nupdated: soon\n---\n", 4, "field 'updated'"),
        ("---\ntitle: [a, b]\ndate: 2026-01-05\n---\n", 2, "must be text"),
        ("---\ntitle: T\ndate: 2026-01-05\nimage: {alt: x}\n---\n", 4, "needs at least 'src'"),
        ("---\ntitle: T\ndate: 2026-01-05\nrelated: x\n---\n", 4, "must be a list"),
        ("---\ntitle: T\ndate: 2026-01-05\nrelated: [{title: x}]\n---\n", 4, "needs a 'url'"),
        ("---\ntitle: T\ndate: 2026-01-05\ntags: [{a: b}]\n---\n", 4, "list of text"),
    ],
)
def test_bad_articles_raise_with_path_line_and_reason(text, line, reason):
    with pytest.raises(ContentError) as caught:
        parse(text)
    assert caught.value.path == PATH
    assert caught.value.line == line
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{PATH}:{line}: ")


@pytest.mark.parametrize("slug", ["Capital", "with space", "under_score", "dots.in.it", ""])
def test_bad_slug_is_refused(slug):
    with pytest.raises(ContentError, match="slug"):
        parse(article(title="T", date="2026-01-05"), slug=slug)


def test_byte_order_mark_is_ignored():
    assert parse("\ufeff" + article(title="T", date="2026-01-05")).title == "T"


def test_section_index_gives_title_and_description():
    section = parse_section_index(
        "---\ntitle: Culture & Ideas\ndescription: Arts — and the rest.\n---\n",
        "content/culture/_index.md",
        "culture",
    )
    assert (section.slug, section.title, section.description) == (
        "culture",
        "Culture & Ideas",
        "Arts — and the rest.",
    )
    assert section.path == "/culture/"


def test_section_index_without_title_uses_the_folder_name():
    section = parse_section_index("---\n---\n", "content/long-reads/_index.md", "long-reads")
    assert section.title == "Long Reads"
