"""What this process last committed to each stock position: lets a batch skip reading its positions.

A hint, never the truth: every write based on it is guarded on the on-hand it assumed (``{_id, on_hand}``), so a
position another writer (or process) changed meanwhile matches nothing, the transaction starts over, and the retry
reads the positions from the database. Entries are written only after a commit and dropped as soon as a write based on
them fails. Between the writers of one store, which usually post to one process, the hint is right and a batch writes
its positions without reading them first.
"""

from __future__ import annotations

from collections.abc import Iterable

from bson import ObjectId

# (database, tenant, location, SKU, lot)
Key = tuple[str, str, ObjectId, ObjectId, ObjectId | None]


class KnownPositions:
    LIMIT = 200_000  # entries; past it the cache starts empty again (a hint costs only a read to rebuild)

    def __init__(self) -> None:
        self._known: dict[Key, tuple[ObjectId, int]] = {}

    def get(self, keys: Iterable[Key]) -> dict[Key, tuple[ObjectId, int]] | None:
        """(position id, on-hand) of every key, or None when any of them is not known."""
        found = {}
        for key in keys:
            entry = self._known.get(key)
            if entry is None:
                return None
            found[key] = entry
        return found

    def remember(self, entries: dict[Key, tuple[ObjectId, int]]) -> None:
        if len(self._known) + len(entries) > self.LIMIT:
            self._known.clear()
        self._known.update(entries)

    def forget(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self._known.pop(key, None)


known = KnownPositions()
