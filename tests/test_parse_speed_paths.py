"""Each shortcut that makes reading a file cheaper gives exactly what the long way gives.

Every test runs the same input both ways (the shortcut switched off with monkeypatch, or the
long way written out) and compares everything the result holds, warnings included.
"""

from __future__ import annotations

import itertools
import re
import zlib
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit
from zoneinfo import ZoneInfo

import pytest
from conftest import PNG

from feedsvc import dates, media, parsing
from feedsvc.images import ImageFactsCache
from feedsvc.loader import read_content_file
from feedsvc.markup import new_markdown, repair_windows_1252, strip_xml_invalid
from feedsvc.models import (
    _ARTICLE_VALUES,
    NO_EXTRA,
    Article,
    Body,
    pack_html,
    unpack_html,
    with_changes,
)
from feedsvc.parsing import ParseContext

ZONES = [UTC, ZoneInfo("Europe/Paris"), ZoneInfo("America/St_Johns")]
NOW = datetime(2026, 6, 1, tzinfo=UTC)


# ---------------------------------------------------------------- dates


def _rfc_822_dates() -> list[str]:
    """RFC 822 dates as feeds and mail write them, and near misses of every part."""
    found = []
    weekdays = ["Mon, ", "Sat, ", "Saturday, ", "sat, ", "SAT, ", "", "Mox, ", "Sat "]
    for weekday in weekdays:
        found.append(f"{weekday}03 Oct 2026 10:00:00 +0200")
    for day, month in itertools.product(["3", "03", "31", "0", "32"], ["Oct", "Feb", "oct"]):
        found.append(f"Sat, {day} {month} 2026 10:00:00 +0000")
    for month in ["Jan", "January", "Sep", "Sept", "September", "May", "Mai", "Octob", "DEC"]:
        found.append(f"03 {month} 2026 23:59:59 -0500")
    for time in ["10:00", "10:00:00", "24:00:00", "23:60:00", "23:59:60", "1:00:00", "10:0:00"]:
        found.append(f"Sat, 03 Oct 2026 {time} +0100")
    offsets = ["+0000", "-0000", "+0530", "-0930", "+1400", "+2359", "+2400", "+0160", "-1260"]
    offsets += ["+05", "+05:30", "GMT", "UTC", "Z", "EST", "CEST"]
    for offset in offsets:
        found.append(f"Sat, 03 Oct 2026 10:00:00 {offset}")
    for year in ["2026", "1999", "0999", "0000", "26", "12026"]:
        found.append(f"Sat, 03 Oct {year} 10:00:00 +0200")
    found += ["Sat, 03 Oct 2026 10:00:00 +0200 Europe/Paris", "Sat,  03 Oct 2026 10:00:00 +0200"]
    return found


def _month_day_year_dates() -> list[str]:
    """Dates as people write them ("October 3, 2026 10:30"), and near misses."""
    found = []
    for month in ["October", "october", "OCTOBER", "Oct", "Sept", "Sep", "Mai", "Octobers"]:
        found.append(f"{month} 3, 2026 10:30")
    for day in ["1", "03", "29", "30", "31", "0", "32"]:
        found += [f"February {day}, 2028 10:30", f"April {day}, 2026 10:30"]
    for time in ["0:00", "9:05", "09:05", "23:59", "24:00", "12:60", "10:30:15", "10.30"]:
        found.append(f"June 5, 2026 {time}")
    found += ["June 5, 2026", "June 5 2026 10:30", "June 5, 26 10:30", "June 5, 0999 10:30"]
    found += ["June 5, 2026 10:30 Europe/Paris", "June 5, 2026 10:30 +0200", "5 June 2026"]
    return found


OTHER_DATES = [
    "2026-10-03",
    "2026-10-03T10:00:00Z",
    "2026-10-03 10:00:00+02:00",
    "2026-10-03T10:00:00 America/New_York",
    "2026/10/03 10:00",
    "03.10.2026",
    "3rd of October 2026",
    "tomorrow",
    "٠٣ Oct ٢٠٢٦ 10:00:00 +0200",  # Arabic-Indic digits: never taken for ASCII ones
    "03 Oct 2026 10:00:00 +0200",
]


def _outcome(value: str, zone) -> tuple:
    """What to_datetime makes of `value`: its moment written out, or its error."""
    try:
        moment = dates.to_datetime(value, zone)
    except DateError as error:
        return ("error", str(error))
    return ("moment", moment.isoformat(), repr(moment.tzinfo), moment.timestamp())


DateError = dates.DateError


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_every_date_reads_as_dateutil_reads_it(monkeypatch, zone):
    texts = _rfc_822_dates() + _month_day_year_dates() + OTHER_DATES
    fast = [_outcome(text, zone) for text in texts]
    monkeypatch.setattr(dates, "_parse_common", lambda text: None)
    slow = [_outcome(text, zone) for text in texts]
    assert dict(zip(texts, fast, strict=True)) == dict(zip(texts, slow, strict=True))


def test_the_common_notations_skip_dateutil():
    for text in [
        "Sat, 03 Oct 2026 10:00:00 +0200",
        "3 Oct 2026 10:00 -0000",
        "October 3, 2026 10:30",
        "Sept 3, 2026 9:05",
    ]:
        assert dates._parse_common(text) is not None, text
    for text in ["Mox, 03 Oct 2026 10:00:00 +0200", "Sat, 31 Feb 2026 10:00:00 +0200"]:
        assert dates._parse_common(text) is None, text


def test_an_offset_of_a_day_or_more_is_reported_against_its_field():
    context = ParseContext(UTC, "Staff")
    for written in ["Sat, 03 Oct 2026 10:00:00 +2400", "2026-10-03 10:00 -25:00"]:
        text = f"---\ntitle: T\nupdated: 2026-10-04\ndate: {written}\n---\nBody.\n"
        with pytest.raises(parsing.ContentError) as caught:
            parsing.parse_article(text, "culture/t.md", "culture", "t", context)
        assert caught.value.line == 4
        assert "not within 24 hours" in caught.value.reason


def test_a_bad_date_in_a_common_notation_is_still_reported_against_its_field():
    text = "---\ntitle: T\ndate: Sat, 31 Feb 2026 10:00:00 +0200\n---\nBody.\n"
    context = ParseContext(UTC, "Staff")
    with pytest.raises(parsing.ContentError) as caught:
        parsing.parse_article(text, "culture/t.md", "culture", "t", context)
    assert caught.value.line == 3
    assert "cannot read" in caught.value.reason


# ---------------------------------------------------------------- media paths


ODD_URLS = [
    "/media/a.jpg",
    "/media/a b.jpg",
    "/media/a%20b.jpg",
    "/media/caf\u00e9.jpg",
    "/media/caf%C3%A9.jpg",
    "/media/%2e%2e/x.png",
    "/media/a%3Fb.jpg",
    "/media/a:b.jpg",
    "/:a",
    "/",
    "/media/a.jpg ",
    "/media/../static/x.png",
    "/media/./a.jpg",
    "/media/.hidden.jpg",
    "/media/a/..",
    "/media/a.jpg?v=2",
    "/media/a.jpg#top",
    "/media/a;b.jpg",
    "/media/a.jpg;v=1",
    "/media/a\tb.jpg",
    "/media/a\nb.jpg",
    "/media//a.jpg",
    "//cdn.example.org/a.jpg",
    "media/a.jpg",
    "../media/a.jpg",
    "../../media/a.jpg",
    "./a.jpg",
    "a.jpg",
    "a b.jpg",
    "?x=1",
    "/media/a\x00b.jpg",
    "/media/\u202ea.jpg",
    "/media/a\\b.jpg",
]


@pytest.mark.parametrize("url", ODD_URLS)
def test_a_media_path_resolves_as_urljoin_resolves_it(url):
    article = Article("culture", "a-story", "T", NOW, NOW, (), "", Body.of("", "x"))
    expected = unquote(urlsplit(urljoin(article.path, url)).path)
    assert media._served_path(article, url) == expected


# ---------------------------------------------------------------- text fields


ODD_VALUES = [
    "Plain title",
    "  spaced   out  ",
    "Zoë’s café — “quoted”",
    "It\x92s pasted from Word",
    "broken \ufffd text",
    "bell \x07 inside",
    "tab\tand\nnewline",
    "no\u00a0break and\u2028line",
    "\ud800 lone surrogate",
    "non\ufffecharacter\uffff",
    "\x85next line",
    "",
    "   ",
    12,
    3.5,
    True,
    date(2026, 3, 1),
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_a_text_value_is_cleaned_as_before(value):
    expected = " ".join(repair_windows_1252(strip_xml_invalid(str(value))).split())
    assert parsing._clean(value) == expected


# ---------------------------------------------------------------- feed-loss warnings


BODIES = [
    "Plain *text* with a [link](/culture/x/) and ![a picture](/media/a.jpg).",
    "Escaped: &lt;iframe src=x&gt; and &lt;script&gt;, as text.",
    "Code: `<iframe>` is written with a backslash: \\<script>.",
    '<iframe src="https://www.youtube.com/embed/abc"></iframe>',
    "Para.\n\n<script>alert(1)</script>\n\nMore.",
    "An autolink <https://example.org/x> and <svg><circle/></svg>.",
    "    indented <video src=a.mp4> code",
    '<p>Raw <VIDEO src="a.mp4"></VIDEO> in capitals.</p>',
]


@pytest.mark.parametrize("body", BODIES)
def test_feed_loss_warnings_are_raised_where_they_were(body):
    markdown = new_markdown()
    body_html = markdown.render(body)
    expected = []
    for loss in parsing.lost_in_feeds(body_html):
        offset = body.find(loss.needle)
        line = 7 + (body.count("\n", 0, offset) if offset >= 0 else 0)
        expected.append((line, f"<{loss.what}> left out of feeds: {loss.why}"))
    found = parsing._feed_loss_warnings("x.md", body, body_html, 7)
    assert [(w.line, w.reason) for w in found] == expected
    if "<" not in body:
        assert parsing.lost_in_feeds(body_html) == []


def test_a_script_still_warns_with_its_line():
    body = "First.\n\n<script>track()</script>\n"
    text = f"---\ntitle: T\ndate: 2026-03-01\n---\n{body}"
    article = parsing.parse_article(text, "culture/t.md", "culture", "t", ParseContext(UTC, "S"))
    assert [w.line for w in article.warnings if "<script>" in w.reason] == [7]


# ---------------------------------------------------------------- bodies and copies


def test_a_packed_body_comes_back_the_same_and_no_larger_than_before():
    html = new_markdown().render(
        "\n\n".join(
            f"Paragraph {n}: the *council* met at [the hall](/news/{n}/)." for n in range(60)
        )
    )
    for text in [html, "", "é’\u2028\U0001f600", "x" * 100_000]:
        assert unpack_html(pack_html(text)) == text
    assert len(pack_html(html)) <= len(zlib.compress(html.encode(), 1))
    assert Body.of(html, "a.md") == Body.of(html, "b.md")  # named by its bytes alone


def test_with_changes_makes_what_replace_makes():
    text = "---\ntitle: T\ndate: 2026-03-01\nkicker: K\n---\nBody.\n"
    article = parsing.parse_article(text, "culture/t.md", "culture", "t", ParseContext(UTC, "S"))
    for changes in [{"file_mtime": 5.0}, {"media_warnings": (), "image_sizes": (("/a", 1, 2),)}]:
        copy = with_changes(article, **changes)
        assert _ARTICLE_VALUES(copy) == _ARTICLE_VALUES(replace(article, **changes))
    plain = parsing.parse_article(
        "---\ntitle: T\ndate: 2026-03-01\n---\nB.\n", "c/t.md", "c", "t", ParseContext(UTC, "S")
    )
    assert with_changes(plain, file_mtime=1.0).extra is NO_EXTRA


# ---------------------------------------------------------------- whole files


FILES = {
    "rfc.md": (
        '---\ntitle: "It\\x92s \\x07 odd"\ndate: Sat, 03 Oct 2026 10:00:00 +0200\n'
        "updated: October 4, 2026 9:05\nauthor: [Zoë Martin, 'jane@example.org (Jane Doe)']\n"
        "tags: [' Music ', Zoë’s, 'a\u00a0b']\nimage: /media/lead%20one.png\n---\n"
        "A ![pic](/media/in%20body.png) and ![gone](/media/gone.jpg), "
        "[a file](/media/doc.pdf?x=1), [relative](../media/lead%20one.png), ![bad](pic.png).\n\n"
        '<iframe src="https://player.example.org/1"></iframe>\n'
    ),
    "plain.md": (
        "---\ntitle: Plain\ndate: 2026-03-01T09:00:00Z\nsummary: '  two   spaces  '\n"
        'image: {src: /media/./lead one.png, alt: "a\\tb"}\n---\nJust text, [a link](/x/).\n'
    ),
    "month.md": (
        "---\ntitle: Month\ndate: June 31, 2026 10:30\n---\nBody.\n"  # an impossible day
    ),
}


def _read_all(content: Path) -> dict:
    context = ParseContext(ZoneInfo("Europe/Paris"), "Staff", now=NOW, images=ImageFactsCache())
    sizes = media.media_sizes(content)
    found = {}
    for name in FILES:
        state = read_content_file(content, f"culture/{name}", context, sizes)
        result = state.result
        values = _comparable(_ARTICLE_VALUES(result)) if isinstance(result, Article) else result
        problem = state.problem.key if state.problem else None
        found[name] = (values, problem)
    return found


def _comparable(value):
    """Return `value` with each warning as its key (problems compare by identity)."""
    if isinstance(value, parsing.ContentError):
        return (type(value).__name__, value.key)
    if isinstance(value, tuple):
        return tuple(map(_comparable, value))
    return value


def test_whole_files_read_the_same_with_every_shortcut_off(tmp_path, monkeypatch):
    content = tmp_path / "content"
    (content / "culture").mkdir(parents=True)
    (content / "media").mkdir()
    for name in ["lead one.png", "in body.png", "doc.pdf"]:
        (content / "media" / name).write_bytes(PNG)
    for name, text in FILES.items():
        (content / "culture" / name).write_text(text, encoding="utf-8")
    fast = _read_all(content)
    assert fast["month.md"][1] is not None  # the impossible day is still an error
    rfc = dict(zip(Article.__dataclass_fields__, fast["rfc.md"][0], strict=True))
    assert rfc["media_warnings"] and rfc["warnings"] and rfc["image"].length == len(PNG)

    monkeypatch.setattr(dates, "_parse_common", lambda text: None)
    monkeypatch.setattr(media, "_NOT_PLAIN_PATH", re.compile(""))
    monkeypatch.setattr(
        parsing,
        "_clean",
        lambda value: " ".join(repair_windows_1252(strip_xml_invalid(str(value))).split()),
    )
    monkeypatch.setattr(media, "with_changes", replace)
    assert _read_all(content) == fast


@pytest.mark.parametrize(
    "author",
    ["Zoë Martin", "Jane Doe <jane@example.org>", "jane@example.org (Jane Doe)", "a@b", "<x@y>"],
)
def test_an_author_name_is_read_as_before(author):
    front = parsing.FrontMatter({"author": author}, ("author: x",), "x.md")
    match = parsing._NAME_ADDRESS.match(author) or parsing._ADDRESS_NAME.match(author)
    name = match.group("name").strip() if match else author
    assert parsing._authors(front, "Staff") == (name or author,)


def test_a_summary_is_cut_from_the_body_only_where_none_is_written():
    context = ParseContext(UTC, "S")
    text = "---\ntitle: T\ndate: 2026-03-01\n{}---\n![x](/a.png)\n\nFirst *words* here.\n"
    own = parsing.parse_article(text.format("summary: Mine\n"), "c/t.md", "c", "t", context)
    cut = parsing.parse_article(text.format(""), "c/t.md", "c", "t", context)
    assert (own.summary, own.dek, cut.summary, cut.dek) == ("Mine", "Mine", "First words here.", "")
