"""Tell a WebSub hub which feeds changed: publish pings, sent by a background Courier.

A publish ping only says "fetch this feed again", so a feed waiting for its ping needs
no second one (see delivery.py for coalescing, retries and backoff).
"""

from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable

from .delivery import MAX_PENDING, Channel, Courier, describe

log = logging.getLogger(__name__)

FORM_TYPE = "application/x-www-form-urlencoded"


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Treat a redirect as a failure: urllib would follow it as a GET without the form."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class HubNotifier:
    """Tell a WebSub hub which feeds changed, from a background thread."""

    def __init__(
        self,
        hub_url: str,
        *,
        attempts: int = 5,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        timeout: float = 10.0,
        user_agent: str = "feedsvc",
        max_pending: int = MAX_PENDING,
        after: Callable[[], object] | None = None,
    ):
        if urllib.parse.urlsplit(hub_url).scheme not in ("http", "https"):
            raise ValueError(f"WebSub hub must be an http or https URL, not {hub_url!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.hub_url = hub_url
        self.timeout = timeout
        self.user_agent = user_agent
        # Called before each ping: the caches in front drop what changed before the hub
        # fetches the feed through them (see Purger.wait_idle).
        self.after = after
        self._opener = urllib.request.build_opener(_RefuseRedirects)
        channel = Channel("WebSub", "ping", hub_url, log, "feedsvc-websub")
        self._courier = Courier(
            self._post,
            channel,
            attempts=attempts,
            first_delay=first_delay,
            max_delay=max_delay,
            max_pending=max_pending,
        )

    def notify(self, urls: Iterable[str]) -> None:
        """Queue a publish ping for each URL; never blocks, never raises."""
        self._courier.put(urls)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (pending pings may be dropped; say so in a log line)."""
        self._courier.close(timeout)

    def _post(self, url: str) -> str | None:
        """Send one publish ping; return None on a 2xx answer, else what went wrong."""
        if self.after is not None:
            self.after()
        body = urllib.parse.urlencode({"hub.mode": "publish", "hub.url": url}).encode()
        headers = {"Content-Type": FORM_TYPE, "User-Agent": self.user_agent}
        request = urllib.request.Request(self.hub_url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout):
                return None  # urllib raises HTTPError for anything but 2xx
        except urllib.error.HTTPError as exc:
            exc.close()
            return f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            return describe(exc.reason)
        except (OSError, http.client.HTTPException) as exc:
            return describe(exc)
