"""Keep an app's content current: re-read what changed, publish immutable snapshots.

Readers take the current Snapshot and never see a half-built one: a refresh builds the
next snapshot aside and swaps it in with one assignment.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .addresses import OPML_PATH
from .assembly import SiteAssembler
from .catalog import Listing
from .editions import (
    RenderCache,
    ValidatorHistory,
    changed_feeds,
)
from .feeds import FeedSpec
from .firstlook import FirstLook, NotYet, first_look
from .following import FollowedFeeds
from .health import assess
from .heap import Reclaimer, give_back_memory
from .images import ImageFactsCache
from .index import RACY_SECONDS, ContentIndex, Published
from .loader import (
    MEDIA_DIR,
    READ_BEHIND_PREFIX,
    FileState,
    Tree,
    fingerprint_parts,
    forget_recent_values,
    media_sizes,
    read_content_files,
    recorded_tree,
    scan_tree,
    stat_fingerprint,
    update_tree,
    with_new_media,
)
from .models import Article, ContentError, Site
from .publisher import FollowerAcks, PublishedMark, PublisherLock
from .publishing import publish_site, render_outline, subscriptions
from .renderlink import Answer, PublisherLink, RenderService, request_for
from .responses import Representation
from .scratch import remove_abandoned
from .settings import Settings
from .snapshot import Snapshot
from .stored import StoredPublication, open_stored_publication, recorded_publication

log = logging.getLogger(__name__)

# A refresh running longer than this means the publisher is stuck (/healthz: failing).
STUCK_REFRESH_SECONDS = 300.0
# How long a stopping process waits for the publication it is recording (see finish_recording).
FINISH_RECORDING_SECONDS = 60.0
# How long a worker that follows waits between looks for the publisher's first publication.
FOLLOW_WAIT_SECONDS = 0.05
# The interpreter's switch interval while the stored publication answers and the content loads.
LOADING_SWITCH_SECONDS = 0.0005
# What /healthz says a follower serves before the publisher's first publication.
BORROWING = "the publisher's answers"
# How long a settling publisher waits for requests still answering from what it dropped.
SETTLE_LET_GO_SECONDS = 5.0


class ContentStore:
    """The one place an app gets content from; kept in app.extensions, never global."""

    def __init__(
        self,
        settings: Settings,
        watcher_factory: Callable | None = None,
        notifier=None,
        purger=None,
    ):
        self.settings = settings
        self._history = ValidatorHistory()
        # Tag, author and archive feeds as rendered, shared by snapshots, bounded in bytes.
        self._renders = RenderCache()
        # Gives back the plain bytes of a packed feed, made again for a client taking no gzip.
        self._reclaimer = Reclaimer()
        # Held by the one process (of those serving this content) that reads the files,
        # writes the index and pings the hub; the others follow what it publishes.
        self._publisher = PublisherLock(settings.state_dir)
        self._mark = PublishedMark(settings.state_dir)
        self._following = False
        # The publication this process serves: (index epoch, generation).
        self._publication: tuple[str, int] = ("", 0)
        # File states read but not yet recorded in the index.
        self._unsaved: tuple[dict, set] = ({}, set())
        # What assembling derives, kept so a refresh costs what changed (the first one: all),
        # and the content folder's shape as last read.
        self._assembler = SiteAssembler(settings)
        # The feeds /feeds.opml last listed, (name, label, page path) each, and its rendering.
        self._outline: tuple[list, Representation] | None = None
        self._tree: Tree | None = None
        # The index epoch this process's states were recorded in; another one needs them all.
        self._recorded_epoch = ""
        # Whether the first read found no index entry: every file was read in full.
        self._first_start = False
        # The persistent index, opened by the first refresh of the process that serves.
        self._index: ContentIndex | None = None
        self._notifier = notifier
        self._purger = purger
        # Caches and the hub hear of a publication once every following worker serves it.
        self._acks = FollowerAcks(settings.state_dir)
        for courier in (notifier, purger):
            if courier is not None:
                courier.hold_until(self._followers_caught_up)
        self._refresh_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._states: dict[str, FileState] = {}
        self._sizes: dict[str, int] = {}
        self._snapshot: Snapshot | None = None
        # Until the live snapshot is ready: the last publication, if still current, answers
        # its feeds (see stored_answer). Looked for once, dropped once the live one serves.
        self._stored: StoredPublication | None = None
        self._stored_looked = False
        self._stored_lock = threading.Lock()
        # What a first look answered and read (firstlook.py), if one did, until the full
        # read takes it up.
        self._first: FirstLook | None = None
        self._loader: threading.Thread | None = None  # the load behind a stored publication
        # In a follower holding no site: the publisher's feeds it answers from the index
        # (see following.py); dropped once a request needs the site and it is loaded.
        self._followed: FollowedFeeds | None = None
        # In the publisher: answers the followers' requests for what they hold no site for;
        # and the generation of the snapshots it serves, (snapshot, generation) newest first,
        # held weakly: an old snapshot (and the pages rendered in it) is not kept for this.
        self._render_service: RenderService | None = None
        self._generations: tuple[tuple[weakref.ref, int], ...] = ()
        # Built but not served until its visible_from, with what was served when it was
        # built if caches and the hub are to hear of it (from this process) once it is.
        self._pending: tuple[Snapshot, Snapshot | None] | None = None
        self._swap_lock = threading.Lock()
        # Held while a publication is written to the index (see finish_recording).
        self._recording = threading.Lock()
        self._watcher_factory = watcher_factory
        self._watcher = None
        self.watching = False
        # What /healthz needs to know about publishing: a refresh under way, the last failure.
        self._refresh_started: float | None = None
        self._refresh_error = ""

    @property
    def site(self) -> Site:
        """Return the current site; callers keep using the one they took."""
        return self.snapshot().site

    def snapshot(self) -> Snapshot:
        """Return the current snapshot, loading the content on first use.

        With no watcher running, a snapshot that a scheduled article made stale is
        refreshed here; with one, the watcher does it on time and requests never wait.
        A snapshot built within the second of the one before is served from the next.
        """
        if self._pending is not None:
            self._promote()
        snapshot = self._snapshot
        if snapshot is None:
            return self._start()
        if not self.watching and snapshot.next_release and time.time() >= snapshot.next_release:
            return self.refresh((), wait=False)
        return snapshot

    def _latest(self) -> Snapshot | None:
        """Return the newest snapshot built, served or not: the next one builds on it."""
        pending = self._pending
        return pending[0] if pending is not None else self._snapshot

    def _install(self, snapshot: Snapshot, tell: bool) -> None:
        """Make `snapshot` the next to serve; `tell`: caches and the hub hear of it then."""
        with self._swap_lock:
            served = self._snapshot
            self._pending = (snapshot, served if tell and served is not None else None)

    def _promote(self) -> None:
        """Serve the pending snapshot if its Last-Modified is no longer ahead of the clock."""
        with self._swap_lock:
            pending = self._pending
            if pending is None or time.time() < pending[0].visible_from:
                return
            snapshot, served = pending
            self._snapshot = snapshot
            self._pending = None
        self._stored = None  # the live snapshot answers everything now
        if self._followed is not None:
            self._drop_followed()
        if served is not None:  # told only after the swap, so they fetch the new bytes
            self._notify(served, snapshot)

    def _served_when_due(self) -> Snapshot | None:
        """Wait, holding no lock, until what was built is served; return the served snapshot."""
        while (pending := self._pending) is not None:
            delay = pending[0].visible_from - time.time()
            if delay > 0:
                time.sleep(delay)
            self._promote()
        return self._snapshot

    def stored_answer(self, path: str, wait: bool = False) -> Representation | None:
        """Answer `path` from the stored publication while the live snapshot is being made.

        None once the live snapshot serves, and for whatever the stored one does not hold:
        the caller then asks snapshot(), which waits for the live one as before. In a
        follower holding no site, the publisher's feeds from the index answer instead.
        `wait` (a request): see stored_publication.
        """
        if self._snapshot is not None:
            return None
        stored = self.stored_publication(wait)
        return stored.lookup(path) if stored is not None else None

    def stored_publication(self, wait: bool = False) -> StoredPublication | None:
        """Return the publication answered from until the live snapshot serves, if any.

        The first call (a first request) looks for one still current, and if there is,
        makes the live snapshot in a background thread instead of in the request; in a
        follower, answers the publisher's feeds from the index (see _follow_from_index),
        or, before the publisher has published, asks it for every answer (see
        _borrow_until_published). `wait`: a follower that cannot ask the publisher waits
        for its first publication here (as it would to load the site) rather than load it.
        """
        if not self._stored_looked:
            with self._stored_lock:
                if not self._stored_looked and self._watcher_factory is not None:
                    if self._snapshot is None:  # one worker checks the files, the others trust it
                        self._stored = open_stored_publication(self.settings, self._publisher)
                        if self._publisher.held():  # followers ask from now on, a first look too
                            self._answer_followers()
                        if self._stored is None:
                            self._stored = self._first_look()
                    following = self._snapshot is None and not self._publisher.held()
                    # A follower with a publication to answer from loads no site until a
                    # request needs one; nor does one whose publisher has not published yet.
                    from_index = False
                    if following and (self._stored is not None or self._published_by_holder()):
                        from_index = self._follow_from_index()
                    elif following:
                        from_index = self._borrow_until_published() or (
                            wait and self._await_publication() and self._follow_from_index()
                        )
                    if not from_index and self._stored is not None:
                        # Whether this process publishes is settled now, for /healthz.
                        self._following = not self._publisher.held()
                        self._loader = threading.Thread(
                            target=self._start_behind_stored, name="feedsvc-load", daemon=True
                        )
                        self._loader.start()
                self._stored_looked = True
        followed = self._followed
        if followed is not None:
            return followed.current()
        # Once the live snapshot serves (before it is recorded), it answers everything.
        return self._stored if self._snapshot is None else None

    def _first_look(self) -> StoredPublication | None:
        """On a first start (an index with nothing published), in the process that
        publishes: the site and section feeds made from a first look (firstlook.py)."""
        if not self._publisher.held():
            return None
        index = ContentIndex.for_settings(self.settings)
        try:
            if index.generation():
                return None  # a warm start: it reads only what changed, quicker than a look
        finally:
            index.close()
        try:
            found = first_look(self.settings)
        except Exception:
            log.exception("no first look: it failed; the content loads as usual")
            return None
        if found is None:
            return None
        self._first = found
        return found.stored

    def first_look_page(self, path: str, root: str, pages) -> Representation | NotYet | None:
        """Answer the page at `path` from a first look while it serves (NOT_YET: none there
        yet, or it cannot be had yet); None: no first look serves, ask the live snapshot."""
        first = self._first
        if first is None or self._snapshot is not None:
            return None
        return first.page(path, root, pages)

    def _follow_from_index(self) -> bool:
        """Serve the publisher's feeds from the index, holding no site; tell whether this does.

        From the stored publication the publisher found current, else from the last one
        the process publishing now published. False when the publication cannot be
        answered from: then this process loads the site as before.
        """
        link = PublisherLink(self.settings.state_dir) if self._render_service else None
        followed = FollowedFeeds(ContentIndex.for_settings(self.settings), link)
        if self._stored is not None:
            followed.start_from(self._stored)
        else:
            if not followed.take_up():
                followed.close()
                return False
            while followed.current() is None:  # its Last-Modified is not ahead of the clock
                time.sleep(FOLLOW_WAIT_SECONDS)
        return self._start_following(
            followed, "answers the publisher's feeds from the index, holding no site"
        )

    def _borrow_until_published(self) -> bool:
        """Ask the publisher for every answer until it publishes; tell whether this does.

        On a first start the publisher answers from its first look long before the full
        read ends and the publication is recorded; this worker answers as soon, with the
        same bytes and validators, and takes up the publication once there is one.
        """
        if self._render_service is None:
            return False
        link = PublisherLink(self.settings.state_dir)
        followed = FollowedFeeds(ContentIndex.for_settings(self.settings), link)
        holder = self._publisher.holder()
        return self._start_following(
            followed, f"asks process {holder} for every answer until it publishes"
        )

    def _start_following(self, followed: FollowedFeeds, what: str) -> bool:
        """Follow the publisher with `followed`, holding no site; tell whether this still does
        (a publication that cannot be answered from drops it: see follow)."""
        self._following = True
        self._followed = followed
        newest = followed.newest()
        if newest is not None:
            self._acks.record(newest.generation)
        self._watcher = self._watcher_factory(self)
        self._watcher.start()
        self.follow()  # one published before the watcher's first look at the mark
        log.info("process %s %s", os.getpid(), what)
        return self._followed is not None

    def _await_publication(self) -> bool:
        """Wait for the publisher's first publication; False if this process publishes now."""
        log.info("waiting for process %s to publish", self._publisher.holder())
        while not self._published_by_holder():
            if self._publisher.held():
                return False
            time.sleep(FOLLOW_WAIT_SECONDS)
        return True

    def _published_by_holder(self) -> bool:
        """Tell whether the process holding the publisher lock has published (no earlier one)."""
        mark = self._mark.read()
        if mark is None or mark[1] != self._publisher.holder():
            return False
        # A previous holder of the same pid (a restarted container) published before the lock
        # was taken; the holder's own publications come after.
        taken, stamp = self._publisher.taken_at(), self._mark.stamp()
        return taken is not None and stamp is not None and stamp[1] >= taken

    def _drop_followed(self) -> None:
        """Stop answering from the index's feeds: the live snapshot answers, or must."""
        followed, self._followed = self._followed, None
        self._stored = None
        if followed is not None:
            followed.close()

    def _start_behind_stored(self) -> None:
        """Make the live snapshot while the stored publication answers; then drop it.

        Meanwhile the load gives way to a request sooner than every 5 ms (Python's
        default switch interval): an answer from the stored publication waits for the
        interpreter lock, not for a slice of the load.
        """
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, LOADING_SWITCH_SECONDS))
        try:
            self._start()
        except Exception:
            log.exception("loading the content failed; the next request tries again")
        finally:
            self._stored = self._first = None
            sys.setswitchinterval(interval)

    def _start(self) -> Snapshot:
        """Load the content and start watching it, once, in the process that serves.

        Deferred to first use so a CLI command pays nothing and a forking server's
        workers each get a watcher thread of their own.
        """
        with self._start_lock:
            if self._snapshot is None:
                if self._watcher_factory is None:
                    self.refresh()
                else:
                    self._serve_live()
                give_back_memory()  # what the load freed (rows read, files parsed)
        return self._snapshot

    def _serve_live(self) -> None:
        """Publish from here if no other process does; else serve what the publisher published.

        A follower parses nothing: it takes the file states the publisher recorded in the
        index, once the publisher holding the lock has published (not a previous run), or
        at once when the files were found unchanged since the stored publication it answers
        from: it loads while the publisher does, rather than after it.
        Then one background thread keeps this process current, as publisher or follower.
        """
        waiting = False
        while True:
            if self._publisher.held():
                self._following = False
                self._answer_followers()
                remove_abandoned(READ_BEHIND_PREFIX)  # a killed start's, if any
                # Watching first, so an edit made during the first read is not missed; the
                # watcher's thread waits for that read (it asks for the snapshot) before acting.
                if self._watcher is None:  # else a follower's, taking over now
                    self._watcher = self._watcher_factory(self)
                    self._watcher.start()
                self.refresh()  # every file checked against the index: nothing is missed
                if self._first_start:
                    self._settle()
                return
            self._following = True  # once the publisher has published
            if self._stored is not None or self._published_by_holder():
                if self._index is None:
                    self._open_index()
                if self.follow() is not None:
                    break
            if not waiting:
                waiting = True
                log.info("waiting for process %s to publish", self._publisher.holder())
            time.sleep(FOLLOW_WAIT_SECONDS)
        if self._watcher is None:  # else it follows already, from the index's feeds
            self._watcher = self._watcher_factory(self)
            self._watcher.start()
        # The watcher follows publications after its first look at the mark; one made
        # since the follow above (which may wait up to a second to serve) is taken now.
        self.follow()

    def role(self) -> dict:
        """Say, for /healthz, whether this process publishes and which publication it serves."""
        stored = self._stored
        serving, generation = "live", self._publication[1]
        followed = self._followed
        if self._snapshot is None and followed is not None and followed.current() is not None:
            serving, generation = "index", followed.current().generation  # no site held
        elif self._snapshot is None and followed is not None:
            serving = BORROWING  # nothing published yet: every answer is the publisher's
        elif self._snapshot is None:  # the stored publication, while this process loads
            serving = "starting" if stored is None else stored.kind
            generation = generation if stored is None else stored.generation
        return {
            "role": "follower" if self._following else "publisher",
            "pid": os.getpid(),
            "generation": generation,
            "serving": serving,
        }

    @property
    def following(self) -> bool:
        """Tell whether this process serves what another one publishes."""
        return self._following

    def take_over(self) -> bool:
        """Become the publisher if the one there was is gone; tell whether this process now is.

        The caller (the watcher) then watches the folder and refreshes it in full.
        """
        if self._following and self._publisher.held():
            log.info("process %s takes over publishing", os.getpid())
            self._following = False
            self._acks.forget()
            self._answer_followers()
            followed = self._followed
            if self._snapshot is None and followed is not None and followed.newest() is None:
                self._look_first()
        return not self._following

    def _look_first(self) -> None:
        """Taking over from a publisher that never published (it died during its first
        look, or its full read): answer from a first look of this process's own.

        Meanwhile a request that would load the site waits (the start lock): the load
        takes up the first look's work rather than read every file beside it.
        """
        with self._start_lock:
            stored = self._first_look()
            followed, self._followed = self._followed, None
            self._stored = stored
            if followed is not None:
                followed.close()

    def share_with_followers(self, answer: Callable[[dict], Answer]) -> None:
        """Answer following workers' requests with `answer` whenever this process publishes."""
        self._render_service = RenderService(self.settings.state_dir, answer)

    def _answer_followers(self) -> None:
        if self._render_service is not None:
            self._render_service.start()

    def borrowed_answer(
        self, environ: dict, path: str, root: str
    ) -> Representation | Answer | None:
        """In a follower holding no site: the publisher's answer for `path` (see following.py).

        None when this process holds a site, publishes (it took over), or no publisher
        answers: then it loads one.
        """
        followed = self._followed
        if followed is None or self._snapshot is not None or not self._following:
            return None
        request = request_for(environ, path, root)
        return followed.borrow(request, lambda: self._followed is followed)

    def answer_follower(
        self, path: str, root: str, pages
    ) -> tuple[Representation, int | None] | None:
        """In the publisher: the document at `path` and its publication's generation, or None.

        Until the live snapshot serves, the publication answered from (a first look, a
        stored one) gives what it holds; for the rest, None: the app answers the request
        as it answers this process's own (and waits, as they do, while that publication
        is being looked for).
        """
        if self._snapshot is None:
            stored = self.stored_publication() if self._stored_looked else None
            rep = stored.lookup(path) if stored is not None else None
            return None if rep is None else (rep, stored.generation)
        snapshot = self.snapshot()
        rep = pages.answer(snapshot, path, root)
        if rep is None:
            return None
        generation = next((g for ref, g in self._generations if ref() is snapshot), None)
        return rep, generation

    def publication_stamp(self) -> tuple | None:
        """Return what changes whenever the publisher publishes (one stat of a small file)."""
        return self._mark.stamp()

    def _followers_caught_up(self) -> bool:
        return self._acks.caught_up(self._publication[1])

    def follow(self) -> Snapshot | None:
        """Serve what the publisher published since this process last looked; parse nothing.

        A follower holding no site takes up the publication's feeds from the index; one
        it cannot answer from makes it stop answering from the index (the next request
        loads the site). Once the site is loaded (or loading), the site follows too.
        """
        followed = self._followed
        if followed is not None and followed.newest() is None and not self._published_by_holder():
            pass  # the publisher has not published yet (the index's is an earlier run's)
        elif followed is not None:
            if followed.take_up():
                self._acks.record(followed.newest().generation)
            elif self._followed is followed:
                log.info("the publication cannot be answered from the index; loading the site")
                self._drop_followed()
        if self._index is None:  # no site loaded: nothing else to follow
            return None
        with self._refresh_lock:
            self._follow()
        return self._served_when_due()

    def _follow(self) -> None:
        """Take up the publisher's new publication, if any; follow() holds the lock."""
        changes = self._index.changes_since(self._publication[1])
        if changes is None or changes.shape is None:
            return
        changed: set[str] | None = {*changes.states, *changes.removed}
        if changes.epoch != self._publication[0]:  # a rebuilt index: take all of it
            if self._publication[1]:
                changes = self._index.changes_since(0)
                if changes is None or changes.shape is None:
                    return
            self._states, changed = {}, None
        elif changes.generation <= self._publication[1]:
            return
        before = self._latest()
        for rel in changes.removed:
            self._states.pop(rel, None)
        self._states.update(changes.states)
        self._sizes = dict(changes.sizes)
        tree = Tree(changes.shape[0], (), changes.shape[1])
        site = self._assembler.assemble(tree, self._states, self._sizes, changed)
        self._install(self._publish(site, before), tell=False)
        self._publication = (changes.epoch, changes.generation)
        self._recorded_epoch = changes.epoch
        # Acknowledged at once: any request after visible_from gets the new snapshot.
        self._acks.record(changes.generation)
        self._promote()
        if before is not None:
            _log_problem_changes(before.site.problems, site.problems)

    def finish_recording(self, timeout: float = FINISH_RECORDING_SECONDS) -> None:
        """Wait for a publication being written to the index, if one is, before an exit.

        A first start serves its live snapshot before recording it (100,000 files take
        seconds to write): a process stopped then would leave the next start no index.
        A read under way is not waited for; the index holds what it held before it.
        """
        if self._recording.acquire(timeout=timeout):
            self._recording.release()

    def close(self) -> None:
        """Stop watching the content folder and pinging the hub."""
        if self._loader is not None:  # a load under way would start a watcher after this
            self._loader.join(timeout=STUCK_REFRESH_SECONDS)
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        if self._render_service is not None:
            self._render_service.close()
        for courier in (self._notifier, self._purger):
            if courier is not None:
                courier.close()
        if self._following:
            self._acks.forget()
        if self._followed is not None:
            self._drop_followed()
        first = self._first
        if first is not None:
            first.close()
        if self._index is not None:
            self._index.close()
        self._publisher.release()

    def refresh(self, changed: Iterable[str] | None = None, wait: bool = True) -> Snapshot:
        """Re-read `changed` paths (relative to the content folder; None: check every file).

        Return the snapshot served then; `wait`: after waiting, outside any lock, for the
        one built to be served (within a second: see Snapshot.visible_from).
        """
        with self._refresh_lock:
            self._refresh_started = time.monotonic()
            try:
                self._refresh(changed)
            except Exception as exc:
                self._refresh_error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self._refresh_started = None
            self._refresh_error = ""
        if self._snapshot is None or wait:
            return self._served_when_due()
        self._promote()
        return self._snapshot

    def publisher_trouble(self) -> str | None:
        """Say why this process no longer publishes changes, or None while it does."""
        started = self._refresh_started
        if started is not None and time.monotonic() - started > STUCK_REFRESH_SECONDS:
            return f"a content refresh has been running for {time.monotonic() - started:.0f} s"
        if self._refresh_error:
            return f"the last content refresh failed: {self._refresh_error}"
        if self._watcher is not None and not self._watcher.is_alive():
            return "the content watcher has stopped"
        return None

    def _refresh(self, changed: Iterable[str] | None) -> None:
        """Re-read and publish; refresh() holds the lock and records the outcome."""
        before = self._latest()
        started = time.perf_counter()
        site = self._read(None if before is None else changed)
        read = time.perf_counter()
        if before is not None and changed != () and _same_content(site, before.site):
            self._record(None)  # new file identities only
            return  # a rescan or a touch: keep the snapshot and its rendered pages
        if before is None:
            self._take_first_look_validators()
        # What rendering writes to the index (feeds, validators) goes in the publication's
        # own transaction (see ContentIndex.batched).
        with self._index.batched() if self._index is not None else contextlib.nullcontext():
            snapshot = self._publish(site, before)
            published = time.perf_counter()
            _log_problem_changes(before.site.problems if before else (), site.problems)
            # Caches and the hub are told by one process, once the new snapshot is served.
            told = self._notifier is not None or self._purger is not None
            self._install(snapshot, tell=told and self._publisher.held())
            if before is None:  # nothing to tell of: served now, not after it is recorded
                self._promote()
            with self._recording:
                self._record(snapshot)  # before telling: followers must have the publication
        self._promote()
        self._pack_when_read(snapshot)
        log.debug(
            "refresh of %s: read and assembled in %.1f ms, published in %.1f ms, recorded"
            " in %.1f ms; served %s",
            "every file" if changed is None else "the changed paths",
            (read - started) * 1000,
            (published - read) * 1000,
            (time.perf_counter() - published) * 1000,
            "now" if self._pending is None else f"from {snapshot.visible_from:.0f}",
        )

    def _take_first_look_validators(self) -> None:
        """Start the validator history from what a first look served, if one did: a feed it
        served with other bytes gets a later Last-Modified."""
        first = self._first
        if first is None or self._index is None:
            return
        for path, (digest, moment) in first.hand_over().items():
            self._index.record_validator(path, digest, moment)

    def _record(self, snapshot: Snapshot | None) -> None:
        """Record the file states read in the index; with `snapshot`, as a new publication.

        Written after the snapshot is built, in one transaction with its generation, so a
        follower never takes up files of a publication that was not finished; a live
        publisher then announces it (the mark followers look at).
        """
        changed, removed = self._unsaved
        self._unsaved = ({}, set())
        if self._index is None:
            return
        self._index.generation()  # (re)opens it: a new index file gets every state
        new_index = self._index.epoch != self._recorded_epoch
        if new_index:
            self._recorded_epoch = self._index.epoch
            changed, removed = dict(self._states), set()
        live = self._watcher_factory is not None and self._publisher.held()
        # A new publisher (a takeover, a new index) publishes even unchanged content:
        # followers wait for a publication by the process that holds the lock.
        if snapshot is None and not (live and (new_index or not self._published_by_holder())):
            self._index.save(changed, removed, self._sizes)
            return
        epoch, generation = self._publication
        if not generation:
            generation = self._index.generation()
        shape = (dict(self._tree.sections), self._tree.problems) if self._tree else ({}, ())
        publication = Published(generation + 1, shape)
        self._index.save(changed, removed, self._sizes, publication)
        self._publication = (epoch, publication.generation)
        published = snapshot or self._latest()
        if published is not None:  # the two newest: the one served and the one pending
            newest = (weakref.ref(published), publication.generation)
            self._generations = (newest, *self._generations[:1])
        if live:
            self._mark.write(publication.generation)

    def _read(self, changed: Iterable[str] | None) -> Site:
        """Re-read the changed files (None: check every one) and assemble the site.

        A change of a few files in a known folder costs what changed: the file states are
        edited in place once the files are read, never copied.
        """
        root = self.settings.content_dir
        suspect: set[str] = set()
        if self._index is None:
            suspect = self._load_index()
            self._recorded_epoch = self._index.epoch
        before = self._states
        update = None
        if changed is not None:
            changed = set(changed)
            if self._tree is not None:  # a known folder: look at the changed paths only
                update = update_tree(root, self._tree, changed)
        states: dict[str, FileState] | None = None  # None: `before`, edited in place
        if update is not None:
            tree, dirty, gone = update
            gone = {rel for rel in gone if rel in before}
        else:
            tree = scan_tree(root)
            dirty = set(tree.files) - before.keys()
            dirty.update(suspect.intersection(tree.files))
            if changed is None:
                dirty.update(
                    rel
                    for rel in tree.files
                    if rel not in dirty and self._changed_on_disk(root, rel)
                )
            else:
                dirty.update(changed.intersection(tree.files))
            states = {rel: before[rel] for rel in tree.files if rel not in dirty}
            gone = before.keys() - states.keys() - dirty
        media_changed = changed is None or any(rel.split("/", 1)[0] == MEDIA_DIR for rel in changed)
        # Whether the assembler looks at every file, not just the dirty ones: a full check
        # (a rescan) finds the dirty ones by their identities, so only new media sizes.
        every = False
        if media_changed:
            sizes = media_sizes(root)
            if sizes != self._sizes:
                self._sizes = sizes
                images = ImageFactsCache()
                kept = before.items() if states is None else states.items()
                states = {
                    rel: with_new_media(state, sizes, root, images)
                    for rel, state in kept
                    if rel not in gone
                }
                every = True
        read = read_content_files(root, dirty, self.settings, self._sizes, before)
        if states is None:
            states = before
            for rel in gone:
                del states[rel]
        states.update(read)
        self._states = states
        self._tree = tree
        if every:
            fresh = {rel: state for rel, state in states.items() if before.get(rel) is not state}
        else:
            fresh = read
        # Kept until a publication records them (a failed one leaves them for the next).
        pending, unsaved_gone = self._unsaved
        pending.update(fresh)
        for rel in gone:
            pending.pop(rel, None)
            unsaved_gone.add(rel)
        unsaved_gone.difference_update(fresh)
        return self._assembler.assemble(tree, states, self._sizes, None if every else dirty | gone)

    def _load_index(self) -> set[str]:
        """Take the file states a previous run saved; return those worth reading again.

        Every entry is checked against its file before use (see _changed_on_disk); an
        entry saved right after its file changed, or holding an `updated` that was in
        the future then and is past now (its warning is stale), is read again.
        """
        self._open_index()
        entries, sizes = self._index.load()
        self._first_start = not entries
        first = self._first
        if first is not None:
            self._renders = first.renders
            full = first.full.result() if first.full is not None and not entries else None
            if not entries:
                # What it read in full, and what was read in full behind it, is taken as an
                # index entry is: checked against its file, not read again; and recorded in
                # the index with the others.
                in_full, read_at = first.read_states()
                entries = {rel: (state, read_at) for rel, state in in_full.items()}
                if full is not None:
                    entries.update(
                        (rel, (state, first.full.started_at)) for rel, state in full.items()
                    )
                sizes = first.sizes
                self._unsaved[0].update((rel, state) for rel, (state, _) in entries.items())
            elif first.full is not None:
                first.full.close()
        now = time.time()
        suspect = set()
        for rel, (state, saved_at) in entries.items():
            self._states[rel] = state
            result = state.result
            if saved_at - fingerprint_parts(state.fingerprint)[0] / 1e9 < RACY_SECONDS or (
                isinstance(result, Article) and saved_at < result.updated.timestamp() <= now
            ):
                suspect.add(rel)
        if sizes is not None:
            self._sizes = sizes
        return suspect

    def _open_index(self) -> None:
        """Open the index, and the validator history kept in it, for this process."""
        self._index = ContentIndex.for_settings(self.settings)
        self._index.describe_publication = self._describe_publication
        self._history = ValidatorHistory(self._index)

    def _settle(self) -> None:
        """After a first start, hold what a restart holds: the publication, loaded again.

        A first start reads every file in full (with a first look, every front matter
        before): what it frees leaves Python's memory pools in pieces it does not give
        back (a worker held 682 MB at 100,000 articles, 363 MB after a restart). So once
        its publication is recorded, the publisher drops all it holds and takes that
        publication up from the index, as a follower does (about 10 s at 100,000 articles),
        answering its feeds from the index meanwhile; then it holds 355-360 MB. The same
        publication: nobody is told of it. The caller holds the start lock, so a request
        for a page waits, as it does at a restart.
        """
        with self._refresh_lock:
            served = self._snapshot
            if self._index is None or served is None or self._pending is not None:
                return
            stored = recorded_publication(self._index)
            if stored is None or stored.generation != self._publication[1]:
                return
            before = _content_of(served.site)
            started = time.perf_counter()
            dropped = weakref.ref(served)
            self._stored = stored
            self._snapshot = served = None
            self._generations = ()
            self._states, self._tree, self._outline = {}, None, None
            self._assembler = SiteAssembler(self.settings)
            self._renders = RenderCache()
            first, self._first = self._first, None
            if first is not None:
                first.close()
            del first
            self._index.close()
            self._open_index()
            forget_recent_values()
            if not _let_go(dropped, SETTLE_LET_GO_SECONDS):
                log.info("a request still holds the first snapshot; loading again beside it")
            give_back_memory()
            changes = self._index.changes_since(0)
            recorded = (self._recorded_epoch, self._publication[1])
            if changes is None or (changes.epoch, changes.generation) != recorded:
                log.warning("the first publication cannot be loaded again; loading the content")
                self._index.close()
                self._index = None
                self._refresh(None)  # as a restart does
                return
            self._states, self._sizes = dict(changes.states), dict(changes.sizes)
            self._tree = recorded_tree(changes.shape, self._states)
            del changes
            site = self._assembler.assemble(self._tree, self._states, self._sizes)
            snapshot = self._publish(site, None)
            self._generations = ((weakref.ref(snapshot), self._publication[1]),)
            self._install(snapshot, tell=False)
        self._served_when_due()
        self._pack_when_read(snapshot)
        if _content_of(site) != before:
            log.warning("the first publication loaded again differs from the one published")
        log.info(
            "first publication loaded again from the index in %.1f s",
            time.perf_counter() - started,
        )

    def _pack_when_read(self, snapshot: Snapshot) -> None:
        """Have the snapshot's site and section feeds held gzip-compressed only once a reader
        asks for gzip, as a follower holds them (Representation.pack): their plain bytes
        (about 11 MB for 8 sections) are recorded in the index already, and nearly every
        reader asks for gzip."""
        editions = snapshot.editions
        for name in subscriptions(snapshot.site, editions):
            for rep in editions[name].held():
                rep.pack_when_gzipped(self._reclaimer)

    def _describe_publication(self) -> dict | None:
        """Describe the publication being recorded, for a restart to answer from (stored.py)."""
        snapshot = self._latest()
        if snapshot is None:
            return None
        subscribed = [snapshot.editions[n] for n in subscriptions(snapshot.site, snapshot.editions)]
        feeds = {
            path: (edition.max_age, edition.expires_at)
            for edition in subscribed
            for path in edition.paths()
        }
        published = len(snapshot.published())
        health = assess(snapshot.site, published, None)
        summary = {
            "status": health.status,
            "reasons": list(health.reasons),
            "sections": len(snapshot.site.sections),
            "articles": published,
            "version": snapshot.site.version,
        }
        return {"feeds": feeds, "next_release": snapshot.next_release, "health": summary}

    def _changed_on_disk(self, root: Path, rel: str) -> bool:
        try:
            stat = os.stat(f"{root}/{rel}")  # a str, not a Path: 100,000 of them at a start
        except OSError:
            return True
        return stat_fingerprint(stat) != self._states[rel].fingerprint

    def _publish(self, site: Site, before: Snapshot | None) -> Snapshot:
        """Render what changed into a snapshot served once its newest Last-Modified is not ahead."""
        return publish_site(
            site, before, self._assembler, self.settings, self._history, self._renders, self._opml
        )

    def _opml(
        self, groups: Mapping[str, Listing], site_feed: FeedSpec, before: Snapshot | None
    ) -> Representation:
        """Render /feeds.opml; the same feeds with the same labels keep the one made before."""
        outline = [(group.name, group.label, group.page_path) for group in groups.values()]
        made = self._outline
        if (
            before is not None
            and made is not None
            and made[0] == outline
            and before.documents.get(OPML_PATH) is made[1]
        ):
            return made[1]  # its bytes, so its Last-Modified, are the same
        rep = render_outline(groups, site_feed, self.settings, self._history)
        self._outline = (outline, rep)
        return rep

    def _notify(self, before: Snapshot, snapshot: Snapshot) -> None:
        """Tell the caches in front, then the WebSub hub, what changed; both in the background."""
        if self._purger is not None:
            self._purger.purge(before, snapshot)
        if self._notifier is None:
            return
        editions = snapshot.editions
        names = changed_feeds(editions, before.editions)
        urls = [self.settings.absolute(path) for name in names for path in editions[name].paths()]
        if urls:
            self._notifier.notify(urls)


def _let_go(dropped: weakref.ref, timeout: float) -> bool:
    """Wait, up to `timeout` seconds, for requests still answering from a dropped snapshot
    (a page being rendered, a /healthz) to be done with it; tell whether it is gone.

    What a load allocates while a snapshot is still held goes into the holes between its
    objects, and keeps their memory pages when it goes: with two workers, a /healthz the
    follower forwarded held the first snapshot through a settle, and the publisher kept
    505-525 MB at 100,000 articles instead of 345.
    """
    deadline = time.monotonic() + timeout
    gc.collect()  # what only cycles held
    if dropped() is None:
        return True
    while dropped() is not None and time.monotonic() < deadline:
        time.sleep(FOLLOW_WAIT_SECONDS)
    gc.collect()  # what the requests left
    return dropped() is None


def _same_content(site: Site, other: Site) -> bool:
    """Tell whether two sites would publish the same: same files, bytes and problems."""
    return _content_of(site) == _content_of(other)


def _content_of(site: Site) -> tuple[str, list]:
    """Return what _same_content compares, kept where a site itself is not (see _settle)."""
    return site.version, [p.key for p in site.problems]


def _log_problem_changes(before: Iterable[ContentError], after: Iterable[ContentError]) -> None:
    """Log each problem once, when it appears, and once more when it is gone."""
    old = {p.key for p in before}
    new = {p.key for p in after}
    for problem in after:
        if problem.key not in old:
            log.warning("content problem: %s", problem)
    for path, line, reason in sorted(old - new, key=str):
        log.info("content problem resolved: %s:%s: %s", path, line or 1, reason)
