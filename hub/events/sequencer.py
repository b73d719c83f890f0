"""The event sequencer: after commit, one process at a time gives events their ``seq``, in batches.

Writers insert events with ``pending: true`` and no ``seq``, so event-writing transactions share no document and
need no lock (docs/event-log.md). One hub process holds the sequencer lease and stamps pending events with
consecutive numbers, oldest id first, many per round trip. Readers (subscriptions, the webhook dispatcher) read only
stamped events, by ``seq``; a transaction that commits late simply gets a later number. A reader that has seen
``seq`` n therefore never meets a new event below n later, which is what makes an event id an exact resume cursor.

Stamps are plain single-document updates in one ordered ``bulk_write`` (no transaction: a sequencer killed mid-batch
holds no lock that could stall anyone; the server finishes the batch or stops at the first refusal). Two processes
that both believe they lead (a paused leader whose lease lapsed) cannot break the order, because every stamp is
fenced twice:

- the unique index on ``seq`` refuses a number that is taken, and
- the filter ``{_id, pending: true}`` with ``upsert`` turns "already stamped by the other" into a duplicate ``_id``
  error instead of a silent no-op,

and an ordered bulk stops at its first error. Numbers are therefore handed out contiguously from the highest one
stored: a stale leader's first stamp collides, and it steps back and re-reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from hub.dates import utcnow
from hub.sharding import Unsharded

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from hub.db import Database

log = logging.getLogger("lotpulse.sequencer")
STATE = "event_sequencer"
SHARDING = Unsharded("one document: the sequencer's lease and high-water mark")
STATE_ID = "events"
BATCH = 1000


class Sequencer:
    def __init__(
        self, database: Database, *, lease_seconds: float = 10.0, poll_seconds: float = 1.0, name: str | None = None
    ) -> None:
        self.events = database.db["events"]
        self.state = database.db[STATE]
        self.name = name or f"sequencer-{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.leader = False
        self.renew_at = 0.0  # monotonic: when the lease is half gone
        self.retry_at = 0.0  # monotonic: when a process that is not leading asks for the lease again
        self.next_seq: int | None = None  # None: re-read from the database before the next stamp
        self.stamped = 0
        self.wakeup = asyncio.Event()

    def wake(self, *_: Any) -> None:
        """An event was inserted somewhere (the bus saw it): stamp now, not at the next poll."""
        self.wakeup.set()

    async def _lead(self) -> bool:
        """Take or renew the lease (it also carries the high-water mark, which outlives expired events)."""
        if self.leader and time.monotonic() < self.renew_at:
            return True
        if not self.leader and time.monotonic() < self.retry_at:
            # Another process led at the last try: ask once per poll, not on every insert this process sees (with a
            # second hub that was a refused upsert per batch of movements, bench/writers.py).
            return False
        now = utcnow()
        update: dict[str, Any] = {"$set": {"owner": self.name, "lease_until": now + self.lease}}
        if self.leader and self.next_seq is not None:
            update["$max"] = {"last": self.next_seq - 1}
        try:
            raw = await self.state.find_one_and_update(
                {"_id": STATE_ID, "$or": [{"owner": self.name}, {"lease_until": {"$lt": now}}, {"owner": None}]},
                update,
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            raw = None  # another process holds it
        if raw is None:
            if self.leader:
                log.info("%s lost the sequencer lease", self.name)
            self.leader, self.next_seq = False, None
            self.retry_at = time.monotonic() + min(self.poll_seconds, self.lease.total_seconds() / 3)
            return False
        if not self.leader:
            log.info("%s sequences the event log", self.name)
            self.next_seq = None
        self.leader = True
        self.renew_at = time.monotonic() + self.lease.total_seconds() / 2
        return True

    async def _next(self) -> int:
        if self.next_seq is None:
            self.next_seq = await highest_seq(self.events.database) + 1
        return self.next_seq

    async def stamp_once(self) -> int:
        """Stamp up to ``BATCH`` pending events if this process leads; answers how many it stamped."""
        if not await self._lead():
            return 0
        pending = await self.events.find({"pending": True}, {"_id": 1}).sort("_id", 1).limit(BATCH).to_list(BATCH)
        if not pending:
            return 0
        first = await self._next()
        now = utcnow()
        stamps = [
            UpdateOne(
                {"_id": doc["_id"], "pending": True},
                {
                    "$set": {"seq": first + offset},
                    "$unset": {"pending": ""},
                    # Only if the event vanished meanwhile: a void entry keeps the numbering contiguous.
                    "$setOnInsert": {"type": "void", "tenant_id": "", "audience": [], "payload": {},
                                     "occurred_at": now, "expires_at": now},
                },
                upsert=True,
            )
            for offset, doc in enumerate(pending)
        ]
        try:
            result = await self.events.bulk_write(stamps, ordered=True)
            done = result.modified_count + result.upserted_count
        except BulkWriteError as exc:
            # Another sequencer stamped some of these, or took these numbers: keep what we did, re-read the top.
            done = int(exc.details.get("nModified", 0)) + int(exc.details.get("nUpserted", 0))
            log.info("%s met another sequencer's stamps; re-reading the log's top", self.name)
            self.next_seq = None
            self.stamped += done
            return done
        self.next_seq = first + done
        self.stamped += done
        return done

    async def release(self) -> None:
        if self.leader:
            with suppress(PyMongoError):
                update: dict[str, Any] = {"$set": {"owner": None, "lease_until": None}}
                if self.next_seq is not None:
                    update["$max"] = {"last": self.next_seq - 1}
                await self.state.update_one({"_id": STATE_ID, "owner": self.name}, update)
            self.leader = False

    async def run(self) -> None:
        try:
            while True:
                self.wakeup.clear()
                try:
                    stamped = await self.stamp_once()
                except PyMongoError as exc:
                    log.warning("sequencing events failed (%s); retrying", exc)
                    self.next_seq = None
                    stamped = 0
                if stamped < BATCH:
                    # The lease is renewed at least every half lease even when idle.
                    wait = min(self.poll_seconds, self.lease.total_seconds() / 3)
                    with suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), wait)
        finally:
            await asyncio.shield(self.release())


async def highest_seq(db: AsyncDatabase[Any]) -> int:
    """The highest number given out so far: the high-water mark kept with the lease, or a stamp made after it.

    Only the numbers above the mark are read (a lease renewal's worth); asking the log for its top by sorting on
    ``seq`` reads every event on SecantusDB (bench/growth.py)."""
    state = await db[STATE].find_one({"_id": STATE_ID}, {"last": 1})
    last = int((state or {}).get("last") or 0)
    top = await db["events"].find_one({"seq": {"$gt": last}}, {"seq": 1}, sort=[("seq", -1)])
    return max(last, int(top["seq"]) if top else 0)
