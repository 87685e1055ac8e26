"""What only the whole set of articles shows: ids claimed twice or published otherwise
than written, and tag or author spellings that share one address.
"""

from __future__ import annotations

from . import urls
from .addresses import NAMED_KINDS, Address, item_id, names_in
from .models import Article, ContentError, ContentWarning
from .settings import Settings
from .slugs import name_slug


def drop_duplicate_ids(
    articles: list[Article], problems: list[ContentError], settings: Settings
) -> list[Article]:
    """Keep one article per GUID; two items sharing a GUID make readers drop one of them.

    Permalinks are unique by construction, so only an explicit `id:` can collide: with
    another explicit id (the file first by path keeps it) or with another article's URL.
    """
    claimed = [a for a in articles if a.explicit_id is not None]
    if not claimed:
        return articles
    owners = {settings.absolute(a.id_path): a for a in articles if a.explicit_id is None}
    dropped = set()
    for article in sorted(claimed, key=lambda a: a.source_path):
        guid = item_id(article, settings)
        owner = owners.setdefault(guid, article)
        if owner is not article:
            reason = f"id {guid!r} is already used by {owner.source_path}"
            problems.append(ContentError(article.source_path, article.id_line, reason))
            dropped.add(article.key)
    return [a for a in articles if a.key not in dropped]


def id_problems(articles: list[Article]) -> list[ContentError]:
    """Report ids that look like URIs but are not published as written, or draw warnings.

    A broken one ("tag:…:my post") is published in a valid form, which the author can
    write in its place to keep it; a valid one with an unknown scheme ("post:42") stays,
    since changing a published id would show readers every item twice.
    """
    return [problem for problem in map(id_problem, articles) if problem is not None]


def id_problem(article: Article) -> ContentWarning | None:
    """Return the warning id_problems gives about one article's id, if any."""
    guid = article.explicit_id
    scheme = urls.scheme_of(guid or "")
    if not scheme:
        return None  # a name: published as a urn:uuid, as documented
    published = urls.item_id(guid)
    if published != guid:
        reason = (
            f"id {guid!r} is not a valid URI; it is published as {published!r}"
            " (write that as the id to keep it and end this message)"
        )
    elif scheme not in urls.REGISTERED_SCHEMES:
        reason = (
            f"id {guid!r} is published as a URI whose scheme {scheme!r} is not registered,"
            " so validators warn; it is kept to stay the same for readers (a new article's"
            " id without a colon, or a tag: URI, has no such warning)"
        )
    else:
        return None
    return ContentWarning(article.source_path, article.id_line, reason)


def shared_slugs(articles: list[Article]) -> list[ContentError]:
    """Report tags (or authors) spelled differently but sharing one URL: they merge into one."""
    spellings: dict[tuple[str, str], list[str]] = {}
    problems = []
    for article in sorted(articles, key=lambda a: a.source_path):
        for kind in NAMED_KINDS:
            for name in names_in(article, kind):
                slug = name_slug(name)
                if not slug:
                    reason = (
                        f"{kind} {name!r} has no letter, digit or symbol to make"
                        " an address of; it is shown without a page or feed"
                    )
                    problems.append(ContentWarning(article.source_path, None, reason))
                    continue
                known = spellings.setdefault((kind, slug), [])
                if name not in known:
                    if known:
                        reason = (
                            f"{kind} {name!r} and {known[0]!r} share the address"
                            f" {Address.listing(kind, slug).page_path}; they are published as one"
                        )
                        problems.append(ContentError(article.source_path, None, reason))
                    known.append(name)
    return problems
