"""URL slugs from free text: titles for file names, tags and author names for their pages."""

from __future__ import annotations

import functools
import re
import unicodedata

MAX_SLUG_LENGTH = 80
# Latin letters NFKD does not split into an ASCII base letter and an accent.
_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=8192)  # tags and authors repeat across thousands of articles
def slugify(title: str) -> str:
    """Derive a file-name slug from a title: ASCII letters and digits joined by hyphens."""
    text = unicodedata.normalize("NFKD", title.lower().translate(_LETTERS))
    # Typographic apostrophes vanish with the accents; plain ones must too: "don't" -> "dont".
    text = text.encode("ascii", "ignore").decode("ascii").replace("'", "")
    slug = _NOT_ALNUM.sub("-", text).strip("-")
    if len(slug) > MAX_SLUG_LENGTH:  # cut long titles at a word boundary where there is one
        cut = slug[: MAX_SLUG_LENGTH + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut[:MAX_SLUG_LENGTH]
    return slug
