"""What each article costs in memory: what articles repeat is kept once, and the rest is small.

At 100,000 articles every byte kept per article is 100 kB: an article read back from the
index shares its section, author and tag names, its list of authors, its local media and
its empty `extra` with the other articles; the site's assembly keeps a few references per
article, not copies of its sort key, path or claimed id. Sizes are measured by walking the
objects themselves (sys.getsizeof over what each one holds), never timed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import pytest

from feedsvc.models import Article
from tests.conftest import PNG

ARTICLES = 120
AUTHORS = (["Zoë Martin", "Sam Okafor"], ["Ana Pérez"], ["Zoë Martin", "Sam Okafor"])
TAGS = (["Music", "City hall"], ["Libraries"], ["Music"])


def deep_size(root: object, stop: Iterable[object] = ()) -> int:
    """Return the bytes of `root` and of every object it holds, each counted once.

    Objects in `stop` (and what only they hold) are left out, as are types and modules.
    """
    seen = {id(item) for item in stop}
    total = 0
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen or isinstance(item, type) or type(item).__name__ == "module":
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, str | bytes | int | float | bool) or item is None:
            continue
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, tuple | list | set | frozenset):
            pending.extend(item)
        else:
            for cls in type(item).__mro__:
                for name in getattr(cls, "__slots__", ()):
                    if hasattr(item, name):
                        pending.append(getattr(item, name))
            if hasattr(item, "__dict__"):
                pending.append(vars(item))
    return total


@pytest.fixture
def site_of_articles(write_article, write_media, backdate):
    """Write ARTICLES articles in 3 sections, repeating authors, tags and a lead image."""
    write_media("lead.png", PNG)
    for n in range(ARTICLES):
        write_article(
            ("culture", "news", "science")[n % 3],
            f"story-{n}",
            body=f"Paragraph {n} of a story.\n\n![A picture](/media/lead.png)\n",
            title=f"Story number {n}",
            date=f"2026-01-{n % 28 + 1:02d}T09:{n % 60:02d}:00+00:00",
            author=AUTHORS[n % 3],
            tags=TAGS[n % 3],
            summary=f"What story {n} says.",
            image={"src": "/media/lead.png", "alt": "A picture"},
        )
    backdate()


def loaded_store(make_app):
    """Return a store whose articles were read back from the index, as a restart's are."""
    make_app().extensions["feedsvc"].snapshot()  # parses every file, fills the index
    store = make_app().extensions["feedsvc"]
    store.snapshot()
    return store


def articles_of(store) -> list[Article]:
    found = [state.result for state in store._states.values()]
    articles = [result for result in found if isinstance(result, Article)]
    assert len(articles) == ARTICLES
    return articles


def test_articles_from_the_index_share_what_they_repeat(site_of_articles, make_app):
    articles = articles_of(loaded_store(make_app))
    assert all(article.body.packed is None for article in articles)  # bodies: in the index

    def distinct(values) -> int:
        return len({id(value) for value in values})

    # One string per section, author and tag name; one tuple per list of authors.
    assert distinct(a.section for a in articles) == 3
    assert distinct(name for a in articles for name in a.authors) == 3
    assert distinct(name for a in articles for name in a.tags) == 3
    assert distinct(a.authors for a in articles) == 2
    # One empty mapping for every article without unknown fields, still read-only.
    assert distinct(a.extra for a in articles) == 1
    assert dict(articles[0].extra) == {}
    with pytest.raises(TypeError):
        articles[0].extra["x"] = 1  # type: ignore[index]
    # Local media, as recorded for checks and for image sizes, once per distinct list.
    assert articles[0].media_refs
    assert distinct(a.media_refs for a in articles) < 10
    assert distinct(a.image.src for a in articles) == 1


def test_unknown_fields_are_kept_per_article(write_article, make_app):
    write_article("culture", "with-extra", subtitle="A subtitle", rating=4)
    write_article("culture", "without-extra")
    make_app().extensions["feedsvc"].snapshot()
    store = make_app().extensions["feedsvc"]
    store.snapshot()
    by_slug = {state.result.slug: state.result for state in store._states.values()}
    assert dict(by_slug["with-extra"].extra) == {"subtitle": "A subtitle", "rating": 4}
    assert dict(by_slug["without-extra"].extra) == {}


def test_an_article_in_memory_is_small(site_of_articles, make_app):
    """Its title, summary, dates, names and the body's name; not the body, no copies."""
    articles = articles_of(loaded_store(make_app))
    shared = [a.body._source for a in articles]  # the index, which every body names
    per_article = deep_size(articles, shared) / len(articles)
    # Measured: 1,400 bytes each when each held its own empty `extra` and list of authors
    # and media, 980 since (the difference, at 100,000 articles: 42 MB).
    assert per_article < 1150, per_article


def test_assembly_keeps_little_per_article(site_of_articles, make_app):
    """What the assembler derives holds references to the articles, few copies of them."""
    store = loaded_store(make_app)
    articles = articles_of(store)
    held = [*store._states.values(), *articles, *(a.path for a in articles)]
    per_article = deep_size(store._assembler, held) / len(articles)
    # Measured: 1,970 bytes while it kept sort keys, a claim map per id, a path per page,
    # an appearance per article; 1,210 since (a small site's tables weigh more per entry).
    assert per_article < 1500, per_article
