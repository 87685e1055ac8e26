"""The persistent index: parsed file states and validators kept in SQLite across restarts.

A restart re-parses only the files that changed while the server was down. The index is
a cache, never a source of truth: an entry counts only while its file's identity (size,
mtime in ns, inode) is unchanged, and the whole file table only for the parser code and
the settings that wrote it. A missing, corrupt or foreign index is rebuilt, with a log
line. The Last-Modified history (validators) lives here too, shared by every process
serving the same content, so workers and restarts agree on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import io
import json
import logging
import os
import pickle
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

from .heap import give_back_memory
from .loader import (
    FileState,
    cycle_collection_paused,
    fingerprint_parts,
    parse_context,
    read_content_file,
)
from .models import Article, Body, unpack_html
from .parsing import ParseContext
from .settings import Settings
from .storedform import BodiesByName, stored_form

log = logging.getLogger(__name__)

INDEX_NAME = "index.sqlite3"
# Bump when the tables change shape; an index of another format is rebuilt.
INDEX_FORMAT = "5"
# An index entry saved less than this after its file changed is checked again: a second
# write within the file system's timestamp grain would not change the file's identity.
RACY_SECONDS = 2.0
# A body its file no longer has is kept this long for snapshots still served that show it.
BODY_GRACE_SECONDS = 3600.0
# After this many bodies leave memory at once (a first start), their pages go back to the
# system: the C allocator keeps them otherwise, and a 100,000-article start holds 200 MB.
TRIM_AFTER_BODIES = 1000
# Article digests kept for document keys: the items of every subscription feed, many times.
ARTICLE_DIGESTS_KEPT = 8192
# Libraries whose output ends up in a parsed file state (zstd's: the packed bodies digested).
_PARSING_LIBRARIES = (
    "markdown-it-pyrs",
    "PyYAML",
    "python-dateutil",
    "nh3",
    "tzdata",
    "Pillow",
    "backports.zstd",
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # The file's identity (mtime_ns, size, inode) beside its state: a restart checks every
    # file against it without unpickling a state. The state comes last, so reading the
    # columns before it never reads a state's overflow pages.
    "CREATE TABLE IF NOT EXISTS files (rel TEXT PRIMARY KEY, saved_at REAL NOT NULL,"
    " generation INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL,"
    " inode INTEGER NOT NULL, state BLOB NOT NULL)",
    # Files removed, by the generation that removed them: what a following process drops.
    "CREATE TABLE IF NOT EXISTS gone (rel TEXT PRIMARY KEY, generation INTEGER NOT NULL)",
    # A follower asks what a publication changed: found by generation, not by a scan of
    # every state (at 100,000 files that scan cost each publication ~200 ms in each worker).
    "CREATE INDEX IF NOT EXISTS files_by_generation ON files (generation)",
    "CREATE INDEX IF NOT EXISTS gone_by_generation ON gone (generation)",
    "CREATE TABLE IF NOT EXISTS validators (path TEXT PRIMARY KEY, digest BLOB NOT NULL,"
    " moment INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS documents (path TEXT PRIMARY KEY, key BLOB NOT NULL,"
    " rep BLOB NOT NULL)",
    # Article bodies (pack_html), apart from the states: no process keeps them in memory.
    # Read by digest; a body its file no longer has is marked `replaced`, and deleted
    # BODY_GRACE_SECONDS later. One row per file and body: two files may share a body.
    "CREATE TABLE IF NOT EXISTS bodies (rel TEXT NOT NULL, digest BLOB NOT NULL, replaced REAL,"
    " packed BLOB NOT NULL, PRIMARY KEY (rel, digest))",
    "CREATE INDEX IF NOT EXISTS bodies_digest ON bodies (digest)",
    "CREATE INDEX IF NOT EXISTS bodies_replaced ON bodies (replaced) WHERE replaced IS NOT NULL",
)


@functools.cache
def parser_version() -> str:
    """Return a digest of the code and libraries that turn a file into a file state.

    Any change of feedsvc's own modules counts: an upgrade never reuses entries that an
    older parser wrote. Made once per process (each index opened asks: several at a
    restart), from the code as this process found it.
    """
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in _PARSING_LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=\0".encode())
    return digest.hexdigest()[:32]


def parsing_settings(settings: Settings) -> str:
    """Return a digest of the settings that shape a parsed file (the parse context)."""
    context = parse_context(settings)
    shaping = [
        (field.name, repr(getattr(context, field.name)))
        for field in dataclasses.fields(context)
        if field.compare
    ]
    return hashlib.sha256(repr(shaping).encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class Published:
    """A generation of published content: its number and the folder's shape then."""

    generation: int
    shape: object  # the loader's Tree without its file list (sections and folder problems)


@dataclasses.dataclass(frozen=True)
class StoredParts:
    """The last publication as the index holds it, read in one transaction for a restart."""

    generation: int
    manifest: Mapping  # see ContentIndex._publication_manifest
    shape: object
    sizes: Mapping[str, int]
    # (rel, mtime_ns, size, inode, racy) by path: what each file was when its state was
    # saved, and 1 (racy) if that was within RACY_SECONDS of its last change, else 0
    # (empty when read without them: another process checked them).
    files: Sequence[tuple[str, int, int, int, int]]
    # path -> the parts store_document took (but those the reader said it held)
    documents: Mapping[str, tuple]
    validators: Mapping[str, tuple[bytes, int]]  # path -> (body digest, Last-Modified)


@dataclasses.dataclass(frozen=True)
class Changes:
    """What changed in the published content since a generation a follower has."""

    epoch: str  # changes when the index is rebuilt: generations start again
    generation: int
    states: Mapping[str, FileState]
    removed: frozenset[str]
    sizes: Mapping[str, int]
    shape: object | None


class ContentIndex:
    """One process's handle on the index of a content folder; safe across threads and forks.

    Every failure to read or write it is logged once and costs only the cache: the
    store then parses and serves as if there were no index.
    """

    def __init__(self, state_dir: Path, content_dir: Path, identity: Mapping[str, str]):
        self.path = state_dir / INDEX_NAME
        self._content_dir = os.path.abspath(content_dir)
        self._identity = dict(identity)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._broken = False
        self._orphans: list = []
        self._render_salt = b""
        # How a body missing from the index is parsed again from its file (see body_html).
        self._parse_context: ParseContext | None = None
        # The key of the rendering this process last found or stored at each document path:
        # after a publish, the keys of that publication's subscription feeds.
        self._document_keys: dict[str, bytes] = {}
        # Each article version's digest by id(), with the article (so the id stays its own).
        self._article_digests: dict[int, tuple[object, bytes]] = {}
        # Set by the store: what the publication being saved serves (see _publication_manifest).
        self.describe_publication: Callable[[], Mapping | None] | None = None
        # Which index file the connection reads, and the epoch it holds (see Changes).
        self._inode: int | None = None
        self.epoch = ""
        # While a publication is made (see batched): the thread making it, and its writes.
        self._batch: tuple[int, list] | None = None
        # A connection must not cross a fork: the child opens its own on first use.
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forget_connection(ref))

    @classmethod
    def for_settings(cls, settings: Settings) -> ContentIndex:
        """Return the index of the settings' content folder, in their state folder."""
        identity = {
            "format": INDEX_FORMAT,
            "parser": parser_version(),
            "settings": parsing_settings(settings),
        }
        index = cls(settings.state_dir, settings.content_dir, identity)
        # Rendered documents depend on every setting, and on the code as parsing does.
        index._render_salt = (identity["parser"] + repr(settings)).encode()
        index._parse_context = parse_context(settings)
        return index

    def load(self) -> tuple[dict[str, tuple[FileState, float]], dict[str, int] | None]:
        """Return the stored file states with when each was saved, and the media sizes.

        Nothing (and a rebuilt index) when the index is missing, corrupt or foreign.
        """
        with self._lock:
            conn = self._connect()
            if conn is None:
                return {}, None
            try:
                # Row by row: the blobs of a 100,000-file index never sit in memory at once.
                rows = conn.execute("SELECT rel, saved_at, state FROM files")
                entries = {}
                with cycle_collection_paused():
                    for rel, saved_at, blob in rows:
                        entries[rel] = (self._state(rel, blob), saved_at)
                media = conn.execute("SELECT value FROM meta WHERE key = 'media'").fetchone()
                sizes = json.loads(media[0]) if media else None
            except sqlite3.OperationalError as exc:  # locked, unreadable: not its content
                self._give_up(exc)
                return {}, None
            except Exception as exc:  # a damaged page, a truncated blob: never trusted
                self._rebuild(f"it cannot be read ({exc})")
                return {}, None
            return entries, sizes

    def save(
        self,
        changed: Mapping[str, FileState],
        removed: Iterable[str],
        sizes: Mapping[str, int],
        publish: Published | None = None,
    ) -> None:
        """Record the file states that changed, forget removed files, keep the media sizes.

        With `publish`, the same transaction makes them generation `publish.generation`
        of the published content, with the folder's shape, for the processes that follow.
        """
        now = time.time()
        generation = publish.generation if publish is not None else self.generation()
        bodies: list[tuple[str, Body]] = []  # bodies this process holds in memory, to keep here
        with cycle_collection_paused():  # a first start's 100,000 rows: no garbage among them
            rows = [  # in key order: each B-tree page is filled in turn, not revisited
                (
                    rel,
                    now,
                    generation,
                    *fingerprint_parts(state.fingerprint),
                    _state_blob(state, bodies),
                )
                for rel, state in sorted(changed.items())  # paths: never equal
            ]
            kept = [(rel, body.digest, None, body.packed) for rel, body in bodies]
        gone = [(rel,) for rel in removed]
        meta = [("media", json.dumps(dict(sizes), sort_keys=True))]
        if publish is not None:
            shape = pickle.dumps(publish.shape, pickle.HIGHEST_PROTOCOL)
            meta += [("generation", str(generation)), ("shape", shape.hex())]
            meta.append(("publication", self._publication_manifest(generation)))

        def work(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            # Into a new index (a first start's), no file was gone and no body is replaced:
            # 100,000 look-ups of nothing each are skipped.
            if _has_rows(conn, "gone"):
                conn.executemany("DELETE FROM gone WHERE rel = ?", [(rel,) for rel in changed])
            conn.executemany("DELETE FROM files WHERE rel = ?", gone)
            conn.executemany(
                "INSERT OR REPLACE INTO gone VALUES (?, ?)", [(rel, generation) for (rel,) in gone]
            )
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            if _has_rows(conn, "bodies"):
                # Every other body of a file saved or removed is on its way out (see
                # BODY_GRACE_SECONDS).
                conn.executemany(
                    "UPDATE bodies SET replaced = ? WHERE rel = ? AND replaced IS NULL"
                    " AND digest IS NOT ?",
                    [(now, rel, _body_of(state)) for rel, state in changed.items()],
                )
                conn.executemany(
                    "UPDATE bodies SET replaced = ? WHERE rel = ? AND replaced IS NULL",
                    [(now, rel) for (rel,) in gone],
                )
            conn.executemany("INSERT OR REPLACE INTO bodies VALUES (?, ?, ?, ?)", kept)
            conn.execute("DELETE FROM bodies WHERE replaced < ?", (now - BODY_GRACE_SECONDS,))

        saved = self._write(work, flush=True)  # with what a batch held, in one transaction
        rows.clear()
        kept.clear()
        _drop_stored_forms(changed.values())
        if saved:
            for _, body in bodies:  # the index holds them now: memory no longer does
                body.keep_in(self)
            if len(bodies) >= TRIM_AFTER_BODIES:
                give_back_memory()

    def _state(self, rel: str, blob: bytes) -> FileState:
        """Return a stored file state, its article's body to be read from here."""
        state = pickle.loads(blob)
        if not isinstance(state, FileState) or state.rel != rel:
            raise ValueError(f"entry {rel!r} holds something else")
        if isinstance(state.result, Article):
            state.result.body.keep_in(self)
        return state

    def body_html(self, body: Body) -> str:
        """Return the HTML of a body this index holds (a BodySource).

        A body it does not hold (an index rebuilt or unusable since, a body kept past its
        grace) is parsed again from its file, if that still has it; else LookupError.
        """
        query = "SELECT packed FROM bodies WHERE digest = ? LIMIT 1"
        row = self._read(
            lambda conn: conn.execute(query, (body.digest,)).fetchone(), "parsing it again"
        )
        if row is not None:
            return unpack_html(row[0])
        return self._body_from_file(body)

    def _body_from_file(self, body: Body) -> str:
        """Parse `body`'s file again for it, and keep it here if found (see body_html)."""
        path = Path(body.path)
        try:
            rel = path.relative_to(self._content_dir).as_posix()
        except ValueError:
            rel = ""
        found = None
        if rel.count("/") == 1 and self._parse_context is not None:
            state = read_content_file(Path(self._content_dir), rel, self._parse_context, {})
            if isinstance(state.result, Article) and state.result.body == body:
                found = state.result.body
        if found is None:
            raise LookupError(f"the body of {body.path} is no longer in the index or its file")
        log.info("content index %s: body of %s parsed again from its file", self.path, rel)
        packed = found.packed
        self._write(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO bodies VALUES (?, ?, ?, ?)", (rel, body.digest, None, packed)
            )
        )
        return found.html

    def generation(self) -> int:
        """Return the number of the content last published (0: none yet)."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return 0
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            except sqlite3.Error as exc:
                self._give_up(exc)
                return 0
        return int(row[0]) if row else 0

    def changes_since(self, generation: int) -> Changes | None:
        """Return what the publishing process published after `generation`, read at once.

        None when the index cannot be read; the caller keeps what it has.
        """
        return self._read(
            lambda conn: self._read_changes(conn, generation), "waiting for the next publication"
        )

    def _read_changes(self, conn: sqlite3.Connection, generation: int) -> Changes:
        meta = dict(
            conn.execute(
                "SELECT key, value FROM meta WHERE key IN ('generation', 'shape', 'media', 'epoch')"
            ).fetchall()
        )
        newest = int(meta.get("generation", 0))
        # By the generation's index when few rows are newer; a new follower (0) reads every
        # row in one scan ("+" keeps SQLite off the index: a lookup per row costs more).
        column = "generation" if generation else "+generation"
        query = f"SELECT rel, state FROM files WHERE {column} > ?"
        rows = conn.execute(query, (generation,))
        # Row by row: a new worker never holds every blob of the index at once.
        states = {}
        with cycle_collection_paused():
            for rel, blob in rows:
                states[rel] = self._state(rel, blob)
        gone = conn.execute("SELECT rel FROM gone WHERE generation > ?", (generation,))
        removed = frozenset(rel for (rel,) in gone)
        shape = pickle.loads(bytes.fromhex(meta["shape"])) if "shape" in meta else None
        sizes = json.loads(meta["media"]) if "media" in meta else {}
        return Changes(meta.get("epoch", ""), newest, states, removed, sizes, shape)

    def validator(self, path: str) -> tuple[bytes, int] | None:
        """Return the body digest and Last-Modified last recorded for a document path."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                row = conn.execute(
                    "SELECT digest, moment FROM validators WHERE path = ?", (path,)
                ).fetchone()
            except sqlite3.Error as exc:
                self._give_up(exc)
                return None
        return (bytes(row[0]), int(row[1])) if row else None

    def record_validator(self, path: str, digest: bytes, moment: int) -> None:
        """Record the Last-Modified of a document's body, for other processes and restarts."""
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO validators VALUES (?, ?, ?)", (path, digest, moment)
            )
        )

    def document_key(self, path: str, spec: object) -> bytes:
        """Return what identifies a rendering of `spec` at `path`: equal keys, equal bytes.

        The key digests everything the rendering reads (the spec, every setting, the code):
        two specs that pickle differently only miss the cache, never hit a stale entry.
        Each article counts by the digest of its pickle, made once per article version:
        after an edit, every worker digests the edited article, not every item again.
        """
        fields = [
            (field.name, self._digested(getattr(spec, field.name)))
            for field in dataclasses.fields(spec)
            if field.name != "sections"
        ]
        described = _pickled_alike((path, fields, dict(spec.sections)))
        return hashlib.sha256(self._render_salt + described).digest()

    def _digested(self, value: object) -> object:
        """Return `value`, a tuple of articles replaced by their digests (see document_key)."""
        if not isinstance(value, tuple | list) or not value or not isinstance(value[0], Article):
            return value
        memo = self._article_digests
        if len(memo) > ARTICLE_DIGESTS_KEPT:  # old versions: forget them all, digest again
            memo.clear()
        digests = []
        for article in value:
            found = memo.get(id(article))
            if found is None or found[0] is not article:
                digest = hashlib.sha256(_pickled_alike(article)).digest()
                found = memo[id(article)] = (article, digest)
            digests.append(found[1])
        return tuple(digests)

    def document(self, path: str, key: bytes) -> tuple | None:
        """Return the rendering stored for `path` under `key`, as store_document took it."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                # Only the key first: after an edit, the stored rendering is the old one.
                found = conn.execute("SELECT key FROM documents WHERE path = ?", (path,))
                row = found.fetchone()
                if row is None or bytes(row[0]) != key:
                    return None
                found = conn.execute(
                    "SELECT rep FROM documents WHERE path = ? AND key = ?", (path, key)
                )
                row = found.fetchone()  # None if another process replaced it meanwhile
                if row is None:
                    return None
                parts = pickle.loads(row[0])
                self._document_keys[path] = key
                return parts
            except sqlite3.Error as exc:
                self._give_up(exc)
            except Exception:  # a damaged entry is only a miss
                return None
        return None

    def store_document(self, path: str, key: bytes, parts: tuple) -> None:
        """Keep the newest rendering of `path` (plain values), for restarts and other workers."""
        blob = pickle.dumps(parts, pickle.HIGHEST_PROTOCOL)
        self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?)", (path, key, blob)
            )
        )
        with self._lock:
            self._document_keys[path] = key

    def _publication_manifest(self, generation: int) -> str:
        """Describe publication `generation` for a restart to answer from ("": it cannot).

        Its subscription feeds are named by path with the key of their stored rendering
        (a worker still rendering an older generation may replace a stored rendering:
        the key tells), their max-age and expiry, when it goes stale (its next scheduled
        change) and what /healthz said of it; the render salt digest ties it to the
        settings and code that rendered it.
        """
        described = self.describe_publication() if self.describe_publication else None
        if described is None:
            return ""
        keys = dict(self._document_keys)
        feeds = described["feeds"]
        if any(path not in keys for path in feeds):
            return ""
        manifest = {
            **described,
            "generation": generation,
            "render": hashlib.sha256(self._render_salt).hexdigest(),
            "feeds": {path: [keys[path].hex(), *feeds[path]] for path in feeds},
        }
        return json.dumps(manifest, sort_keys=True)

    def stored_publication(
        self, files: bool = True, held: Mapping[str, str] | None = None
    ) -> StoredParts | None:
        """Return the last publication with what a restart needs to answer from it.

        None when there is none this code and these settings can answer from: no manifest,
        one of another generation or rendering, or a stored document replaced since.
        Only the documents are unpickled: files are described by their identity columns,
        read only if `files` (100,000 rows: a process trusting another's check skips them).
        `held`: path → key of renderings the caller holds already (a worker following
        every publication): those are left out of `documents`, not unpickled again.
        """
        return self._read(
            lambda conn: self._read_stored_publication(conn, files, held or {}),
            "not answering from it",
        )

    def _read_stored_publication(
        self, conn: sqlite3.Connection, with_files: bool, held: Mapping[str, str]
    ) -> StoredParts | None:
        keys = "('publication', 'generation', 'shape', 'media')"
        meta = dict(conn.execute(f"SELECT key, value FROM meta WHERE key IN {keys}"))
        manifest = json.loads(meta.get("publication") or "null")
        generation = int(meta.get("generation", 0))
        if not manifest or manifest["generation"] != generation or "shape" not in meta:
            return _not_answering("the last publication was not described for a restart")
        if manifest["render"] != hashlib.sha256(self._render_salt).hexdigest():
            return _not_answering("it was rendered with other settings or code")
        documents = {}
        for path, (key, *_) in manifest["feeds"].items():
            if held.get(path) == key:  # the same row as before, if it is still there
                query = "SELECT key FROM documents WHERE path = ?"
            else:
                query = "SELECT key, rep FROM documents WHERE path = ?"
            row = conn.execute(query, (path,)).fetchone()
            if row is None or bytes(row[0]).hex() != key:
                return _not_answering(f"{path} was stored again since")
            if len(row) > 1:
                documents[path] = pickle.loads(row[1])
        validators = {}
        for path in manifest["feeds"]:
            query = "SELECT digest, moment FROM validators WHERE path = ?"
            row = conn.execute(query, (path,)).fetchone()
            if row is None:
                return _not_answering(f"{path} has no Last-Modified recorded")
            validators[path] = (bytes(row[0]), int(row[1]))
        files = []
        if with_files:
            # As tuples SQLite makes, the racy test made there too: 100,000 rows are read
            # at a restart, and compared as a list (see identities.py).
            query = "SELECT rel, mtime_ns, size, inode, saved_at - mtime_ns / 1e9 < ? FROM files"
            files = conn.execute(query, (RACY_SECONDS,)).fetchall()
            files.sort()  # by path: in path order already, but for files saved since
        shape = pickle.loads(bytes.fromhex(meta["shape"]))
        sizes = json.loads(meta["media"]) if "media" in meta else {}
        return StoredParts(generation, manifest, shape, sizes, files, documents, validators)

    def release_memory(self) -> None:
        """Give back the connection's page cache: a worker that follows reads a little,
        once per publication, and keeps what it read as answers already."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("PRAGMA shrink_memory")

    def close(self) -> None:
        """Close this process's connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _read(self, work, otherwise: str):
        """Return work(conn) read in one transaction (one consistent publication), or None.

        A damaged entry is logged with what the caller does `otherwise`; the process
        that publishes rebuilds the index.
        """
        with self._lock:
            conn = self._connect()
            if conn is None:
                return None
            try:
                conn.execute("BEGIN")
                try:
                    return work(conn)
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._give_up(exc)
            except Exception as exc:
                log.warning("content index %s: %s; %s", self.path, exc, otherwise)
        return None

    @contextlib.contextmanager
    def batched(self):
        """Hold this thread's writes (renderings, validators) until the block's save, or end.

        A publication is then written in one transaction with its file states and its
        generation: a follower sees all of it or none, and an edit pays one commit, not a
        dozen. Other threads (requests rendering tag feeds) write as before.
        """
        self._batch = (threading.get_ident(), [])
        try:
            yield self
        finally:
            works = self._batch[1]
            self._batch = None
            if works:
                self._write(*works)

    def _write(self, *works, flush: bool = False) -> bool:
        """Run `works` in one write transaction and tell whether it was committed; in a
        batch (this thread's), hold them (True), unless `flush`: then they are written now
        after what the batch held."""
        batch = self._batch
        if batch is not None and batch[0] == threading.get_ident():
            if not flush:
                batch[1].extend(works)
                return True
            works = (*batch[1], *works)
            batch[1].clear()
        with self._lock:
            conn = self._connect()
            if conn is None:
                return False
            try:
                with _immediate(conn):
                    for work in works:
                        work(conn)
            except sqlite3.Error as exc:
                self._give_up(exc)
                return False
        return True

    def _connect(self) -> sqlite3.Connection | None:
        """Open the index once per process, rebuilding what cannot be trusted.

        An index file replaced under an open connection (another process rebuilt it, an
        admin deleted it) is opened again: a connection would keep reading the old one.
        """
        if self._conn is not None and not self._replaced():
            return self._conn
        if self._broken:
            return None
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        try:
            _make_private_folder(self.path.parent)
            self._conn = self._open()
        except (OSError, sqlite3.Error) as exc:
            damaged = isinstance(exc, sqlite3.DatabaseError) and not isinstance(
                exc, sqlite3.OperationalError
            )
            if damaged and self.path.is_file():
                self._rebuild(f"it cannot be opened ({exc})")
            else:
                self._give_up(exc)
        return self._conn

    def _replaced(self) -> bool:
        try:
            return os.stat(self.path).st_ino != self._inode
        except OSError:
            return True

    def _open(self) -> sqlite3.Connection:
        # Processes open the index one at a time (an flock beside it): switching a new
        # database to WAL and checking its identity must not interleave.
        with _exclusive(self.path.with_name(INDEX_NAME + ".lock")):
            conn = sqlite3.connect(
                self.path, timeout=5, check_same_thread=False, isolation_level=None
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                with _immediate(conn):
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    stored = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                    self._check_identity(conn, stored)
                    epoch = conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
                self.epoch = epoch[0] if epoch else ""
                self._inode = os.stat(self.path).st_ino
            except BaseException:
                conn.close()
                raise
        return conn

    def _check_identity(self, conn: sqlite3.Connection, stored: Mapping[str, str]) -> None:
        """Empty what another parser, settings or content folder wrote."""
        reason = self._mismatch(stored)
        if reason is None:
            return
        same_folder = stored.get("content_dir") == self._content_dir
        same_format = stored.get("format") == self._identity["format"]
        if stored:
            log.info("content index %s: %s; re-reading every file", self.path, reason)
        if not same_format:  # tables of another shape: made again
            for table in ("files", "gone", "validators", "documents", "bodies"):
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA:
                conn.execute(statement)
        conn.execute("DELETE FROM files")
        conn.execute("DELETE FROM gone")
        conn.execute("DELETE FROM documents")
        conn.execute("DELETE FROM bodies")
        conn.execute("DELETE FROM meta")
        if not same_folder:
            conn.execute("DELETE FROM validators")
        # A new epoch tells following processes to drop everything they took from before.
        epoch = ("epoch", os.urandom(8).hex())
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [*self._identity.items(), ("content_dir", self._content_dir), epoch],
        )

    def _mismatch(self, stored: Mapping[str, str]) -> str | None:
        if not stored:
            return "new index"
        if stored.get("content_dir") != self._content_dir:
            return f"it belongs to another content folder ({stored.get('content_dir')!r})"
        for key, value in self._identity.items():
            if stored.get(key) != value:
                return f"it was written by another {key} version"
        return None

    def _rebuild(self, reason: str) -> None:
        """Move a damaged index aside and start a new one (called with the lock held)."""
        log.warning("content index %s is not usable: %s; rebuilding it", self.path, reason)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        try:
            os.replace(self.path, self.path.with_name(INDEX_NAME + ".corrupt"))
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            self._conn = self._open()
        except (OSError, sqlite3.Error) as exc:
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        """Stop using the index in this process; serving goes on without it."""
        if not self._broken:
            log.warning("content index %s: %s; going on without it", self.path, exc)
        self._broken = True
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None


def _not_answering(reason: str) -> None:
    """Say why a restart does not answer from the stored publication (it loads first)."""
    log.info("not answering from the stored publication: %s", reason)


def _state_blob(state: FileState, bodies: list[tuple[str, Body]]) -> bytes:
    """Return a file state's stored form (see storedform), its article's body in `bodies`.

    The body's bytes go to their own table (rows made of `bodies`: those in memory);
    a body already kept in the index is named by its digest only. A state a reader
    process sent holds its stored form already: not pickled again.
    """
    blob = getattr(state, "stored", None)
    if blob is None:
        blob = stored_form(state)
    article = state.result
    if isinstance(article, Article) and article.body.packed is not None:
        bodies.append((state.rel, article.body))
    return blob


def _drop_stored_forms(states: Iterable[FileState]) -> None:
    """Let the states that came with their stored form (loader.TakenState) drop it."""
    for state in states:
        if getattr(state, "stored", None) is not None:
            object.__setattr__(state, "stored", None)  # a cache, not one of its values


def _has_rows(conn: sqlite3.Connection, table: str) -> bool:
    """Tell whether `table` (one of the index's own) holds any row."""
    return conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0] == 1


def _body_of(state: FileState) -> bytes | None:
    """Return the digest of the body of a file state's article (None: it has none)."""
    return state.result.body.digest if isinstance(state.result, Article) else None


def _pickled_alike(value: object) -> bytes:
    """Pickle `value` so that equal values give equal bytes (for digests), bodies by name."""
    buffer = io.BytesIO()
    pickler = BodiesByName(buffer, pickle.HIGHEST_PROTOCOL)  # wherever a body is kept
    pickler.fast = True  # no memo: equal values give equal bytes, shared or not
    pickler.dump(value)
    return buffer.getvalue()


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection):
    """Run a write transaction that takes the write lock at once, so it never deadlocks."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def _exclusive(path: Path):
    """Hold an flock on `path` (created if missing) for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _forget_connection(ref: weakref.ref) -> None:
    """In a forked child, drop the parent's connection without touching its file."""
    index = ref()
    if index is not None:
        index._lock = threading.Lock()
        index._orphans.append(index._conn)
        index._conn = None


def _make_private_folder(folder: Path) -> None:
    """Create the state folder for this user; refuse one another user could write into.

    The index holds pickled data: whoever can write it can make feedsvc run code, so a
    folder (or a parent, such as a pre-made /tmp/feedsvc-<uid>) that belongs to someone
    else, or that others may write without the sticky bit of /tmp, is never used.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in (folder, *folder.parents):
        info = path.stat()
        if info.st_uid not in (os.getuid(), 0):
            raise PermissionError(f"{path} belongs to another user")
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise PermissionError(f"{path} may be written by other users")
