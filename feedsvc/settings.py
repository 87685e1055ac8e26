"""Plain, typed settings taken once from the Flask config and passed down to pure code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from .dates import load_timezone
from .slugs import url_path


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

    @classmethod
    def from_config(cls, config: Mapping) -> Settings:
        """Read and convert the FEEDSVC keys; environment values may arrive as numbers."""
        feed_items = int(config["FEED_ITEMS"])
        feed_max_age = int(config["FEED_MAX_AGE"])
        if feed_items < 1 or feed_max_age < 0:
            raise ValueError("FEED_ITEMS must be at least 1 and FEED_MAX_AGE not negative")
        return cls(
            content_dir=Path(str(config["CONTENT_DIR"])),
            site_url=str(config["SITE_URL"]).rstrip("/"),
            site_title=str(config["SITE_TITLE"]),
            site_description=str(config["SITE_DESCRIPTION"]),
            site_author=str(config["SITE_AUTHOR"]),
            language=str(config["LANGUAGE"]),
            timezone=load_timezone(str(config["TIMEZONE"])),
            feed_items=feed_items,
            feed_max_age=feed_max_age,
            watch_content=bool(config.get("WATCH_CONTENT", True)),
            websub_hub=str(config.get("WEBSUB_HUB") or ""),
        )

    def absolute(self, path: str) -> str:
        """Return the absolute URL of a site path; never derived from a request's Host.

        Letters of any script in the path (a tag such as 音楽) are percent-encoded.
        """
        return self.site_url + url_path(path)
