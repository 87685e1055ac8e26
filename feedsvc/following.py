"""What a following worker serves without a Site of its own: the publisher's feeds, from the index.

A worker that does not publish need not hold the site: the publisher records, with each
publication, its site and section feeds rendered with their validators (the stored
publication, see stored.py). A follower answers those from here, taking up each new
publication as the publisher announces it, and holds no article; whatever else is asked
of it (a page, a tag or author feed, an archive, the OPML file) it asks of the publisher
(renderlink.py) and keeps, within a budget, for the publication it serves. Only when no
publisher can be reached does it load the site from the index (ContentStore._serve_live).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from .bounded import BoundedCache
from .index import ContentIndex
from .renderlink import Answer, PublisherLink, representation_of
from .responses import IDENTITY, Representation
from .stored import StoredPublication, followed_publication

log = logging.getLogger(__name__)

# The documents a follower keeps as the publisher answered them (pages, tag, author and
# archive feeds, the OPML file), least recently used dropped first: within an extra
# worker's memory budget however many a crawler asks for. Small: the publisher keeps its
# renderings, so a miss costs a round trip on a local socket, not a rendering.
BORROWED_BYTES = 2 * 1024 * 1024


class FollowedFeeds:
    """The publication a follower answers from, and the next one until it may be served.

    A publication becomes visible once its newest Last-Modified is not ahead of the
    clock, as the publisher's own snapshot does (Snapshot.visible_from): every worker
    then serves the same validators from the same moment.
    """

    def __init__(self, index: ContentIndex, link: PublisherLink | None = None):
        self._index = index
        self._link = link
        # (root, path) → the publisher's answer for the publication served: a new cache with
        # each publication, as the publisher renders its pages once per publication.
        self._borrowed = _new_borrowed()
        self._lock = threading.Lock()
        self._current: StoredPublication | None = None
        self._pending: tuple[StoredPublication, int] | None = None
        # The last publication taken up, as the index described it (generation and manifest).
        self._seen: tuple[int, object] | None = None

    def current(self) -> StoredPublication | None:
        """Return the publication to answer from now (the pending one once it is due)."""
        pending = self._pending
        if pending is not None and time.time() >= pending[1]:
            with self._lock:
                if self._pending is pending:
                    self._current, self._pending = pending[0], None
                    self._borrowed = _new_borrowed()
        return self._current

    def newest(self) -> StoredPublication | None:
        """Return the newest publication taken up, served or still pending."""
        pending = self._pending
        return pending[0] if pending is not None else self._current

    def start_from(self, publication: StoredPublication) -> None:
        """Answer from `publication` at once (one the process already answers from)."""
        with self._lock:
            self._current, self._pending = publication, None
            self._seen = None
            self._borrowed = _new_borrowed()

    def take_up(self) -> bool:
        """Read the index's last publication and serve it when due; tell whether it can be.

        False when the index holds a publication that cannot be answered from (not
        described, rendered by other code, a feed replaced since): then this worker must
        not answer from the older one any longer; it loads the site instead.
        """
        parts = self._index.stored_publication(files=False)
        if parts is None:
            return False
        seen = (parts.generation, parts.manifest)
        if seen == self._seen:
            return True  # the same publication (a mark rewritten, nothing new)
        publication = followed_publication(parts)
        if publication is None:
            return False
        previous = self.newest()
        if previous is not None:  # a feed the edit left alone keeps its compressed codings
            kept = {
                path: _same_or(previous.documents.get(path), rep)
                for path, rep in publication.documents.items()
            }
            publication = dataclasses.replace(publication, documents=kept)
        due = max((rep.last_modified for rep in publication.documents.values()), default=0)
        with self._lock:
            self._pending, self._seen = (publication, due), seen
        log.debug("following publication %d from the index", publication.generation)
        return True

    def borrow(self, request: dict, keep_trying) -> Representation | Answer | None:
        """Return the publisher's answer to `request`: a document (kept), or a whole response.

        None when no publisher answers (see PublisherLink.ask): the caller loads the site.
        """
        current = self.current()
        if current is None or self._link is None:
            return None
        borrowed, key = self._borrowed, (request["root"], request["path"])
        rep = borrowed.get(key)
        if rep is not None:
            return rep
        answer = self._link.ask(request, keep_trying)
        if answer is None:
            return None
        head, body = answer
        if "document" not in head:
            return answer
        rep = representation_of(head, body)
        if head["generation"] == current.generation:  # else answered for another publication
            borrowed.put(key, rep)
        return rep

    def close(self) -> None:
        """Close this process's connections to the index and the publisher."""
        self._index.close()
        if self._link is not None:
            self._link.close()


def _new_borrowed() -> BoundedCache[tuple[str, str], Representation]:
    return BoundedCache(BORROWED_BYTES, Representation.held_bytes)


def _same_or(old: Representation | None, new: Representation) -> Representation:
    """Return `old` if it answers exactly as `new` does (same bytes and headers), else `new`."""
    if old is not None and (
        old.variants[IDENTITY] == new.variants[IDENTITY]
        and (old.content_type, old.last_modified, old.max_age, old.expires_at)
        == (new.content_type, new.last_modified, new.max_age, new.expires_at)
        and (old.extra_headers, old.browser_content_type)
        == (new.extra_headers, new.browser_content_type)
    ):
        return old
    return new
