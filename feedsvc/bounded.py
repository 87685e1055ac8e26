"""A cache bounded in bytes: what is rendered on demand must never outgrow the machine.

Rendered feeds, pages and item HTML are all asked for by crawlers, every one of them;
each is kept here within a budget, the least recently used dropped first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .heap import Reclaimer

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """Values kept within `budget` as measured by `size`; thread-safe, reads take no lock."""

    def __init__(self, budget: int, size: Callable[[V], int]):
        # Each value with the size it was counted at (a representation grows as it is used).
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._budget = budget
        self._size = size
        self._used = 0
        self._lock = threading.Lock()
        # What is dropped is freed, but malloc keeps the pages unless told to give them back.
        self._reclaimer = Reclaimer()

    def get(self, key: K) -> V | None:
        """Return the value kept under `key`, marking it recently used; None if none."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:  # noqa: SIM105 (contextlib.suppress costs more than a page request's lookup)
            self._entries.move_to_end(key)  # atomic; a value dropped meanwhile stays dropped
        except KeyError:
            pass
        return entry[0]

    def put(self, key: K, value: V) -> None:
        """Keep `value` under `key`, dropping the least recently used when over budget."""
        size = self._size(value)
        freed = 0
        with self._lock:
            if key in self._entries or size > self._budget:
                return
            self._entries[key] = (value, size)
            self._used += size
            while self._used > self._budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._used -= dropped
                freed += dropped
        if freed:
            self._reclaimer.freed(freed)
