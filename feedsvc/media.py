"""The media folder and what articles' media files tell: type, length, pixel size, absence.

Lead images get their real type and size from their files (enclosures need a length);
a file an article uses that nothing serves is reported, since readers would see a 404.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from .addresses import MEDIA, STATIC
from .images import ImageFacts, read_image_facts
from .models import Article, ContentWarning, with_changes

MEDIA_DIR = MEDIA  # the folder is served at its own name
MEDIA_PREFIX = f"/{MEDIA_DIR}/"
STATIC_PREFIX = f"/{STATIC}/"
# What makes urljoin and urlsplit change an absolute path ("/media/a.jpg"): a query, a
# fragment, parameters, characters they remove, and dot segments ("/media/../a.jpg").
_NOT_PLAIN_PATH = re.compile(r"[?#;\t\r\n]|/\.")


def media_sizes(root: Path) -> dict[str, int]:
    """Map each media file's site path to its size, for enclosure lengths."""
    media_root = root / MEDIA_DIR
    sizes = {}
    if media_root.is_dir():
        for path in sorted(media_root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                sizes["/" + path.relative_to(root).as_posix()] = path.stat().st_size
    return sizes


def with_media_facts(
    article: Article,
    sizes: Mapping[str, int],
    root: Path | None = None,
    read_facts: Callable[[Path], ImageFacts | None] = read_image_facts,
    file_mtime: float | None = None,
) -> Article:
    """Give the lead image its type, length and pixel size from its file; flag missing files.

    The type is read from a local file's header (a PNG named .jpg is image/png), else
    guessed from the name; `read_facts` reads it (e.g. ImageFactsCache.read). A file just
    read passes its `file_mtime` too, set in the same copy.
    """
    changes: dict = {}  # one copy of the article at most: 100,000 are read at a start
    if file_mtime is not None and file_mtime != article.file_mtime:
        changes["file_mtime"] = file_mtime
    warnings = missing_media(article, sizes)
    if warnings != article.media_warnings:
        changes["media_warnings"] = warnings
    image_sizes = body_image_sizes(article, sizes, root, read_facts) if root is not None else ()
    if image_sizes != article.image_sizes:
        changes["image_sizes"] = image_sizes
    image = article.image
    if image is not None:
        mime_type, _ = mimetypes.guess_type(image.src.split("?", 1)[0])
        # "/media/my%20pic.png" names the file "my pic.png", as its URL does.
        path = image.src if image.src in sizes else unquote(image.src)
        length = sizes.get(path)
        facts = read_facts(root / path.lstrip("/")) if length and root is not None else None
        width = height = None
        if facts is not None:
            mime_type, width, height = facts.mime_type, facts.width, facts.height
        found = (mime_type, length, width, height)
        if found != (image.mime_type, image.length, image.width, image.height):
            changes["image"] = replace(
                image, mime_type=mime_type, length=length, width=width, height=height
            )
    return with_changes(article, **changes) if changes else article


def body_image_sizes(
    article: Article,
    sizes: Mapping[str, int],
    root: Path,
    read_facts: Callable[[Path], ImageFacts | None] = read_image_facts,
) -> tuple:
    """Read the pixel size of each local image the body shows, for width and height on <img>."""
    found = []
    for url, _line, is_link in article.media_refs:
        path = _served_path(article, url)
        if is_link or path not in sizes:
            continue
        facts = read_facts(root / path.lstrip("/"))
        if facts is not None:
            found.append((url, facts.width, facts.height))
    return tuple(found)


def _served_path(article: Article, url: str) -> str:
    """Return the site path a body URL names, resolved beside the article's page."""
    if url[:1] == "/" and url[1:2] != "/" and _NOT_PLAIN_PATH.search(url) is None:
        return unquote(url)  # what urljoin and urlsplit give back for it, five times sooner
    return unquote(urlsplit(urljoin(article.path, url)).path)


def missing_media(article: Article, sizes: Mapping[str, int]) -> tuple[ContentWarning, ...]:
    """Report the files an article uses that nothing serves: readers would see a 404."""
    warnings = []
    for url, line, is_link in article.media_refs:
        path = _served_path(article, url)
        if path.startswith(MEDIA_PREFIX):
            if path in sizes:
                continue
            reason = f"{url} is not in the media folder (content{path})"
        elif is_link or path.startswith(STATIC_PREFIX):
            continue
        else:
            reason = (
                f"image {url} resolves to {path}, where nothing is served;"
                f" put it in content/media/ and write {MEDIA_PREFIX}{path.rsplit('/', 1)[-1]}"
            )
        warnings.append(ContentWarning(article.source_path, line, reason))
    return tuple(warnings)
