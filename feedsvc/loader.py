"""Read the content folder from disk into a Site snapshot, one bad file costing only itself."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .models import Article, ContentError, Image, Section, Site
from .parsing import SLUG, ParseContext, parse_article, parse_section_index
from .settings import Settings

log = logging.getLogger(__name__)

MEDIA_DIR = "media"
SECTION_INDEX = "_index.md"
MAX_FILE_BYTES = 2 * 1024 * 1024
# Section slugs that would shadow a fixed URL of the site.
RESERVED_SLUGS = frozenset({"feed", "feeds", "media", "healthz", "static", "tags", "authors"})


def load_site(settings: Settings, progress: Callable[[], None] | None = None) -> Site:
    """Read every section and article under the content folder into a new snapshot.

    `progress`, when given, is called once per content file read (for progress bars).
    """
    root = settings.content_dir
    context = ParseContext(settings.timezone, settings.site_author)
    digest = hashlib.sha256()
    sections: dict[str, Section] = {}
    articles: list[Article] = []
    problems: list[ContentError] = []
    if not root.is_dir():
        problems.append(ContentError(str(root), None, "content folder does not exist"))
    else:
        media_sizes = _media_sizes(root / MEDIA_DIR, digest)
        for folder in _section_folders(root, problems):
            section, found = _load_section(folder, root, context, digest, problems, progress)
            sections[section.slug] = section
            articles.extend(_with_media_facts(a, media_sizes) for a in found)
    articles = _drop_duplicate_ids(articles, problems)
    for problem in problems:
        log.warning("content problem: %s", problem)
    return Site(sections, tuple(articles), tuple(problems), digest.hexdigest()[:16])


def _section_folders(root: Path, problems: list[ContentError]) -> list[Path]:
    folders = []
    for path in sorted(root.iterdir()):
        if path.name.startswith((".", "_")) or path.name == MEDIA_DIR or not path.is_dir():
            continue
        if not SLUG.match(path.name):
            problems.append(
                ContentError(str(path), None, "section folder name must match [a-z0-9-]+")
            )
        elif path.name in RESERVED_SLUGS:
            reason = (
                f"section name {path.name!r} is reserved for a fixed URL of the site; rename it"
            )
            problems.append(ContentError(str(path), None, reason))
        else:
            folders.append(path)
    return folders


def _load_section(
    folder, root, context, digest, problems, progress
) -> tuple[Section, list[Article]]:
    section = Section(slug=folder.name, title=folder.name.replace("-", " ").title())
    articles = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix != ".md" or not path.is_file():
            continue
        if progress is not None:
            progress()
        try:
            text = _read_text(path, root, digest)
            if path.name == SECTION_INDEX:
                section = parse_section_index(text, str(path), folder.name)
                continue
            article = parse_article(text, str(path), folder.name, path.stem, context)
        except ContentError as problem:
            problems.append(problem)
            continue
        if article is not None:
            articles.append(article)
    return section, articles


def _read_text(path: Path, root: Path, digest) -> str:
    """Read a content file as UTF-8, refusing what the site should never publish."""
    try:
        if not path.resolve().is_relative_to(root.resolve()):
            raise ContentError(str(path), None, "file is a link to outside the content folder")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ContentError(str(path), None, f"file is larger than {MAX_FILE_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise ContentError(str(path), None, f"cannot read file: {exc.strerror}") from None
    digest.update(str(path.relative_to(root)).encode() + b"\0" + data + b"\0")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ContentError(str(path), line, "file is not valid UTF-8 text") from None


def _media_sizes(media_root: Path, digest) -> dict[str, int]:
    """Map each media file's site path to its size, for enclosure lengths."""
    sizes = {}
    if media_root.is_dir():
        for path in sorted(media_root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                site_path = "/" + path.relative_to(media_root.parent).as_posix()
                sizes[site_path] = path.stat().st_size
                digest.update(f"{site_path}\0{sizes[site_path]}\0".encode())
    return sizes


def _with_media_facts(article: Article, media_sizes: dict[str, int]) -> Article:
    if article.image is None:
        return article
    image: Image = article.image
    mime_type, _ = mimetypes.guess_type(image.src.split("?", 1)[0])
    image = replace(image, mime_type=mime_type, length=media_sizes.get(image.src))
    return replace(article, image=image)


def _drop_duplicate_ids(articles: list[Article], problems: list[ContentError]) -> list[Article]:
    """Keep the first article for each explicit id; a GUID shared by two items breaks readers."""
    owners: dict[str, Article] = {}
    kept = []
    for article in articles:
        owner = owners.setdefault(article.explicit_id, article) if article.explicit_id else article
        if owner is not article:
            reason = f"id {article.explicit_id!r} is already used by {owner.source_path}"
            problems.append(ContentError(article.source_path, None, reason))
            continue
        kept.append(article)
    return kept
