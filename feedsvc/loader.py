"""Read content files from disk and assemble them into a Site, one bad file costing only itself.

Reading is per file (`read_content_file`), so a store can re-read just what changed;
assembling (`assemble_site`) turns the current set of file states into a snapshot.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from multiprocessing.connection import wait
from pathlib import Path
from stat import S_ISREG
from sys import intern

from . import editorial, slugs
from .addresses import RESERVED_SLUGS
from .crosscheck import drop_duplicate_ids, id_problems, shared_slugs
from .images import ImageFactsCache
from .isolate import run_isolated
from .limits import needs_isolation
from .media import MEDIA_DIR, media_sizes, with_media_facts
from .models import Article, ContentError, Section, Site, forget_shared
from .parsing import (
    SLUG,
    ParseContext,
    parse_article,
    parse_section_index,
    quick_article,
    quick_front_fields,
)
from .scratch import owned_folder
from .settings import Settings
from .storedform import stored_form

log = logging.getLogger(__name__)

# Below this many files per CPU, worker processes cost more than they save.
PARALLEL_MIN_FILES = 1000
SECTION_INDEX = "_index.md"
MAX_FILE_BYTES = 2 * 1024 * 1024
# The private folders a first start's full read writes what it read to (see BackgroundRead).
READ_BEHIND_PREFIX = "feedsvc-read-behind-"
# How long a reader process told to stop (SIGTERM) is waited for before it is killed.
STOP_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class FileState:
    """What one content file holds now: its parsed result and/or the problem it has.

    After a failed re-read, `result` is still the last good version of the file, so a
    half-written save never takes a published article away.
    """

    rel: str
    # The file's modification time (ns), size and inode, packed by fingerprint_of: one
    # number costs 100 bytes less than a tuple of three, 100,000 times over.
    fingerprint: int
    mtime: float
    result: Article | Section | None = None
    problem: ContentError | None = None
    digest: bytes = b""

    def __reduce__(self):
        # Plain arguments: quicker to unpickle, 100,000 times at a start, than slots' state.
        values = (self.rel, self.fingerprint, self.mtime, self.result, self.problem, self.digest)
        return (_file_state, values)


def _file_state(rel, fingerprint, mtime, result, problem, digest) -> FileState:
    """Make a FileState again (unpickling), its time one object with its article's."""
    if isinstance(result, Article) and result.file_mtime == mtime:
        mtime = result.file_mtime  # a float apiece is 2.4 MB at 100,000 files
    return FileState(rel, fingerprint, mtime, result, problem, digest)


class TakenState(FileState):
    """A file state parsed in a reader process, holding its stored form for the index.

    `stored` (see storedform) is recorded as it is, then dropped (None): the index does
    not pickle the state again. Equal to a FileState of equal values, as its copies are.
    """

    __slots__ = ("stored",)

    def __reduce__(self):
        return (_taken_state, (FileState.__reduce__(self)[1], getattr(self, "stored", None)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileState):
            return NotImplemented
        return FileState.__reduce__(self)[1] == FileState.__reduce__(other)[1]

    __hash__ = FileState.__hash__


_U64 = (1 << 64) - 1


def fingerprint_of(mtime_ns: int, size: int, inode: int) -> int:
    """Return what identifies a file's content as one number: a change of any part changes it."""
    return (inode << 128) | (size << 64) | (mtime_ns & _U64)  # a time before 1970 is negative


def fingerprint_parts(fingerprint: int) -> tuple[int, int, int]:
    """Return the modification time (ns), size and inode that fingerprint_of packed."""
    mtime_ns = fingerprint & _U64
    if mtime_ns >> 63:
        mtime_ns -= 1 << 64
    return mtime_ns, (fingerprint >> 64) & _U64, fingerprint >> 128


def stat_fingerprint(stat: os.stat_result) -> int:
    """Return the fingerprint of a file as `stat` found it."""
    return fingerprint_of(stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _taken_state(values: tuple, stored: bytes | None) -> TakenState:
    """Return the TakenState of a FileState's values and its stored form."""
    state = TakenState(*values)
    object.__setattr__(state, "stored", stored)  # a cache beside the frozen fields
    return state


@dataclass(frozen=True)
class Tree:
    """The shape of the content folder: its section folders and their content files."""

    sections: Mapping[str, float]  # slug -> folder modification time
    files: tuple[str, ...]  # paths relative to the content folder, e.g. "culture/a.md"
    problems: tuple[ContentError, ...]


def load_site(settings: Settings, progress: Callable[[], None] | None = None) -> Site:
    """Read every section and article under the content folder into a new snapshot.

    `progress`, when given, is called once per content file read (for progress bars).
    """
    root = settings.content_dir
    tree = scan_tree(root)
    sizes = media_sizes(root)
    states = read_content_files(root, tree.files, settings, sizes, progress=progress)
    return assemble_site(tree, states, sizes, settings)


def read_content_files(
    root: Path,
    rels: Iterable[str],
    settings: Settings,
    sizes: Mapping[str, int],
    previous: Mapping[str, FileState] | None = None,
    progress: Callable[[], None] | None = None,
    per_process: int | None = None,
) -> dict[str, FileState]:
    """Read many content files; a large tree is parsed by one process per CPU.

    A failed read keeps the previous good result of that file, as read_content_file does.
    `per_process`: the fewest files per CPU worth a worker process (PARALLEL_MIN_FILES).
    """
    rels = list(rels)
    previous = previous or {}
    chunks = _chunks(rels, per_process)
    states = None
    if len(chunks) > 1:
        states = _read_in_processes(root, chunks, settings, sizes, progress)
    if states is None:
        context = parse_context(settings)
        states = {}
        with cycle_collection_paused():
            for rel in rels:
                states[rel] = read_content_file(root, rel, context, sizes, previous.get(rel))
                if progress is not None:
                    progress()
        return states
    for rel, state in states.items():
        if state.result is None and rel in previous:
            states[rel] = replace(state, result=previous[rel].result)
    return states


def read_front_matters(
    root: Path, rels: Iterable[str], settings: Settings, sizes: Mapping[str, int]
) -> dict[str, FileState]:
    """Read many content files' front matter only (a first look): their articles' bodies
    are empty, unchecked and unrendered, and no media file is looked at.

    About a third of a full read's CPU per file: what listings and feed selection need.
    """
    rels = list(rels)
    chunks = _chunks(rels)
    states = None
    if len(chunks) > 1:
        states = _read_in_processes(root, chunks, settings, sizes, None, body=False)
    if states is None:
        context = parse_context(settings)
        with cycle_collection_paused():
            states = {rel: look_content_file(root, rel, context, sizes) for rel in rels}
    return states


class BackgroundRead:
    """Every file read in full by worker processes at a low priority, kept until asked for.

    A first start's full read (see firstlook.py): it starts as soon as a first look has read
    every front matter, and uses the CPU the first look leaves idle (a niced process gives
    way to the first look; see hurry). What they read waits, pickled in a private temporary
    folder (not in their memory, nor in the pipe), until result() takes it: taking it up
    costs the serving process nothing before then.
    """

    NICENESS = 10
    BATCH_FILES = 2000  # files read, then written out, at a time
    CLAIM_FILES = 100  # files read between two looks at those read elsewhere (claim)

    def __init__(self, root: Path, rels: Iterable[str], settings: Settings, sizes):
        self.rels = list(rels)
        self.started_at = time.time()  # before any file is read: as an index entry's time
        self._lock = threading.Lock()
        self._taken = False
        self._workers: list[tuple] = []
        # Ours only (0700); one a killed process left is removed by the next start.
        self._folder = owned_folder(READ_BEHIND_PREFIX)
        self._claims = f"{self._folder}/claimed"  # files read elsewhere, one a line
        count = min(os.cpu_count() or 1, max(1, len(self.rels) // PARALLEL_MIN_FILES))
        context = multiprocessing.get_context("fork")
        try:
            for n in range(count):
                reader, writer = context.Pipe(duplex=False)
                folder = f"{self._folder}/{n}-"
                args = (root, self.rels[n::count], settings, sizes, folder, self._claims)
                args += (reader, writer)
                process = context.Process(target=_read_behind, args=args, daemon=True)
                process.start()  # AssertionError where this process may not start any
                writer.close()
                self._workers.append((process, reader))
        except BaseException:
            self.close()
            raise

    def result(self) -> dict[str, FileState] | None:
        """Wait for every file's state; None if a process failed (read them as usual)."""
        with self._lock:
            if self._taken:
                return None
            self._taken = True
            states: dict[str, FileState] = {}
            try:
                # Each batch taken up as soon as it is written: while the others are read.
                readers = [reader for _, reader in self._workers]
                while readers:
                    for reader in wait(readers):
                        name = reader.recv()
                        if name is None:  # that process is done
                            readers.remove(reader)
                            continue
                        with open(name, "rb") as batch:
                            for state in pickle.load(batch):
                                states[state.rel] = state
                        os.unlink(name)
            except (EOFError, OSError, pickle.UnpicklingError) as exc:
                log.warning("the full read behind the first look failed (%s); reading again", exc)
                states = None
            self._stop()
            return states

    def claim(self, rels: Iterable[str]) -> None:
        """Say that `rels` are read in full elsewhere (on demand): the processes skip them
        unless already read, and result() does not give them."""
        with self._lock:
            if self._taken:
                return
            with contextlib.suppress(OSError), open(self._claims, "a", encoding="utf-8") as out:
                out.write("".join(f"{rel}\n" for rel in rels))

    def hurry(self) -> None:
        """Give the processes the usual priority again, where this process may (root may):
        once the first look answers, nothing is more urgent than the live snapshot."""
        for process, _ in self._workers:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, process.pid, 0)

    def close(self) -> None:
        """Stop the processes if their result is not wanted (the store closed)."""
        with self._lock:
            self._taken = True
            self._stop()

    def _stop(self) -> None:
        for process, reader in self._workers:
            if process.is_alive():
                process.terminate()
            process.join(STOP_SECONDS)
            if process.is_alive():  # not stopping: never waited for longer
                process.kill()
                process.join()
            reader.close()
        self._workers = []
        shutil.rmtree(self._folder, ignore_errors=True)


def _stoppable_by_signals() -> None:
    """Let SIGTERM and SIGINT stop a reader process forked from a server's worker.

    The fork inherits the server's handlers (granian's), which only ask a serving loop to
    end: a reader has none, so it read on after being told to stop (minutes, at 100,000
    files, taking the CPU from the next start) while its worker waited for it to exit.
    """
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_DFL)


def _read_behind(root, rels, settings, sizes, prefix: str, claims: str, reader, writer) -> None:
    """A BackgroundRead's process: read its files at a low priority, a batch at a time
    written out to a file named `prefix`… whose name it sends; None once done. Files
    claimed (read elsewhere, listed in the file `claims`) are skipped."""
    reader.close()
    _stoppable_by_signals()
    os.nice(BackgroundRead.NICENESS)
    claimed = _Claims(claims)
    step = BackgroundRead.CLAIM_FILES
    with contextlib.suppress(BrokenPipeError):  # no longer wanted: the reader is gone
        for start in range(0, len(rels), BackgroundRead.BATCH_FILES):
            batch = rels[start : start + BackgroundRead.BATCH_FILES]
            states = []
            for at in range(0, len(batch), step):
                unclaimed = claimed.without(batch[at : at + step])
                states += _read_chunk(root, unclaimed, settings, sizes)
            name = f"{prefix}{start}.pickle"
            with open(name, "wb") as out:
                pickle.dump(states, out, protocol=pickle.HIGHEST_PROTOCOL)
            writer.send(name)
        writer.send(None)
    writer.close()


class _Claims:
    """The files a BackgroundRead's process need not read, as listed so far (see claim)."""

    def __init__(self, path: str):
        self.path = path
        self.read_to = 0
        self.rels: set[str] = set()

    def without(self, rels: list[str]) -> list[str]:
        """Return `rels` but those claimed, taking up the lines added since the last look."""
        try:
            with open(self.path, "rb") as claims:
                claims.seek(self.read_to)
                added = claims.read()
        except OSError:  # none claimed yet
            added = b""
        complete = added[: added.rfind(b"\n") + 1]  # a line being written waits
        self.read_to += len(complete)
        self.rels.update(complete.decode("utf-8").splitlines())
        return [rel for rel in rels if rel not in self.rels]


def _chunks(rels: list[str], per_process: int | None = None) -> list[list[str]]:
    workers = min(os.cpu_count() or 1, len(rels) // (per_process or PARALLEL_MIN_FILES))
    if workers < 2:
        return [rels]
    count = workers * 4  # more chunks than workers: even load, smoother progress
    return [rels[i::count] for i in range(count)]


def _read_in_processes(
    root, chunks, settings, sizes, progress, body: bool = True
) -> dict[str, FileState] | None:
    """Parse chunks in worker processes; None where this process may not start any."""
    workers = min(os.cpu_count() or 1, len(chunks))
    states: dict[str, FileState] = {}
    try:
        # fork: no re-import of the server's main module; the children only parse and exit.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_stoppable_by_signals
        ) as pool:
            jobs = [
                pool.submit(_read_chunk, root, chunk, settings, sizes, body) for chunk in chunks
            ]
            with cycle_collection_paused():  # 100,000 states kept: see its docstring
                for job in as_completed(jobs):
                    for state in job.result():
                        if not body:
                            state = _looked(root, state)
                        states[state.rel] = state
                        if progress is not None:
                            progress()
    except (OSError, AssertionError, BrokenProcessPool) as exc:  # e.g. a daemonic worker
        log.info("parsing in one process: cannot start worker processes (%s)", exc)
        return None
    return states


def _read_chunk(root, rels, settings, sizes, body: bool = True) -> list:
    """Read files in a reader process; each state comes with its stored form for the index.

    They travel as one pickle (names shared, quick to take in); the stored forms, made
    here rather than in the process recording them, are bytes within it (TakenState).
    """
    context = parse_context(settings)
    with cycle_collection_paused():
        if not body:  # a first look: plain tuples where it could (see _look)
            zones: dict = {}
            return [_look(root, rel, context, sizes, zones) for rel in rels]
        states = [read_content_file(root, rel, context, sizes) for rel in rels]
        return [_taken_state(FileState.__reduce__(s)[1], stored_form(s)) for s in states]


def forget_recent_values() -> None:
    """Forget the values kept to be shared among the files read last (slugs, names).

    Made while a full read allocated and freed everything else, they lie scattered among
    its memory pages, and keep those from going back to the system once the read is
    dropped (at 100,000 articles, some 100 MB held by a few thousand small objects).
    """
    slugs.slugify.cache_clear()
    slugs.name_slug.cache_clear()
    forget_shared()


@contextlib.contextmanager
def cycle_collection_paused():
    """Pause Python's cycle collector while many objects are made and kept (file states).

    Each collection walks every object kept so far: over 100,000 states that is a quarter
    of the time spent making them. Nothing made there is garbage with cycles worth waiting
    for; the collector runs again (if it ran before) when the block ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_context(settings: Settings) -> ParseContext:
    """Return what parsing needs to know about the site."""
    return ParseContext(timezone=settings.timezone, default_author=settings.site_author)


def scan_tree(root: Path) -> Tree:
    """List section folders and their .md files; costs one directory listing per section."""
    if not root.is_dir():
        problem = ContentError(str(root), None, "content folder does not exist")
        return Tree({}, (), (problem,))
    sections: dict[str, float] = {}
    files: list[str] = []
    problems: list[ContentError] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith((".", "_")) or entry.name == MEDIA_DIR:
            continue
        try:
            if not entry.is_dir():
                continue
            problem = _section_folder_problem(root, entry.name)
            if problem is not None:
                problems.append(problem)
                continue
            sections[entry.name] = entry.stat().st_mtime
            names = os.listdir(entry.path)
        except OSError as exc:
            problems.append(ContentError(entry.path, None, f"cannot read folder: {exc.strerror}"))
            continue
        names.sort()
        prefix = f"{entry.name}/"
        files += [prefix + name for name in names if _is_content_name(name)]
    return Tree(sections, tuple(files), tuple(problems))


def update_tree(
    root: Path, tree: Tree, changed: Iterable[str]
) -> tuple[Tree, set[str], set[str]] | None:
    """Return `tree` with only the changed paths looked at again, and its files now there
    and gone among them; None where only a full scan_tree will do (a section folder made,
    removed or renamed, or an unknown top-level entry).

    A file of a known section costs a stat, and its folder another (its time shows deletions).
    """
    sections: dict[str, float] | None = None
    files: tuple[str, ...] | list[str] = tree.files  # copied only if a file comes or goes
    present: set[str] = set()
    gone: set[str] = set()
    for rel in changed:
        top, _, rest = rel.partition("/")
        if top == MEDIA_DIR or (top.startswith((".", "_")) and top not in (".", "..")):
            continue  # never a section (scan_tree skips them)
        if not rest or top not in tree.sections:
            return None
        if "/" in rest:
            continue  # deeper than a section's own files: not content
        if sections is None:
            sections = dict(tree.sections)
        try:
            sections[top] = os.stat(root / top).st_mtime
        except OSError:
            return None
        if not _is_content_name(rest):
            continue
        index = bisect_left(files, (top, rest), key=_tree_order)
        listed = index < len(files) and files[index] == rel
        exists = os.path.lexists(root / rel)
        (present if exists else gone).add(rel)
        if exists != listed:
            if isinstance(files, tuple):
                files = list(files)
            if exists:
                files.insert(index, rel)
            else:
                del files[index]
    if sections is None:
        return tree, present, gone
    return Tree(sections, tuple(files), tree.problems), present, gone


def recorded_tree(shape: tuple, files: Iterable[str]) -> Tree:
    """Return the folder's shape as the index recorded it, (sections, problems), with
    `files` listed in the order scan_tree lists them."""
    sections, problems = shape
    return Tree(sections, tuple(sorted(files, key=_tree_order)), problems)


def _tree_order(rel: str) -> tuple[str, str]:
    """Order files as scan_tree lists them: by section folder, then by name."""
    section, _, name = rel.partition("/")
    return section, name


def _is_content_name(name: str) -> bool:
    return name.endswith(".md") and not name.startswith(".")


def _section_folder_problem(root: Path, name: str) -> ContentError | None:
    path = root / name
    if not SLUG.match(name):
        return ContentError(str(path), None, "section folder name must match [a-z0-9-]+")
    if name in RESERVED_SLUGS:
        reason = f"section name {name!r} is reserved for a fixed URL of the site; rename it"
        return ContentError(str(path), None, reason)
    if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
        reason = "section folder is a link to outside the content folder"
        return ContentError(str(path), None, reason)
    return None


def read_content_file(
    root: Path,
    rel: str,
    context: ParseContext,
    sizes: Mapping[str, int],
    previous: FileState | None = None,
    body: bool = True,
) -> FileState:
    """Read and parse one content file; a failure keeps `previous`'s good result.

    `sizes` are the media files' sizes, for the lead image's enclosure length.
    `body=False`: the front matter only (see read_front_matters).
    """
    path = root / rel
    section, name = rel.split("/", 1)
    try:
        stat = path.stat()
    except OSError as exc:
        stat = None
        problem = ContentError(str(path), None, f"cannot read file: {exc.strerror}")
    fingerprint = stat_fingerprint(stat) if stat else 0
    mtime = stat.st_mtime if stat else 0.0
    digest = b""
    if stat is not None:
        try:
            data = _read_bytes(path, root, stat.st_size)
            digest = hashlib.sha256(rel.encode() + b"\0" + data).digest()
            text = _decode(path, data)
            if not body:
                result = _parse_text(text, str(path), section, name, context, body=False)
                return FileState(rel, fingerprint, mtime, result, None, digest)
            result = _parse(text, str(path), section, name, context)
            if isinstance(result, Article):
                result = with_media_facts(result, sizes, root, context.images.read, mtime)
            return FileState(rel, fingerprint, mtime, result, None, digest)
        except ContentError as error:
            problem = error
    kept = previous.result if previous is not None else None
    return FileState(rel, fingerprint, mtime, kept, problem, digest)


# A first look reads this much of a file, where front matter nearly always ends.
LOOK_BYTES = 4096


def look_content_file(
    root: Path, rel: str, context: ParseContext, sizes: Mapping[str, int]
) -> FileState:
    """Read one article's front matter for a first look, from the start of its file only.

    The fields that select feed items, read without YAML (see parsing.quick_front_fields)
    from the first LOOK_BYTES; the state has no digest. Anything unusual (a link, a section
    index, a large file, front matter running on or not simply written, a draft, a problem)
    is read as read_content_file(body=False) reads it.
    """
    return _looked(root, _look(root, rel, context, sizes, {}))


def _look(root: Path, rel: str, context: ParseContext, sizes: Mapping[str, int], zones: dict):
    """Return a file's first look as a FileState, or, where read quickly, as a plain tuple
    (rel, fingerprint, mtime, title, date, updated, id, tags, authors): what a worker sends back
    quickest. `zones`: one time zone object per offset, so a chunk's results pickle them once.
    """
    path = f"{root}/{rel}"
    name = rel.split("/", 1)[1]
    fields = None
    try:
        stat = os.lstat(path)
        if name != SECTION_INDEX and S_ISREG(stat.st_mode) and stat.st_size <= MAX_FILE_BYTES:
            with open(path, "rb", buffering=0) as file:
                head = file.read(LOOK_BYTES)
            if len(head) < stat.st_size:
                head = head[: head.rindex(b"\n") + 1]  # no character cut in two
            if SLUG.match(name[: -len(".md")]):
                fields = quick_front_fields(head.decode("utf-8"), context)
    except (OSError, ValueError):
        fields = None
    if fields is None or context.preview:
        return read_content_file(root, rel, context, sizes, body=False)
    title, date, updated, explicit_id, tags, authors = fields
    # By offset: fixed_offset gives one kind of zone per offset.
    date = date.replace(tzinfo=zones.setdefault(date.utcoffset(), date.tzinfo))
    updated = updated.replace(tzinfo=zones.setdefault(updated.utcoffset(), updated.tzinfo))
    fingerprint = stat_fingerprint(stat)
    return (rel, fingerprint, stat.st_mtime, title, date, updated, explicit_id, tags, authors)


def _looked(root: Path, looked) -> FileState:
    """Return the FileState of a first look _look made (from a tuple, or as it is)."""
    if isinstance(looked, FileState):
        return looked
    rel, fingerprint, mtime, title, date, updated, explicit_id, tags, authors = looked
    section, name = rel.split("/", 1)
    tags, authors = tuple(map(intern, tags)), tuple(map(intern, authors))
    article = quick_article(
        intern(section),
        name[: -len(".md")],
        f"{root}/{rel}",
        title,
        date,
        updated,
        explicit_id,
        tags,
        authors,
    )
    return FileState(rel, fingerprint, mtime, article)


def _parse(text: str, path: str, section: str, name: str, context: ParseContext):
    """Parse here, or, for a file no normal article resembles, in a child that may fail."""
    if needs_isolation(text):
        return run_isolated(_parse_text, text, path, section, name, context, path=path)
    return _parse_text(text, path, section, name, context)


def _parse_text(
    text: str, path: str, section: str, name: str, context: ParseContext, body: bool = True
):
    if name == SECTION_INDEX:
        return parse_section_index(text, path, section)
    return parse_article(text, path, section, name[: -len(".md")], context, body)


def _read_bytes(path: Path, root: Path, size: int) -> bytes:
    """Read a content file, refusing what the site should never publish."""
    try:
        if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
            raise ContentError(str(path), None, "file is a link to outside the content folder")
        if size > MAX_FILE_BYTES:
            raise ContentError(str(path), None, f"file is larger than {MAX_FILE_BYTES} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise ContentError(str(path), None, f"cannot read file: {exc.strerror}") from None


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ContentError(str(path), line, "file is not valid UTF-8 text") from None


def assemble_site(
    tree: Tree,
    states: Mapping[str, FileState],
    sizes: Mapping[str, int],
    settings: Settings,
) -> Site:
    """Build the snapshot from the current file states; pure apart from its inputs."""
    sections = {
        slug: Section(slug=slug, title=slug.replace("-", " ").title(), file_mtime=mtime)
        for slug, mtime in tree.sections.items()
    }
    articles: list[Article] = []
    problems = list(tree.problems)
    files = 0
    for rel in sorted(states):
        state = states[rel]
        files ^= file_digest(state)
        if state.problem is not None:
            problems.append(state.problem)
        elif isinstance(state.result, Article):  # published, with what is worth fixing
            problems += state.result.warnings + state.result.media_warnings
        if isinstance(state.result, Section) and state.result.slug in sections:
            folder_mtime = sections[state.result.slug].file_mtime
            sections[state.result.slug] = replace(
                state.result, file_mtime=max(folder_mtime, state.mtime)
            )
        elif isinstance(state.result, Article) and state.result.section in sections:
            articles.append(state.result)
    version = site_version(files, media_digest(sizes), sections)
    articles = editorial.with_original_paths(articles, sections)
    articles = drop_duplicate_ids(articles, problems, settings)
    problems += id_problems(articles)
    problems += shared_slugs(articles)
    site = Site(sections, tuple(articles), tuple(problems), version)
    moves = editorial.alias_problems(site, RESERVED_SLUGS)
    return replace(site, problems=site.problems + tuple(moves)) if moves else site


def file_digest(state: FileState) -> int:
    """Return a file's share of the site version: its digest (path and bytes) as a number."""
    return int.from_bytes(state.digest, "big")


def media_digest(sizes: Mapping[str, int]) -> bytes:
    """Return the digest of the media folder's listing: names and sizes."""
    digest = hashlib.sha256()
    for site_path, size in sorted(sizes.items()):
        digest.update(f"{site_path}\0{size}\0".encode())
    return digest.digest()


def site_version(files: int, media: bytes, sections: Iterable[str]) -> str:
    """Return the site version: 16 hex digits that change with any file, media or section.

    `files` combines the files' digests with XOR, so one changed file updates it in O(1);
    each digest covers its path, so two files never cancel out.
    """
    digest = hashlib.sha256(files.to_bytes(32, "big") + media)
    digest.update("\0".join(sections).encode())  # a new, empty section shows too
    return digest.hexdigest()[:16]


def with_new_media(
    state: FileState,
    sizes: Mapping[str, int],
    root: Path | None = None,
    images: ImageFactsCache | None = None,
) -> FileState:
    """Return `state` with its article's lead-image facts updated after a media change.

    Give one `images` cache to all the states updated after one change.
    """
    if not isinstance(state.result, Article):
        return state
    read_facts = (images or ImageFactsCache()).read
    article = with_media_facts(state.result, sizes, root, read_facts)
    return state if article is state.result else replace(state, result=article)
