"""The lease ledger of live subscriptions (the ``live_subscriptions`` collection).

``max_subscriptions_per_tenant`` holds across hub processes: each process keeps one document per tenant it serves,
with how many live subscriptions of that tenant it holds, leased and renewed while the process runs, so a crashed
process's counts lapse on their own. The renewal is one write per tenant served, not one per subscription: with a
document per subscription, renewing 2,000 of them took SecantusDB 1.5-2.5 s every 30 s, and every broadcast in
that window waited for the database behind it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError, PyMongoError

from hub.dates import utcnow
from hub.errors import RateLimited
from hub.sharding import Unsharded

if TYPE_CHECKING:
    from hub.db import Database

log = logging.getLogger("lotpulse.bus")
LEDGER = "live_subscriptions"
SHARDING = Unsharded("one small document per hub process and tenant it serves, renewed on a heartbeat")
LEASE_SECONDS = 90.0


class Ledger:
    """Every process's live subscriptions by tenant, so a tenant's limit counts them all, wherever they are
    connected."""

    def __init__(self, database: Database, lease_seconds: float = LEASE_SECONDS) -> None:
        self.collection = database.db[LEDGER]
        self.process = uuid.uuid4().hex
        self.lease = timedelta(seconds=lease_seconds)
        self._releases: set[asyncio.Task[Any]] = set()
        # Decrements the database missed (it was away): the count would otherwise stay high for as long as this
        # process renews it. Applied by the next renewal, as increments, so no concurrent change is overwritten.
        self._missed: dict[str, tuple[str, int]] = {}

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("tenant_id", 1), ("expires_at", 1)])
        await self.collection.create_index([("expires_at", 1)], expireAfterSeconds=0)

    async def admit(self, tenant_id: str, limit: int) -> str:
        """Count one more subscription of the tenant here, or refuse it when that would pass ``limit``; answers the
        entry to ``release``."""
        entry = f"{self.process}:{tenant_id}"
        # Add, then count: two processes admitting at once may both refuse, never both pass the limit.
        await self._add(entry, tenant_id, 1)
        live = 0
        async for doc in self.collection.find({"tenant_id": tenant_id, "expires_at": {"$gt": utcnow()}},
                                              {"count": 1}):
            live += doc.get("count", 1)  # an entry written by an earlier version stands for one subscription
        if live > limit:
            try:
                await self._add(entry, tenant_id, -1)
            except PyMongoError:
                self._miss(entry, -1)
            raise RateLimited(f"tenant already has {limit} live subscriptions")
        return entry

    async def _add(self, entry: str, tenant_id: str, count: int) -> None:
        change = {"$inc": {"count": count}, "$set": {"expires_at": utcnow() + self.lease},
                  "$setOnInsert": {"tenant_id": tenant_id, "process": self.process}}
        try:
            await self.collection.update_one({"_id": entry}, change, upsert=True)
        except DuplicateKeyError:  # another subscription of the same tenant here inserted it a moment before
            await self.collection.update_one({"_id": entry}, change, upsert=True)

    def release(self, entry: str) -> None:
        """Forget a subscription; runs on its own, since the subscriber's task is usually being cancelled."""
        task = asyncio.create_task(self._release(entry))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release(self, entry: str) -> None:
        try:
            await self.collection.update_one({"_id": entry}, {"$inc": {"count": -1}})
        except PyMongoError:
            self._miss(entry, -1)  # shutting down, or the database is away: the next renewal applies it

    def _miss(self, entry: str, count: int) -> None:
        tenant_id, missed = self._missed.get(entry, (entry.split(":", 1)[1], 0))
        self._missed[entry] = (tenant_id, missed + count)

    async def renew(self) -> None:
        """Extend this process's leases, and apply the decrements the database missed."""
        missed, self._missed = self._missed, {}
        try:
            for entry, (tenant_id, count) in sorted(missed.items()):
                await self._add(entry, tenant_id, count)
                del missed[entry]
            await self.collection.update_many(
                {"process": self.process}, {"$set": {"expires_at": utcnow() + self.lease}}
            )
        finally:
            for entry, (_, count) in missed.items():
                self._miss(entry, count)

    async def renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await self.renew()
            except PyMongoError as exc:
                log.warning("could not renew live subscription leases (%s); retrying", exc)
