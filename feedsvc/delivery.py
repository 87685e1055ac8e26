"""Deliver small messages to one endpoint from a background thread: WebSub pings, purges.

Each message only says "this changed", so one already waiting needs no second copy
however often its subject changes meanwhile; one that changes while its message is on
the wire gets exactly one more afterwards. Failures are retried with exponential
backoff, and publishing never waits for the network.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

# Messages waiting at most; a site has a few feeds per section, so this is only a safety net.
MAX_PENDING = 10_000
# A retry waits between (1 - JITTER) and 1 times its backoff, so workers drift out of step.
JITTER = 0.2


@dataclass
class _Attempts:
    """A message waiting to go: the attempts that failed so far and the last error."""

    failures: int = 0
    error: str = ""


@dataclass(frozen=True)
class Channel:
    """How a courier names itself in log lines: "WebSub: ping to <target> for <message>"."""

    label: str
    noun: str
    target: str
    log: logging.Logger
    thread_name: str


class Courier:
    """Send each message with `send` (None: delivered, else what went wrong), in order."""

    def __init__(
        self,
        send: Callable[[Hashable], str | None],
        channel: Channel,
        *,
        attempts: int = 5,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        max_pending: int = MAX_PENDING,
    ):
        if attempts < 1 or first_delay <= 0 or max_delay < first_delay:
            raise ValueError("need attempts >= 1 and 0 < first_delay <= max_delay")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._send = send
        self.channel = channel
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.max_pending = max_pending
        self._random = random.Random()
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        """Start with an empty queue, a fresh lock and no thread, as a forked child must."""
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._pending: dict[Hashable, _Attempts] = {}
        self._due: list[tuple[float, int, Hashable]] = []  # heap of (when, order, message)
        self._order = itertools.count()
        self._sending: Hashable | None = None
        self._again = False  # the message being sent was asked for again meanwhile
        self._thread: threading.Thread | None = None

    def put(self, messages: Iterable[Hashable]) -> None:
        """Queue each message; never blocks, never raises."""
        try:
            # A lone string is one message, not an iterable of one-letter messages.
            self._enqueue([messages] if isinstance(messages, str) else list(messages))
        except Exception:  # publishing content must never fail because of a message
            c = self.channel
            c.log.exception("%s: could not queue %s(s) to %s", c.label, c.noun, c.target)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (messages waiting are dropped; say so in a log line)."""
        if self._pid != os.getpid():
            self._reset()
        with self._cond:
            self._closed = True
            unsent = [str(message) for message in self._pending]
            self._pending.clear()
            self._due.clear()
            thread = self._thread
            self._cond.notify_all()
        c = self.channel
        if unsent:
            shown = ", ".join(unsent[:5]) + (", …" if len(unsent) > 5 else "")
            c.log.warning(
                "%s: closing with %d %s(s) to %s not sent: %s",
                c.label,
                len(unsent),
                c.noun,
                c.target,
                shown,
            )
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                c.log.warning("%s: a %s to %s is still on the wire", c.label, c.noun, c.target)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is waiting or on the wire, at most `timeout` s; tell if so."""
        if self._pid != os.getpid():
            return True  # a forked child's queue starts empty
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._sending is not None:
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _enqueue(self, messages: list[Hashable]) -> None:
        if self._pid != os.getpid():
            self._reset()
        dropped = 0
        with self._cond:
            if self._closed:
                return
            now = time.monotonic()
            for message in messages:
                if message == self._sending:
                    self._again = True
                elif message in self._pending:
                    continue
                elif len(self._pending) >= self.max_pending:
                    dropped += 1
                else:
                    self._schedule(message, _Attempts(), now)
            self._cond.notify_all()  # the thread, and wait_idle callers, share the condition
            if messages and (self._thread is None or not self._thread.is_alive()):
                name = self.channel.thread_name
                self._thread = threading.Thread(target=self._run, name=name, daemon=True)
                self._thread.start()
        if dropped:
            c = self.channel
            c.log.warning(
                "%s: %d %s(s) to %s dropped; %d already waiting",
                c.label,
                dropped,
                c.noun,
                c.target,
                self.max_pending,
            )

    def _schedule(self, message: Hashable, attempts: _Attempts, when: float) -> None:
        self._pending[message] = attempts
        heapq.heappush(self._due, (when, next(self._order), message))

    def _run(self) -> None:
        while (job := self._take()) is not None:
            message, attempts = job
            try:
                error = self._send(message)
            except Exception as exc:  # a surprise must cost one attempt, not the thread
                c = self.channel
                c.log.exception("%s: %s to %s failed unexpectedly", c.label, c.noun, c.target)
                error = describe(exc)
            self._settle(message, attempts, error)

    def _take(self) -> tuple[Hashable, _Attempts] | None:
        """Wait for the next message that is due; return None once closed."""
        with self._cond:
            while not self._closed:
                wait = None
                if self._due:
                    when, _, message = self._due[0]
                    wait = when - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._due)
                        self._sending, self._again = message, False
                        return message, self._pending.pop(message)
                self._cond.wait(wait)
            return None

    def _settle(self, message: Hashable, attempts: _Attempts, error: str | None) -> None:
        """Record how a message went: done, due again after a backoff, or given up."""
        with self._cond:
            self._sending, again = None, self._again
            self._cond.notify_all()
            if self._closed:
                return
            if error is None:
                if again:
                    self._schedule(message, _Attempts(), time.monotonic())
            else:
                attempts.failures, attempts.error = attempts.failures + 1, error
                if attempts.failures < self.attempts:
                    delay = self._backoff(attempts.failures)
                    self._schedule(message, attempts, time.monotonic() + delay)
        self._log_outcome(message, attempts, error)

    def _log_outcome(self, message: Hashable, attempts: _Attempts, error: str | None) -> None:
        c, failures = self.channel, attempts.failures
        if error is None:
            c.log.info("%s: %s to %s for %s sent", c.label, c.noun, c.target, message)
        elif failures == 1:  # said once per message; the retries follow at DEBUG
            c.log.warning(
                "%s: %s to %s for %s failed (%s); retrying up to %d times",
                c.label,
                c.noun,
                c.target,
                message,
                error,
                self.attempts - 1,
            )
        elif failures < self.attempts:
            c.log.debug(
                "%s: %s to %s for %s failed (%s); will retry",
                c.label,
                c.noun,
                c.target,
                message,
                error,
            )
        else:
            c.log.warning(
                "%s: gave up the %s to %s for %s after %d attempts; last error: %s",
                c.label,
                c.noun,
                c.target,
                message,
                failures,
                error,
            )

    def _backoff(self, failures: int) -> float:
        """Return the wait before the next attempt: doubling, capped, a little jittered."""
        delay = min(self.max_delay, self.first_delay * 2.0 ** min(failures - 1, 64))
        return delay * (1 - JITTER * self._random.random())


def describe(problem: object) -> str:
    """Name an error for a log line: its type and message."""
    if isinstance(problem, BaseException):
        return f"{type(problem).__name__}: {problem}"
    return str(problem)
