"""Long article sequences kept in shared chunks: a new version costs the chunk that changed.

The site's articles and its biggest listings hold up to every article of the archive. Made
into a fresh tuple on each edit, they cost a copy of 100,000 references, and the cycle
collector then walks each new one while it is young: an edit cost what the archive holds.
Chunked versions share every chunk an edit did not touch.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from typing import Any

# Items per chunk; a chunk splits in two beyond twice as many.
CHUNK = 512


class Chunked(Sequence):
    """An immutable sequence made of tuples that later versions share (see ChunkedList).

    Behaves as the tuple of its items: slices are tuples, equal items compare equal.
    """

    __slots__ = ("_chunks", "_len", "_starts")

    def __init__(self, chunks: tuple[tuple, ...]):
        self._chunks = chunks
        self._starts = list(itertools.accumulate(map(len, chunks), initial=0))
        self._len = self._starts.pop()

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator:
        return itertools.chain.from_iterable(self._chunks)

    def __reversed__(self) -> Iterator:
        return itertools.chain.from_iterable(map(reversed, reversed(self._chunks)))

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(self._len)
            if step != 1:
                return tuple(self)[index]
            if start >= stop:
                return ()
            chunk = bisect_right(self._starts, start) - 1
            first = self._chunks[chunk]
            offset = start - self._starts[chunk]
            if offset + stop - start <= len(first):  # within one chunk
                return first[offset : offset + stop - start]
            rest = itertools.chain.from_iterable(itertools.islice(self._chunks, chunk + 1, None))
            head = first[offset:]
            return head + tuple(itertools.islice(rest, stop - start - len(head)))
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("Chunked index out of range")
        chunk = bisect_right(self._starts, index) - 1
        return self._chunks[chunk][index - self._starts[chunk]]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Chunked | tuple):
            return len(self) == len(other) and tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Chunked({tuple(self)!r})"

    def __reduce__(self):
        return (Chunked, (self._chunks,))


class ChunkedList:
    """Items in the order of their keys, in chunks; frozen() shares the unchanged ones.

    The mutable side of Chunked, for an assembler that inserts and removes a few items
    between versions: a version costs the chunks changed since the last one.
    """

    def __init__(self) -> None:
        self._keys: list[list] = []  # per chunk, the keys of its items, ascending
        self._items: list[list] = []
        self._lasts: list = []  # per chunk, its last key: which chunk a key goes in
        self._frozen: list[tuple | None] = []  # per chunk, its tuple since it last changed
        self._made: Chunked | tuple | None = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def first_key(self) -> Any:
        """Return the smallest key (IndexError when empty)."""
        return self._keys[0][0]

    def append(self, key: Any, item: object) -> None:
        """Add an item whose key is not smaller than any held (a first listing, in order)."""
        if not self._items or len(self._items[-1]) >= CHUNK:
            self._new_chunk(len(self._items), [key], [item])
        else:
            self._keys[-1].append(key)
            self._items[-1].append(item)
            self._changed(len(self._items) - 1)
        self._len += 1

    def insert(self, key: Any, item: object) -> None:
        """Add an item at its key's place (before those with an equal key)."""
        if not self._items:
            self.append(key, item)
            return
        chunk = min(bisect_left(self._lasts, key), len(self._items) - 1)
        keys, items = self._keys[chunk], self._items[chunk]
        index = bisect_left(keys, key)
        keys.insert(index, key)
        items.insert(index, item)
        self._len += 1
        if len(items) > 2 * CHUNK:  # split in two halves
            half = len(items) // 2
            self._new_chunk(chunk + 1, keys[half:], items[half:])
            del keys[half:], items[half:]
        self._changed(chunk)

    def remove(self, key: Any) -> None:
        """Remove the first item whose key is `key` (it must be held)."""
        chunk = bisect_left(self._lasts, key)
        keys, items = self._keys[chunk], self._items[chunk]
        index = bisect_left(keys, key)
        if index == len(keys) or keys[index] != key:
            raise KeyError(key)
        del keys[index], items[index]
        self._len -= 1
        if keys:
            self._changed(chunk)
            return
        for parts in (self._keys, self._items, self._lasts, self._frozen):
            del parts[chunk]
        self._made = None

    def frozen(self) -> Chunked | tuple:
        """Return the items as an immutable sequence: a tuple while they fit in one chunk."""
        if self._made is None:
            for chunk, made in enumerate(self._frozen):
                if made is None:
                    self._frozen[chunk] = tuple(self._items[chunk])
            if len(self._frozen) <= 1:
                self._made = self._frozen[0] if self._frozen else ()
            else:
                self._made = Chunked(tuple(self._frozen))
        return self._made

    def _new_chunk(self, at: int, keys: list, items: list) -> None:
        self._keys.insert(at, keys)
        self._items.insert(at, items)
        self._lasts.insert(at, keys[-1])
        self._frozen.insert(at, None)
        self._made = None

    def _changed(self, chunk: int) -> None:
        self._lasts[chunk] = self._keys[chunk][-1]
        self._frozen[chunk] = None
        self._made = None
