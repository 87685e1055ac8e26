"""Signed preview links: a draft or scheduled article shown to whoever holds its link.

The link carries an HMAC of the article's path made with PREVIEW_SECRET, so it cannot be
guessed or altered, and it needs no state: changing the secret revokes every link.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from urllib.parse import urlencode

from .addresses import Address
from .loader import SECTION_INDEX, parse_context, read_content_file
from .models import Article
from .parsing import SLUG
from .settings import Settings

PREVIEW_PREFIX = "/_preview"  # "_" never starts a section name, so no section shadows it
KEY_PARAMETER = "key"
# Hex digits of the HMAC-SHA256 kept in a link: 128 bits.
KEY_LENGTH = 32


def preview_key(secret: str, path: str) -> str:
    """Return the signature of an article path ("/culture/slug/") under `secret`."""
    digest = hmac.new(secret.encode("utf-8"), path.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:KEY_LENGTH]


def preview_path(secret: str, section: str, slug: str) -> str:
    """Return the site path of an article's preview page, its signature included."""
    path = Address.article(section, slug).page_path
    key = preview_key(secret, path)
    return f"{PREVIEW_PREFIX}{path}?{urlencode({KEY_PARAMETER: key})}"


def key_matches(secret: str, section: str, slug: str, key: str) -> bool:
    """Tell whether `key` signs /section/slug/; always False without a secret."""
    if not secret or not key:
        return False
    path = Address.article(section, slug).page_path
    return hmac.compare_digest(preview_key(secret, path), key)


def read_preview(settings: Settings, section: str, slug: str) -> Article | None:
    """Read the article file as it is now, draft or not; None if it is missing or broken.

    The file is read afresh, so an editor sees each save at once.
    """
    if not (SLUG.match(section) and SLUG.match(slug)) or f"{slug}.md" == SECTION_INDEX:
        return None
    context = replace(parse_context(settings), preview=True)
    state = read_content_file(settings.content_dir, f"{section}/{slug}.md", context, {})
    return state.result if state.problem is None and isinstance(state.result, Article) else None
