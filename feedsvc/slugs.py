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


# A tag or author slug in UTF-8 bytes at most: with ".atom.gz" it stays a valid file name.
MAX_NAME_SLUG_BYTES = 200
_APOSTROPHES = frozenset("'’ʼ")


@functools.lru_cache(maxsize=8192)
def name_slug(name: str) -> str:
    """Derive the URL slug of a tag or author name; empty only for mere punctuation.

    Latin names keep the ASCII slugs they always had (Zoë Martin → zoe-martin). A name with
    letters of another script keeps them, lower-cased ("音楽", "سارة"): folding them to ASCII
    would leave nothing, and a transliteration is a guess in one language. In URLs they are
    percent-encoded as UTF-8 (urls.encode_uri), which browsers show as the letters themselves.
    A name of symbols only ("🎵") keeps its symbols.
    """
    if not any(_other_script(char) for char in name):
        slug = slugify(name)
        if slug:
            return slug
    return _unicode_slug(name, "LNM") or _unicode_slug(name, "LNMS")


def _unicode_slug(name: str, kept: str) -> str:
    """Join the characters of the categories `kept` by hyphens; Latin letters fold to ASCII."""
    parts = []
    for char in unicodedata.normalize("NFC", name.lower()).translate(_LETTERS):
        if char in _APOSTROPHES:
            continue
        folded = _ascii_fold(char)
        category = unicodedata.category(char)[0]
        if folded:
            parts.append(_NOT_ALNUM.sub("-", folded))
        elif category in kept and (category != "M" or (parts and not parts[-1].isascii())):
            parts.append(char)  # a letter, digit or the mark of one (Arabic vowels, Devanagari)
        else:
            parts.append("-")
    slug = re.sub("-{2,}", "-", "".join(parts)).strip("-")
    if len(slug.encode("utf-8")) > MAX_NAME_SLUG_BYTES:
        cut = slug.encode("utf-8")[: MAX_NAME_SLUG_BYTES + 1].decode("utf-8", "ignore")
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut[:-1]
    return slug


def _ascii_fold(char: str) -> str:
    return unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")


def _other_script(char: str) -> bool:
    """Tell whether a letter or digit is of a script folding to ASCII cannot spell."""
    if char.isascii() or not char.isalnum() or _ascii_fold(char.translate(_LETTERS)):
        return False
    return not unicodedata.name(char, "").startswith("LATIN")
