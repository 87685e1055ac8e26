"""Pathological content files: each costs only itself, within seconds, and never the server.

The catalogue below holds the shapes a broken converter, a paste from another CMS or a
hostile contributor can produce: deep nesting of every kind, YAML alias bombs, countless
keys, huge lines, and patterns that make a regex or a sanitiser quadratic. Each test proves
no crash, no 500, the good articles still in every feed, the file reported with its reason,
and another file's edit published at normal speed while the bad file is there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.isolate import run_isolated
from feedsvc.limits import ISOLATE_MIN_CHARS
from feedsvc.loader import read_content_file
from feedsvc.markup import feed_safe_html, new_markdown, render_markdown
from feedsvc.models import Article, ContentError
from feedsvc.parsing import ParseContext, parse_article
from tests.conftest import free_port, stop_process_group

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATE = "2026-03-01T09:00:00+00:00"
# Generous: a pathological file is handled in well under a second on an idle machine.
NOT_STALLED = 10.0


def _file(body: str = "Body text.\n", extra: str = "", title: str = "Nasty", date: str = DATE):
    return f"---\ntitle: {title}\ndate: {date}\n{extra}---\n{body}"


def _alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _nested_mapping(levels: int) -> str:
    return "extra:\n" + "".join(" " * i + "k:\n" for i in range(1, levels))


# name -> (file text, what the report says; None: the file is published)
NASTY = {
    # Markdown nesting: the renderer (native code) overflows its stack and kills the process.
    "deep-blockquote": (_file(">" * 200_000 + " x\n"), "nest deeper than 32 levels"),
    "deep-blockquote-small": (_file(">" * 5_000 + " x\n"), "nest deeper than 32 levels"),
    "deep-list": (_file("- " * 30_000 + "x\n"), "nest deeper than 32 levels"),
    "deep-ordered-list": (_file("1. " * 20_000 + "x\n"), "nest deeper than 32 levels"),
    "deep-indented-list": (
        _file("".join("  " * i + "- x\n" for i in range(200))),
        "nest deeper than 32 levels",
    ),
    "deep-quoted-lists": (_file("> - " * 10_000 + "x\n"), "nest deeper than 32 levels"),
    "deep-tab-list": (_file("\t" * 40 + "- x\n"), "nest deeper than 32 levels"),
    # Emphasis: cost grows with the square of the markers in a paragraph.
    "deep-emphasis": (_file("*a " * 5_000 + "b" + " a*" * 5_000 + "\n"), "emphasis markers"),
    "deep-strong": (_file("__a " * 3_000 + "b" + " a__" * 3_000 + "\n"), "emphasis markers"),
    "many-emphasis": (_file("*a* " * 3_000 + "\n"), "emphasis markers"),
    # Raw HTML: the feed sanitiser's cost grows with the square of the nesting.
    "deep-html": (_file("<div>" * 50_000 + "x\n"), "raw HTML nests deeper than 256"),
    "misnested-html": (_file("<a><b>" * 20_000 + "\n"), "raw HTML nests deeper than 256"),
    "deep-html-in-list": (_file("- <span>" * 3_000 + "\n"), "raw HTML nests deeper"),
    "nested-optgroups": (_file("<optgroup>x" * 20_000 + "\n"), "raw HTML nests deeper"),
    "nested-ruby-bases": (_file("<rb>x" * 20_000 + "\n"), "raw HTML nests deeper"),
    "table-of-paragraphs": (
        _file("<table>" + "<p>x" * 20_000 + "\n"),
        "raw HTML leaves more than 4096 <p> elements unclosed",
    ),
    # Regexes over the rendered body: first paragraph, tags stripped for the excerpt.
    "unclosed-paragraphs": (_file("<p>" * 4_000 + "\n"), None),
    "many-unclosed-paragraphs": (_file("<p>" * 20_000 + "\n"), "<p> elements unclosed"),
    "unclosed-angles": (_file("<p>\n" + "<" * 30_000 + "\n\nThen text.\n"), None),
    # A bug of the native renderer (a Rust panic, which is no Exception) costs only its file.
    "renderer-panic": (_file("See [the note`.\n"), "the Markdown renderer failed"),
    # Output size: link references repeated expand the body a thousandfold.
    "reference-bomb": (
        _file(f"[r]: https://e.org/{'x' * 1000}\n\n" + "[a][r] " * 10_000 + "\n"),
        "link references would expand",
    ),
    "reference-bomb-in-quote": (
        _file(f"> [r]: https://e.org/{'x' * 1000}\n\n" + "[a][r] " * 10_000 + "\n"),
        "body's HTML is larger than 524288",
    ),
    "reference-bomb-split-label": (
        _file(f"[r\ns]:\n  /x\n  '{'t' * 30_000}'\n\n" + "[a][r s] " * 600 + "\n"),
        "body's HTML is larger than 524288",
    ),
    "references": (_file("A [link][r] and [another][r].\n\n[r]: https://e.org/a\n"), None),
    # Size and lines: long but harmless is published (through the isolated parser); a body
    # too large to carry in every feed is refused.
    "long-read": (_file("A sentence of a long read, *with* [a link](/a/).\n\n" * 6_000), None),
    "long-line": (_file("word " * 60_000 + "\n"), None),
    "huge-line": (_file("word " * 200_000 + "\n"), "body's HTML is larger than 524288"),
    "many-lines": (_file("line\n\n" * 150_000), "body's HTML is larger than 524288"),
    "long-title-line": (_file(title="T" + "i" * 3_000), None),
    # The fence search over a file of near-fences that never closes its front matter.
    "unclosed-front-matter": (
        "---\ntitle: x\n" + " ---x\n--- -\n" * 100_000,
        "front matter is not closed",
    ),
    # YAML nesting: RecursionError (every URL a 500) or a crash in libyaml's composer.
    "yaml-deep-flow": (_file(extra="extra: " + "[" * 5_000 + "]" * 5_000 + "\n"), "nests deeper"),
    "yaml-deep-compact": (_file(extra="extra:\n" + "- " * 50_000 + "x\n"), "nests deeper"),
    "yaml-deep-mapping": (_file(extra=_nested_mapping(1_500)), "nests deeper"),
    "yaml-deep-tags": (_file(extra="tags: " + "[" * 3_000 + "]" * 3_000 + "\n"), "nests deeper"),
    "yaml-deep-related": (
        _file(extra="related:\n  - url: " + "[" * 2_000 + "]" * 2_000 + "\n"),
        "nests deeper",
    ),
    # YAML aliases: the billion laughs, and many small ones.
    "yaml-alias-bomb": (_file(extra=_alias_bomb(9)), "more than 10000 values"),
    "yaml-alias-bomb-small": (_file(extra=_alias_bomb(5)), "more than 10000 values"),
    "yaml-many-aliases": (
        _file(extra="base: &b [1, 2, 3]\nuses: [" + ", ".join(["*b"] * 5_000) + "]\n"),
        "more than 10000 values",
    ),
    "yaml-some-aliases": (_file(extra="base: &b [1, 2]\nuses: [*b, *b, *b]\n"), None),
    # YAML size: countless keys, huge scalars, absurd dates.
    "yaml-many-keys": (
        _file(extra="".join(f"k{i}: {i}\n" for i in range(100_000))),
        "more than 10000 values",
    ),
    "yaml-long-scalar": (_file(title="x" * 100_000), "longer than 65536 characters"),
    "yaml-long-date": (_file(date="2026-01-01" + " " * 50_000 + "x"), "date is longer than"),
    "yaml-huge-tag": (_file(extra=f"tags: [{'x' * 60_000}]\n"), None),
    "yaml-many-tags": (_file(extra="tags: [" + ", ".join(["t"] * 3_000) + "]\n"), None),
}
SECTION_INDEX_NESTED = "---\ntitle: " + "[" * 5_000 + "]" * 5_000 + "\n---\n"


def _context() -> ParseContext:
    return ParseContext(timezone=ZoneInfo("UTC"), default_author="Staff")


def _write_tree(content_dir: Path, nasty: dict[str, tuple[str, str | None]]) -> dict[str, Path]:
    """Write two good articles and the given nasty files into content/news/."""
    news = content_dir / "news"
    news.mkdir(parents=True, exist_ok=True)
    for slug in ("good-one", "good-two"):
        (news / f"{slug}.md").write_text(_file(title=slug.replace("-", " ").title()))
    paths = {}
    for name, (text, _) in nasty.items():
        paths[name] = news / f"{name}.md"
        paths[name].write_text(text, encoding="utf-8")
    culture = content_dir / "culture"
    culture.mkdir(exist_ok=True)
    (culture / "_index.md").write_text(SECTION_INDEX_NESTED)
    (culture / "fine.md").write_text(_file(title="Fine Culture"))
    return paths


@pytest.mark.parametrize("name", sorted(NASTY))
def test_each_nasty_file_costs_only_itself_with_a_clear_reason(tmp_path, name):
    text, reason = NASTY[name]
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / f"{name}.md").write_text(text, encoding="utf-8")
    started = time.process_time()
    state = read_content_file(tmp_path, f"news/{name}.md", _context(), {})
    assert time.process_time() - started < NOT_STALLED
    if reason is None:
        assert state.problem is None, state.problem
        assert isinstance(state.result, Article)
        assert len(state.result.summary) <= 281
    else:
        assert state.result is None
        assert state.problem is not None and reason in state.problem.reason, state.problem
        assert state.problem.path.endswith(f"{name}.md")


def test_problems_name_the_line_where_known(tmp_path):
    text = _file("Fine.\n\nStill fine.\n\n" + "> " * 100 + "x\n")
    error = _parse_error(text)
    assert (error.line, error.reason) == (9, "blockquotes and lists nest deeper than 32 levels")
    error = _parse_error(_file(extra="a: 1\nb: " + "[" * 40 + "]" * 40 + "\n"))
    assert (error.line, error.reason) == (5, "front matter nests deeper than 32 levels")
    error = _parse_error(_file(extra=_alias_bomb(9)))
    assert error.line in range(4, 14)


def _parse_error(text: str) -> ContentError:
    with pytest.raises(ContentError) as caught:
        parse_article(text, "x.md", "news", "x", _context())
    return caught.value


def test_real_articles_just_inside_the_limits_are_published():
    body = (
        "> " * 10
        + "- quoted list\n\n"
        + "    " * 12
        + "code, deeply indented\n\n"
        + "*a* " * 400
        + "\n\n"
        + "<div>" * 50
        + "embed"
        + "</div>" * 50
        + "\n"
    )
    extra = "image:\n  src: /media/a.jpg\nrelated:\n" + "  - {title: t, url: /a/}\n" * 100
    extra += "meta: &m {a: [1, 2, 3]}\ncopy: *m\n"
    article = parse_article(_file(body, extra), "x.md", "news", "x", _context())
    assert article is not None and len(article.related) == 100
    assert article.extra["copy"] == {"a": [1, 2, 3]}


def test_a_large_legitimate_article_is_parsed_in_isolation_and_published(tmp_path):
    body = "".join(f"Paragraph {i} with *emphasis* and a [link](/x/{i}/).\n\n" for i in range(2000))
    assert len(body) > ISOLATE_MIN_CHARS
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "long-read.md").write_text(_file(body, title="Long Read"))
    state = read_content_file(tmp_path, "news/long-read.md", _context(), {})
    assert state.problem is None
    assert state.result.title == "Long Read"
    assert state.result.body_html.count("<em>emphasis</em>") == 2000
    assert state.result.summary == "Paragraph 0 with emphasis and a link."


def test_first_paragraph_search_is_linear_in_the_body():
    """Searching <p>(.*?)</p> from each of many unclosed <p> took 8 s for 60 KB."""
    started = time.process_time()
    body_html, first = render_markdown(new_markdown(), "<p>" * 40_000 + "\n")
    assert (len(body_html), first) == (120_001, "")
    body_html, first = render_markdown(new_markdown(), "<p>\n" + "<" * 40_000 + "\n\nThen.\n")
    assert first.endswith("Then.")
    assert time.process_time() - started < 2.0


def _segfault(_text, _path):
    os.kill(os.getpid(), signal.SIGSEGV)


def _spin(_text, _path):
    while True:
        pass


def _allocate(_text, _path):
    return [bytearray(64 * 1024 * 1024) for _ in range(64)]


def _refuse(_text, path):
    raise ContentError(path, 3, "refused")


def test_isolated_parse_turns_a_crash_into_a_content_error():
    with pytest.raises(ContentError, match=r"crashed on this file \(SIGSEGV\)"):
        run_isolated(_segfault, "text", "a.md", path="a.md")


def test_isolated_parse_stops_a_runaway_parse():
    started = time.monotonic()
    with pytest.raises(ContentError, match=r"took more than 2 s of CPU|took longer than"):
        run_isolated(_spin, "text", "a.md", path="a.md")
    assert time.monotonic() - started < 15


def test_isolated_parse_bounds_memory():
    with pytest.raises(ContentError, match="more than 512 MB of memory"):
        run_isolated(_allocate, "text", "a.md", path="a.md")


def test_isolated_parse_returns_results_and_content_errors():
    assert run_isolated(len, "text", path="a.md") == 4
    with pytest.raises(ContentError, match="refused") as caught:
        run_isolated(_refuse, "text", "a.md", path="a.md")
    assert caught.value.line == 3


def test_check_reports_every_nasty_file_and_exits_1_within_seconds(content_dir):
    """The real command, in its own process: a crash here would be a negative exit code."""
    paths = _write_tree(content_dir, NASTY)
    env = {**os.environ, "FEEDSVC_CONTENT_DIR": str(content_dir)}
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "check", "--json"]
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert time.monotonic() - started < 60
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    reasons = {Path(p["path"]).name: p["reason"] for p in report["problems"]}
    for name, (_, reason) in NASTY.items():
        if reason is not None:
            assert reason in reasons.pop(f"{name}.md")
    assert "nests deeper" in reasons.pop("_index.md")
    assert reasons == {}
    assert report["articles"] == 3 + sum(1 for _, reason in NASTY.values() if reason is None)
    assert len(paths) == len(NASTY)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


FEEDS = ("/feed.xml", "/feed.atom", "/news.xml", "/news.atom", "/culture.xml")


def test_real_server_serves_the_good_articles_and_publishes_edits_beside_nasty_files(
    serve, content_dir
):
    paths = _write_tree(content_dir, NASTY)
    refused = {name for name, (_, reason) in NASTY.items() if reason is not None}
    base = serve(WATCH_CONTENT=True)
    for path in ("/", "/news/", "/news/good-one/", "/culture/", "/feed.json", "/healthz"):
        assert _get(base + path)[0] == 200
    for name in NASTY.keys() - refused:  # long but harmless: published, pages and all
        assert _get(f"{base}/news/{name}/")[0] == 200
    for path in FEEDS:
        parsed = feedparser.parse(_get(base + path)[1])
        assert parsed.bozo == 0
        titles = {entry.title for entry in parsed.entries}
        expected = {"Fine Culture"} if path == "/culture.xml" else {"Good One", "Good Two"}
        assert expected <= titles
        slugs = {entry.link.rstrip("/").rsplit("/", 1)[1] for entry in parsed.entries}
        assert not slugs & refused
        if path != "/culture.xml":
            assert NASTY.keys() - refused <= slugs
    health = json.loads(_get(base + "/healthz")[1])
    listed = {Path(p["path"]).name for p in health["problems"]}
    assert {f"{name}.md" for name in refused} | {"_index.md"} <= listed
    assert len(paths) == len(NASTY)

    # Another file's edit is published at normal speed while the bad files are there,
    # and so is a new bad file written beside it, one of each kind.
    for round_number, name in enumerate(("deep-blockquote", "yaml-alias-bomb", "deep-html")):
        new_bad = content_dir / "news" / f"again-{name}.md"
        new_bad.write_text(NASTY[name][0])
        title = f"Edited {round_number}"
        (content_dir / "news" / "good-two.md").write_text(_file(title=title))
        started = time.monotonic()
        _wait_for_title(base + "/news.xml", title)
        assert time.monotonic() - started < NOT_STALLED
        health = json.loads(_get(base + "/healthz")[1])
        assert new_bad.name in {Path(p["path"]).name for p in health["problems"]}


def _wait_for_title(url: str, title: str) -> None:
    """Poll a feed for an item title; bytes are searched, so polling costs the server little."""
    end = time.monotonic() + NOT_STALLED
    while time.monotonic() < end:
        body = _get(url)[1]
        if f"<title>{title}</title>".encode() in body:
            assert title in {e.title for e in feedparser.parse(body).entries}
            return
        time.sleep(0.05)
    pytest.fail(f"{title!r} not in {url} within {NOT_STALLED} s")


def test_flask_client_answers_200_with_a_deeply_nested_section_index(make_app, content_dir):
    _write_tree(content_dir, {})
    client = make_app().test_client()
    for path in ("/", "/culture/", "/culture.xml", "/healthz"):
        assert client.get(path).status_code == 200


# Structured nasty input: nested YAML and Markdown of random shape and depth.
_DEPTH = st.integers(min_value=0, max_value=3_000)


@st.composite
def _nested_yaml(draw) -> str:
    """A front-matter value nested in flow or block style, with anchors and aliases."""
    depth = draw(_DEPTH)
    kind = draw(st.sampled_from(["flow-list", "flow-map", "block-list", "block-map", "aliases"]))
    if kind == "flow-list":
        return "[" * depth + "x" + "]" * depth
    if kind == "flow-map":
        return "{a: " * depth + "x" + "}" * depth
    if kind == "block-list":
        return "\n" + "".join(" " * (i + 1) + "-\n" for i in range(min(depth, 400))) + " x"
    if kind == "block-map":
        return "\n" + "".join(" " * (i + 1) + "k:\n" for i in range(min(depth, 400))) + " x"
    width = draw(st.integers(min_value=1, max_value=12))
    levels = draw(st.integers(min_value=1, max_value=10))
    value = "&l0 [" + ", ".join(["x"] * width) + "]"
    for i in range(1, levels):
        value = f"[{value}, &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]]"
    return value


_OPENERS = ["> ", "- ", "1. ", "* ", "  ", "\t", "*", "_", "**", "[", "![", "`", "<div>", "<b>"]
_OPENERS += ["<a>", "<table>", "<p>", "<li>", "<optgroup>", "<rb>", "<select>", "<option>"]


@st.composite
def _nested_markdown(draw) -> str:
    """A body whose lines open block and inline constructs, mixed and nested at random."""
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        openers = draw(st.lists(st.sampled_from(_OPENERS), min_size=1, max_size=4))
        depth = draw(_DEPTH)
        closer = draw(st.sampled_from(["", "*", "_", "]", "](u)", "</div>", "</b>", "`"]))
        line = "".join(openers) * depth + "x" + closer * depth
        lines.append(line[: ISOLATE_MIN_CHARS // 5])
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["title", "tags", "related", "extra"]), value=_nested_yaml())
def test_nested_yaml_is_parsed_or_refused_quickly(field, value):
    text = f"---\ntitle: T\ndate: {DATE}\n{field}: {value}\n---\nBody.\n"
    _parse_quickly(text)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_nested_markdown())
def test_nested_markdown_is_rendered_or_refused_quickly(body):
    article = _parse_quickly(_file(body))
    if article is not None:
        started = time.process_time()
        feed_safe_html(article.body_html, "https://e.org", "https://e.org/news/x/")
        assert time.process_time() - started < 1.0


def _parse_quickly(text: str) -> Article | None:
    """Parse in this process (a crash would end the test run); bounded CPU, ContentError only."""
    started = time.process_time()
    try:
        return parse_article(text, "x.md", "news", "x", _context())
    except ContentError:
        return None
    finally:
        assert time.process_time() - started < 2.0


def test_granian_worker_survives_nasty_files_and_keeps_publishing(content_dir, tmp_path):
    """The production server of the README: its worker would die on the first request."""
    _write_tree(content_dir, {k: v for k, v in NASTY.items() if v[1] is not None})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FEEDSVC_CONTENT_DIR": str(content_dir), "FEEDSVC_SITE_URL": base}
    command = [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "1"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-ws", "wsgi:app"]
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _get(base + "/healthz")
                break
            except OSError:
                assert server.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert status == 200
        assert len(json.loads(body)["problems"]) >= len(NASTY) // 2
        for path in FEEDS:
            titles = {e.title for e in feedparser.parse(_get(base + path)[1]).entries}
            assert titles and "Nasty" not in titles
        (content_dir / "news" / "new-bad.md").write_text(NASTY["deep-blockquote-small"][0])
        (content_dir / "news" / "good-one.md").write_text(_file(title="Edited Under Granian"))
        _wait_for_title(base + "/feed.xml", "Edited Under Granian")
        assert server.poll() is None, log_path.read_text()
    finally:
        stop_process_group(server)


def test_isolated_parse_runs_here_when_no_child_can_start(monkeypatch, caplog):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    assert run_isolated(len, "text", path="a.md") == 4
    assert "cannot start a child" in caplog.text
