"""Facts about local image files, read from the files: size in pixels and the real type.

Aggregators size their cards from media:content's width and height, browsers reserve the
space of an <img> with width and height (no layout shift), and a file's extension may lie
(a PNG saved as .jpg): Pillow reads the header, never the whole picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

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
    try:
        with PILImage.open(path) as picture:
            mime_type = _MEDIA_TYPES.get(picture.format or "") or picture.get_format_mimetype()
            width, height = picture.size
    except (OSError, UnidentifiedImageError, ValueError, PILImage.DecompressionBombError):
        return None
    if not mime_type or width < 1 or height < 1:
        return None
    return ImageFacts(width, height, mime_type)
