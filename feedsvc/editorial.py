"""Editorial moves and removals: aliases that answer 301, takedowns that answer 410.

Everything here is derived from the content files themselves (an article's `aliases:`,
`takedown:` and `feeds:`, a section's `aliases:` in _index.md) and the time, so every
server process and every export agrees without any state kept elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from urllib.parse import unquote

from .addresses import FEED_EXTENSIONS, Address
from .dates import DateError, to_datetime
from .models import Article, ContentError, ContentWarning, Section, Site

# An article's address: /<section>/<slug>/. Only such an alias was once a feedsvc address.
ARTICLE_PATH = re.compile(r"^/([a-z0-9-]+)/([a-z0-9-]+)/$")
# An old section address: its page, pages and articles (/kultur/…) or a feed (/kultur.xml).
_SECTION_PATH = re.compile(rf"^/([a-z0-9-]+)(/.*|\.(?:{'|'.join(FEED_EXTENSIONS.values())}))?$")
_SECTION_NAME = re.compile(r"^[a-z0-9-]+$")
# What an alias may not hold: it must be one plain path a web server can match exactly.
_ALIAS_REFUSED = re.compile(r"""[\s"'\\;{}?#<>\x00-\x1f\x7f]""")
_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Routes:
    """Where old and removed addresses lead at one moment: 301 targets and 410s."""

    redirects: Mapping[str, str]  # old site path -> current site path
    moved_sections: Mapping[str, str]  # old section folder name -> current one
    gone: frozenset[str]  # paths of articles taken down, and their aliases


# Reading the front-matter fields: a bad value is reported, never stops publication.


def parse_aliases(value: object, line: int, path: str) -> tuple[tuple[str, ...], tuple]:
    """Return an article's old paths, decoded, and warnings for the ones that cannot be."""
    aliases, warnings = [], []
    for item in _as_list(value):
        alias = normal_alias(item)
        if alias is None:
            reason = (
                f"alias {item!r} is not a site path such as /culture/old-name/"
                " (no spaces, quotes, ?, # or ..); it is ignored"
            )
            warnings.append(ContentWarning(path, line, reason))
        elif alias not in aliases:
            aliases.append(alias)
    return tuple(aliases), tuple(warnings)


def normal_alias(item: object) -> str | None:
    """Return an alias as the decoded site path requests are matched by, or None if unusable."""
    if not isinstance(item, str) or not item.strip():
        return None
    alias = unquote(item.strip())
    if not alias.startswith("/"):
        alias = "/" + alias
    segments = alias.split("/")[1:]
    if alias == "/" or _ALIAS_REFUSED.search(alias) or "//" in alias:
        return None
    if any(segment in (".", "..") for segment in segments):
        return None
    return alias


def parse_section_aliases(value: object, line: int, path: str) -> tuple[str, ...]:
    """Return a section's former folder names; a name that cannot be one is an error."""
    names = []
    for item in _as_list(value):
        name = item.strip().strip("/") if isinstance(item, str) else ""
        if not _SECTION_NAME.match(name):
            reason = f"section alias {item!r} must be a former folder name such as kultur"
            raise ContentError(path, line, reason)
        if name not in names:
            names.append(name)
    return tuple(names)


def parse_takedown(
    value: object, line: int, path: str, timezone: tzinfo
) -> tuple[str | None, datetime | None, tuple]:
    """Read `takedown:`: a reason, a date, or {reason, date}; (None, None) when absent.

    Any other value still takes the article down, with a warning: a typo must never
    leave a removed article online.
    """
    if value is None or value is False or value == "":
        return None, None, ()
    reason, when = "", None
    if isinstance(value, dict):
        reason = str(value.get("reason") or "")
        when = value.get("date")
    elif isinstance(value, str) and _DATE_TEXT.match(value.strip()):
        when = value
    elif value is not True:
        reason = str(value)
    if when is None:
        return reason, None, ()
    try:
        return reason, to_datetime(when, timezone), ()
    except DateError as exc:
        warning = ContentWarning(
            path, line, f"takedown date: {exc}; taken down as of the file's last change"
        )
        return reason, None, (warning,)


def parse_feeds_flag(value: object, line: int, path: str) -> tuple[bool, tuple]:
    """Read `feeds:`: false keeps the article out of every feed; anything but a yes/no warns."""
    if value is None or value is True:
        return True, ()
    if value is False:
        return False, ()
    reason = f"field 'feeds' must be true or false, not {value!r}; the article is in its feeds"
    return True, (ContentWarning(path, line, reason),)


def _as_list(value: object) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# Ids that survive moves.


def with_original_paths(articles: Iterable[Article], sections: Mapping[str, Section]) -> list:
    """Give each moved article the address it was first published at, which its id keeps.

    That is its first alias of the /section/slug/ shape, else its own address, with the
    section named by the section's first alias when the folder was renamed.
    """
    moved = []
    for article in articles:
        first = next((p for p in article.aliases if ARTICLE_PATH.match(p)), article.path)
        section_name, slug = ARTICLE_PATH.match(first).groups()
        section = sections.get(section_name)
        if section is not None and section.aliases:
            first = Address.article(section.aliases[0], slug).page_path
        if first != article.path:
            article = replace(article, original_path=first)
        moved.append(article)
    return moved


# Redirects and removals.


def build_routes(site: Site, now: datetime, reserved: Iterable[str] = ()) -> Routes:
    """Work out which old addresses redirect where, and which answer 410, at `now`.

    A live address always wins over an alias (`check` reports the collision); an alias
    claimed twice goes to the first file by path.
    """
    removed = [a for a in site.articles if a.takedown is not None and a.is_removed(now)]
    gone = {a.path for a in removed} | {alias for a in removed for alias in a.aliases}
    movers = sorted((a for a in site.articles if a.aliases), key=lambda a: a.source_path)
    reserved = frozenset(reserved)
    redirects: dict[str, str] = {}
    if movers:  # a site with no aliases pays for none of this on a 10,000-article site
        keys = {a.key for a in site.articles}
        pages = {section.path for section in site.sections.values()}
        for article in movers:
            if article.date > now or article.path in gone:
                continue
            for alias in article.aliases:
                match = ARTICLE_PATH.match(alias)
                taken = alias in gone or alias in pages or bool(match and match.groups() in keys)
                if not taken and alias.split("/")[1].split(".")[0] not in reserved:
                    redirects.setdefault(alias, article.path)
    moved: dict[str, str] = {}
    for section in site.sections.values():
        for alias in section.aliases:
            if alias not in site.sections and alias not in reserved:
                moved.setdefault(alias, section.slug)
    return Routes(redirects, moved, frozenset(gone))


def resolve(routes: Routes, path: str) -> tuple[int, str] | None:
    """Answer an address nothing is served at: (301, new path), (410, ""), or None (404).

    Redirects never chain: an old section name followed by an article's old slug leads
    straight to the article's current address.
    """
    if path in routes.gone:
        return 410, ""
    target = routes.redirects.get(path)
    if target is None:
        match = _SECTION_PATH.match(path)
        if match is None or match.group(1) not in routes.moved_sections:
            return None
        target = f"/{routes.moved_sections[match.group(1)]}{match.group(2) or '/'}"
        target = routes.redirects.get(target, target)
    if target in routes.gone:
        return 410, ""
    return 301, target


def alias_problems(site: Site, reserved: Iterable[str]) -> list[ContentWarning]:
    """Report aliases that cannot redirect: a live address, a loop, one claimed twice."""
    problems = []
    pages = {a.path: a for a in site.articles}
    sections = {s.path: s for s in site.sections.values()}
    reserved = frozenset(reserved)
    claimed: dict[str, Article] = {}
    for article in sorted(site.articles, key=lambda a: a.source_path):
        for alias in article.aliases:
            reason = article_alias_problem(article, alias, pages, sections, reserved, claimed)
            if reason:
                problems.append(ContentWarning(article.source_path, article.aliases_line, reason))
            else:
                claimed[alias] = article
    return problems + section_alias_problems(site.sections, reserved)


def section_alias_problems(
    sections: Mapping[str, Section], reserved: frozenset[str]
) -> list[ContentWarning]:
    """Report section aliases that cannot redirect: a live folder, reserved, claimed twice."""
    problems = []
    names: dict[str, Section] = {}
    for section in sorted(sections.values(), key=lambda s: s.slug):
        for alias in section.aliases:
            reason = _section_alias_problem(section, alias, sections, reserved, names)
            if reason:
                problems.append(ContentWarning(section.source_path, section.aliases_line, reason))
            else:
                names[alias] = section
    return problems


def article_alias_problem(article, alias, pages, sections, reserved, claimed) -> str:
    """Say why `alias` of `article` cannot redirect ("" if it can); `claimed`: taken aliases."""
    first_segment = alias.split("/")[1]
    if alias == article.path:
        return f"alias {alias} is the article's own address: a redirect there would loop"
    if alias in pages:
        other = pages[alias]
        if article.path in other.aliases:
            return (
                f"alias {alias} is the address of {_file(other)}, whose aliases name"
                f" {article.path}: the two would redirect in a loop; both are ignored"
            )
        return (
            f"alias {alias} is the address of {_file(other)}, which is served there;"
            " the alias is ignored"
        )
    if alias in sections:
        return f"alias {alias} is the page of section {sections[alias].slug}; it is ignored"
    if first_segment.split(".")[0] in reserved:  # /media/…, /tags/…, /feed.xml, /feeds.opml
        return f"alias {alias} lies under a fixed address of the site (/{first_segment}); ignored"
    if alias in claimed:
        other = claimed[alias]
        where = f"{_file(other)}:{other.aliases_line or 1}"
        return f"alias {alias} is also an alias of {where}, which keeps it"
    return ""


def _file(article: Article) -> str:
    """Name an article's file as it sits in the content folder: culture/slug.md."""
    return f"{article.section}/{article.slug}.md"


def _section_alias_problem(section, alias, sections, reserved, names) -> str:
    if alias == section.slug:
        return f"section alias {alias} is the section's own name: a redirect there would loop"
    if alias in sections:
        return f"section alias {alias} is the live section folder {alias}; it is ignored"
    if alias in reserved:
        return f"section alias {alias} is reserved for a fixed address of the site; ignored"
    if alias in names:
        return (
            f"section alias {alias} is also an alias of section {names[alias].slug}, which keeps it"
        )
    return ""


# Tombstones: how a takedown reaches feed readers.


def due_tombstones(site: Site, now: datetime, period: timedelta) -> list[Article]:
    """Return the articles whose removal feeds announce at `now`, newest removal first.

    Only articles that were in feeds: published before their takedown, not `feeds: false`.
    """
    due = [
        article
        for article in site.timely()
        if article.takedown is not None
        and article.in_feeds
        and article.is_removed(now)
        and article.date <= article.removed_at
        and now < article.removed_at + period
    ]
    return sorted(due, key=lambda a: (-a.removed_at.timestamp(), a.source_path))


def coming_changes(site: Site, now: datetime, period: timedelta) -> list[tuple[Article, datetime]]:
    """Return the moments after `now` when a takedown takes effect or its tombstone ends."""
    moments = []
    for article in site.timely():
        removed_at = article.removed_at
        if removed_at is None:
            continue
        for moment in (removed_at, removed_at + period):
            if moment > now:
                moments.append((article, moment))
                break
    return moments
