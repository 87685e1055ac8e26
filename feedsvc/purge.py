"""Tell the caches in front (FEEDSVC_PURGE_URLS) what a publish changed, so they drop it.

Feeds and documents are purged by URL (`PURGE /culture.xml`: every encoding the cache
holds); pages, which are rendered on demand and may be many (a listing's later pages),
by surrogate key (`PURGE` with an `xkey` header, see edge.py). Each endpoint has its own
Courier: a cache that is down only delays its own purges, retried with backoff.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from .addresses import Address
from .delivery import Channel, Courier, describe
from .edge import SITE_KEY
from .settings import Settings

if TYPE_CHECKING:
    from .snapshot import Snapshot

log = logging.getLogger(__name__)

PURGE = "PURGE"
TIMEOUT = 10.0
# A WebSub ping waits at most this long for the purges before it (a cache may be down).
IDLE_WAIT = 10.0


@dataclass(frozen=True)
class Invalidation:
    """One thing a cache must drop: a URL path (every variant), or a surrogate key."""

    path: str = ""
    key: str = ""

    def __str__(self) -> str:
        return self.path or f"xkey {self.key}"


def invalidations(before: Snapshot, after: Snapshot, settings: Settings) -> list[Invalidation]:
    """Return what changed between two snapshots: documents by URL, pages by key."""
    prefix = settings.path_prefix.rstrip("/")
    paths = [prefix + path for path in _changed_documents(before, after)]
    keys = _changed_page_keys(before, after)
    return [Invalidation(path=quote(path, safe="/%")) for path in paths] + [
        Invalidation(key=key) for key in keys
    ]


def _changed_documents(before: Snapshot, after: Snapshot) -> list[str]:
    """Return the paths of feeds (every format, archives too) and documents that changed."""
    paths: dict[str, None] = {}
    for name in before.editions.keys() | after.editions.keys():
        old, new = before.editions.get(name), after.editions.get(name)
        if old is None or new is None or old.spec != new.spec:
            paths.update(dict.fromkeys((new or old).paths()))
    for path in before.documents.keys() | after.documents.keys():
        old, new = before.documents.get(path), after.documents.get(path)
        if old is None or new is None or old.variants != new.variants:
            paths[path] = None
    return sorted(paths)


def _changed_page_keys(before: Snapshot, after: Snapshot) -> list[str]:
    """Return the keys of pages that changed: listings, articles, or every page."""
    if before.site.sections != after.site.sections:
        return [SITE_KEY]  # the navigation of every page
    keys = [
        Address.from_name(name).page_key
        for name in sorted(before.listings.keys() | after.listings.keys())
        if _articles(before.listings, name) != _articles(after.listings, name)
    ]
    old, new = _by_address(before), _by_address(after)
    keys += [
        Address.article(*address).page_key
        for address in sorted(old.keys() | new.keys())
        if old.get(address) != new.get(address)
    ]
    return keys


def _articles(listings: Mapping, name: str) -> tuple:
    listing = listings.get(name)
    return listing.articles if listing is not None else ()


def _by_address(snapshot: Snapshot) -> dict[tuple[str, str], object]:
    """Map each published article's (section, slug) to the article."""
    site, now = snapshot.site, snapshot.as_of
    return {
        (article.section, article.slug): found
        for article in site.articles
        if (found := site.find(article.section, article.slug, now)) is not None
    }


class Purger:
    """Purge what each publish changed at every configured cache, in the background."""

    def __init__(self, settings: Settings, **options):
        self.settings = settings
        self.host = urlsplit(settings.site_url).netloc
        self._stalled = False  # the last wait_idle ran out of time
        self._couriers = [
            Courier(
                _Endpoint(url, self.host).send,
                Channel("purge", "purge", url, log, "feedsvc-purge"),
                **options,
            )
            for url in settings.purge_urls
        ]

    def purge(self, before: Snapshot, after: Snapshot) -> None:
        """Queue the invalidations from `before` to `after` at every cache; never raises."""
        try:
            found = invalidations(before, after, self.settings)
        except Exception:  # publishing content must never fail because of a purge
            log.exception("purge: could not work out what changed")
            return
        for courier in self._couriers:
            courier.put(found)

    def wait_idle(self) -> bool:
        """Wait until every purge queued so far was sent or given up; tell if they were.

        Waits at most IDLE_WAIT, and not again while that wait found a cache still busy
        (one that is down must not hold back every ping by as long).
        """
        timeout = 0.0 if self._stalled else IDLE_WAIT
        deadline = time.monotonic() + timeout
        idle = all(c.wait_idle(max(0.0, deadline - time.monotonic())) for c in self._couriers)
        self._stalled = not idle
        return idle

    def hold_until(self, ready) -> None:
        """Send nothing until `ready()` (every worker serves the change), for a few seconds."""
        for courier in self._couriers:
            courier.ready = ready

    def close(self, timeout: float = 5.0) -> None:
        """Stop every endpoint's thread."""
        for courier in self._couriers:
            courier.close(timeout)


class _Endpoint:
    """One cache's address; sends a PURGE for a path or a key."""

    def __init__(self, url: str, host: str):
        parts = urlsplit(url)
        self.url = url
        self.https = parts.scheme == "https"
        self.address = (parts.hostname, parts.port or (443 if self.https else 80))
        self.host = host

    def send(self, item: Invalidation) -> str | None:
        """Send one PURGE; return None on a 2xx answer, else what went wrong."""
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        connection = kind(*self.address, timeout=TIMEOUT)
        headers = {"Host": self.host, "User-Agent": "feedsvc"}
        if item.key:
            headers["xkey"] = item.key
        try:
            connection.request(PURGE, item.path or "/", headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            return describe(exc)
        finally:
            connection.close()
        return None if 200 <= response.status < 300 else f"HTTP {response.status} {response.reason}"
