"""Batches of one process that write the same stock positions take turns instead of conflicting.

Two transactions that change the same position cannot both commit: the database lets the first writer win and the
other starts over, after having done all its reads and writes for nothing. With several writers on a few busy
positions (scanners at one warehouse booking the same SKUs) most of the database's work was such wasted attempts,
each retry made the next conflict likelier, and batches ran into their deadline (``SERVICE_UNAVAILABLE``). Within
one process a batch therefore waits, before its transaction, for the batches ahead of it that name the same
(location, SKU); batches on other positions go on in parallel. Across processes the database's conflict detection
and the transaction retries still decide, as before.

Keys are taken in one global order, so two batches never wait for each other crosswise; an entry lives only while
a batch holds or awaits it, so the table does not grow with the number of positions ever written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holders and waiters


class KeyedLocks:
    def __init__(self) -> None:
        self._entries: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, keys: Iterable[Hashable]) -> AsyncIterator[None]:
        taken: list[tuple[Hashable, _Entry]] = []
        held: list[_Entry] = []
        try:
            for key in sorted(set(keys)):  # type: ignore[type-var]
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = _Entry()
                entry.users += 1
                taken.append((key, entry))
                await entry.lock.acquire()
                held.append(entry)
            yield
        finally:
            for entry in held:
                entry.lock.release()
            for key, entry in taken:
                entry.users -= 1
                if entry.users == 0:
                    del self._entries[key]


positions = KeyedLocks()
