"""A first start's subscription feeds, made from every file's front matter while all is parsed.

With no index, the live snapshot waits for every body to be rendered and checked: about a
minute of CPU at 100,000 articles. What the site and section feeds hold (which articles,
how many, their archive links) depends only on front matter, read from the start of each
file without YAML where written the usual way (a tenth of a full read's CPU); the
bodies they show are a few hundred. So a first start reads every front matter, parses in
full only the articles those feeds show (while it assembles the site from front matter),
renders the feeds exactly as the live snapshot will, and answers them (as a stored
publication is answered, see stored.py). Every file is read in full behind it from the
moment the front matter is read, by processes that give way to it (loader.BackgroundRead);
the live snapshot takes that up. A problem only the full read finds (a body over the
limits) is reported then, and if it changes a feed, the live snapshot publishes the feed
as it is, with a later Last-Modified.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from .addresses import SITE_FEED
from .assembly import SiteAssembler
from .catalog import feed_specs
from .editions import RenderCache, ValidatorHistory, build_editions
from .health import assess
from .loader import (
    BackgroundRead,
    FileState,
    media_sizes,
    read_content_files,
    read_front_matters,
    scan_tree,
)
from .models import Article, newest_first
from .responses import IDENTITY
from .settings import Settings
from .stored import StoredPublication

log = logging.getLogger(__name__)

# Below this many files a first start's full read is quick: no first look.
FIRST_LOOK_MIN_FILES = 5000
# Articles read in full per section beyond those its feeds are expected to show, for
# those a later check leaves out (an id claimed twice, a takedown).
SPARE_ARTICLES = 8
# Articles read in full per worker process, at least: each costs about a millisecond.
WANTED_PER_PROCESS = 200
# What /healthz says while the first look answers.
STILL_CHECKING = "first start: every file is still being read in full (the full check runs)"
KIND = "first look"


@dataclass(frozen=True)
class FirstLook:
    """What a first look answers, and what of its work the full read behind it takes up."""

    stored: StoredPublication
    # {path: (digest, Last-Modified)}: the live history's start, so a feed that the full
    # read changes gets a later Last-Modified, never the same one.
    validators: dict
    # The files it read in full, read at `read_at` (time.time()): the full read checks them
    # against their files as it checks an index's entries, and reads only the others.
    states: dict[str, FileState]
    read_at: float
    sizes: dict[str, int]  # the media sizes they were read with
    # Its renders (item HTML by article version): the live publication reuses them.
    renders: RenderCache
    # Every file read in full behind it, at a low priority (None: could not be started).
    full: BackgroundRead | None = None


def first_look(settings: Settings) -> FirstLook | None:
    """Return the site and section feeds made from a first look, and what it read.

    None when the tree is small or the feeds would show an article not read in full.
    """
    root = settings.content_dir
    started = time.perf_counter()
    read_at = time.time()
    tree = scan_tree(root)
    if len(tree.files) < FIRST_LOOK_MIN_FILES:
        return None
    sizes = media_sizes(root)
    states = read_front_matters(root, tree.files, settings, sizes)
    looked = time.perf_counter()
    now = datetime.now(UTC)
    wanted = _newest(states.values(), 2 * settings.feed_items + SPARE_ARTICLES, now)
    shown = set(wanted)  # read in full for the first look: not read again behind it
    full = _read_behind(root, [rel for rel in tree.files if rel not in shown], settings, sizes)
    try:
        found = _look(settings, tree, states, sizes, read_at, full, now, wanted)
    except BaseException:
        if full is not None:
            full.close()
        raise
    if found is None and full is not None:
        full.close()
    if found is not None:
        if full is not None:
            full.hurry()
        log.info(
            "first look: %d files' front matter read in %.1f s, the rest in %.1f s; the site"
            " and section feeds answer while every file is read in full",
            len(tree.files),
            looked - started,
            time.perf_counter() - looked,
        )
    return found


def _read_behind(root, rels, settings: Settings, sizes) -> BackgroundRead | None:
    """Start reading the files in full behind the first look; None where it cannot."""
    try:
        return BackgroundRead(root, rels, settings, sizes)
    except (OSError, AssertionError) as exc:  # e.g. in a daemonic process
        log.info("no full read behind the first look (%s); the content loads after it", exc)
        return None


def _look(
    settings: Settings,
    tree,
    states,
    sizes,
    read_at: float,
    behind: BackgroundRead | None,
    now: datetime,
    wanted: list[str],
) -> FirstLook | None:
    """Read in full and render what the site and section feeds show (see first_look)."""
    root = settings.content_dir
    looked = time.perf_counter()
    assembler = SiteAssembler(settings)
    # The articles shown are read in full by worker processes while this one assembles
    # the site from front matter; then only they are assembled again.
    with ThreadPoolExecutor(1, thread_name_prefix="feedsvc-first-look") as reading:
        job = reading.submit(
            read_content_files, root, wanted, settings, sizes, per_process=WANTED_PER_PROCESS
        )
        assembler.assemble(tree, states, sizes, None)
        in_full = job.result()
    read = time.perf_counter()
    states.update(in_full)
    site = assembler.assemble(tree, states, sizes, set(in_full))
    known = {state.result.source_path for state in in_full.values() if state.result is not None}
    groups = assembler.listings(site, now)
    specs = feed_specs(
        site, groups, now, settings, None, assembler.all_in_feeds(site), assembler.remade()
    )
    assembled = time.perf_counter()
    names = [name for name in (SITE_FEED, *site.sections) if name in specs]
    for name in names:
        spec = specs[name]
        shown = (*spec.articles, *spec.json_more, *spec.tombstones)
        missing = [a.source_path for a in shown if a.source_path not in known]
        if missing:
            log.info("no first look: feed %s shows %s, not read in full", name, missing[0])
            return None
    releases = assembler.releases(site, now)
    renders = RenderCache()
    editions = build_editions(specs, {}, releases, settings, ValidatorHistory(), renders)
    documents = {}
    for name in names:
        edition = editions[name]
        for path, fmt in edition.paths().items():
            documents[path] = edition.representation(fmt)
    if any(rep.last_modified > time.time() for rep in documents.values()):
        return None  # a Last-Modified still ahead: the live snapshot waits for it anyway
    published = sum(1 for a in site.articles if a.date <= now and not a.is_removed(now))
    health = assess(site, published, None)
    summary = {
        "status": health.status,
        "reasons": [*health.reasons, STILL_CHECKING],
        "sections": len(site.sections),
        "articles": published,
        "version": None,
    }
    done = time.perf_counter()
    log.debug(
        "first look: %d articles read in full while assembling, in %.1f s; assembled again"
        " and described in %.1f s, rendered in %.1f s",
        len(wanted),
        read - looked,
        assembled - read,
        done - assembled,
    )
    validators = {
        path: (hashlib.sha256(rep.variants[IDENTITY].body).digest(), rep.last_modified)
        for path, rep in documents.items()
    }
    stored = StoredPublication(0, documents, summary, KIND)
    return FirstLook(stored, validators, in_full, read_at, dict(sizes), renders, behind)


def _newest(states, count: int, now: datetime) -> list[str]:
    """Return, per section, the files of the articles its feeds may show: its `count`
    newest articles in feeds, and those taken down or left out of feeds among them."""
    by_section: dict[str, list[tuple[tuple, str, bool]]] = {}
    for state in states:
        article = state.result
        if isinstance(article, Article) and article.date <= now:
            counts = article.in_feeds and not article.is_removed(now)
            entry = (newest_first(article), state.rel, counts)
            by_section.setdefault(article.section, []).append(entry)
    wanted = []
    for candidates in by_section.values():
        candidates.sort()
        left = count
        for _, rel, counts in candidates:
            if left <= 0:
                break
            wanted.append(rel)
            left -= counts
    return wanted
