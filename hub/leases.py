"""Work shared by hub processes, split into partitions that each process leases.

The periodic jobs that look at every tenant (the expiry sweep, alert escalation) must run once per item, not once
per process, and must go on when a process dies. Tenants are hashed into ``count`` partitions; each partition is a
document in ``work_leases`` that one process owns until its lease lapses. Every process renews what it holds on a
heartbeat, takes free or lapsed partitions up to a fair share of the processes it can see, and gives back what is
above its share, so a new process gets work and a dead one's work is taken over within a lease.

A lease is a promise of exclusivity only while it is renewed: work done under it must itself be safe to repeat
(the sweep's alerts are deduplicated, escalation is a compare-and-set), which makes a paused process that briefly
overlaps with its successor harmless.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
import zlib
from collections.abc import Iterable
from contextlib import suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from hub.dates import utcnow
from hub.sharding import Unsharded

if TYPE_CHECKING:
    from hub.db import Database
    from hub.state import HubState

log = logging.getLogger("lotpulse.leases")
COLLECTION = "work_leases"
SHARDING = Unsharded("one document per job and process: the leases of the hub processes themselves")
PARTITIONS = 16


def partition_of(key: str, count: int = PARTITIONS) -> int:
    """Stable across processes and restarts (unlike ``hash``)."""
    return zlib.crc32(key.encode()) % count


class Partitions:
    def __init__(self, database: Database, job: str, *, count: int = PARTITIONS, lease_seconds: float = 10.0,
                 name: str | None = None) -> None:
        self.collection = database.db[COLLECTION]
        self.job, self.count = job, count
        self.lease = timedelta(seconds=lease_seconds)
        self.name = name or f"{job}-{uuid.uuid4().hex[:8]}"
        self.held: frozenset[int] = frozenset()

    def owns(self, key: str) -> bool:
        return partition_of(key, self.count) in self.held

    def mine(self, keys: Iterable[str]) -> list[str]:
        return [key for key in keys if self.owns(key)]

    async def refresh(self) -> frozenset[int]:
        """Renew, take up to a fair share, give back the excess; answers the partitions held now."""
        now = utcnow()
        until = now + self.lease
        # Presence first: a process that holds nothing yet still counts when the others size their shares.
        writes = [UpdateOne({"_id": f"{self.job}:member:{self.name}"},
                            {"$set": {"job": self.job, "member": self.name, "lease_until": until}}, upsert=True)]
        writes += [UpdateOne({"_id": f"{self.job}:{n}"},
                             {"$setOnInsert": {"job": self.job, "n": n, "owner": None, "lease_until": None}},
                             upsert=True) for n in range(self.count)]
        await self.collection.bulk_write(writes, ordered=False)
        await self.collection.update_many({"job": self.job, "owner": self.name}, {"$set": {"lease_until": until}})
        docs = await self.collection.find({"job": self.job}).to_list(None)
        live = {d["member"] for d in docs if "member" in d and d["lease_until"] > now}
        parts = [d for d in docs if "n" in d]
        fair = math.ceil(self.count / len(live | {self.name}))
        mine = sorted(d["n"] for d in parts if d.get("owner") == self.name)
        for n in mine[fair:]:
            await self.collection.update_one({"_id": f"{self.job}:{n}", "owner": self.name},
                                             {"$set": {"owner": None, "lease_until": None}})
        mine = mine[:fair]
        free = [d["n"] for d in parts if d["n"] not in mine and
                (not d.get("owner") or not d.get("lease_until") or d["lease_until"] <= now)]
        for n in free[: max(0, fair - len(mine))]:
            taken = await self.collection.update_one(
                {"_id": f"{self.job}:{n}", "$or": [{"owner": None}, {"lease_until": {"$lte": now}}]},
                {"$set": {"owner": self.name, "lease_until": until}},
            )
            if taken.modified_count:
                mine.append(n)
        held = frozenset(mine)
        if held != self.held:
            log.info("%s holds %d of %d partitions", self.name, len(held), self.count)
        self.held = held
        return held

    async def release(self) -> None:
        with suppress(PyMongoError):
            await self.collection.update_many({"job": self.job, "owner": self.name},
                                              {"$set": {"owner": None, "lease_until": None}})
            await self.collection.delete_one({"_id": f"{self.job}:member:{self.name}"})
        self.held = frozenset()

    async def run(self) -> None:
        """Heartbeat: renew (and rebalance) every third of a lease, for the life of the process."""
        try:
            while True:
                try:
                    await self.refresh()
                except PyMongoError as exc:
                    log.warning("could not renew %s partitions (%s); retrying", self.job, exc)
                await asyncio.sleep(self.lease.total_seconds() / 3)
        finally:
            await asyncio.shield(self.release())


async def tenant_ids(database: Database, partitions: Partitions | None) -> list[str] | None:
    """The tenants whose periodic work this process does now (None: all of them, when nothing is partitioned)."""
    if partitions is None:
        return None
    ids: list[Any] = await database.db["tenants"].distinct("_id")
    return partitions.mine(str(i) for i in ids)


async def start_partitions(hub: HubState) -> None:
    """Startup hook (before the periodic jobs): lease this process's share of tenants and keep renewing it."""
    partitions = Partitions(hub.database, "tenant-work", lease_seconds=hub.settings.work_lease_seconds)
    try:
        await partitions.refresh()
    except PyMongoError as exc:  # the database is not up yet: the heartbeat takes a share once it is
        log.warning("could not lease work partitions yet (%s)", exc)
    hub.partitions = partitions
    hub.spawn("work-partitions", partitions.run)
