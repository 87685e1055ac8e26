"""Facts about local image files, read from the files: size in pixels and the real type.

Aggregators size their cards from media:content's width and height, browsers reserve the
space of an <img> with width and height (no layout shift), and a file's extension may lie
(a PNG saved as .jpg): Pillow reads the header, never the whole picture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Pillow's format names → the media types feeds publish.
_MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "ICO": "image/vnd.microsoft.icon",
}


@dataclass(frozen=True)
class ImageFacts:
    """What a local image file is: its pixel size and media type."""

    width: int
    height: int
    mime_type: str


def read_image_facts(path: Path) -> ImageFacts | None:
    """Read an image file's size and type from its header; None if it is not an image."""
    # Imported here: a worker that follows the publisher reads no image (nor loads Pillow).
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as picture:
            mime_type = _MEDIA_TYPES.get(picture.format or "") or picture.get_format_mimetype()
            width, height = picture.size
    except (OSError, UnidentifiedImageError, ValueError, PILImage.DecompressionBombError):
        return None
    if not mime_type or width < 1 or height < 1:
        return None
    return ImageFacts(width, height, mime_type)


@dataclass
class ImageFactsCache:
    """Image facts by file identity, for one read of the content: articles that share a
    picture (a section's default lead image, an author's portrait) open it once.

    A file counts as the same while its path, size, mtime (ns) and inode are, as for the
    content index; it lives as long as the read it serves, so it holds one entry per file.
    """

    _facts: dict = field(default_factory=dict)

    def read(self, path: Path) -> ImageFacts | None:
        """Return read_image_facts(path), from the cache while the file is unchanged."""
        try:
            info = os.stat(path)
        except OSError:
            return None
        key = (str(path), info.st_size, info.st_mtime_ns, info.st_ino)
        if key not in self._facts:
            self._facts[key] = read_image_facts(path)
        return self._facts[key]
