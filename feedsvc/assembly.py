"""Assemble the site from what changed: one edited file costs its own share, not the archive's.

loader.assemble_site derives the snapshot from every file state at once; SiteAssembler
keeps what it derives (articles in order, who claims each id, tag spellings, alias
claims, articles whose visibility depends on the time) and updates it from the changed
files only. Its Site equals assemble_site's for the same file states (tests/test_assembly.py).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from . import catalog, editorial
from .addresses import (
    NAMED_KINDS,
    RESERVED_SLUGS,
    SECTION,
    SITE_FEED,
    Address,
    item_id,
    named_in,
    names_in,
)
from .catalog import Listing
from .chunks import ChunkedList
from .crosscheck import id_problem
from .loader import (
    SECTION_INDEX,
    FileState,
    Tree,
    cycle_collection_paused,
    file_digest,
    media_digest,
    site_version,
)
from .models import (
    Article,
    ContentError,
    ContentWarning,
    KeyedArticles,
    Section,
    Site,
    newest_first,
)
from .settings import Settings
from .slugs import name_slug

_RESERVED = frozenset(RESERVED_SLUGS)


@dataclass(frozen=True)
class _Placed:
    """A problem with where the from-scratch assembly would report it."""

    order: tuple
    problem: ContentError


class SiteAssembler:
    """What assembling the site derives, kept between refreshes; owned by one ContentStore."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._reset()

    def _reset(self) -> None:
        self._shape: tuple | None = None  # section folders and aliases: a change re-assembles
        # Each file's state as counted in _files (its digest read again when it goes).
        self._digests: dict[str, FileState] = {}
        self._files = 0  # XOR of every file's digest
        self._media: tuple[object, bytes] | None = None
        self._state_problems: dict[str, tuple[ContentError, ...]] = {}
        self._candidates: dict[str, Article] = {}  # articles of a live section, by file
        # hash(id) -> the file claiming it, or the files (a tuple) when several do; their
        # articles are the candidates'. The id's hash, not the id: 100,000 URLs kept as
        # keys would cost 8 MB (_settle_id tells apart ids that share a hash).
        self._claims: dict[int, str | tuple[str, ...]] = {}
        self._duplicates: dict[str, ContentError] = {}  # file -> why its article is left out
        self._visible: dict[str, Article] = {}  # file -> the article the site publishes
        self._unfed = 0  # how many of them say `feeds: false`
        # Newest first, in chunks the sites share; their sort keys (newest_first) are made
        # when needed rather than kept: 100,000 articles' keys would cost 17 MB.
        self._articles = ChunkedList(newest_first)
        # The visible articles by key: the last Site's lookup, with the changes since.
        self._by_key = _Lookup()
        self._id_problems: dict[str, ContentError] = {}
        # (kind, slug) -> each spelling -> the files writing it (a list: a set per spelling
        # of a tag in 50,000 articles costs several times its references).
        self._spellings: dict[tuple[str, str], dict[str, list[str]]] = {}
        self._nameless: dict[str, tuple[_Placed, ...]] = {}
        self._slug_problems: dict[tuple[str, str], tuple[_Placed, ...]] = {}
        self._pages = _PagesByPath(self._by_key)  # site path -> visible article
        self._claimants: dict[str, dict[str, Article]] = {}  # alias -> file -> article
        self._alias_problems: dict[str, tuple[_Placed, ...]] = {}
        self._timed: dict[str, Article] = {}
        self._timed_until: dict[str, float] = {}  # file -> when its article stops being timed
        self._untimed: list[tuple[float, str]] = []  # heap of those moments
        self._section_pages: dict[str, Section] = {}
        # Listings: each group's published articles as shown at the last listing, newest
        # first (the site's under SITE_FEED), and what was listed last.
        self._lists: dict[str, ChunkedList] = {}  # each listing's articles, newest first
        self._listed: dict[str, Listing] = {}
        self._ranks: dict[str, tuple] = {}  # tag or author listing -> its place after sections
        self._ranking: list[tuple[tuple, str]] = []  # (rank, name), in order
        self._listed_sections: tuple | None = None
        # Each visible article at the last listing: (it, how it showed, the version shown).
        # An article shown as it is (the most) is kept alone, not in a tuple: see _seen.
        self._shown: dict[str, Article | tuple[Article, tuple[bool, bool], Article | None]] = {}
        self._recheck: set[str] = set()  # files placed or withdrawn since the last listing
        # The sort key each of them was placed with, and its article, not made again there.
        self._placed_keys: dict[str, tuple[Article, tuple]] = {}
        self._redo: set[str] = set()  # listings to make again
        # Per listing to make again, the sort key of its oldest article that changed since.
        self._oldest_change: dict[str, tuple] = {}
        # Per listing the last call made again: the one it replaced, and that key.
        self._remade: dict[str, tuple[Listing, tuple]] = {}
        # The groups the last listings() returned, and the names it listed again (None: all
        # may differ, or come in another order).
        self._groups: dict[str, Listing] | None = None
        self._relisted: tuple[dict[str, Listing], frozenset[str]] | None = None
        self._reordered = False  # a listing came, went or moved since the last listings()
        # When each timed article next shows otherwise or moves a feed's next release.
        self._next_at: dict[str, float] = {}
        self._due: list[tuple[float, str]] = []  # heap of those moments
        # Per feed, when its next scheduled change is due, and each article's part in it.
        self._release_of: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._feed_releases: dict[str, dict[str, float]] = {}
        self._releases: dict[str, float] = {}
        self._site: Site | None = None

    def assemble(
        self,
        tree: Tree,
        states: Mapping[str, FileState],
        sizes: Mapping[str, int],
        changed: Iterable[str] | None = None,
    ) -> Site:
        """Return the site for `states`, given which files changed since the last call.

        `changed`: paths whose state is new, added or gone (None: any may have changed).
        """
        sections = _sections(tree, states)
        shape = (tuple(tree.sections), tuple((s.slug, s.aliases) for s in sections.values()))
        if changed is None or shape != self._shape:
            gone = self._digests.keys() - states.keys()
            self._reset()
            self._shape = shape
            changed = [*states, *gone]
        self._section_pages = {section.path: section for section in sections.values()}
        with cycle_collection_paused():  # a first assembly keeps 100,000 articles' entries
            self._update(set(changed), states, sections)
        if self._media is None or self._media[0] is not sizes:
            self._media = (sizes, media_digest(sizes))
        version = site_version(self._files, self._media[1], sections)
        problems = self._problems(tree, sections)
        self._site = Site.from_ordered(
            sections,
            self._articles.frozen(),
            problems,
            version,
            self._by_key.published(),
            tuple(self._timed.values()),
        )
        return self._site

    def listings(self, site: Site, now: datetime) -> dict[str, Listing]:
        """Return catalog.listings(site, site.published(now)), remaking only what changed.

        A group keeps its Listing (the same object) unless one of its articles changed
        or looks different at `now` (scheduled, updated later, taken down): only the
        articles edited since, and those whose moment came, are looked at again.
        """
        if site is not self._site:
            self._relisted = None
            return catalog.listings(site, site.published(now))
        self._catch_up(now)
        redo, self._redo = self._redo, set()
        oldest, self._oldest_change = self._oldest_change, {}
        shape = tuple((slug, section.title) for slug, section in site.sections.items())
        if shape != self._listed_sections:
            self._listed, self._ranks, self._ranking = {}, {}, []
            self._listed_sections = shape
            redo = {SITE_FEED, *site.sections, *self._lists}
            self._groups = None
        self._remade = {}
        for name in redo:
            before = self._listed.get(name)
            self._list(name, site)
            if before is not None and name in oldest and name in self._listed:
                self._remade[name] = (before, oldest[name])
        previous = self._groups
        if previous is not None and not self._reordered:
            # The same listings in the same order: the few listed again replace theirs in
            # a copy (at 100,000 articles, thousands of tags and authors are not walked).
            groups = dict(previous)
            for name in redo:
                groups[name] = self._listed[name]
            self._relisted = (previous, frozenset(redo))
        else:
            groups = {SITE_FEED: self._listed[SITE_FEED]}
            for slug in site.sections:
                groups[slug] = self._listed[slug]
            for _, name in self._ranking:
                groups[name] = self._listed[name]
            self._relisted = None
        self._groups, self._reordered = groups, False
        return groups

    def relisted(self) -> tuple[Mapping[str, Listing], frozenset[str]] | None:
        """Say what the last listings() changed: the groups it returned the time before and
        the names it listed again, all others being the same Listings in the same order
        (None: any may differ).
        """
        return self._relisted

    def remade(self) -> dict[str, tuple[Listing, tuple]]:
        """Say what the last listings() changed: per listing it made again, the Listing it
        replaced and the sort key of the oldest article that changed in it.

        Every article older than that is the same object, at the same place counted from
        the oldest, in both: an archive page of only those is the same page.
        """
        return dict(self._remade)

    def releases(self, site: Site, now: datetime) -> dict[str, float]:
        """Return catalog.next_releases(site, now, settings), kept up to date between calls."""
        if site is not self._site:
            return catalog.next_releases(site, now, self._settings)
        self._catch_up(now)
        return dict(self._releases)

    def all_in_feeds(self, site: Site) -> bool:
        """Tell whether every article of `site` (this assembler's latest) goes in feeds.

        Then a feed need not filter its listing's articles: at 100,000 that walk alone
        cost an edit tens of milliseconds.
        """
        return site is self._site and self._unfed == 0

    def _catch_up(self, now: datetime) -> None:
        """Show as at `now` the articles edited since the last call and those whose moment came."""
        stamp = now.timestamp()
        recheck, self._recheck = self._recheck, set()
        placed, self._placed_keys = self._placed_keys, {}
        while self._due and self._due[0][0] <= stamp:
            moment, rel = heapq.heappop(self._due)
            if self._next_at.get(rel) == moment:
                del self._next_at[rel]
                recheck.add(rel)
        # Oldest last, so that the first listing of all appends to its lists.
        known = {rel: self._visible.get(rel) or (self._seen(rel) or (None,))[0] for rel in recheck}
        ordered = sorted(
            (_key_of(a, placed.get(rel)), rel) for rel, a in known.items() if a is not None
        )
        if not self._shown and not self._lists:
            with cycle_collection_paused():  # every listing made at once: kept, not garbage
                self._show_all(ordered, now)
            return
        for _, rel in ordered:
            self._reshow(rel, now)

    def _show_all(self, ordered: list[tuple[tuple, str]], now: datetime) -> None:
        """Make the first listings: each visible article, newest first, into its lists.

        _reshow would find each one's place by search (at 100,000 articles a restart
        spent seconds there); only timed articles need it, for their releases. Each list
        is made at once, of its articles in order: no sort key made per article and list.
        """
        members: dict[str, list[Article]] = {}
        for _, rel in ordered:
            article = self._visible[rel]
            appearance = _appearance(article, now)
            shown = article.as_of(now) if appearance[0] else None
            self._show(rel, article, appearance, shown)
            if shown is not None:
                for name in (SITE_FEED, *_group_names(shown)):
                    listed = members.get(name)
                    if listed is None:
                        listed = members[name] = []
                    listed.append(shown)
            if rel in self._timed:  # shown already: _reshow settles its releases only
                self._reshow(rel, now)
        for name, listed in members.items():
            self._lists[name] = ChunkedList.in_order(newest_first, listed)
        self._redo.update(self._lists)

    def _reshow(self, rel: str, now: datetime) -> None:
        """Update the listings, releases and next moment of the article of one file."""
        article = self._visible.get(rel)
        seen = self._seen(rel)
        appearance = _appearance(article, now) if article is not None else None
        if seen is None or seen[0] is not article or seen[1] != appearance:
            if seen is not None and seen[2] is not None:
                self._enlist(seen[2], add=False)
            if article is None:
                del self._shown[rel]
            else:
                shown = article.as_of(now) if appearance[0] else None
                self._show(rel, article, appearance, shown)
                if shown is not None:
                    self._enlist(shown, add=True)
        timed = article is not None and rel in self._timed
        release = catalog.release_moment(article, now, self._settings) if timed else None
        self._set_release(rel, article, release)
        moments = [m for m in (_next_appearance(article, now) if timed else None, release) if m]
        moment = min(moments).timestamp() if moments else None
        if moment != self._next_at.get(rel):
            if moment is None:
                del self._next_at[rel]
            else:
                self._next_at[rel] = moment
                _schedule(self._due, self._next_at, rel, moment)

    def _show(
        self, rel: str, article: Article, appearance: tuple[bool, bool], shown: Article | None
    ) -> None:
        """Record how the article of `rel` shows: alone if as it is, else with how."""
        plain = appearance is _PLAIN and shown is article
        self._shown[rel] = article if plain else (article, appearance, shown)

    def _seen(self, rel: str) -> tuple[Article, tuple[bool, bool], Article | None] | None:
        """Return how the article of `rel` showed at the last listing: (it, how, as shown)."""
        seen = self._shown.get(rel)
        return (seen, _PLAIN, seen) if isinstance(seen, Article) else seen

    def _enlist(self, article: Article, add: bool) -> None:
        """Put the article as shown in (or take it out of) the site's listing and its groups."""
        key = newest_first(article)
        for name in (SITE_FEED, *_group_names(article)):
            if key > self._oldest_change.get(name, ()):
                self._oldest_change[name] = key
            members = self._lists.get(name)
            if members is None:
                members = self._lists[name] = ChunkedList(newest_first)
            if add:
                members.insert(article)
            else:
                members.remove(article)
                if not members:
                    del self._lists[name]
            self._redo.add(name)

    def _set_release(self, rel: str, article: Article | None, moment: datetime | None) -> None:
        """Record when the article next changes its feeds by the clock (None: never)."""
        entry = None
        if moment is not None:
            entry = (moment.timestamp(), tuple(dict.fromkeys(catalog.feed_names(article))))
        old = self._release_of.get(rel)
        if old == entry:
            return
        if old is not None:
            del self._release_of[rel]
            for name in old[1]:
                pending = self._feed_releases[name]
                del pending[rel]
                if not pending:
                    del self._feed_releases[name]
                    del self._releases[name]
                elif self._releases[name] == old[0]:
                    self._releases[name] = min(pending.values())
        if entry is not None:
            self._release_of[rel] = entry
            for name in entry[1]:
                self._feed_releases.setdefault(name, {})[rel] = entry[0]
                if entry[0] < self._releases.get(name, math.inf):
                    self._releases[name] = entry[0]

    def _list(self, name: str, site: Site) -> None:
        members = self._lists.get(name)
        articles = members.frozen() if members is not None else ()
        self._listed.pop(name, None)
        old_rank = rank = self._ranks.pop(name, None)
        if rank is not None:
            del self._ranking[bisect_left(self._ranking, (rank, name))]
        if name == SITE_FEED:
            self._listed[name] = Listing(SITE_FEED, "", Address.site().page_path, articles)
        elif name in site.sections:
            page_path = Address.listing(SECTION, name).page_path
            self._listed[name] = Listing(name, site.sections[name].title, page_path, articles)
        elif articles:
            address = Address.from_name(name)
            names = names_in(articles[0], address.kind)
            position = next(i for i, v in enumerate(names) if name_slug(v) == address.slug)
            self._listed[name] = Listing(name, names[position], address.page_path, articles)
            rank = (members.first_key(), NAMED_KINDS.index(address.kind), position)
            self._ranks[name] = rank
            insort(self._ranking, (rank, name))
        if name not in self._listed or self._ranks.get(name) != old_rank:
            self._reordered = True  # a listing came, went or moved among the others

    def _update(self, changed: set[str], states: Mapping[str, FileState], sections) -> None:
        now = datetime.now(UTC)
        dirty_ids: set[int] = set()
        for rel in changed:
            state = states.get(rel)
            counted = self._digests.pop(rel, None)
            if counted is not None:
                self._files ^= file_digest(counted)
            if state is not None:
                self._digests[rel] = state
                self._files ^= file_digest(state)
            self._state_problems.pop(rel, None)
            found = _state_problems(state) if state is not None else ()
            if found:
                self._state_problems[rel] = found
            article = state.result if state is not None else None
            if isinstance(article, Article) and article.section in sections:
                article = editorial.with_original_paths([article], sections)[0]
            else:
                article = None
            self._set_candidate(rel, article, dirty_ids)
        affected = set(changed)
        for guid in dirty_ids:
            affected.update(self._settle_id(guid))
        dirty_slugs: set[tuple[str, str]] = set()
        dirty_aliases: set[str] = set()
        shown = {}
        for rel in affected:
            article = None if rel in self._duplicates else self._candidates.get(rel)
            if self._visible.get(rel) is not article:
                shown[rel] = article
        keys = {rel: newest_first(article) for rel, article in shown.items() if article is not None}
        # Newest first: assembling from scratch, each article goes at the end of its lists.
        for rel in sorted(shown, key=lambda rel: keys.get(rel, ())):
            before = self._visible.get(rel)
            if before is not None:
                self._withdraw(rel, before, dirty_slugs, dirty_aliases)
            if shown[rel] is not None:
                self._place(rel, shown[rel], keys[rel], dirty_slugs, dirty_aliases)
        for key in dirty_slugs:
            self._settle_slug(key)
        for alias in dirty_aliases:
            self._settle_alias(alias)
        stamp = now.timestamp()
        while self._untimed and self._untimed[0][0] <= stamp:
            _, rel = heapq.heappop(self._untimed)
            article = self._timed.get(rel)
            if article is not None and not _is_timed(article, now):
                del self._timed[rel]
                del self._timed_until[rel]
        for rel in affected:
            article = self._visible.get(rel)
            if article is not None and _is_timed(article, now):
                self._timed[rel] = article
                until = _timed_until(article)
                if self._timed_until.get(rel) != until:
                    self._timed_until[rel] = until
                    _schedule(self._untimed, self._timed_until, rel, until)

    # Duplicate ids: one article per GUID, as crosscheck.drop_duplicate_ids decides.

    def _set_candidate(self, rel: str, article: Article | None, dirty_ids: set[int]) -> None:
        old = self._candidates.pop(rel, None)
        if old is not None:  # the id it claimed is made again, rather than kept per file
            old_key = hash(item_id(old, self._settings))
            others = tuple(r for r in self._claimants_of(old_key) if r != rel)
            if not others:
                del self._claims[old_key]
            else:
                self._claims[old_key] = others[0] if len(others) == 1 else others
            dirty_ids.add(old_key)
        self._duplicates.pop(rel, None)
        if article is None:
            return
        self._candidates[rel] = article
        key = hash(item_id(article, self._settings))
        before = self._claims.get(key)
        self._claims[key] = rel if before is None else (*self._claimants_of(key), rel)
        dirty_ids.add(key)

    def _claimants_of(self, key: int) -> tuple[str, ...]:
        """Return the files whose articles claim an id of hash `key`, in the order they did."""
        claim = self._claims.get(key, ())
        return (claim,) if isinstance(claim, str) else claim

    def _settle_id(self, key: int) -> list[str]:
        """Decide which claimant of each id of hash `key` keeps it; return the claimants' files."""
        rels = self._claimants_of(key)
        for rel in rels:
            self._duplicates.pop(rel, None)
        if len(rels) > 1:  # (one claimant, the most: nothing to decide)
            by_id: dict[str, dict[str, Article]] = {}
            for rel in rels:
                article = self._candidates[rel]
                by_id.setdefault(item_id(article, self._settings), {})[rel] = article
            for guid, claim in by_id.items():
                self._settle_claim(guid, claim)
        return list(rels)

    def _settle_claim(self, guid: str, claim: dict[str, Article]) -> None:
        """Leave out all but one of the articles (by file) claiming `guid`."""
        explicit = sorted(
            (a.source_path, rel) for rel, a in claim.items() if a.explicit_id is not None
        )
        plain = sorted(rel for rel, a in claim.items() if a.explicit_id is None)
        if explicit:
            owner = claim[plain[-1]] if plain else claim[explicit[0][1]]
            for _, rel in explicit:
                article = claim[rel]
                if article is not owner:
                    reason = f"id {guid!r} is already used by {owner.source_path}"
                    self._duplicates[rel] = ContentError(
                        article.source_path, article.id_line, reason
                    )

    # The published articles, and what is derived from each.

    def _place(self, rel: str, article: Article, key: tuple, slugs: set, aliases: set) -> None:
        self._visible[rel] = article
        self._unfed += not article.in_feeds
        self._articles.insert(article, key)  # a first assembly's, in order, are appended
        self._placed_keys[rel] = (article, key)
        self._by_key.place(article)
        problem = id_problem(article)
        if problem is not None:
            self._id_problems[rel] = problem
        self._mark(rel, article, key, slugs, aliases, add=True)

    def _withdraw(self, rel: str, article: Article, slugs: set, aliases: set) -> None:
        del self._visible[rel]
        self._unfed -= not article.in_feeds
        key = newest_first(article)
        self._articles.remove(article)
        self._by_key.withdraw(article)
        self._id_problems.pop(rel, None)
        self._timed.pop(rel, None)
        self._timed_until.pop(rel, None)
        self._mark(rel, article, key, slugs, aliases, add=False)

    def _mark(
        self, rel: str, article: Article, key: tuple, slugs: set, aliases: set, add: bool
    ) -> None:
        """Add (or take back) the article's tag and author spellings and alias claims."""
        nameless = []
        for kind_index, kind in enumerate(NAMED_KINDS):
            names = names_in(article, kind)
            for position, name in enumerate(names):
                slug = name_slug(name)
                if not slug:
                    reason = (
                        f"{kind} {name!r} has no letter, digit or symbol to make"
                        " an address of; it is shown without a page or feed"
                    )
                    problem = ContentWarning(article.source_path, None, reason)
                    nameless.append(_Placed((article.source_path, kind_index, position), problem))
                    continue
                slugs.add((kind, slug))
                if name in names[:position]:
                    continue  # a file writing one name twice counts once
                spellings = self._spellings.setdefault((kind, slug), {})
                users = spellings.setdefault(name, [])
                if add:
                    users.append(rel)
                else:
                    users.remove(rel)
                    if not users:
                        del spellings[name]
                    if not spellings:
                        del self._spellings[(kind, slug)]
        if add and nameless:
            self._nameless[rel] = tuple(nameless)
        elif not add:
            self._nameless.pop(rel, None)
        self._recheck.add(rel)
        aliases.add(article.path)
        for alias in article.aliases:
            claimants = self._claimants.setdefault(alias, {})
            if add:
                claimants[rel] = article
            else:
                del claimants[rel]
                if not claimants:
                    del self._claimants[alias]
            aliases.add(alias)

    def _settle_slug(self, key: tuple[str, str]) -> None:
        """Report the spellings of one tag (or author) address after its first, once each."""
        self._slug_problems.pop(key, None)
        spellings = self._spellings.get(key, {})
        if len(spellings) < 2:
            return
        kind, slug = key
        kind_index = NAMED_KINDS.index(kind)
        first_seen = []
        for name, users in spellings.items():
            seen = min(
                (self._visible[rel].source_path, names_in(self._visible[rel], kind).index(name))
                for rel in users
            )
            first_seen.append((seen, name))
        first_seen.sort()
        known = first_seen[0][1]
        placed = []
        for (source_path, position), name in first_seen[1:]:
            reason = (
                f"{kind} {name!r} and {known!r} share the address"
                f" {Address.listing(kind, slug).page_path}; they are published as one"
            )
            problem = ContentError(source_path, None, reason)
            placed.append(_Placed((source_path, kind_index, position), problem))
        self._slug_problems[key] = tuple(placed)

    def _settle_alias(self, alias: str) -> None:
        """Report the claims on one alias that cannot redirect, as alias_problems would."""
        self._alias_problems.pop(alias, None)
        claimants = sorted(self._claimants.get(alias, {}).values(), key=lambda a: a.source_path)
        if not claimants:
            return
        claimed: dict[str, Article] = {}
        placed = []
        for article in claimants:
            reason = editorial.article_alias_problem(
                article, alias, self._pages, self._section_pages, _RESERVED, claimed
            )
            if reason:
                problem = ContentWarning(article.source_path, article.aliases_line, reason)
                order = (article.source_path, article.aliases.index(alias))
                placed.append(_Placed(order, problem))
            else:
                claimed[alias] = article
        if placed:
            self._alias_problems[alias] = tuple(placed)

    def _problems(self, tree: Tree, sections: Mapping[str, Section]) -> tuple:
        """List the problems in the order assemble_site reports them."""
        problems = list(tree.problems)
        for rel in sorted(self._state_problems):
            problems += self._state_problems[rel]
        duplicates = self._duplicates.values()
        problems += sorted(duplicates, key=lambda p: p.path)
        problems += [self._id_problems[rel] for rel in sorted(self._id_problems)]
        slug_problems = [p for placed in self._slug_problems.values() for p in placed]
        slug_problems += [p for placed in self._nameless.values() for p in placed]
        problems += [p.problem for p in sorted(slug_problems, key=lambda p: p.order)]
        alias_problems = [p for placed in self._alias_problems.values() for p in placed]
        problems += [p.problem for p in sorted(alias_problems, key=lambda p: p.order)]
        problems += editorial.section_alias_problems(sections, _RESERVED)
        return tuple(problems)


class _Lookup(Mapping[tuple[str, str], Article]):
    """The visible articles by (section, slug): the last site's KeyedArticles, under the
    articles placed and withdrawn since (None) until the next site takes them up.

    One map of 100,000 keys, the site's, rather than a dict of them besides (5 MB).
    """

    def __init__(self):
        self._published = KeyedArticles()
        self._changes: dict[tuple[str, str], Article | None] = {}

    def place(self, article: Article) -> None:
        self._changes[article.key] = article

    def withdraw(self, article: Article) -> None:
        self._changes[article.key] = None

    def published(self) -> KeyedArticles:
        """Return the lookup with every change since taken up, for a new site."""
        if self._changes:
            present = {key: a for key, a in self._changes.items() if a is not None}
            self._published = self._published.updated(self._changes, present)
            self._changes = {}
        return self._published

    def __getitem__(self, key: tuple[str, str]) -> Article:
        article = self._changes[key] if key in self._changes else self._published.get(key)
        if article is None:
            raise KeyError(key)
        return article

    def __iter__(self):
        for bucket in self._published.buckets:
            yield from (key for key in bucket if key not in self._changes)
        yield from (key for key, article in self._changes.items() if article is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _PagesByPath(Mapping[str, Article]):
    """The visible articles by site path (/section/slug/), read from their lookup by key.

    A map of its own would hold 100,000 path strings for the few aliases ever looked up.
    """

    def __init__(self, by_key: Mapping[tuple[str, str], Article]):
        self._by_key = by_key

    def __getitem__(self, path: str) -> Article:
        parts = path.split("/") if isinstance(path, str) else ()
        if len(parts) != 4 or parts[0] or parts[3]:  # not /section/slug/
            raise KeyError(path)
        article = self._by_key.get((parts[1], parts[2]))
        if article is None or article.path != path:
            raise KeyError(path)
        return article

    def __iter__(self):
        return (article.path for article in self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)


def _schedule(
    heap: list[tuple[float, str]], moments: dict[str, float], rel: str, at: float
) -> None:
    """Push (at, rel) on a heap whose entries are current only if `moments` still agrees.

    A superseded entry stays until it is due, and some are never due (a takedown is timed
    for good): once they outnumber the current ones, the heap is made again from `moments`.
    """
    heapq.heappush(heap, (at, rel))
    if len(heap) > 2 * len(moments) + 64:
        heap[:] = [(moment, name) for name, moment in moments.items()]
        heapq.heapify(heap)


def _sections(tree: Tree, states: Mapping[str, FileState]) -> dict[str, Section]:
    """Return the live sections, with what their _index.md says, as assemble_site does."""
    sections = {}
    for slug, mtime in tree.sections.items():
        section = Section(slug=slug, title=slug.replace("-", " ").title(), file_mtime=mtime)
        state = states.get(f"{slug}/{SECTION_INDEX}")
        if state is not None and isinstance(state.result, Section) and state.result.slug == slug:
            section = replace(state.result, file_mtime=max(mtime, state.mtime))
        sections[slug] = section
    return sections


def _key_of(article: Article, placed: tuple[Article, tuple] | None) -> tuple:
    """Return newest_first(article), the key it was placed with if it is that article."""
    return placed[1] if placed is not None and placed[0] is article else newest_first(article)


def _group_names(article: Article) -> dict[str, None]:
    """Return the listings an article is in besides the site's: section, tags, authors."""
    names = {article.section: None}
    names.update((name, None) for name, _ in named_in(article))
    return names


def _state_problems(state: FileState) -> tuple[ContentError, ...]:
    if state.problem is not None:
        return (state.problem,)
    if isinstance(state.result, Article):
        return state.result.warnings + state.result.media_warnings
    return ()


def _appearance(article: Article, now: datetime) -> tuple[bool, bool]:
    """Return how a timed article shows at `now`: published or not, its `updated` or not."""
    shown = article.date <= now and not article.is_removed(now)
    return _APPEARANCES[shown][article.updated <= now]


# The four appearances, kept once: one is held per article (SiteAssembler._shown).
_APPEARANCES = tuple(
    tuple((shown, updated) for updated in (False, True)) for shown in (False, True)
)
_PLAIN = _APPEARANCES[True][True]  # published, as updated


def _is_timed(article: Article, now: datetime) -> bool:
    """Tell whether the article's visibility may still change as time passes."""
    return article.takedown is not None or article.date > now or article.updated > now


def _timed_until(article: Article) -> float:
    """Return the POSIX time from which _is_timed(article) no longer holds."""
    if article.takedown is not None:
        return math.inf
    return max(article.date, article.updated).timestamp()


def _next_appearance(article: Article, now: datetime) -> datetime | None:
    """Return when _appearance(article, ·) may next differ from now's, if ever."""
    moments = (article.date, article.updated, article.removed_at)
    return min((m for m in moments if m is not None and m > now), default=None)
