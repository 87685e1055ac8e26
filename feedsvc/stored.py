"""The last publication as the index stored it: what a restarted process answers at once.

Loading 100,000 parsed files and assembling the site takes seconds; the site and section
feeds of the last publication are already in the index, rendered, with their validators.
While nothing changed since (every content file and media file as it was when saved, the
folder's shape, no scheduled change come due, the same code and settings), a process
answers those feeds from here until its live snapshot is ready: the same bytes, ETags
and Last-Modified the live one will serve. Anything else waits for the live snapshot.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .index import RACY_SECONDS, ContentIndex, StoredParts
from .loader import scan_tree
from .media import media_sizes
from .responses import IDENTITY, Representation, encodings
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredPublication:
    """The subscription feeds of a publication still current, ready to answer."""

    generation: int
    documents: Mapping[str, Representation]
    # What /healthz said of this publication when it was made (status, counts, version).
    health: Mapping

    def lookup(self, path: str) -> Representation | None:
        """Return the stored feed at a URL path; None: only the live snapshot can answer."""
        return self.documents.get(path)


def open_stored_publication(settings: Settings) -> StoredPublication | None:
    """Return the last publication if it is still current; else None (load as usual)."""
    index = ContentIndex.for_settings(settings)
    try:
        parts = index.stored_publication()
    finally:
        index.close()
    if parts is None:
        return None
    try:
        reason = why_not_current(settings.content_dir, parts, time.time())
    except OSError as exc:  # a folder unreadable now: the live load reports it
        reason = f"the content folder cannot be read ({exc})"
    if reason is not None:
        log.info("not answering from the stored publication: %s", reason)
        return None
    documents = {}
    for path, (_key, max_age, expires_at) in parts.manifest["feeds"].items():
        rep = _representation(parts.documents[path], parts.validators[path], max_age, expires_at)
        if rep is None:
            log.info("not answering from the stored publication: %s has other validators", path)
            return None
        documents[path] = rep
    log.info("answering from publication %d until the content is loaded", parts.generation)
    return StoredPublication(parts.generation, documents, parts.manifest["health"])


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
    if len(tree.files) != len(parts.files) or not parts.files.keys() >= set(tree.files):
        return "content files were added or removed"
    if media_sizes(root) != parts.sizes:
        return "media files changed"
    for rel, (mtime_ns, size, inode, saved_at) in parts.files.items():
        if saved_at - mtime_ns / 1e9 < RACY_SECONDS:
            return f"{rel} was saved as it changed"
        try:
            stat = os.stat(f"{root}/{rel}")  # a str, not a Path: 100,000 of them
        except OSError:
            return f"{rel} cannot be read"
        if (stat.st_mtime_ns, stat.st_size, stat.st_ino) != (mtime_ns, size, inode):
            return f"{rel} changed"
    return None


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
