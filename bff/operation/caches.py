"""Caches of documents bounded in bytes: parses, validation results, costs, persisted queries.

A client chooses the text of every document, so a cache keyed by it must be bounded by what it
holds, not by how many entries: 1,000 entries of 100 KB documents are 100 MB of text and more of
syntax trees. Each cache here has a byte budget; an entry weighs its key's length times a factor
for what is derived from it (a syntax tree takes about 30 bytes per byte of source here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from cachetools import LRUCache

__all__ = ["AST_BYTES_PER_SOURCE_BYTE", "TextCache"]

AST_BYTES_PER_SOURCE_BYTE = 30
"""Rough memory of a graphql-core syntax tree per byte of document text (measured: 25-35)."""

V = TypeVar("V")


class TextCache(Generic[V]):
    """An LRU of values computed from a text, holding at most ``max_bytes`` (estimated).

    ``weight`` is the bytes an entry costs per byte of its text. ``hits`` and ``misses`` count
    lookups, for tests and metrics.
    """

    def __init__(self, max_bytes: int, *, weight: int = 1) -> None:
        self._weight = weight
        self._entries: LRUCache[str, tuple[int, V]] = LRUCache(maxsize=max(max_bytes, 1), getsizeof=_size)
        self.hits = 0
        self.misses = 0

    def get_or_make(self, text: str, make: Callable[[str], V]) -> V:
        """The value for ``text``, made with ``make(text)`` on a miss; what ``make`` raises is not kept."""
        found = self._entries.get(text)
        if found is not None:
            self.hits += 1
            return found[1]
        self.misses += 1
        value = make(text)
        size = (len(text) + 1) * self._weight
        if size <= self._entries.maxsize:
            self._entries[text] = (size, value)
        return value

    def peek(self, text: str) -> V | None:
        """The value for ``text`` when it is cached (a hit), else ``None`` (not counted)."""
        found = self._entries.get(text)
        if found is None:
            return None
        self.hits += 1
        return found[1]

    @property
    def size_bytes(self) -> int:
        """What the entries weigh now (estimated bytes)."""
        return int(self._entries.currsize)


def _size(entry: tuple[int, object]) -> int:
    return entry[0]
