"""Tell a WebSub hub which feeds changed: publish pings sent from a background thread.

A publish ping only says "fetch this feed again", so a URL already waiting for its ping
needs no second one however often it changes meanwhile; a URL that changes while its
ping is on the wire gets exactly one more ping afterwards.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# URLs waiting at most; a site has a few feeds per section, so this is only a safety net.
MAX_PENDING = 10_000
# A retry waits between (1 - JITTER) and 1 times its backoff, so workers drift out of step.
JITTER = 0.2
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass
class _Ping:
    """A URL waiting for its ping: the attempts that failed so far and the last error."""

    failures: int = 0
    error: str = ""


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
    ):
        if urllib.parse.urlsplit(hub_url).scheme not in ("http", "https"):
            raise ValueError(f"WebSub hub must be an http or https URL, not {hub_url!r}")
        if attempts < 1 or first_delay <= 0 or max_delay < first_delay or timeout <= 0:
            raise ValueError("need attempts >= 1 and 0 < first_delay <= max_delay, timeout > 0")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.hub_url = hub_url
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.user_agent = user_agent
        self.max_pending = max_pending
        self._random = random.Random()
        self._opener = urllib.request.build_opener(_RefuseRedirects)
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        """Start with an empty queue, a fresh lock and no thread, as a forked child must."""
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._pending: dict[str, _Ping] = {}
        self._due: list[tuple[float, int, str]] = []  # heap of (when, order, url)
        self._order = itertools.count()
        self._sending: str | None = None
        self._again = False  # the URL being sent changed meanwhile
        self._thread: threading.Thread | None = None

    def notify(self, urls: Iterable[str]) -> None:
        """Queue a publish ping for each URL; never blocks, never raises."""
        try:
            # A lone string is one URL, not an iterable of one-letter URLs.
            self._enqueue([urls] if isinstance(urls, str) else [str(url) for url in urls])
        except Exception:  # publishing content must never fail because of a ping
            log.exception("WebSub: could not queue pings for %s", self.hub_url)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (pending pings may be dropped; say so in a log line)."""
        if self._pid != os.getpid():
            self._reset()
        with self._cond:
            self._closed = True
            unsent = list(self._pending)
            self._pending.clear()
            self._due.clear()
            thread = self._thread
            self._cond.notify_all()
        if unsent:
            shown = ", ".join(unsent[:5]) + (", …" if len(unsent) > 5 else "")
            log.warning(
                "WebSub: closing with %d ping(s) to %s not sent: %s",
                len(unsent),
                self.hub_url,
                shown,
            )
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning(
                    "WebSub: a ping to %s is still on the wire; left to finish", self.hub_url
                )

    def _enqueue(self, urls: list[str]) -> None:
        if self._pid != os.getpid():
            self._reset()
        dropped = 0
        with self._cond:
            if self._closed:
                log.debug("WebSub: notifier closed; %d ping(s) not queued", len(urls))
                return
            now = time.monotonic()
            for url in urls:
                if url == self._sending:
                    self._again = True
                elif url in self._pending:
                    continue
                elif len(self._pending) >= self.max_pending:
                    dropped += 1
                else:
                    self._schedule(url, _Ping(), now)
            self._cond.notify()
            if urls and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._run, name="feedsvc-websub", daemon=True
                )
                self._thread.start()
        if dropped:
            log.warning(
                "WebSub: %d ping(s) to %s dropped; %d already waiting",
                dropped,
                self.hub_url,
                self.max_pending,
            )

    def _schedule(self, url: str, ping: _Ping, when: float) -> None:
        self._pending[url] = ping
        heapq.heappush(self._due, (when, next(self._order), url))

    def _run(self) -> None:
        while (job := self._take()) is not None:
            url, ping = job
            try:
                error = self._post(url)
            except Exception as exc:  # a surprise must cost one attempt, not the thread
                log.exception("WebSub: ping to %s failed unexpectedly", self.hub_url)
                error = _describe(exc)
            self._settle(url, ping, error)

    def _take(self) -> tuple[str, _Ping] | None:
        """Wait for the next ping that is due; return None once closed."""
        with self._cond:
            while not self._closed:
                wait = None
                if self._due:
                    when, _, url = self._due[0]
                    wait = when - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._due)
                        self._sending, self._again = url, False
                        return url, self._pending.pop(url)
                self._cond.wait(wait)
            return None

    def _settle(self, url: str, ping: _Ping, error: str | None) -> None:
        """Record how a ping went: done, due again after a backoff, or given up."""
        with self._cond:
            self._sending, again = None, self._again
            if self._closed:
                return
            if error is None:
                if again:
                    self._schedule(url, _Ping(), time.monotonic())
            else:
                ping.failures, ping.error = ping.failures + 1, error
                if ping.failures < self.attempts:
                    delay = self._backoff(ping.failures)
                    self._schedule(url, ping, time.monotonic() + delay)
        if error is None:
            log.info("WebSub: told %s that %s changed", self.hub_url, url)
        elif ping.failures == 1:  # said once per URL; the retries follow at DEBUG
            log.warning(
                "WebSub: ping to %s for %s failed (%s); retrying up to %d times",
                self.hub_url,
                url,
                error,
                self.attempts - 1,
            )
        elif ping.failures < self.attempts:
            log.debug("WebSub: ping to %s for %s failed (%s); will retry", self.hub_url, url, error)
        else:
            log.warning(
                "WebSub: gave up telling %s that %s changed, after %d attempts; last error: %s",
                self.hub_url,
                url,
                ping.failures,
                error,
            )

    def _backoff(self, failures: int) -> float:
        """Return the wait before the next attempt: doubling, capped, a little jittered."""
        delay = min(self.max_delay, self.first_delay * 2.0 ** min(failures - 1, 64))
        return delay * (1 - JITTER * self._random.random())

    def _post(self, url: str) -> str | None:
        """Send one publish ping; return None on a 2xx answer, else what went wrong."""
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
            return _describe(exc.reason)
        except (OSError, http.client.HTTPException) as exc:
            return _describe(exc)


def _describe(problem: object) -> str:
    """Name an error for a log line: its type and message."""
    if isinstance(problem, BaseException):
        return f"{type(problem).__name__}: {problem}"
    return str(problem)
