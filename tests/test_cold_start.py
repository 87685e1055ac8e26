"""A first start's reading: the parallel read equals the serial one, and each quicker path of
parsing (field lines, characters, embeds) reads what the general one does."""

from __future__ import annotations

import dataclasses

import pytest

from feedsvc import loader
from feedsvc.embeds import lost_in_feeds
from feedsvc.markup import XML_INVALID_CHARS, find_xml_invalid
from feedsvc.parsing import split_front_matter


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
