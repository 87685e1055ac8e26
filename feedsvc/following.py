"""What a following worker serves without a Site of its own: the publisher's feeds, from the index.

A worker that does not publish need not hold the site: the publisher records, with each
publication, its site and section feeds rendered with their validators (the stored
publication, see stored.py). A follower answers those from here, taking up each new
publication as the publisher announces it, and holds no article; whatever else is asked
of it (a page, a tag or author feed, an archive, the OPML file) it asks of the publisher
(renderlink.py) and keeps, within a budget, for the publication it serves. Before the
publisher has published anything (a first start: it answers from its first look while every
file is read), a follower asks it for every answer, so an extra worker serves as soon as the
publisher does. Only when no publisher can be reached does it load the site from the index
(ContentStore._serve_live).
"""

from __future__ import annotations

import logging
import threading
import time

from .bounded import BoundedCache
from .heap import Reclaimer, give_back_memory
from .index import ContentIndex
from .renderlink import Answer, PublisherLink, representation_of
from .responses import Representation
from .stored import StoredPublication, followed_publication

log = logging.getLogger(__name__)

# The documents a follower keeps as the publisher answered them (pages, tag, author and
# archive feeds, the OPML file), least recently used dropped first: within an extra
# worker's memory budget however many a crawler asks for. Small: the publisher keeps its
# renderings, so a miss costs a round trip on a local socket, not a rendering.
BORROWED_BYTES = 2 * 1024 * 1024
# A follower holds its feeds gzip-compressed only (Representation.pack): the plain bytes
# made for a client taking no gzip or to make brotli, and the publisher's answers, are
# freed once sent; malloc gives them back to the system every this many bytes.
TRIM_AFTER_BYTES = 2 * 1024 * 1024
# Before the first publication the site and section feeds are borrowed too: room for them
# (about what a follower holds of them once it answers a publication from the index), so
# each is compressed once in this worker rather than on every miss.
UNPUBLISHED_BORROWED_BYTES = 16 * 1024 * 1024
# The generation of what a publisher answers before its first publication (a first look).
UNPUBLISHED = 0


class FollowedFeeds:
    """The publication a follower answers from, and the next one until it may be served.

    A publication becomes visible once its newest Last-Modified is not ahead of the
    clock, as the publisher's own snapshot does (Snapshot.visible_from): every worker
    then serves the same validators from the same moment.
    """

    def __init__(self, index: ContentIndex, link: PublisherLink | None = None):
        self._index = index
        self._link = link
        # (generation, root, path) → the publisher's answer for the publication served: a new
        # cache with each publication, as the publisher renders its pages once per publication.
        self._borrowed = _new_borrowed(UNPUBLISHED_BORROWED_BYTES)
        self.reclaimer = Reclaimer(TRIM_AFTER_BYTES)
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
        self._pack_soon(publication)

    def take_up(self) -> bool:
        """Read the index's last publication and serve it when due; tell whether it can be.

        False when the index holds a publication that cannot be answered from (not
        described, rendered by other code, a feed replaced since): then this worker must
        not answer from the older one any longer; it loads the site instead.
        """
        with self._lock:  # the feeds held, and their keys: their renderings are not read again
            previous, seen = self.newest(), self._seen
        held = {path: entry[0] for path, entry in seen[1]["feeds"].items()} if seen else None
        parts = self._index.stored_publication(files=False, held=held)
        if parts is None:
            return False
        seen = (parts.generation, parts.manifest)
        if seen == self._seen:
            return True  # the same publication (a mark rewritten, nothing new)
        # A feed the edit left alone is the one held, its compressed codings made once.
        publication = followed_publication(parts, previous)
        del parts  # the plain bytes of the feeds read: given back below
        if publication is None:
            return False
        due = max((rep.last_modified for rep in publication.documents.values()), default=0)
        with self._lock:
            self._pending, self._seen = (publication, due), seen
        log.debug("following publication %d from the index", publication.generation)
        self._index.release_memory()
        give_back_memory()
        self._pack_soon(publication)
        return True

    def _pack_soon(self, publication: StoredPublication) -> None:
        """Have the publication's feeds held gzip-compressed only, in the background.

        Each is answered at once as read; packing (Representation.pack: 20 ms of gzip
        for a 400 kB feed not yet asked for it) comes after, off the path of the edit.
        """
        threading.Thread(
            target=self._pack, args=(publication,), name="feedsvc-pack", daemon=True
        ).start()

    def _pack(self, publication: StoredPublication) -> None:
        for rep in publication.documents.values():
            rep.pack(self.reclaimer)
        give_back_memory()  # the plain bytes dropped

    def borrow(self, request: dict, keep_trying) -> Representation | Answer | None:
        """Return the publisher's answer to `request`: a document (kept), or a whole response.

        Before any publication is taken up, what the publisher answers before it publishes
        (its first look) is kept. None when no publisher answers (see PublisherLink.ask):
        the caller loads the site.
        """
        if self._link is None:
            return None
        current = self.current()
        generation = UNPUBLISHED if current is None else current.generation
        # The generation in the key: an answer kept as a new publication is taken up is
        # never found for that one.
        borrowed, key = self._borrowed, (generation, request["root"], request["path"])
        rep = borrowed.get(key)
        if rep is not None:
            return rep
        answer = self._link.ask(request, keep_trying)
        if answer is None:
            return None
        head, body = answer
        self.reclaimer.freed(len(body))  # once sent, unless kept below
        if "document" not in head:
            return answer
        rep = representation_of(head, body)
        if head["generation"] == generation:  # else answered for another publication
            borrowed.put(key, rep)
        return rep

    def close(self) -> None:
        """Close this process's connections to the index and the publisher."""
        self._index.close()
        if self._link is not None:
            self._link.close()


def _new_borrowed(budget: int = BORROWED_BYTES) -> BoundedCache[tuple, Representation]:
    return BoundedCache(budget, Representation.held_bytes)
