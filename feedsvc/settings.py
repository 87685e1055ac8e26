"""Plain, typed settings taken once from the Flask config and passed down to pure code.

Every key is checked at start: a bad value stops the app with one line naming the key,
the value and what is expected, instead of a traceback or a site with broken links.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from pathlib import Path
from urllib.parse import urlsplit

from .dates import DateError, load_timezone
from .urls import encode_uri

ENV_PREFIX = "FEEDSVC_"
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f"})
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A preview secret shorter than this could be guessed from the links it signs.
MIN_PREVIEW_SECRET = 16
SECRET_KEYS = frozenset({"PREVIEW_SECRET"})
# A byte cap below this leaves no room for even a channel and a few summaries.
MIN_FEED_BYTES = 10_000
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")


class SettingsError(ValueError):
    """A configuration value feedsvc cannot run with; its message is one line for the admin."""

    def __init__(self, key: str, value: object, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"bad setting {ENV_PREFIX}{key}={value!r}: expected {expected}")


@dataclass(frozen=True)
class Settings:
    """The configuration keys feedsvc reads, validated and converted."""

    content_dir: Path
    site_url: str
    site_title: str
    site_description: str
    site_author: str
    language: str
    timezone: tzinfo
    feed_items: int
    feed_max_age: int
    watch_content: bool = True
    websub_hub: str = ""
    log_level: str = "INFO"
    # Where the persistent index and validators live (see index.py); never inside content.
    # Unset: the per-content-folder default, never the working directory.
    state_dir: Path | None = None
    preview_secret: str = ""
    tombstone_days: int = 30
    # Branding: a square icon, a wide logo and a cover picture (site paths or web URLs),
    # and the colour readers such as Feedly give the feed's title.
    site_icon: str = ""
    site_logo: str = ""
    site_cover: str = ""
    accent_color: str = ""
    # Largest feed document in bytes (0: no cap); older items then carry their summary only.
    feed_max_bytes: int = 0
    # Seconds an HTTP cache tier (CDN, Varnish) may keep feeds and pages, told to it alone
    # (Surrogate-Control, CDN-Cache-Control); 0: edges follow Cache-Control like readers.
    edge_max_age: int = 0
    # Cache endpoints (http:// URLs) told by PURGE which documents a publish changed.
    purge_urls: tuple[str, ...] = ()

    def __post_init__(self):
        if self.state_dir is None:
            object.__setattr__(self, "state_dir", default_state_dir(self.content_dir))

    @classmethod
    def from_config(cls, config: Mapping) -> Settings:
        """Read, check and convert the FEEDSVC keys; raise SettingsError for the first bad one."""

        def get(key: str, convert: Callable, default: object = None):
            value = config.get(key, default)
            try:
                return convert(value)
            except (TypeError, ValueError, DateError) as exc:
                shown = "(hidden)" if key in SECRET_KEYS else value  # logs must not hold it
                raise SettingsError(key, shown, str(exc)) from None

        content_dir = get("CONTENT_DIR", _folder)
        return cls(
            content_dir=content_dir,
            site_url=get("SITE_URL", _site_url),
            site_title=get("SITE_TITLE", _text),
            site_description=get("SITE_DESCRIPTION", _text),
            site_author=get("SITE_AUTHOR", _text),
            language=get("LANGUAGE", _language),
            timezone=get("TIMEZONE", _timezone),
            feed_items=get("FEED_ITEMS", _at_least(1)),
            feed_max_age=get("FEED_MAX_AGE", _at_least(0)),
            watch_content=get("WATCH_CONTENT", parse_bool, True),
            websub_hub=get("WEBSUB_HUB", _hub_url),
            log_level=get("LOG_LEVEL", _log_level, "INFO"),
            state_dir=get("STATE_DIR", lambda value: _state_dir(value, content_dir)),
            preview_secret=get("PREVIEW_SECRET", _secret, ""),
            tombstone_days=get("TOMBSTONE_DAYS", _at_least(0), 30),
            site_icon=get("SITE_ICON", _picture, ""),
            site_logo=get("SITE_LOGO", _picture, ""),
            site_cover=get("SITE_COVER", _picture, ""),
            accent_color=get("ACCENT_COLOR", _color, ""),
            feed_max_bytes=get("FEED_MAX_BYTES", _byte_cap, 0),
            edge_max_age=get("EDGE_MAX_AGE", _at_least(0), 0),
            purge_urls=get("PURGE_URLS", _purge_urls, ""),
        )

    def absolute(self, path: str) -> str:
        """Return the absolute, encoded URL of a site path; never derived from a request's Host."""
        return encode_uri(self.site_url + path)

    @property
    def tombstone_period(self) -> timedelta:
        """Return how long Atom feeds announce a takedown (RFC 6721 at:deleted-entry)."""
        return timedelta(days=self.tombstone_days)

    @property
    def path_prefix(self) -> str:
        """Return the path SITE_URL puts before every site path ("/news"), or ""."""
        return urlsplit(self.site_url).path


# Converters: each returns the typed value or raises ValueError saying what it expects.


def _text(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        raise ValueError("text")
    return str(value)


def _folder(value: object) -> Path:
    if not _text(value).strip():
        raise ValueError("the path of the content folder")
    return Path(str(value))


def default_state_dir(content_dir: Path) -> Path:
    """Return the state folder used when STATE_DIR is unset: one per content folder.

    Under systemd with `StateDirectory=`, inside that folder ($STATE_DIRECTORY); else
    under the system's temporary folder, per user.
    """
    key = hashlib.sha256(os.fsencode(os.path.abspath(content_dir))).hexdigest()[:16]
    systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd) / key
    return Path(tempfile.gettempdir()) / f"feedsvc-{os.getuid()}" / key


def _state_dir(value: object, content_dir: Path) -> Path:
    if value in (None, ""):
        return default_state_dir(content_dir)
    text = _text(value).strip()
    path = Path(text).absolute() if text else None
    if path is None or (path.exists() and not path.is_dir()):
        raise ValueError("the path of a folder feedsvc may write its index in")
    if path.resolve().is_relative_to(content_dir.resolve()):
        raise ValueError("a folder outside the content folder")
    return path


def _http_url(value: object) -> str:
    url = _text(value).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("an absolute http:// or https:// URL, e.g. https://news.example.org")
    return url


def _site_url(value: object) -> str:
    return _http_url(value).rstrip("/")


def _hub_url(value: object) -> str:
    return _http_url(value) if value not in (None, "") else ""


def _purge_urls(value: object) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    items = value if isinstance(value, list | tuple) else _text(value).replace(",", " ").split()
    try:
        return tuple(_http_url(str(item)).rstrip("/") for item in items)
    except ValueError:
        raise ValueError(
            "cache endpoints as http:// URLs separated by spaces or commas,"
            " e.g. http://127.0.0.1:6081"
        ) from None


def _secret(value: object) -> str:
    if value in (None, ""):
        return ""
    if len(_text(value)) < MIN_PREVIEW_SECRET:
        raise ValueError(f"unset, or a random secret of at least {MIN_PREVIEW_SECRET} characters")
    return str(value)


def _picture(value: object) -> str:
    if value in (None, ""):
        return ""
    text = _text(value).strip()
    if text.startswith("/") and not text.startswith("//"):
        return text
    try:
        return _http_url(text)
    except ValueError:
        raise ValueError("a site path such as /media/logo.png, or an https:// URL") from None


def _color(value: object) -> str:
    if value in (None, ""):
        return ""
    text = _text(value).strip().lstrip("#")
    if not re.fullmatch(r"[0-9A-Fa-f]{6}", text):
        raise ValueError("a colour as six hexadecimal digits, e.g. 00a0e0")
    return text.lower()


def _byte_cap(value: object) -> int:
    cap = _at_least(0)(value)
    if 0 < cap < MIN_FEED_BYTES:
        raise ValueError(f"0 (no cap) or a number of bytes of at least {MIN_FEED_BYTES}")
    return cap


def _language(value: object) -> str:
    if not _LANGUAGE_TAG.fullmatch(_text(value)):
        raise ValueError("a language tag such as en, fr or pt-BR")
    return str(value)


def _timezone(value: object) -> tzinfo:
    try:
        return load_timezone(_text(value))
    except DateError:
        raise ValueError("an IANA time zone name such as UTC or Europe/Paris") from None


def _at_least(minimum: int) -> Callable[[object], int]:
    def convert(value: object) -> int:
        text = str(value).strip()
        if isinstance(value, bool) or not re.fullmatch(r"[+-]?[0-9]+", text) or int(text) < minimum:
            raise ValueError(f"a whole number of at least {minimum}")
        return int(text)

    return convert


def parse_bool(value: object) -> bool:
    """Read a yes/no setting the usual ways: true/false, yes/no, on/off, 1/0, any case."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("true or false (also yes/no, on/off, 1/0)")


def _log_level(value: object) -> str:
    level = _text(value).strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError("one of " + ", ".join(_LOG_LEVELS))
    return level
