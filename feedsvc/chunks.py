"""Long article sequences kept in shared chunks: a new version costs the chunk that changed.

The site's articles and its biggest listings hold up to every article of the archive. Made
into a fresh tuple on each edit, they cost a copy of 100,000 references, and the cycle
collector then walks each new one while it is young: an edit cost what the archive holds.
Chunked versions share every chunk an edit did not touch.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
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
    between versions: a version costs the chunks changed since the last one. Keys are
    made when needed, not kept: 100,000 articles' sort keys would cost 17 MB.
    """

    def __init__(self, key: Callable[[Any], Any]) -> None:
        self._key = key
        self._items: list[list] = []  # per chunk, its items in ascending key order
        self._lasts: list = []  # per chunk, its last item's key: which chunk a key goes in
        self._frozen: list[tuple | None] = []  # per chunk, its tuple since it last changed
        self._made: Chunked | tuple | None = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def first_key(self) -> Any:
        """Return the smallest key (IndexError when empty)."""
        return self._key(self._items[0][0])

    @classmethod
    def in_order(cls, key: Callable[[Any], Any], items: Sequence) -> ChunkedList:
        """Return a list of `items`, already in key order, in full chunks as appends make.

        A first listing of 100,000 articles: one key per chunk, not one per item.
        """
        made = cls(key)
        made._items = [list(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
        made._lasts = [key(chunk[-1]) for chunk in made._items]
        made._frozen = [None] * len(made._items)
        made._len = len(items)
        return made

    def append(self, item: object, key: Any = None) -> None:
        """Add an item whose key is not smaller than any held (a first listing, in order).

        `key`: the item's, when the caller has it already.
        """
        self._append(item, self._key(item) if key is None else key)

    def insert(self, item: object, key: Any = None) -> None:
        """Add an item at its key's place (before those with an equal key); `key` as append's."""
        key = self._key(item) if key is None else key
        if not self._items or key > self._lasts[-1]:  # the oldest of all: as a first load adds
            self._append(item, key)
            return
        chunk = bisect_left(self._lasts, key)  # the first whose last key is not smaller
        items = self._items[chunk]
        items.insert(bisect_left(items, key, key=self._key), item)  # before its last item
        self._len += 1
        if len(items) > 2 * CHUNK:  # split in two halves
            half = len(items) // 2
            self._new_chunk(chunk + 1, items[half:], self._lasts[chunk])
            del items[half:]
            self._changed(chunk, self._key(items[-1]))
        else:
            self._changed(chunk, self._lasts[chunk])

    def remove(self, item: object) -> None:
        """Remove the first item whose key is `item`'s (one must be held)."""
        key = self._key(item)
        chunk = bisect_left(self._lasts, key)
        items = self._items[chunk] if chunk < len(self._items) else []
        index = bisect_left(items, key, key=self._key)
        if index == len(items) or self._key(items[index]) != key:
            raise KeyError(key)
        del items[index]
        self._len -= 1
        if items:
            self._changed(chunk, self._key(items[-1]))
            return
        for parts in (self._items, self._lasts, self._frozen):
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

    def _append(self, item: object, key: Any) -> None:
        if not self._items or len(self._items[-1]) >= CHUNK:
            self._new_chunk(len(self._items), [item], key)
        else:
            self._items[-1].append(item)
            self._changed(len(self._items) - 1, key)
        self._len += 1

    def _new_chunk(self, at: int, items: list, last_key: Any) -> None:
        self._items.insert(at, items)
        self._lasts.insert(at, last_key)
        self._frozen.insert(at, None)
        self._made = None

    def _changed(self, chunk: int, last_key: Any) -> None:
        self._lasts[chunk] = last_key
        self._frozen[chunk] = None
        self._made = None
