"""The last publication as the index stored it: what a restarted process answers at once.

Loading 100,000 parsed files and assembling the site takes seconds; the site and section
feeds of the last publication are already in the index, rendered, with their validators.
While nothing changed since (every content file and media file as it was when saved, the
folder's shape, no scheduled change come due, the same code and settings), a process
answers those feeds from here until its live snapshot is ready: the same bytes, ETags
and Last-Modified the live one will serve. Anything else waits for the live snapshot.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .identities import first_difference
from .index import ContentIndex, StoredParts
from .loader import scan_tree
from .media import media_sizes
from .publisher import PublisherLock, process_start, replace_file
from .responses import IDENTITY, Representation, encodings
from .settings import Settings

log = logging.getLogger(__name__)

# The publishing process's word on the stored publication, for the other workers.
VERDICT_NAME = "stored-check"
# How long a worker waits for the publishing process to start checking, and to finish.
VERDICT_WAIT_SECONDS = 0.5
VERDICT_CHECK_SECONDS = 30.0
VERDICT_POLL_SECONDS = 0.01
# What /healthz says the publisher serves while it loads its first publication again.
RELOADING = "its publication, while loading it again"


@dataclass(frozen=True)
class StoredPublication:
    """The subscription feeds of a publication still current, ready to answer."""

    generation: int
    documents: Mapping[str, Representation]
    # What /healthz said of this publication when it was made (status, counts, version).
    health: Mapping
    # What /healthz calls it while it answers (firstlook.py makes the other kind).
    kind: str = "stored publication"

    def lookup(self, path: str) -> Representation | None:
        """Return the stored feed at a URL path; None: only the live snapshot can answer."""
        return self.documents.get(path)


def open_stored_publication(
    settings: Settings, lock: PublisherLock | None = None
) -> StoredPublication | None:
    """Return the last publication if it is still current; else None (load as usual).

    With `lock`, one process checks the files (the one that publishes, taking the lock
    if free) and says what it found (see CheckVerdict); the others take its word, so
    each extra worker reads no file and no file identity.
    """
    index = ContentIndex.for_settings(settings)
    verdict = CheckVerdict(settings.state_dir)
    try:
        if lock is None:
            return _checked(settings, index)
        if lock.held():
            verdict.write("checking", 0)
            stored = _checked(settings, index)
            verdict.write("current" if stored else "not current", stored and stored.generation)
            return stored
        found = verdict.await_holders(lock)
        if found is None:  # nobody checking now (a worker respawned later): check here
            return _checked(settings, index)
        state, generation = found
        if state != "current":  # none, or a file changed: the live load reads it
            log.info(
                "not answering from a stored publication: process %s found none current",
                lock.holder(),
            )
            return None
        parts = index.stored_publication(files=False)
        if parts is None or parts.generation != generation:  # published again since
            return _checked(settings, index)
        return _answering(parts, f"as process {lock.holder()} checked")
    finally:
        index.close()


def recorded_publication(index: ContentIndex) -> StoredPublication | None:
    """Return the publication this process has just recorded, to answer while it loads it
    again (see ContentStore._settle); not checked against the files: it read them."""
    parts = index.stored_publication(files=False)
    if parts is None:
        return None
    stored = _answering(parts, "loaded again from the index after a first start")
    return None if stored is None else dataclasses.replace(stored, kind=RELOADING)


def _checked(settings: Settings, index: ContentIndex) -> StoredPublication | None:
    """Read the last publication and check every file against it."""
    parts = index.stored_publication()
    if parts is None:
        return None
    try:
        reason = why_not_current(settings.content_dir, parts, time.time())
    except OSError as exc:  # a folder unreadable now: the live load reports it
        reason = f"the content folder cannot be read ({exc})"
    if reason is not None:
        log.info("not answering from the stored publication: %s", reason)
        return None
    return _answering(parts, "no file changed")


def _answering(parts: StoredParts, why: str) -> StoredPublication | None:
    """Return the publication's feeds as answers, unless one is not as its validator says."""
    due = parts.manifest["next_release"]
    if due is not None and time.time() >= due:
        log.info("not answering from the stored publication: a scheduled change has come due")
        return None
    documents = _feed_answers(parts, "not answering from the stored publication")
    if documents is None:
        return None
    log.info(
        "answering from publication %d until the content is loaded (%s)", parts.generation, why
    )
    return StoredPublication(parts.generation, documents, parts.manifest["health"])


def followed_publication(
    parts: StoredParts, previous: StoredPublication | None = None
) -> StoredPublication | None:
    """Return a publication's feeds as answers for a worker following its publisher.

    Not checked against the files nor the clock: the publisher published it, and alone
    reads the files and releases scheduled articles (see following.py). A feed of
    `previous` that answers exactly as the new one is kept, with the codings made for it.
    """
    kept = previous.documents if previous is not None else {}
    documents = _feed_answers(parts, f"not following publication {parts.generation}", kept)
    if documents is None:
        return None
    return StoredPublication(parts.generation, documents, parts.manifest["health"])


def _feed_answers(
    parts: StoredParts, refusal: str, kept: Mapping[str, Representation] | None = None
) -> dict[str, Representation] | None:
    """Return the publication's feeds as answers, those of `kept` where alike; None
    (logged) if one is not as its validator says."""
    kept = kept or {}
    documents = {}
    for path, (_key, max_age, expires_at) in parts.manifest["feeds"].items():
        validator, old = parts.validators[path], kept.get(path)
        if path not in parts.documents:  # the rendering `old` holds (see stored_publication)
            documents[path] = _dated(old, validator[1], max_age, expires_at)
            continue
        stored = parts.documents[path]
        if old is not None and _answers_alike(old, stored, validator, max_age, expires_at):
            documents[path] = old
            continue
        rep = _representation(stored, validator, max_age, expires_at)
        if rep is None:
            log.info("%s: %s has other validators", refusal, path)
            return None
        documents[path] = rep
    return documents


def _answers_alike(
    rep: Representation, parts: tuple, validator: tuple[bytes, int], max_age, expires_at
) -> bool:
    """Tell whether `rep` answers as the stored feed would: same ETag, headers and dates."""
    content_type, variants, headers, browser_type = parts
    return (
        rep.variants.etag(IDENTITY) == variants[IDENTITY][1]
        and (rep.content_type, rep.last_modified, rep.max_age, rep.expires_at)
        == (content_type, validator[1], max_age, expires_at)
        and rep.extra_headers == tuple(tuple(header) for header in headers)
        and rep.browser_content_type == browser_type
    )


def _dated(
    rep: Representation, last_modified: int, max_age: int, expires_at: float | None
) -> Representation:
    """Return `rep` with these dates: itself if it has them, else a copy (codings shared)."""
    if (rep.last_modified, rep.max_age, rep.expires_at) == (last_modified, max_age, expires_at):
        return rep
    return dataclasses.replace(
        rep, last_modified=last_modified, max_age=max_age, expires_at=expires_at
    )


class CheckVerdict:
    """What the publishing process found when it checked the stored publication's files.

    A small file in the state folder, naming its writer by pid and start time: a worker
    that does not publish takes the word of the process holding the publisher lock, and
    of no earlier one (a verdict left by a previous run, even by a process that had the
    same pid, is not its word).
    """

    def __init__(self, state_dir: Path):
        self.path = state_dir / VERDICT_NAME

    def write(self, state: str, generation: int | None) -> None:
        """Say `state` ("checking", "current", "not current") of publication `generation`."""
        pid = os.getpid()
        line = f"{pid} {process_start(pid)} {state.replace(' ', '-')} {generation or 0}\n"
        try:
            replace_file(self.path, line)
        except OSError as exc:  # the other workers then check for themselves
            log.warning("cannot record the stored publication's check in %s: %s", self.path, exc)

    def read(self) -> tuple[int, str, str, int] | None:
        """Return (pid, start time, state, generation) as written last, or None."""
        try:
            pid, start, state, generation = self.path.read_text().split()
            return int(pid), start, state.replace("-", " "), int(generation)
        except (OSError, ValueError):
            return None

    def await_holders(self, lock: PublisherLock) -> tuple[str, int] | None:
        """Wait while the process publishing checks; return its (state, generation).

        None when the process holding the lock has said nothing of this start (it has been
        publishing for a while: this worker was started or respawned later) within
        VERDICT_WAIT_SECONDS, or its verdict cannot be told from an earlier process's.
        """
        deadline = time.monotonic() + VERDICT_CHECK_SECONDS
        said = time.monotonic() + VERDICT_WAIT_SECONDS
        while time.monotonic() < deadline:
            found = self.read()
            holder = lock.holder()
            if (
                found is not None
                and found[0] == holder
                and found[1] != "None"
                and found[1] == process_start(holder)
            ):
                if found[2] != "checking":
                    return found[2], found[3]
            elif time.monotonic() > said:
                return None
            time.sleep(VERDICT_POLL_SECONDS)
        return None


def why_not_current(root: Path, parts: StoredParts, now: float) -> str | None:
    """Say what changed since the publication was stored; None: nothing did.

    The same checks the live load makes (see ContentStore._load_index), so whatever it
    would read again makes the stored publication unusable.
    """
    due = parts.manifest["next_release"]
    if due is not None and now >= due:
        return "a scheduled change has come due"
    tree = scan_tree(root)
    sections, problems = parts.shape
    if tree.sections != sections or [p.key for p in tree.problems] != [p.key for p in problems]:
        return "the content folder's sections changed"
    if media_sizes(root) != parts.sizes:
        return "media files changed"
    if sorted(tree.files) != [row[0] for row in parts.files]:
        return "content files were added or removed"
    return first_difference(str(root), parts.files)


def _representation(
    parts: tuple, validator: tuple[bytes, int], max_age: int, expires_at: float | None
) -> Representation | None:
    """Rebuild a stored feed as editions.py does; None if its validator is of other bytes."""
    content_type, variants, headers, browser_type = parts
    body, etag = variants[IDENTITY]
    digest, last_modified = validator
    if hashlib.sha256(body).digest() != digest:
        return None
    return Representation(
        content_type,
        last_modified,
        encodings(body, etag),
        max_age,
        expires_at,
        headers,
        browser_type,
    )
