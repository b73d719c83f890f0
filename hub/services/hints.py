"""What this process last committed, by key: lets a batch skip a read whose answer it already knows.

A hint, never the truth: every write based on one is checked by the database (a guarded or matched-count write), and
a failed check forgets the batch's hints and starts the transaction over, reading. Entries are remembered only after
a commit (what a rolled-back transaction wrote never existed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Hints(Generic[K, V]):
    LIMIT = 200_000  # entries; past it the cache starts empty again (a hint costs only a read to rebuild)

    def __init__(self) -> None:
        self._known: dict[K, V] = {}

    def get(self, keys: Iterable[K]) -> dict[K, V] | None:
        """The value of every key, or None when any of them is not known."""
        found = {}
        for key in keys:
            entry = self._known.get(key)
            if entry is None:
                return None
            found[key] = entry
        return found

    def remember(self, entries: dict[K, V]) -> None:
        if len(self._known) + len(entries) > self.LIMIT:
            self._known.clear()
        self._known.update(entries)

    def forget(self, keys: Iterable[K]) -> None:
        for key in keys:
            self._known.pop(key, None)
