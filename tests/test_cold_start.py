"""A first start's reading: the parallel read equals the serial one, and each quicker path of
parsing (front matter, field lines, characters, embeds, dates) reads what the general one does."""

from __future__ import annotations

import dataclasses
from datetime import UTC, timedelta

import pytest
import yaml

from feedsvc import loader
from feedsvc.dates import DateError, _parse_any, to_datetime
from feedsvc.embeds import lost_in_feeds
from feedsvc.markup import XML_INVALID_CHARS, find_xml_invalid
from feedsvc.parsing import _FrontMatterLoader, split_front_matter


class _GeneralLoader(_FrontMatterLoader):
    """The front-matter loader with PyYAML's own constructor for every document."""

    def construct_document(self, node):
        return yaml.constructor.BaseConstructor.construct_document(self, node)


def _described(state: loader.FileState) -> tuple:
    """A state as comparable data: its problem and each field of its result, by value."""
    problem = state.problem
    result = state.result
    fields = ()
    if result is not None:
        fields = tuple(
            (field.name, repr(getattr(result, field.name))) for field in dataclasses.fields(result)
        )
    where = (repr(problem), problem.line) if problem is not None else None
    return state.rel, state.fingerprint, state.digest, where, type(result).__name__, fields


def test_the_parallel_read_gives_the_serial_read_s_states(
    content_dir, make_app, write_article, monkeypatch
):
    for n in range(12):
        write_article("news", f"story-{n}", tags=["Opera", "Riga"], author="Ann <ann@x.org>")
    write_article("culture", "aliased", body="<IFRAME src='https://x.org/'></IFRAME>")
    (content_dir / "culture" / "merged.md").write_text(
        "---\ntitle: Merged\ndate: June 5, 2024 10:00\nbase: &b {k: 1}\nmore: {<<: *b, j: 2}\n"
        "---\nText.\n",
        encoding="utf-8",
    )
    (content_dir / "news" / "unclosed.md").write_text("---\ntitle: x\n", encoding="utf-8")
    (content_dir / "news" / "bad-yaml.md").write_text(
        "---\ntitle: [x\ndate: 2024-01-01\n---\nText.\n", encoding="utf-8"
    )
    (content_dir / "news" / "bad-date.md").write_text(
        "---\ntitle: Late\ndate: 'Mon, 31 Feb 2024 10:00:00 +0200'\n---\nText.\n",
        encoding="utf-8",
    )
    (content_dir / "news" / "control.md").write_text(
        "---\ntitle: Bell\x07\ndate: 2024-01-01\n---\nText.\n", encoding="utf-8"
    )
    (content_dir / "news" / "latin-1.md").write_bytes(b"---\ntitle: caf\xe9\n---\n")
    settings = make_app().extensions["feedsvc"].settings
    tree = loader.scan_tree(content_dir)
    serial = loader.read_content_files(content_dir, tree.files, settings, {})
    monkeypatch.setattr(loader, "PARALLEL_MIN_FILES", 1)
    monkeypatch.setattr(loader.os, "cpu_count", lambda: 2)
    chunks = []
    in_processes = loader._read_in_processes

    def counting(root, parts, *args):
        chunks.append(len(parts))
        return in_processes(root, parts, *args)

    monkeypatch.setattr(loader, "_read_in_processes", counting)
    parallel = loader.read_content_files(content_dir, tree.files, settings, {})
    assert len(chunks) == 1 and chunks[0] > 1  # the worker processes did read
    assert sorted(parallel) == sorted(serial) == sorted(tree.files)
    assert [_described(parallel[rel]) for rel in tree.files] == [
        _described(serial[rel]) for rel in tree.files
    ]
    problems = {rel: state.problem.line for rel, state in serial.items() if state.problem}
    assert problems == {
        "news/bad-date.md": 3,
        "news/bad-yaml.md": 3,
        "news/latin-1.md": 2,
        "news/unclosed.md": 1,
    }
    assert serial["culture/merged.md"].result.extra["more"] == {"k": 1, "j": 2}


FRONT_MATTERS = [
    "title: x\ncount: 0x1F\nsize: 1_000\ntime: 1:30\nratio: .inf\nnothing: ~\nflag: Yes",
    "octal: 0o17\nold-octal: 017\nexp: 1e3\ntext: !!str 5\nnumber: !!int '12'",
    "blob: !!binary aGVsbG8=\nwhen: !!timestamp 2020-01-01\nplain-date: 2020-01-01",
    "set: !!set {a, b}\nomap: !!omap [a: 1]\npairs: !!pairs [a: 1]",
    "base: &b {k: 1}\nmerged: {<<: *b, j: 2}\nlist: &l [1, 2]\nagain: *l",
    "self: &s [1, *s]",
    "map: &m {k: *m}",
    "=: value\nnull: 1\ntrue: 2\n3: 4\n1.5: x",
    "title: x\ntitle: y",
    "? [a, b]\n: unhashable",
    "bad: !!int x",
    "odd: !custom x",
    "- a list",
    "text: !!str [1]",
]


@pytest.mark.parametrize("source", FRONT_MATTERS)
def test_front_matter_reads_as_pyyaml_s_general_constructor_reads_it(source):
    def read(loader_class):
        try:
            return "ok", repr(yaml.load(source, Loader=loader_class))
        except Exception as exc:
            return type(exc).__name__, str(exc)

    assert read(_FrontMatterLoader) == read(_GeneralLoader)


def test_aliases_are_shared_as_pyyaml_shares_them():
    data = yaml.load("a: &l [1]\nb: *l\nc: [*l, *l]", Loader=_FrontMatterLoader)
    assert data["a"] is data["b"] is data["c"][0] is data["c"][1]


def test_field_lines_name_the_first_line_setting_the_field():
    text = (
        "---\ntitle: x\nnote: |\n  id: nested\nid : spaced\nid: again\n'quoted': 1\n"
        "odd key: 2\na:b: 3\ntags: [x]\n---\nBody.\n"
    )
    front, _ = split_front_matter(text, "a.md")
    assert front.line_of("title") == 2
    assert front.line_of("id") == 5  # "  id" is inside a block: not this field
    assert front.line_of("odd key") == 8
    assert front.line_of("a") == 9
    assert front.line_of("a:b") == 9  # a name holding ":" is looked for as written
    assert front.line_of("tags") == 10
    assert front.line_of("quoted") == 1  # not written as such: the opening fence
    assert front.line_of("missing") == 1
    assert front.line_of("title ") == 1


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii\n",
        "naïve café ’quotes’\n",
        "bell \x07 here",
        "form\x0cfeed ’",
        "tab\tand\r\nnewlines",
        "lone \ud800 surrogate, then \x01",
        "\x01 before a lone \udfff",
        "noncharacter \ufffe",
        "noncharacter \uffff and ’",
        "",
    ],
)
def test_xml_invalid_characters_are_found_where_the_regex_finds_them(text):
    found = find_xml_invalid(text)
    expected = XML_INVALID_CHARS.search(text)
    assert (found and found.start()) == (expected and expected.start())


def test_embeds_lost_in_feeds_are_found_in_any_case():
    assert lost_in_feeds("<p>Just text, <em>emphasis</em>.</p>") == []
    assert [loss.what for loss in lost_in_feeds("<p>x</p><SCRIPT>x</SCRIPT>")] == ["script"]
    assert [loss.what for loss in lost_in_feeds("<canvas></canvas>")] == ["canvas"]


@pytest.mark.parametrize(
    "text",
    [
        "June 5, 2024 10:00",
        "December 31, 1999 23:59",
        "Wed, 05 Jun 2024 10:00:00 +0200",
        "Mon, 05 Jun 2024 10:00:00 -0530",  # the wrong weekday, as dateutil ignores it
        "Sun, 1 Dec 2024 00:00:00 +0000",
        "Sun, 01 Dec 2024 00:00:00 -0000",
    ],
)
def test_common_dates_read_as_dateutil_reads_them(text, monkeypatch):
    quick = to_datetime(text, UTC)
    monkeypatch.setattr("feedsvc.dates._parse_common", lambda text: None)
    general = to_datetime(text, UTC)
    assert (quick, quick.utcoffset(), quick.tzinfo) == (
        general,
        general.utcoffset(),
        general.tzinfo,
    )


@pytest.mark.parametrize(
    "text",
    ["June 31, 2024 10:00", "Wed, 31 Feb 2024 10:00:00 +0200", "Wed, 05 Jun 2024 25:00:00 +0200"],
)
def test_impossible_common_dates_are_refused_as_dateutil_refuses_them(text):
    with pytest.raises(DateError, match="cannot read"):
        _parse_any(text)


def test_a_common_date_keeps_its_offset():
    moment = to_datetime("Wed, 05 Jun 2024 10:00:00 +0200", UTC)
    assert moment.utcoffset() == timedelta(hours=2)
    assert moment == to_datetime("2024-06-05T08:00:00Z", UTC)
