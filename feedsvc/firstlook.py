"""A first start's answers, made from every file's front matter while all is parsed.

With no index, the live snapshot waits for every body to be rendered and checked: about a
minute of CPU at 100,000 articles. Which articles a feed or a page shows (and how many,
its archive links, its pager) depends only on front matter, read from the start of each
file without YAML where written the usual way (a tenth of a full read's CPU); the bodies
any one document shows are a few dozen. So a first start reads every front matter and
assembles the site from it, as the live store assembles it, reading in full only the
articles shown: up front those of the site, section, tag and author feeds (a few hundred),
on demand those of any other feed, archive page or page asked for. Each document is then
rendered exactly as the live snapshot will render it (publishing.py), and answered.
Every file is read in full behind it from the moment the front matter is read, by
processes that give way to it (loader.BackgroundRead) and skip what was read on demand;
the live snapshot takes that up. A problem only the full read finds (a body over the
limits) is reported then, and if it changes a feed, the live snapshot publishes the feed
as it is, with a later Last-Modified.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from .assembly import SiteAssembler
from .catalog import Listing
from .editions import RenderCache, ValidatorHistory
from .feeds import FeedSpec
from .health import assess
from .loader import (
    BackgroundRead,
    FileState,
    Tree,
    media_sizes,
    read_content_files,
    read_front_matters,
    scan_tree,
)
from .models import Article, Site, newest_first
from .publishing import describe_site, publish_site, render_outline, subscriptions
from .responses import Representation
from .settings import Settings
from .snapshot import Snapshot
from .stored import StoredPublication

log = logging.getLogger(__name__)

# Below this many files a first start's full read is quick: no first look.
FIRST_LOOK_MIN_FILES = 5000
# Articles read in full per feed beyond those it is expected to show, for those a later
# check leaves out (an id claimed twice, a takedown).
SPARE_ARTICLES = 8
# Articles read in full per worker process, at least: each costs about a millisecond.
WANTED_PER_PROCESS = 200
# Rounds of reading in full what a document shows: a full read may move an article (its
# front matter read without YAML said otherwise), and the document must be shown again.
READ_ROUNDS = 3
# What /healthz says while the first look answers.
STILL_CHECKING = "first start: every file is still being read in full (the full check runs)"
KIND = "first look"


class NotYet:
    """What a first look answers for what it cannot answer yet: 503, try again soon."""

    RETRY_AFTER_SECONDS = 5


NOT_YET = NotYet()


def first_look(settings: Settings) -> FirstLook | None:
    """Return the answers of a first look at a large tree's front matter; None when the tree
    is small, or a subscription feed's Last-Modified would be ahead of the clock."""
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
    wanted = _newest(states.values(), settings.feed_items, now)
    shown = set(wanted)  # read in full for the first look: not read again behind it
    full = _read_behind(root, [rel for rel in tree.files if rel not in shown], settings, sizes)
    try:
        found = FirstLook(settings, tree, states, sizes, read_at, full, wanted)
    except BaseException:
        if full is not None:
            full.close()
        raise
    if not found.answers():
        found.close()
        return None
    if full is not None:
        full.hurry()
    log.info(
        "first look: %d files' front matter read in %.1f s, the rest in %.1f s; every feed"
        " and page answers while every file is read in full",
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


class FirstLook:
    """The site as its front matter shows it, published as the live store publishes it,
    with the articles each answered document shows read in full.

    The snapshot it answers from is replaced (one lock, one reader at a time) whenever a
    document asked for shows an article not yet read in full: those are read, assembled
    into the site as an edit is, and published again.
    """

    def __init__(
        self,
        settings: Settings,
        tree: Tree,
        states: dict[str, FileState],
        sizes: Mapping[str, int],
        read_at: float,
        full: BackgroundRead | None,
        wanted: list[str],
    ):
        self.settings = settings
        self.sizes = dict(sizes)  # the media sizes the files were read with
        self.read_at = read_at  # time.time() before any file was read
        self.full = full  # every file read in full behind it (None: could not be started)
        # Its renders (item HTML by article version): the live publication reuses them.
        self.renders = RenderCache()
        self._history = ValidatorHistory()
        self._tree = tree
        self._states = states
        self._in_full: dict[str, FileState] = {}  # what it read in full, by path
        self._assembler = SiteAssembler(settings)
        self._lock = threading.Lock()
        self._handed_over = False
        self._complete: tuple[Snapshot | None, set[str]] = (None, set())
        started = time.perf_counter()
        # The articles wanted are read in full by worker processes while this one
        # assembles the site from front matter; then only they are assembled again.
        with ThreadPoolExecutor(1, thread_name_prefix="feedsvc-first-look") as reading:
            job = reading.submit(self._read, wanted)
            self._assembler.assemble(tree, states, sizes, None)
            site = self._take(job.result())
        read = time.perf_counter()
        described = describe_site(site, None, self._assembler, settings)
        names = [*subscriptions(site, described.specs), *_groups(described.groups)]
        for _ in range(READ_ROUNDS):
            missing = self._missing(described.specs[name] for name in names)
            if not missing:
                break
            site = self._take(self._read(missing))
            described = describe_site(site, None, self._assembler, settings)
        else:
            self._snapshot: Snapshot | None = None
            return
        self._snapshot = publish_site(
            site,
            None,
            self._assembler,
            settings,
            self._history,
            self.renders,
            self._outline,
            described,
        )
        published = len(self._snapshot.published())
        health = assess(site, published, None)
        summary = {
            "status": health.status,
            "reasons": [*health.reasons, STILL_CHECKING],
            "sections": len(site.sections),
            "articles": published,
            "version": None,
        }
        self.stored = FirstLookPublication(0, {}, summary, KIND, self)
        log.debug(
            "first look: %d articles read in full while assembling, in %.1f s; described and"
            " rendered in %.1f s",
            len(self._in_full),
            read - started,
            time.perf_counter() - read,
        )

    def answers(self) -> bool:
        """Tell whether it answers: every subscription feed's articles read in full, and
        no Last-Modified ahead of the clock (the live snapshot waits for it anyway)."""
        return self._snapshot is not None and self._snapshot.visible_from <= time.time()

    def feed(self, path: str) -> Representation | None:
        """Return the feed or feed list at `path`; None: none there, or none yet."""
        found = self._shown(path, lambda snapshot: _feed_shows(snapshot, path))
        if found is None:
            return None
        return found.lookup(path)

    def page(self, path: str, root: str, pages) -> Representation | NotYet:
        """Return the page at `path`, else (no page known there yet) NOT_YET."""
        found = self._shown(path, lambda snapshot: pages.shows(snapshot, path))
        rep = None if found is None else pages.page(found, path, root)
        return NOT_YET if rep is None else rep

    def read_states(self) -> tuple[dict[str, FileState], float]:
        """Return the files read in full so far, and when they were read (as an index entry's
        time): the full read takes them as it takes an index's entries."""
        with self._lock:
            return dict(self._in_full), self.read_at

    def hand_over(self) -> dict[str, tuple[bytes, int]]:
        """Return the validators given so far, for the live history to start from; from now
        on, no feed is rendered that was not before (its Last-Modified would not be known)."""
        with self._lock:
            self._handed_over = True
            return self._history.given()

    def close(self) -> None:
        """Stop the full read behind it, if its result is no longer wanted."""
        if self.full is not None:
            self.full.close()

    def _shown(self, path: str, shows) -> Snapshot | None:
        """Return a snapshot in which every article `shows(snapshot)` gives is read in full
        (None: it gives None, or it cannot be had now)."""
        snapshot = self._snapshot
        complete = self._complete  # the paths found complete in the current snapshot
        if complete[0] is snapshot and path in complete[1]:
            return snapshot  # a feed polled: no article looked at again
        for _ in range(READ_ROUNDS):
            if snapshot is None:
                return None
            shown = shows(snapshot)
            if shown is None:
                return None
            if not self._missing_in(shown):
                if self._handed_over and not _rendered(snapshot, path, self._history):
                    return None
                if self._complete[0] is not snapshot:
                    self._complete = (snapshot, set())
                self._complete[1].add(path)
                return snapshot
            with self._lock:
                if self._handed_over:
                    return None
                missing = self._missing_in(shows(self._snapshot) or ())
                if missing:
                    site = self._take(self._read(missing))
                    self._snapshot = publish_site(
                        site,
                        self._snapshot,
                        self._assembler,
                        self.settings,
                        self._history,
                        self.renders,
                        self._outline,
                    )
                snapshot = self._snapshot
        return None

    def _read(self, rels: list[str]) -> dict[str, FileState]:
        """Read `rels` in full, and say so to the read behind, which then skips them."""
        if self.full is not None:
            self.full.claim(rels)
        return read_content_files(
            self.settings.content_dir,
            rels,
            self.settings,
            self.sizes,
            per_process=WANTED_PER_PROCESS,
        )

    def _take(self, in_full: dict[str, FileState]) -> Site:
        """Assemble the site with `in_full` in place of their front matter."""
        self._in_full.update(in_full)
        self._states.update(in_full)
        return self._assembler.assemble(self._tree, self._states, self.sizes, set(in_full))

    def _missing(self, specs: Iterable[FeedSpec]) -> list[str]:
        """Return the files of the articles `specs` show that are not read in full."""
        return self._missing_in(
            article
            for spec in specs
            for article in (*spec.articles, *spec.json_more, *spec.tombstones)
        )

    def _missing_in(self, articles: Iterable[Article]) -> list[str]:
        prefix = len(str(self.settings.content_dir)) + 1
        rels = (article.source_path[prefix:] for article in articles)
        return list(dict.fromkeys(rel for rel in rels if rel not in self._in_full))

    def _outline(
        self, groups: Mapping[str, Listing], site_feed: FeedSpec, before
    ) -> Representation:
        """Render /feeds.opml as the live store does."""
        return render_outline(groups, site_feed, self.settings, self._history)


@dataclass(frozen=True)
class FirstLookPublication(StoredPublication):
    """A first look answering as a stored publication does (see stored.py): its feeds."""

    look: FirstLook | None = None

    def lookup(self, path: str) -> Representation | None:
        """Return the feed at `path`, its articles read in full first if need be."""
        return self.look.feed(path)


def _feed_shows(snapshot: Snapshot, path: str) -> tuple[Article, ...] | None:
    """Return what the feed document at `path` shows, () for the feed list; None: no feed."""
    edition = snapshot.feed_edition(path)
    if edition is None:
        return () if path in snapshot.documents else None
    spec = edition.spec
    return (*spec.articles, *spec.json_more, *spec.tombstones)


def _rendered(snapshot: Snapshot, path: str, history: ValidatorHistory) -> bool:
    """Tell whether the document at `path` was given validators already (or needs none)."""
    return snapshot.feed_edition(path) is None or history.seen(path) is not None


def _groups(groups: Mapping[str, Listing]) -> list[str]:
    """Return the names of the tag and author listings (each has its feed)."""
    return [name for name in groups if "/" in name]


def _newest(states, feed_items: int, now: datetime) -> list[str]:
    """Return, per section, tag and author, the files of the articles its feeds may show:
    its newest articles in feeds (twice `feed_items` for a section, whose JSON feed runs on
    to its newest archive page; `feed_items` for a tag or an author) and a few spare, and
    those taken down or left out of feeds among them."""
    published = [
        (newest_first(article), state.rel, article)
        for state in states
        if isinstance(article := state.result, Article) and article.date <= now
    ]
    published.sort()
    in_section = 2 * feed_items + SPARE_ARTICLES
    in_group = feed_items + SPARE_ARTICLES
    # Articles still wanted per group, by names as written, not by slugs: a feed of two
    # spellings shows the newest of either. The site's feed shows the newest of its sections'.
    left: dict[object, int] = {}
    wanted = []
    for _, rel, article in published:
        counts = article.in_feeds and not article.is_removed(now)
        shown = False
        for group, count in (
            (article.section, in_section),
            *((("tag", tag), in_group) for tag in article.tags),
            *((("author", author), in_group) for author in article.authors),
        ):
            still = left.get(group, count)
            if still > 0:
                shown = True
                left[group] = still - counts
        if shown:
            wanted.append(rel)
    return wanted
