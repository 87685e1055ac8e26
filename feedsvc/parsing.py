"""Turn the text of a content file into an Article or Section, or a ContentError saying why not.

Pure functions over strings: no disk, no Flask, so tests can call them on a literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import cache, cached_property
from urllib.parse import unquote, urlsplit

from .dates import DateError, to_datetime
from .editorial import parse_aliases, parse_feeds_flag, parse_section_aliases, parse_takedown
from .embeds import lost_in_feeds
from .images import ImageFactsCache
from .limits import (
    MAX_MEDIA_REFS,
    check_body_html,
    check_front_matter,
    check_markdown,
    contain_panic,
    date_text_problem,
)
from .markup import (
    MISREAD_CHARS,
    XML_INVALID_CHARS,
    CommonMark,
    excerpt,
    find_misread,
    find_xml_invalid,
    first_text,
    new_markdown,
    repair_windows_1252,
    site_media_urls,
    strip_xml_invalid,
)
from .models import (
    Article,
    Body,
    ContentError,
    ContentWarning,
    Image,
    RelatedLink,
    Section,
    body_digest,
    pack_html,
)

SLUG = re.compile(r"^[a-z0-9-]+$")
_FENCE = "---"
_CLOSING_FENCE = re.compile(r"^[ \t]*---[ \t]*\r?$", re.MULTILINE)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# The date of an article taken down whose own date cannot be read: before any feed.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The digest and packed bytes of an empty body, which a front-matter-only parse gives.
_EMPTY_BODY = (body_digest(pack_html("")), pack_html(""))


@cache
def _front_matter_loader() -> type:
    """Return safe YAML that leaves timestamps as text, made on first use.

    dates.py then reads every date the same way, and an impossible one (2026-02-30) is
    reported against its own field and line rather than failing the whole front matter.
    Imported here, once: a worker that follows the publisher parses no file.
    """
    import yaml

    resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    fields = {"yaml_implicit_resolvers": resolvers, "error": yaml.YAMLError}
    return type("_FrontMatterLoader", (base,), fields)


def _load_front_matter(source: str, path: str) -> object:
    """Return the YAML value of `source`; ContentError at the line YAML stopped at."""
    loader_type = _front_matter_loader()
    try:
        loader = loader_type(source)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except loader_type.error as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 2
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ContentError(path, line, f"front matter is not valid YAML: {problem}") from None


KNOWN_FIELDS = frozenset(
    {"title", "date", "updated", "author", "summary", "image", "tags", "related", "id", "draft"}
    | {"aliases", "takedown", "feeds"}
)


@dataclass(frozen=True)
class ParseContext:
    """What parsing needs to know about the site, beyond the file itself."""

    timezone: tzinfo
    default_author: str
    markdown: CommonMark = field(default_factory=new_markdown, compare=False)
    # When the files are read: an `updated` later than this is reported.
    now: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)
    # Read a draft too, for its signed preview page.
    preview: bool = False
    # Image files' facts, read once per file for the articles read with this context.
    images: ImageFactsCache = field(default_factory=ImageFactsCache, compare=False, repr=False)


@dataclass(frozen=True)
class FrontMatter:
    """The front-matter mapping, with the text it came from to locate fields by line."""

    fields: dict
    lines: tuple[str, ...]
    path: str
    # Line of the first character XML cannot hold, removed from the text before parsing.
    removed_at: int | None = None
    # Line of the first Windows-1252 character (pasted from Word), repaired before parsing.
    repaired_at: int | None = None

    def line_of(self, name: str) -> int:
        """Return the file line where `name:` is set, or the opening fence's line."""
        if ":" in name or name != name.rstrip():  # never a key as the lines are indexed
            pattern = re.compile(rf"^{re.escape(name)}\s*:")
            return next((n for n, line in enumerate(self.lines, 2) if pattern.match(line)), 1)
        return self._field_lines.get(name, 1)

    @cached_property
    def _field_lines(self) -> dict[str, int]:
        """Each "name:" line's number, the first of a name: one pass for every line_of."""
        lines: dict[str, int] = {}
        for number, line in enumerate(self.lines, start=2):
            key, colon, _ = line.partition(":")
            if colon:
                lines.setdefault(key.rstrip(), number)
        return lines

    def error(self, name: str, reason: str) -> ContentError:
        """Return an error located at field `name`."""
        return ContentError(self.path, self.line_of(name), reason)


def split_front_matter(text: str, path: str) -> tuple[FrontMatter, str]:
    """Split a file into its YAML front matter and Markdown body."""
    text = text.removeprefix("\ufeff")
    removed_at = None
    invalid = find_xml_invalid(text)
    if invalid is not None:
        removed_at = text.count("\n", 0, invalid.start()) + 1
        text = strip_xml_invalid(text)
    repaired_at = None
    misread = find_misread(text)
    if misread >= 0:
        repaired_at = text.count("\n", 0, misread) + 1
        text = repair_windows_1252(text)
    # Only the front matter is split into lines: the body stays one string, cheap to keep.
    opening_end = text.find("\n")
    opening = text if opening_end < 0 else text[:opening_end]
    if opening.strip() != _FENCE:
        raise ContentError(path, 1, "file must start with a '---' line opening the front matter")
    closing = _CLOSING_FENCE.search(text, opening_end + 1) if opening_end >= 0 else None
    if closing is None:
        raise ContentError(path, 1, "front matter is not closed by a '---' line")
    header = text[opening_end + 1 : closing.start()].splitlines()
    source = "\n".join(header)
    check_front_matter(source, header, path)
    fields = _load_front_matter(source, path)
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise ContentError(path, 2, "front matter must be a mapping of 'field: value' lines")
    body = text[closing.end() :].removeprefix("\n")
    return FrontMatter(fields, tuple(header), path, removed_at, repaired_at), body


def parse_article(
    text: str, path: str, section: str, slug: str, context: ParseContext, body: bool = True
) -> Article | None:
    """Parse an article file's text; None for a draft, ContentError naming the field at fault.

    `body=False`: the front matter only (a first look, see store.py): the body is neither
    checked nor rendered, and the article carries an empty one and no summary cut from it.
    """
    if not SLUG.match(slug):
        raise ContentError(path, None, f"article slug {slug!r} must match [a-z0-9-]+")
    if not body and not context.preview:
        quick = _quick_front(text, path, section, slug, context)
        if quick is not None:
            return quick
    front, text_body = split_front_matter(text, path)
    fields = front.fields
    if str(fields.get("draft")).lower() in ("true", "yes") and not context.preview:
        return None
    try:
        if not body:
            return _front_only(front, section, slug, context)
        return _article(front, text_body, section, slug, context)
    except ContentError as error:
        if fields.get("takedown") in (None, False, ""):
            raise
        return _taken_down_anyway(front, section, slug, context, error)


def _taken_down_anyway(
    front: FrontMatter, section: str, slug: str, context: ParseContext, error: ContentError
) -> Article:
    """Take down an article whose file has another problem: a typo must not keep it online."""
    path = front.path
    takedown, when, warnings = parse_takedown(
        front.fields.get("takedown"), front.line_of("takedown"), path, context.timezone
    )
    aliases, _ = parse_aliases(front.fields.get("aliases"), front.line_of("aliases"), path)
    reason = f"{error.reason}; the article is taken down all the same"
    known = {}
    for name, read in (("id", _optional_text), ("tags", _string_list), ("author", _string_list)):
        try:
            known[name] = read(front, name)
        except ContentError:
            known[name] = None
    return Article(
        section=section,
        slug=slug,
        title=slug,
        date=_EPOCH,
        updated=_EPOCH,
        authors=known["author"] or (context.default_author,),
        summary="",
        body=Body.of("", path),
        tags=known["tags"] or (),
        explicit_id=known["id"] or None,
        source_path=path,
        warnings=(ContentWarning(path, error.line, reason), *warnings),
        aliases=aliases,
        takedown=takedown,
        takedown_date=when,
    )


def _front_only(front: FrontMatter, section: str, slug: str, context: ParseContext) -> Article:
    """Parse what selecting and counting a feed's items needs; the body stays unread (empty).

    Every field is checked as a full parse checks it (a bad one refuses the file), but
    links and the image are left out: what a feed shows is read in full.
    """
    path, fields = front.path, front.fields
    _related(front)
    _image(front)
    date = _date_field(front, "date", context.timezone)
    updated = _date_field(front, "updated", context.timezone) if "updated" in fields else date
    aliases, _ = parse_aliases(fields.get("aliases"), front.line_of("aliases"), path)
    takedown, takedown_date, _ = parse_takedown(
        fields.get("takedown"), front.line_of("takedown"), path, context.timezone
    )
    in_feeds, _ = parse_feeds_flag(fields.get("feeds"), front.line_of("feeds"), path)
    dek = _optional_text(front, "summary")
    return Article(
        section=section,
        slug=slug,
        title=_required_text(front, "title"),
        date=date,
        updated=max(updated, date),
        authors=_authors(front, context.default_author),
        summary=dek,
        body=Body(_EMPTY_BODY[0], path, _EMPTY_BODY[1]),
        dek=dek,
        tags=_string_list(front, "tags"),
        explicit_id=_optional_text(front, "id") or None,
        source_path=path,
        id_line=front.line_of("id") if "id" in fields else None,
        aliases=aliases,
        aliases_line=front.line_of("aliases") if aliases else None,
        in_feeds=in_feeds,
        takedown=takedown,
        takedown_date=takedown_date,
    )


# A top-level "key: value" line of front matter, and values that YAML reads as the text
# written: a double- or single-quoted string without escapes, or an ISO date left as text.
_QUICK_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(?:[ \t]+(.*?))?[ \t]*\r?")
_QUICK_QUOTED = re.compile(r'"([^"\\]*)"|\'([^\']*)\'')
_QUICK_DATE = re.compile(
    r"\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?[ \t]*(?:Z|[+-]\d\d:?\d\d)?)?"
)
_QUICK_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s#\"'\[\]{}]+")
_QUICK_PLAIN_TITLE = re.compile(r"[A-Za-z0-9\u00c0-\uffff][^#:]*")
# Fields whose values the quick read leaves to YAML: rare, and each changes selection.
_QUICK_REFUSED = frozenset({"draft", "feeds", "takedown", "aliases"})
# A tag or author read without YAML: a "- item" line, and a plain value YAML reads as the
# text written (a letter first; no comment, mapping or flow mark; not a boolean or null).
_QUICK_ITEM = re.compile(r"-[ \t]+(.+)")
_QUICK_PLAIN_ITEM = re.compile(r"[^\W\d_][^#:\[\]{}]*")
# A flow list ("[a, "b c"]"): items plainly written or quoted without escapes.
_QUICK_FLOW_ITEM = r"[ \t]*(\"[^\"\\\\]*\"|'[^']*'|[^,\"'\[\]{}#:]+)[ \t]*"
_QUICK_FLOW = re.compile(rf"\[(?:{_QUICK_FLOW_ITEM}(?:,{_QUICK_FLOW_ITEM})*|[ \t]*)\]")
_YAML_WORDS = frozenset({"yes", "no", "true", "false", "on", "off", "null"})


def _quick_list(value: str) -> list[str] | None:
    """Return the texts of a tags or author value written on its line, or None (YAML reads it)."""
    if not value.startswith("["):
        text = _quick_text(value)
        return None if text is None else [text]
    if not _QUICK_FLOW.fullmatch(value):
        return None
    items = [_quick_text(item.strip()) for item in re.findall(_QUICK_FLOW_ITEM, value[1:-1])]
    return None if None in items else items


def _quick_text(value: str) -> str | None:
    """Return one tag or author as YAML reads it, if plainly written or quoted; else None."""
    quoted = _QUICK_QUOTED.fullmatch(value)
    if quoted:
        return next(g for g in quoted.groups() if g is not None)
    if not _QUICK_PLAIN_ITEM.fullmatch(value) or value.lower() in _YAML_WORDS:
        return None
    return value


def _quick_front(
    text: str, path: str, section: str, slug: str, context: ParseContext
) -> Article | None:
    """Read the fields feed selection needs from front matter written the usual simple way,
    without YAML; None for anything else, which the YAML parse reads (and checks) instead.

    For a first look only (see firstlook.py): nothing else is checked, and what a feed shows
    is read in full.
    """
    fields = quick_front_fields(text, context)
    return None if fields is None else quick_article(section, slug, path, *fields)


def quick_article(
    section: str,
    slug: str,
    path: str,
    title: str,
    date: datetime,
    updated: datetime,
    explicit_id: str | None,
    tags: tuple[str, ...] = (),
    authors: tuple[str, ...] = (),
) -> Article:
    """Return the article a first look knows from quick_front_fields: no body, no summary."""
    return Article(
        section=section,
        slug=slug,
        title=title,
        date=date,
        updated=updated,
        authors=authors,
        summary="",
        body=Body(_EMPTY_BODY[0], path, _EMPTY_BODY[1]),
        tags=tags,
        explicit_id=explicit_id,
        source_path=path,
    )


def quick_front_fields(text: str, context: ParseContext) -> tuple | None:
    """Return title, date, updated, id, tags and authors as _quick_front reads them, or None
    (see there): tags and authors select the items of their feeds."""
    text = text.removeprefix("\ufeff")
    if not text.startswith("---\n"):
        return None
    closing = _CLOSING_FENCE.search(text, 4)
    if closing is None:
        return None
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}  # tags and author, as YAML would list them
    key = collecting = None  # collecting: the list whose "- item" lines follow
    for line in text[4 : closing.start()].split("\n"):
        if not line or line[0] in " \t-#":
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if collecting is not None:
                item = _QUICK_ITEM.fullmatch(stripped)
                text_item = None if item is None else _quick_text(item.group(1))
                if text_item is None:
                    return None  # a nested list, a mapping, a value running on: YAML reads it
                lists[collecting].append(text_item)
            elif key in values or key in lists:
                return None  # a value of a field read here runs on: YAML reads it
            continue
        match = _QUICK_LINE.fullmatch(line)
        if match is None:
            return None
        key, value = match.groups()
        collecting = None
        if key in _QUICK_REFUSED:
            return None
        if key in ("title", "date", "updated", "id"):
            if key in values or value is None:
                return None
            values[key] = value
        elif key in ("tags", "author"):
            if key in lists:
                return None
            items = [] if value is None else _quick_list(value)
            if items is None:
                return None
            lists[key] = items
            collecting = key if value is None else None
    title, date_text = values.get("title"), values.get("date")
    if not title or not date_text:
        return None
    quoted = _QUICK_QUOTED.fullmatch(title)
    plain = _QUICK_PLAIN_TITLE.fullmatch(title) and title.lower() != "null"
    if not (quoted and any(quoted.groups())) and not plain:
        return None
    moments = []
    for value in (date_text, values.get("updated", date_text)):
        if moments and value == date_text:
            moments.append(moments[0])
            continue
        quoted = _QUICK_QUOTED.fullmatch(value)
        if quoted:  # any text, as YAML gives it
            value = next(g for g in quoted.groups() if g is not None)
            if date_text_problem(value):
                return None
        elif not _QUICK_DATE.fullmatch(value):  # plain: only what YAML leaves as text
            return None
        try:
            moments.append(to_datetime(value, context.timezone))
        except DateError:
            return None
    explicit_id = values.get("id")
    if explicit_id is not None:
        quoted = _QUICK_QUOTED.fullmatch(explicit_id)
        if quoted:
            explicit_id = next(g for g in quoted.groups() if g is not None)
        elif not _QUICK_URI.fullmatch(explicit_id):
            return None
        explicit_id = _clean(explicit_id)
    date, updated = moments
    tags = _text_list(lists.get("tags", ()))
    authors = author_names(_text_list(lists.get("author", ())), context.default_author)
    return title, date, max(updated, date), explicit_id or None, tags, authors


def _article(
    front: FrontMatter, body: str, section: str, slug: str, context: ParseContext
) -> Article:
    """Parse the fields of an article that is not a draft."""
    path, fields = front.path, front.fields
    title = _required_text(front, "title")
    date = _date_field(front, "date", context.timezone)
    updated = _date_field(front, "updated", context.timezone) if "updated" in fields else date
    body_line = len(front.lines) + 3
    check_markdown(body, path, body_line)
    body_html = contain_panic(path, body_line, context.markdown.render, body)
    check_body_html(body_html, path, body_line)
    dek = _optional_text(front, "summary")
    image = _image(front)
    aliases, alias_warnings = parse_aliases(
        fields.get("aliases"), _line_if_set(front, "aliases"), path
    )
    takedown, takedown_date, takedown_warnings = parse_takedown(
        fields.get("takedown"), _line_if_set(front, "takedown"), path, context.timezone
    )
    in_feeds, feeds_warnings = parse_feeds_flag(
        fields.get("feeds"), _line_if_set(front, "feeds"), path
    )
    editorial_warnings = alias_warnings + takedown_warnings + feeds_warnings
    return Article(
        section=section,
        slug=slug,
        title=title,
        date=date,
        updated=max(updated, date),
        authors=_authors(front, context.default_author),
        summary=dek or excerpt(first_text(body_html)),  # most articles have their own
        body=Body.of(body_html, path),
        dek=dek,
        image=image,
        tags=_string_list(front, "tags"),
        related=_related(front),
        explicit_id=_optional_text(front, "id") or None,
        source_path=path,
        id_line=front.line_of("id") if "id" in fields else None,
        warnings=_character_warnings(front)
        + _update_warnings(front, date, updated, context.now)
        + _feed_loss_warnings(path, body, body_html, body_line)
        + editorial_warnings,
        extra={k: v for k, v in fields.items() if k not in KNOWN_FIELDS},
        media_refs=_media_refs(front, image, body, body_html, body_line),
        aliases=aliases,
        aliases_line=front.line_of("aliases") if aliases else None,
        in_feeds=in_feeds,
        takedown=takedown,
        takedown_date=takedown_date,
    )


def _line_if_set(front: FrontMatter, name: str) -> int:
    """Return the line of field `name`; 1 if it is not set (nothing points at it then).

    Most files set none of the editorial fields: their lines are then never indexed.
    """
    return front.line_of(name) if name in front.fields else 1


def _character_warnings(front: FrontMatter) -> tuple[ContentWarning, ...]:
    """Report characters feeds cannot carry; they are removed or repaired, and published."""
    found = []
    checks = (
        (
            front.removed_at,
            XML_INVALID_CHARS,
            "removed control characters that feeds (XML) cannot hold",
        ),
        (
            front.repaired_at,
            MISREAD_CHARS,
            "replaced Windows-1252 characters (text pasted from Word, e.g. \\x92) by the"
            " characters meant (’), and removed U+FFFD; feeds cannot carry them",
        ),
    )
    # Raw characters were dealt with in the text; only YAML escapes ("\x07") can add more.
    escaped = any("\\" in line for line in front.lines)
    for line, pattern, reason in checks:
        if line is None and escaped:
            line = next(
                (front.line_of(str(n)) for n, v in front.fields.items() if _holds(v, pattern)), None
            )
        if line is not None:
            found.append(ContentWarning(front.path, line, reason))
    return tuple(found)


def _update_warnings(
    front: FrontMatter, date, updated, now: datetime
) -> tuple[ContentWarning, ...]:
    """Report an `updated` still to come: feeds show the publication date until then."""
    if updated <= max(date, now):
        return ()
    reason = (
        f"field 'updated': {updated.isoformat()} is in the future; feeds show the"
        " publication date until then (a typo?)"
    )
    return (ContentWarning(front.path, front.line_of("updated"), reason),)


def _feed_loss_warnings(
    path: str, body: str, body_html: str, body_line: int
) -> tuple[ContentWarning, ...]:
    """Report what the page shows but feeds must leave out (a script, a plug-in), with why."""
    if "<" not in body:  # no raw HTML: Markdown alone makes no element that feeds leave out
        return ()
    found = []
    for loss in lost_in_feeds(body_html):
        offset = body.find(loss.needle)
        line = body_line + (body.count("\n", 0, offset) if offset >= 0 else 0)
        found.append(ContentWarning(path, line, f"<{loss.what}> left out of feeds: {loss.why}"))
    return tuple(found)


def _media_refs(front: FrontMatter, image, body: str, body_html: str, body_line: int) -> tuple:
    """List the local files the article uses, as (URL, line, is_link), for `check`."""
    refs = []
    if image is not None and not urlsplit(image.src).scheme and not image.src.startswith("//"):
        refs.append((image.src, front.line_of("image"), False))
    for url, is_link in site_media_urls(body_html)[:MAX_MEDIA_REFS]:
        if is_link and "media/" not in url:
            continue  # links to other pages are not media
        offset = body.find(url)
        if offset < 0:
            offset = body.find(unquote(url))
        line = body_line + (body.count("\n", 0, offset) if offset >= 0 else 0)
        refs.append((url, line, is_link))
    return tuple(refs)


def _holds(value: object, pattern: re.Pattern) -> bool:
    if isinstance(value, str):
        return pattern.search(value) is not None
    if isinstance(value, dict):
        return any(_holds(v, pattern) for v in value.values())
    if isinstance(value, list):
        return any(_holds(v, pattern) for v in value)
    return False


def parse_section_index(text: str, path: str, slug: str) -> Section:
    """Parse a section's _index.md into its title and description."""
    front, _ = split_front_matter(text, path)
    title = _optional_text(front, "title") or slug.replace("-", " ").title()
    line = front.line_of("aliases")
    aliases = parse_section_aliases(front.fields.get("aliases"), line, path)
    return Section(
        slug=slug,
        title=title,
        description=_optional_text(front, "description"),
        aliases=aliases,
        source_path=path,
        aliases_line=line if aliases else None,
    )


def _required_text(front: FrontMatter, name: str) -> str:
    if name not in front.fields:
        raise ContentError(front.path, 1, f"missing required field '{name}'")
    value = _optional_text(front, name)
    if not value:
        raise front.error(name, f"field '{name}' is empty")
    return value


def _optional_text(front: FrontMatter, name: str) -> str:
    value = front.fields.get(name)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise front.error(name, f"field '{name}' must be text, not a {type(value).__name__}")
    return _clean(value)


def _clean(value: object) -> str:
    """Return value as one line of text; YAML escapes can smuggle in characters XML refuses."""
    text = str(value)
    # Printable text holds no control character, surrogate or noncharacter; U+FFFD is printable.
    if text.isprintable() and "\ufffd" not in text:  # most values: nothing to remove or repair
        return " ".join(text.split())
    return " ".join(repair_windows_1252(strip_xml_invalid(text)).split())


def _date_field(front: FrontMatter, name: str, timezone: tzinfo):
    if front.fields.get(name) is None:
        raise front.error(name, f"missing required field '{name}'")
    too_long = date_text_problem(front.fields[name])
    if too_long:
        raise front.error(name, too_long)
    try:
        return to_datetime(front.fields[name], timezone)
    except DateError as exc:
        raise front.error(name, f"field '{name}': {exc}") from None


def _string_list(front: FrontMatter, name: str) -> tuple[str, ...]:
    value = front.fields.get(name)
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, (dict, list)) for item in items):
        raise front.error(name, f"field '{name}' must be a list of text values")
    return _text_list(items)


def _text_list(items) -> tuple[str, ...]:
    """Return the items as lines of text, once each, in order, without empty ones."""
    cleaned = (_clean(item) for item in items)
    return tuple(dict.fromkeys(item for item in cleaned if item))


# "Jane Doe <jane@example.org>" and "jane@example.org (Jane Doe)", as mail programs write them.
_NAME_ADDRESS = re.compile(r"^(?P<name>.*?)\s*<[^<>\s]+@[^<>\s]+>$")
_ADDRESS_NAME = re.compile(r"^[^\s()]+@[^\s()]+\s*\((?P<name>.+)\)$")


def _authors(front: FrontMatter, default_author: str) -> tuple[str, ...]:
    """Return the author names; an e-mail address written with a name is left out."""
    return author_names(_string_list(front, "author"), default_author)


def author_names(written: tuple[str, ...], default_author: str) -> tuple[str, ...]:
    """Return the names of the authors as written (see _authors), else the default one."""
    names = []
    for author in written:
        match = "@" in author and (_NAME_ADDRESS.match(author) or _ADDRESS_NAME.match(author))
        name = match.group("name").strip() if match else author
        names.append(name or author)
    authors = tuple(dict.fromkeys(names))
    return authors or ((default_author,) if default_author else ())


def _image(front: FrontMatter) -> Image | None:
    value = front.fields.get("image")
    if value is None:
        return None
    if isinstance(value, str):
        value = {"src": value}
    if not isinstance(value, dict) or not str(value.get("src") or "").strip():
        raise front.error("image", "field 'image' needs at least 'src' (a URL or /media/ path)")
    return Image(
        src=_clean(value["src"]),
        alt=_clean(value.get("alt") or ""),
        credit=_clean(value.get("credit") or ""),
    )


def _related(front: FrontMatter) -> tuple[RelatedLink, ...]:
    value = front.fields.get("related")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise front.error("related", "field 'related' must be a list of {title, url} entries")
    links = []
    for entry in value:
        if not isinstance(entry, dict) or not entry.get("url"):
            raise front.error("related", "each 'related' entry needs a 'url' (and a 'title')")
        url = _clean(entry["url"])
        links.append(RelatedLink(title=_clean(entry.get("title") or url), url=url))
    return tuple(links)
