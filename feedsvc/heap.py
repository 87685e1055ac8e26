"""The C heap under feedsvc: few malloc arenas, and the pages freed given back to the system.

Python keeps small objects in pools of its own; anything larger (rendered documents and
their compressed codings, the strings and lists of a load) comes from glibc's malloc.
Left at its defaults, malloc gives each thread that allocates an arena of its own (up to
eight per CPU: granian's, the loader's, the watcher's) and keeps what is freed in each for
that thread to reuse: at 100,000 articles a worker held four arenas of 6 to 65 MB after a
load, and more after a crawl. Outside glibc (musl, macOS) all of this is a no-op.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import threading

logger = logging.getLogger(__name__)

# mallopt parameter (glibc's malloc.h).
_M_ARENA_MAX = -8
# Arenas for every thread of the process: two lets a request and the loader or the
# watcher allocate at once; more only keep more freed memory apart. granian's own threads
# have made theirs before the app is imported; the limit keeps ours from adding more
# (MALLOC_ARENA_MAX=2 in granian's environment measured the same). (M_MMAP_THRESHOLD is
# left alone: with it fixed at 128 kB, so that large buffers are unmapped when freed, a
# worker loading 100,000 articles died once with "The futex facility returned an
# unexpected error code"; not understood, so not used.)
ARENAS = 2
# Bytes freed by a bounded cache (dropped entries) before their pages are given back:
# malloc_trim walks every arena (0.9 ms after a crawl of 10,000 articles' feeds, measured),
# so not on every drop.
TRIM_AFTER_BYTES = 8 * 1024 * 1024


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """Return the C library if it is glibc (it has mallopt and malloc_trim), else None."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
            return libc
    return None


def tune_allocator() -> bool:
    """Limit malloc's arenas for this whole process; return whether the allocator took it.

    Called by the entry points that serve (wsgi.py) before any thread of ours starts.
    """
    libc = _glibc()
    if libc is None:
        return False
    taken = libc.mallopt(_M_ARENA_MAX, ARENAS) == 1
    if not taken:
        logger.info("the C allocator did not take feedsvc's settings; memory stays as it is")
    return taken


def give_back_memory() -> None:
    """Return the free pages malloc holds in every arena to the system (malloc_trim)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


class Reclaimer:
    """Gives freed pages back once enough bytes have been freed since it last did.

    Owned by whoever frees in bulk (each bounded cache, for the entries it drops);
    `freed` is cheap and may be called from any thread.
    """

    def __init__(self, after: int = TRIM_AFTER_BYTES):
        self._after = after
        self._freed = 0
        self._lock = threading.Lock()

    def freed(self, size: int) -> None:
        """Count `size` bytes just freed; give pages back if the count passes the threshold."""
        with self._lock:
            self._freed += size
            if self._freed < self._after:
                return
            self._freed = 0
        give_back_memory()
