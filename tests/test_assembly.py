"""The incremental SiteAssembler builds the very site assemble_site builds, after every change."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedsvc import create_app
from feedsvc.assembly import SiteAssembler
from feedsvc.catalog import feed_specs, listings, next_releases
from feedsvc.loader import (
    assemble_site,
    read_content_files,
    scan_tree,
    update_tree,
)
from feedsvc.media import media_sizes
from feedsvc.models import Site
from tests.conftest import SITE_URL, article_text

SECTIONS = ("culture", "science", "sport")
SLUGS = [f"story-{n}" for n in range(14)]
TAGS = ["Jazz", "jazz", "JAZZ", "Rock", "rock", "!!", "Folk", "Art & Design", "art-design"]
AUTHORS = ["Zoé Martin", "Zoe Martin", "Ann Lee", "ann lee", "???"]
IDS = ["tag:news.example.org,2026:1", "post:42", "tag:…:my post", "plain-name", "urn:uuid:x"]
NOW = datetime.now(UTC)


def _random_date(rng: random.Random) -> str:
    days = rng.choice([-400, -30, -3, -1, 0, 2, 30])
    moment = NOW + timedelta(days=days, minutes=rng.randrange(0, 600))
    return moment.replace(microsecond=0).isoformat()


def _random_article(rng: random.Random, content: Path) -> str:
    fields: dict = {"title": f"Title {rng.randrange(1000)}", "date": _random_date(rng)}
    if rng.random() < 0.6:
        fields["tags"] = rng.sample(TAGS, rng.randrange(0, 4))
    if rng.random() < 0.5:
        fields["author"] = rng.sample(AUTHORS, rng.randrange(1, 3))
    if rng.random() < 0.3:
        fields["id"] = rng.choice([*IDS, f"{SITE_URL}/{rng.choice(SECTIONS)}/{rng.choice(SLUGS)}/"])
    if rng.random() < 0.3:
        pool = [
            f"/{rng.choice(SECTIONS)}/{rng.choice(SLUGS)}/",
            "/culture/",
            "/feed/old/",
            "/2019/05/x.html",
            "/old/path/",
            "bad alias",
        ]
        fields["aliases"] = rng.sample(pool, rng.randrange(1, 3))
    if rng.random() < 0.15:
        fields["takedown"] = rng.choice([True, "legal", {"date": _random_date(rng)}])
    if rng.random() < 0.15:
        fields["updated"] = (NOW + timedelta(days=rng.choice([-1, 1, 5]))).isoformat()
    if rng.random() < 0.1:
        fields["feeds"] = False
    body = rng.choice(["Body text.", "![pic](/media/missing.png)", "Other *words*."])
    return article_text(body, **fields)


def _operate(rng: random.Random, content: Path) -> set[str]:
    """Apply one random change to the content folder; return the paths it touched."""
    files = sorted(str(p.relative_to(content)) for p in content.glob("*/*.md"))
    choice = rng.random()
    if choice < 0.4 or not files:
        rel = f"{rng.choice(SECTIONS)}/{rng.choice(SLUGS)}.md"
        (content / rel).parent.mkdir(exist_ok=True)
        (content / rel).write_text(_random_article(rng, content), encoding="utf-8")
        return {rel}
    rel = rng.choice(files)
    if choice < 0.6:
        os.remove(content / rel)
        return {rel}
    if choice < 0.7:  # moved, with its old address as an alias
        section, name = rel.split("/")
        target = f"{rng.choice(SECTIONS)}/{rng.choice(SLUGS)}.md"
        (content / target).parent.mkdir(exist_ok=True)
        text = article_text(
            "Moved.", title="Moved", date=_random_date(rng), aliases=[f"/{section}/{name[:-3]}/"]
        )
        os.remove(content / rel)
        (content / target).write_text(text, encoding="utf-8")
        return {rel, target}
    if choice < 0.75:
        (content / rel).write_text("---\ntitle: [\n---\n", encoding="utf-8")
        return {rel}
    if choice < 0.8:  # a section's _index.md, sometimes with aliases
        section = rng.choice(SECTIONS)
        (content / section).mkdir(exist_ok=True)
        aliases = rng.sample(["kultur", "sport", "feed", "old"], rng.randrange(0, 3))
        text = article_text("", title=f"{section} {rng.randrange(9)}", aliases=aliases)
        (content / section / "_index.md").write_text(text, encoding="utf-8")
        return {f"{section}/_index.md"}
    if choice < 0.83:
        (content / "media").mkdir(exist_ok=True)
        (content / "media" / "missing.png").write_bytes(b"x" * rng.randrange(1, 9))
        return {"media/missing.png"}
    (content / rel).write_text(_random_article(rng, content), encoding="utf-8")
    return {rel}


def _reread(content, tree, states, touched, settings, sizes):
    """Read the files a change touched (None: every file) as a watched refresh does.

    Return the file states after it and the paths to hand the assembler (None: all).
    """
    dirty = set(tree.files) - states.keys() | (touched or set()) & set(tree.files)
    kept = {rel: state for rel, state in states.items() if rel in tree.files}
    kept.update(read_content_files(content, dirty, settings, sizes, states))
    changed = None if touched is None else dirty | (states.keys() - kept.keys())
    return kept, changed


def _tree(tree):
    return dict(tree.sections), tree.files, [p.key for p in tree.problems]


def _comparable(site: Site, now: datetime):
    return (
        dict(site.sections),
        {slug: s.file_mtime for slug, s in site.sections.items()},
        site.articles,
        [(a.original_path, a.file_mtime, a.warnings, a.media_warnings) for a in site.articles],
        [(type(p), p.key) for p in site.problems],
        site.version,
        {a.key for a in site.articles if a.takedown or a.date > now or a.updated > now},
    )


@pytest.mark.parametrize("seed", range(6))
def test_incremental_assembly_equals_assembling_from_scratch(tmp_path, seed):
    rng = random.Random(seed)
    content = tmp_path / "content"
    content.mkdir()
    config = {"CONTENT_DIR": str(content), "SITE_URL": SITE_URL, "STATE_DIR": str(tmp_path / "s")}
    app = create_app({**config, "FEED_ITEMS": 3})  # archive pages of 3 items
    settings = app.extensions["feedsvc"].settings
    assembler = SiteAssembler(settings)
    states: dict = {}
    sizes: dict = {}
    published = None
    kept = 0
    tree = None
    incremental = 0
    for step in range(90):
        touched = _operate(rng, content)
        before_tree = tree
        tree = scan_tree(content)
        if before_tree is not None:  # what a watched refresh sees: the changed paths only
            updated = update_tree(content, before_tree, touched)
            if updated is not None:
                incremental += 1
                assert _tree(updated[0]) == _tree(tree)
                assert updated[1] == {rel for rel in touched if rel in tree.files}
                assert updated[2] == {rel for rel in touched if rel not in tree.files} - {
                    "media/missing.png"
                }
        if any(rel.startswith("media/") for rel in touched):
            sizes = media_sizes(content)
            states = {}  # media facts of every article may change: everything is read again
            touched = None
        states, changed = _reread(content, tree, states, touched, settings, sizes)
        site = assembler.assemble(tree, states, sizes, changed)
        reference = assemble_site(tree, states, sizes, settings)
        now = datetime.now(UTC)
        assert _comparable(site, now) == _comparable(reference, now), (seed, step, touched)
        assert {a.key for a in site.timely()} >= {a.key for a in site.articles if a.takedown}
        assert site.published(now) == reference.published(now)
        expected = listings(reference, reference.published(now))
        if rng.random() < 0.8:  # sometimes a site is assembled but never published
            groups = assembler.listings(site, now)
            assert list(groups.items()) == list(expected.items())
            specs = feed_specs(site, groups, now, settings, published)
            assert list(specs.items()) == list(
                feed_specs(reference, expected, now, settings).items()
            )
            if published is not None:
                old = published[1]
                kept += sum(
                    name in old and spec.articles is old[name].articles and spec.articles != ()
                    for name, spec in specs.items()
                )
            published = (groups, specs)
        assert next_releases(site, now, settings) == next_releases(reference, now, settings)
        for article in reference.articles:
            assert site.find(article.section, article.slug, now) == reference.find(
                article.section, article.slug, now
            )
    assert incremental > 60
    assert kept > 10  # specs (archive pages above all) were carried over, not made again
    app.extensions["feedsvc"].close()


def test_a_full_assembly_after_a_section_change_forgets_nothing(tmp_path):
    content = tmp_path / "content"
    (content / "culture").mkdir(parents=True)
    (content / "culture" / "a.md").write_text(
        article_text(title="A", date="2026-01-01T00:00:00Z", aliases=["/kultur/a/"])
    )
    app = create_app(
        {"CONTENT_DIR": str(content), "SITE_URL": SITE_URL, "STATE_DIR": str(tmp_path / "s")}
    )
    settings = app.extensions["feedsvc"].settings
    assembler = SiteAssembler(settings)
    tree = scan_tree(content)
    states = read_content_files(content, tree.files, settings, {})
    first = assembler.assemble(tree, states, {}, None)
    assert [a.original_path for a in first.articles] == ["/kultur/a/"]
    (content / "culture" / "_index.md").write_text(article_text("", title="C", aliases=["kultur"]))
    tree = scan_tree(content)
    states.update(read_content_files(content, ["culture/_index.md"], settings, {}))
    site = assembler.assemble(tree, states, {}, {"culture/_index.md"})
    reference = assemble_site(tree, states, {}, settings)
    assert site.articles == reference.articles
    assert site.version == reference.version != first.version
    app.extensions["feedsvc"].close()
