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
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

from . import editorial
from .addresses import RESERVED_SLUGS
from .crosscheck import drop_duplicate_ids, id_problems, shared_slugs
from .images import ImageFactsCache
from .isolate import run_isolated
from .limits import needs_isolation
from .media import MEDIA_DIR, media_sizes, with_media_facts
from .models import Article, ContentError, Section, Site
from .parsing import SLUG, ParseContext, parse_article, parse_section_index
from .settings import Settings
from .storedform import stored_form

log = logging.getLogger(__name__)

# Below this many files per CPU, worker processes cost more than they save.
PARALLEL_MIN_FILES = 1000
SECTION_INDEX = "_index.md"
MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileState:
    """What one content file holds now: its parsed result and/or the problem it has.

    After a failed re-read, `result` is still the last good version of the file, so a
    half-written save never takes a published article away.
    """

    rel: str
    fingerprint: tuple[int, int, int]
    mtime: float
    result: Article | Section | None = None
    problem: ContentError | None = None
    digest: bytes = b""

    def __reduce__(self):
        # Plain arguments: quicker to unpickle, 100,000 times at a start, than slots' state.
        values = (self.rel, self.fingerprint, self.mtime, self.result, self.problem, self.digest)
        return (FileState, values)


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
) -> dict[str, FileState]:
    """Read many content files; a large tree is parsed by one process per CPU.

    A failed read keeps the previous good result of that file, as read_content_file does.
    """
    rels = list(rels)
    previous = previous or {}
    chunks = _chunks(rels)
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


def _chunks(rels: list[str]) -> list[list[str]]:
    workers = min(os.cpu_count() or 1, len(rels) // PARALLEL_MIN_FILES)
    if workers < 2:
        return [rels]
    count = workers * 4  # more chunks than workers: even load, smoother progress
    return [rels[i::count] for i in range(count)]


def _read_in_processes(root, chunks, settings, sizes, progress) -> dict[str, FileState] | None:
    """Parse chunks in worker processes; None where this process may not start any."""
    workers = min(os.cpu_count() or 1, len(chunks))
    states: dict[str, FileState] = {}
    try:
        # fork: no re-import of the server's main module; the children only parse and exit.
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = [pool.submit(_read_chunk, root, chunk, settings, sizes) for chunk in chunks]
            with cycle_collection_paused():  # 100,000 states kept: see its docstring
                for job in as_completed(jobs):
                    for state in job.result():
                        states[state.rel] = state
                        if progress is not None:
                            progress()
    except (OSError, AssertionError, BrokenProcessPool) as exc:  # e.g. a daemonic worker
        log.info("parsing in one process: cannot start worker processes (%s)", exc)
        return None
    return states


def _read_chunk(root, rels, settings, sizes) -> list[TakenState]:
    """Read files in a reader process; each state comes with its stored form for the index.

    They travel as one pickle (names shared, quick to take in); the stored forms, made
    here rather than in the process recording them, are bytes within it.
    """
    context = parse_context(settings)
    with cycle_collection_paused():
        states = [read_content_file(root, rel, context, sizes) for rel in rels]
        return [_taken_state(FileState.__reduce__(s)[1], stored_form(s)) for s in states]


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
            names = sorted(e.name for e in os.scandir(entry.path))
        except OSError as exc:
            problems.append(ContentError(entry.path, None, f"cannot read folder: {exc.strerror}"))
            continue
        files.extend(f"{entry.name}/{name}" for name in names if _is_content_name(name))
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
) -> FileState:
    """Read and parse one content file; a failure keeps `previous`'s good result.

    `sizes` are the media files' sizes, for the lead image's enclosure length.
    """
    path = root / rel
    section, name = rel.split("/", 1)
    try:
        stat = path.stat()
    except OSError as exc:
        stat = None
        problem = ContentError(str(path), None, f"cannot read file: {exc.strerror}")
    fingerprint = (stat.st_mtime_ns, stat.st_size, stat.st_ino) if stat else (0, 0, 0)
    mtime = stat.st_mtime if stat else 0.0
    digest = b""
    if stat is not None:
        try:
            data = _read_bytes(path, root, stat.st_size)
            digest = hashlib.sha256(rel.encode() + b"\0" + data).digest()
            text = _decode(path, data)
            result = _parse(text, str(path), section, name, context)
            if isinstance(result, Article):
                result = replace(result, file_mtime=mtime)
                result = with_media_facts(result, sizes, root, context.images.read)
            return FileState(rel, fingerprint, mtime, result, None, digest)
        except ContentError as error:
            problem = error
    kept = previous.result if previous is not None else None
    return FileState(rel, fingerprint, mtime, kept, problem, digest)


def _parse(text: str, path: str, section: str, name: str, context: ParseContext):
    """Parse here, or, for a file no normal article resembles, in a child that may fail."""
    if needs_isolation(text):
        return run_isolated(_parse_text, text, path, section, name, context, path=path)
    return _parse_text(text, path, section, name, context)


def _parse_text(text: str, path: str, section: str, name: str, context: ParseContext):
    if name == SECTION_INDEX:
        return parse_section_index(text, path, section)
    return parse_article(text, path, section, name[: -len(".md")], context)


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
