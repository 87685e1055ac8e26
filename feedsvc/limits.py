"""What one content file may cost: the limits, and cheap checks run before a parser sees text.

The YAML loader (libyaml) and the Markdown renderer (markdown-it, in Rust) recurse on
nesting and crash the whole process, not the file, when a stack runs out; YAML aliases
and some Markdown and HTML shapes cost quadratic time. Each check here is pure Python over
the text, linear, and refuses such a file with a ContentError before the native code
runs. The numbers lie far beyond any real article and far below what breaks a parser,
even on a thread with a small stack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from .models import ContentError

# Front matter (YAML) ---------------------------------------------------------------
# Nesting of lists and mappings: real front matter nests two or three levels; libyaml's
# composer overflows a 256 KiB thread stack near 1,000 and Python's recursion limit is 1,000.
MAX_YAML_DEPTH = 32
# Values (scalars, lists, mappings) after aliases are expanded: real front matter holds a
# few dozen; this bounds the "billion laughs" alias bomb and files of countless keys.
MAX_YAML_VALUES = 10_000
# One scalar's length: a summary is a few hundred characters; this bounds per-field work.
MAX_YAML_SCALAR = 64 * 1024
# Front matter this short, without aliases and with a small nesting bound, skips the
# event scan: it cannot break a limit, and the scan would cost a third of a YAML load.
_QUICK_YAML_CHARS = 4096
# The longest way of writing a date is about 50 characters; date parsers are slow on more.
MAX_DATE_CHARS = 100

# Body (Markdown and the raw HTML it holds) -----------------------------------------
# Nested blockquotes and lists: an article nests three or four; the renderer crashes
# in a 256 KiB stack near 2,000 and on the main thread near 50,000.
MAX_BLOCK_NESTING = 32
# Emphasis markers (* and _) in one paragraph: the renderer's cost grows with their square
# (10,000 nested take 2 s of CPU); a real paragraph has a few dozen.
MAX_EMPHASIS_MARKERS = 2000
# Nesting of raw HTML elements: the feed sanitiser's cost grows with its square
# (100,000 nested <div> take 45 s); embeds nest a dozen.
MAX_HTML_NESTING = 256
# The body's HTML, in characters: a long read is 100-200 KB. Every feed holding the article
# sanitises and compresses it again whenever that feed changes (0.1 s per MB, each format).
MAX_BODY_HTML = 512 * 1024
# Elements left open that their next sibling would close (unclosed <p>, <li>, <td>).
MAX_HTML_UNCLOSED = 4096
# Local files of one body checked against the media folder by `check`; each is looked up in
# the body to give its line, so the count is bounded like any other per-file cost.
MAX_MEDIA_REFS = 1000
# Files larger than this (most articles are under 20 KB) are parsed in a child process that
# can be stopped (isolate.py), as are files defining link references (see needs_isolation).
ISOLATE_MIN_CHARS = 64 * 1024
# What that child may spend on one file.
ISOLATE_CPU_SECONDS = 2
ISOLATE_WALL_SECONDS = 10.0
ISOLATE_MEMORY_BYTES = 512 * 1024 * 1024

# Lines worth a closer look: a long run of characters that can open or continue a block
# container, or a link reference definition. Searched from a newline, not with "^" and
# MULTILINE: that tries every position, ten times slower.
_LINE_SCREEN = re.compile(r"\n(?:([ \t>*+\-0-9.)]{16,})| {0,3}\[[^\]\n]*\]:)")
_CONTAINER_MARKER = re.compile(r">|[*+\-](?=[ \t]|$)|[0-9]{1,9}[.)](?=[ \t]|$)|[ \t]")
_BLANK_LINE = re.compile(r"\n[ \t]*\r?\n")
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)(?=[\s/>])")
_REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:.*$", re.MULTILINE)
# Elements that never hold others.
_VOID_ELEMENTS = frozenset("area base br col embed hr img input link meta source track wbr".split())
# Elements the next one of their kind closes where they belong (a <p> another <p>); left
# unclosed by the thousand inside a table, they still cost the sanitiser quadratic time.
_SIBLING_CLOSED = frozenset("p li dt dd tr td th".split())


def needs_isolation(text: str) -> bool:
    """Tell whether a file must be parsed in a child process that can be stopped.

    Files beyond the size of any normal article, and files with link reference definitions:
    a definition used over and over can multiply the body's size in ways a line-based
    check cannot bound (labels and titles may span lines), so the child's memory limit does.
    """
    return len(text) >= ISOLATE_MIN_CHARS or "]:" in text


def check_front_matter(source: str, lines: Sequence[str], path: str, first_line: int = 2) -> None:
    """Refuse front matter nested too deeply, too large once aliases expand, or too long.

    `lines` are `source`'s lines.
    """
    quick = "*" not in source and len(source) < _QUICK_YAML_CHARS
    if quick and _quick_depth_bound(source, lines) <= MAX_YAML_DEPTH:
        return
    _scan_yaml_events(source, path, first_line)


def _quick_depth_bound(source: str, lines: Sequence[str]) -> int:
    """Return a number no smaller than the YAML's nesting depth, counted without parsing.

    A nested block needs more indentation or a "- " or "? " indicator; a flow one a bracket.
    """
    indent = max((len(line) - len(line.lstrip()) for line in lines), default=0)
    openers = sum(source.count(token) for token in ("[", "{", "- ", "-\t", "? ", "?\t"))
    return indent + openers + 1


def _scan_yaml_events(source: str, path: str, first_line: int) -> None:
    """Walk libyaml's events (flat, no recursion) keeping depth and expanded size in budget.

    YAML is imported here, on first use: a worker that follows the publisher reads no file.
    """
    import yaml

    loader = yaml.CSafeLoader(source) if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader(source)
    sizes: dict[str, int] = {}  # anchor -> values its node stands for, aliases expanded
    open_nodes: list[list] = []  # per open collection: [values it holds so far, its anchor]
    total = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            line = first_line + event.start_mark.line
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                open_nodes.append([1, event.anchor])
                if len(open_nodes) > MAX_YAML_DEPTH:
                    reason = f"front matter nests deeper than {MAX_YAML_DEPTH} levels"
                    raise ContentError(path, line, reason)
                total += 1
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                size, anchor = open_nodes.pop()
                _count(open_nodes, sizes, size, anchor)
            elif isinstance(event, yaml.ScalarEvent):
                if len(event.value) > MAX_YAML_SCALAR:
                    reason = f"a front-matter value is longer than {MAX_YAML_SCALAR} characters"
                    raise ContentError(path, line, reason)
                _count(open_nodes, sizes, 1, event.anchor)
                total += 1
            elif isinstance(event, yaml.AliasEvent):
                size = sizes.get(event.anchor, 1)
                _count(open_nodes, sizes, size, None)
                total += size
            if total > MAX_YAML_VALUES:
                reason = (
                    f"front matter holds more than {MAX_YAML_VALUES} values"
                    " (each use of an alias counting in full)"
                )
                raise ContentError(path, line, reason)
    except yaml.YAMLError:
        return  # the loader reports the syntax error itself, with its line
    finally:
        loader.dispose()


def _count(open_nodes: list[list], sizes: dict[str, int], size: int, anchor: str | None) -> None:
    """Add a finished node's size to the collection holding it, and remember its anchor."""
    if anchor is not None:
        sizes[anchor] = size
    if open_nodes:
        open_nodes[-1][0] += size


def date_text_problem(value: object) -> str | None:
    """Say why a date is written in more characters than any date needs, if it is."""
    if isinstance(value, str) and len(value) > MAX_DATE_CHARS:
        return f"date is longer than {MAX_DATE_CHARS} characters"
    return None


def check_markdown(body: str, path: str, first_line: int) -> None:
    """Refuse a body whose nesting or markup would crash or stall the renderer or sanitiser."""
    references = False
    for match in _LINE_SCREEN.finditer("\n" + body):
        prefix = match.group(1)
        if prefix is None:
            references = True
        elif _container_depth_bound(prefix) > MAX_BLOCK_NESTING:
            line = first_line + body.count("\n", 0, match.start())
            reason = f"blockquotes and lists nest deeper than {MAX_BLOCK_NESTING} levels"
            raise ContentError(path, line, reason)
    if body.count("*") + body.count("_") > MAX_EMPHASIS_MARKERS:
        _check_emphasis(body, path, first_line)
    if body.count("<") > MAX_HTML_NESTING:
        _check_html_nesting(body, path, first_line)
    if references:
        _check_reference_expansion(body, path, first_line)


def _container_depth_bound(prefix: str) -> int:
    """Bound the containers a line's prefix can hold: each needs a marker or two columns."""
    markers = columns = 0
    for token in _CONTAINER_MARKER.findall(prefix):
        if token == " ":
            columns += 1
        elif token == "\t":
            columns += 4
        else:
            markers += 1
    return markers + columns // 2


def _check_emphasis(body: str, path: str, first_line: int) -> None:
    start = 0
    for paragraph in _BLANK_LINE.split(body):
        if paragraph.count("*") + paragraph.count("_") > MAX_EMPHASIS_MARKERS:
            line = first_line + body.count("\n", 0, body.find(paragraph, start))
            reason = f"a paragraph holds more than {MAX_EMPHASIS_MARKERS} emphasis markers (* _)"
            raise ContentError(path, line, reason)
        start += len(paragraph)


def _check_html_nesting(body: str, path: str, first_line: int) -> None:
    depth = unclosed = 0
    for match in _HTML_TAG.finditer(body):
        name, closing = match.group(2).lower(), match.group(1)
        if name in _VOID_ELEMENTS:
            continue
        if name in _SIBLING_CLOSED:
            unclosed = max(unclosed - 1, 0) if closing else unclosed + 1
        else:
            depth = max(depth - 1, 0) if closing else depth + 1
        if depth > MAX_HTML_NESTING or unclosed > MAX_HTML_UNCLOSED:
            line = first_line + body.count("\n", 0, match.start())
            reason = (
                f"raw HTML nests deeper than {MAX_HTML_NESTING} elements"
                if depth > MAX_HTML_NESTING
                else f"raw HTML leaves more than {MAX_HTML_UNCLOSED} <{name}> elements unclosed"
            )
            raise ContentError(path, line, reason)


def _check_reference_expansion(body: str, path: str, first_line: int) -> None:
    """Refuse link references that, used over and over, would multiply the body's size."""
    longest = max((len(m.group()) for m in _REFERENCE_DEFINITION.finditer(body)), default=0)
    if longest * body.count("[") > MAX_BODY_HTML:
        reason = f"link references would expand the body beyond {MAX_BODY_HTML} characters"
        raise ContentError(path, first_line, reason)


def contain_panic(path: str, line: int, function: Callable, *args):
    """Return function(*args), a native renderer's internal error becoming a ContentError.

    Rust code called through pyo3 reports a bug ("[x`" makes markdown-it index out of
    bounds) as PanicException, a BaseException that nothing else here would catch.
    """
    try:
        return function(*args)
    except Exception:
        raise
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        reason = (
            f"the Markdown renderer failed on this body ({exc}); an unmatched backtick"
            " after a '[' is a known cause; file skipped"
        )
        raise ContentError(path, line, reason) from None


def check_body_html(body_html: str, path: str, first_line: int) -> None:
    """Refuse a body whose HTML is too large to carry in every feed."""
    if len(body_html) > MAX_BODY_HTML:
        reason = f"the body's HTML is larger than {MAX_BODY_HTML} characters"
        raise ContentError(path, first_line, reason)
