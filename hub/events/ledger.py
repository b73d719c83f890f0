"""The lease ledger of live subscriptions (the ``live_subscriptions`` collection).

``max_subscriptions_per_tenant`` holds across hub processes: every live subscription has an entry here, leased by its
process and renewed while it runs, so a crashed process's entries lapse on their own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo.errors import PyMongoError

from hub.dates import utcnow
from hub.errors import RateLimited
from hub.sharding import Unsharded

if TYPE_CHECKING:
    from hub.db import Database

log = logging.getLogger("lotpulse.bus")
LEDGER = "live_subscriptions"
SHARDING = Unsharded("a few hundred small documents, renewed by each process on a heartbeat")
LEASE_SECONDS = 90.0


class Ledger:
    """Every process's live subscriptions, so a tenant's limit counts them all, wherever they are connected."""

    def __init__(self, database: Database, lease_seconds: float = LEASE_SECONDS) -> None:
        self.collection = database.db[LEDGER]
        self.process = uuid.uuid4().hex
        self.lease = timedelta(seconds=lease_seconds)
        self._releases: set[asyncio.Task[Any]] = set()

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("tenant_id", 1), ("expires_at", 1)])
        await self.collection.create_index([("expires_at", 1)], expireAfterSeconds=0)

    async def admit(self, tenant_id: str, limit: int) -> ObjectId:
        """Record one more subscription for the tenant, or refuse it when that would pass ``limit``."""
        now = utcnow()
        entry = ObjectId()
        # Insert, then count: two processes admitting at once may both refuse, never both pass the limit.
        await self.collection.insert_one(
            {"_id": entry, "tenant_id": tenant_id, "process": self.process, "expires_at": now + self.lease}
        )
        live = await self.collection.count_documents({"tenant_id": tenant_id, "expires_at": {"$gt": now}})
        if live > limit:
            await self.collection.delete_one({"_id": entry})
            raise RateLimited(f"tenant already has {limit} live subscriptions")
        return entry

    def release(self, entry: ObjectId) -> None:
        """Forget a subscription; runs on its own, since the subscriber's task is usually being cancelled."""
        task = asyncio.create_task(self._delete(entry))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _delete(self, entry: ObjectId) -> None:
        try:
            await self.collection.delete_one({"_id": entry})
        except PyMongoError:
            pass  # shutting down, or the database is away: the entry's lease lapses on its own

    async def renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await self.collection.update_many(
                    {"process": self.process}, {"$set": {"expires_at": utcnow() + self.lease}}
                )
            except PyMongoError as exc:
                log.warning("could not renew live subscription leases (%s); retrying", exc)
