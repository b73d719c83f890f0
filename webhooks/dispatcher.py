"""The dispatcher: reads the event log and creates one delivery per (event, endpoint) that may receive it.

Correct from the durable log alone. The cursor is the event's ``seq``, which the sequencer stamps after commit
(hub/events/sequencer.py; ObjectIds are no order: they are made before their transaction commits), so once the
dispatcher has read ``seq`` n no event below n can still appear. The cursor is saved every few seconds; re-reading
after a restart is harmless, since the unique index on (event_id, endpoint_id) keeps a delivery from being created
twice.

One dispatcher at a time holds a lease on the cursor; any hub process takes over when the lease lapses.

The deliveries for endpoints the worker of the same process serves are not inserted here: the worker takes them
(``Sender.take``), sends them, and inserts them finished. The saved cursor never passes one it has not inserted
(``Sender.owed``), so after a crash the next dispatcher makes it again, with the interrupted attempt the dead
worker's in-flight document names.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hub.models.event import Event
from tenants import access
from webhooks import signing
from webhooks.clock import Clock, SystemClock
from webhooks.models import (
    INTERRUPTED,
    DeliveriesInFlight,
    DeliveryState,
    DispatcherCursor,
    WebhookDelivery,
    WebhookEndpoint,
)

log = logging.getLogger("lotpulse.webhooks.dispatcher")
CURSOR_ID = "dispatcher"
BATCH = 500
SAVE_EVERY = timedelta(seconds=2)



def _paged(event: Mapping[str, Any]) -> str | None:
    """The one endpoint a ``page_webhook`` escalation step pages (hub/services/escalation.py), if it names one."""
    escalation = (event.get("payload") or {}).get("escalation") or {}
    endpoint_id = escalation.get("webhookEndpointId")
    return str(endpoint_id) if endpoint_id else None


def _wall() -> datetime:
    return datetime.now(UTC)


def _before(event_id: ObjectId, endpoint: WebhookEndpoint) -> bool:
    """The event was raised before the endpoint existed (to the second: ids carry whole seconds)."""
    return ObjectId(event_id).generation_time < endpoint.id.generation_time  # type: ignore[union-attr]


async def plan(
    events: list[Mapping[str, Any]], endpoints: list[WebhookEndpoint], now: datetime, *, replay: bool = False
) -> list[dict[str, Any]]:
    """The delivery documents for ``events`` x ``endpoints``, keeping only entitled, interested endpoints.

    Outside a replay an endpoint hears only events raised after it was created.
    """
    by_tenant: dict[str, list[WebhookEndpoint]] = {}
    for endpoint in endpoints:
        by_tenant.setdefault(endpoint.tenant_id, []).append(endpoint)
    owners = {
        event["tenant_id"]
        for event in events
        if any(tenant != event["tenant_id"] and tenant in by_tenant for tenant in event.get("audience", []))
    }
    # Read afresh: the dispatcher reads the log on its own clock, possibly ahead of this process's cache.
    shares = await access.shares_of_many(owners, fresh=True)
    planned: list[dict[str, Any]] = []
    for event in events:
        owner, event_type = event["tenant_id"], event["type"]
        bodies: dict[str, str] = {}  # per tenant: a partner may hear less of an event than its owner
        paged = _paged(event)
        for tenant in set(event.get("audience", [])):
            scope = access.event_scope(event_type, event.get("payload"))
            if not access.reaches(shares.get(owner, {}), owner, tenant, scope):
                continue  # the partnership was revoked, or never shared this scope
            for endpoint in by_tenant.get(tenant, []):
                if not endpoint.enabled:
                    continue
                # A page goes to the endpoint it names, whatever that one subscribed to, and to no other.
                if (str(endpoint.id) != paged) if paged else not endpoint.wants(event_type):
                    continue
                if not replay and _before(event["_id"], endpoint):
                    continue
                if tenant not in bodies:
                    bodies[tenant] = signing.body_for(event, tenant)
                planned.append(
                    {
                        "event_id": event["_id"],
                        "endpoint_id": endpoint.id,
                        "tenant_id": endpoint.tenant_id,
                        "event_type": event_type,
                        "subject": event.get("subject"),
                        "seq": event.get("seq"),
                        "body": bodies[tenant],
                        "state": DeliveryState.pending.value,
                        "next_attempt_at": now,
                        "failures": 0,
                        "attempt_count": 0,
                        "lease_token": None,
                        "lease_until": None,
                        "claims": [],
                        "delivered_at": None,
                        "last_error": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
    return planned


async def unmade(planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The planned deliveries that do not exist yet (after a restart the dispatcher re-reads what followed its last
    saved cursor)."""
    if not planned:
        return []
    existing = WebhookDelivery.get_pymongo_collection().find(
        {"event_id": {"$in": sorted({doc["event_id"] for doc in planned})}},
        projection={"_id": 0, "event_id": 1, "endpoint_id": 1},
    )
    have = {(raw["event_id"], raw["endpoint_id"]) async for raw in existing}
    return [doc for doc in planned if (doc["event_id"], doc["endpoint_id"]) not in have]


async def insert_new(planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert deliveries, skipping those that exist already; answers the ones inserted."""
    return await _insert(await unmade(planned))


async def _insert(planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not planned:
        return []
    try:
        await WebhookDelivery.get_pymongo_collection().insert_many(planned, ordered=False)
        return planned
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != 11000 for error in errors):
            raise
        duplicates = {error["index"] for error in errors}
        return [doc for index, doc in enumerate(planned) if index not in duplicates]


async def endpoints_for(tenants: Iterable[str]) -> list[WebhookEndpoint]:
    return await WebhookEndpoint.find({"tenant_id": {"$in": sorted(set(tenants))}, "enabled": True}).to_list()


class Sender(Protocol):
    """The worker of the dispatcher's process (webhooks/worker.py)."""

    name: str

    def take(self, planned: list[dict[str, Any]], endpoints: list[WebhookEndpoint]) -> list[dict[str, Any]]:
        """Takes the deliveries it will send and insert itself; answers the rest, to insert pending."""

    def offer(self, created: list[dict[str, Any]], endpoints: list[WebhookEndpoint]) -> None:
        """Deliveries were inserted pending."""

    def full(self) -> bool:
        """Holding as many deliveries as it may: read no further for now."""

    def owed(self) -> int | None:
        """The lowest event seq of a delivery taken and not inserted yet."""

    def rewind(self) -> int | None:
        """The lowest event seq of deliveries taken and then dropped uninserted, once: to be read again."""


class Dispatcher:
    def __init__(
        self,
        *,
        lease: timedelta = timedelta(seconds=30),
        poll_seconds: float = 0.5,
        clock: Clock | None = None,
        worker: Sender | None = None,
    ) -> None:
        self.name = f"dispatcher-{uuid.uuid4().hex[:8]}"
        self.lease, self.poll_seconds = lease, poll_seconds
        self.clock = clock or SystemClock()
        self.worker = worker
        # Deliveries other workers were sending when they stopped (their in-flight documents, read on taking the
        # lead): made again with an interrupted attempt each. The documents go once the cursor has passed them.
        self.interrupted: dict[tuple[ObjectId, ObjectId], list[dict[str, Any]]] = {}
        self.orphans: dict[str, int] = {}  # in-flight document -> the latest event seq it names
        self.wakeup = asyncio.Event()
        self.leader = False
        self.position = 0  # the seq of the last event dispatched
        self.saved = 0
        self.more = False  # the last pass hit the batch limit: go again without sleeping
        self.renew_at = self.save_at = _wall()

    async def _lead(self) -> bool:
        """Take or renew the cursor lease, saving the position; False while another dispatcher leads.

        A leader writes only when half its lease is gone or its position is worth saving (every few seconds): a
        position saved late only means re-reading a few seconds of events after a restart, which dedupes.
        """
        now = _wall()
        if self.leader and now < self.renew_at and (self.savable() == self.saved or now < self.save_at):
            return True
        update: dict[str, Any] = {"owner": self.name, "lease_until": now + self.lease}
        if self.leader:
            update["position"] = self.savable()
        try:
            raw = await DispatcherCursor.get_pymongo_collection().find_one_and_update(
                {"_id": CURSOR_ID, "$or": [{"owner": self.name}, {"lease_until": {"$lt": now}}, {"owner": None}]},
                {"$set": update},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            raw = None  # the document exists and another dispatcher holds it
        if raw is None:
            self.leader = False
            return False
        self.renew_at = now + self.lease / 2
        self.save_at = now + SAVE_EVERY
        if not self.leader:
            self.leader = True
            stored = raw.get("position")
            self.position = stored if isinstance(stored, int) else await self._initial_position()
            await self._read_orphans()
            log.info("%s leads webhook dispatch after event seq %s", self.name, self.position)
        self.saved = raw.get("position") if isinstance(raw.get("position"), int) else -1
        return True

    async def _initial_position(self) -> int:
        """First start: nothing raised before the oldest endpoint is owed to anyone (``plan`` filters per endpoint)."""
        events = Event.get_pymongo_collection()
        oldest = await WebhookEndpoint.get_pymongo_collection().find_one({}, sort=[("_id", 1)], projection={"_id": 1})
        if oldest is None:
            last = await events.find_one({"seq": {"$gt": 0}}, sort=[("seq", -1)], projection={"seq": 1})
            return int(last["seq"]) if last else 0
        since = ObjectId.from_datetime(oldest["_id"].generation_time - timedelta(minutes=1))
        first = await events.find_one({"_id": {"$gte": since}, "seq": {"$gt": 0}}, sort=[("seq", 1)],
                                      projection={"seq": 1})
        return int(first["seq"]) - 1 if first else 0

    def savable(self) -> int:
        """The position that may be saved: before every delivery the worker took and has not inserted yet."""
        owed = self.worker.owed() if self.worker is not None else None
        return self.position if owed is None else min(self.position, owed - 1)

    async def _read_orphans(self) -> None:
        self.interrupted, self.orphans = {}, {}
        own = self.worker.name if self.worker is not None else None
        async for raw in DeliveriesInFlight.get_pymongo_collection().find({"_id": {"$ne": own}}):
            self.orphans[raw["_id"]] = raw.get("seq_max", 0)
            for batch in (raw.get("batches") or {}).values():
                attempt = {"at": batch["at"], "status_code": None, "duration_ms": 0, "response_excerpt": None,
                           "error": INTERRUPTED, "worker": raw["_id"]}
                for event_id in batch["events"]:
                    self.interrupted.setdefault((event_id, batch["endpoint_id"]), []).append(attempt)

    async def _forget_orphans(self) -> None:
        """Delete the in-flight documents of stopped workers once every delivery they name has been made again."""
        done = [name for name, seq in self.orphans.items() if seq <= self.position]
        if done:
            await DeliveriesInFlight.get_pymongo_collection().delete_many(
                {"_id": {"$in": done}, "seq_max": {"$lte": self.position}}
            )
            for name in done:
                del self.orphans[name]
            if not self.orphans:
                self.interrupted = {}

    async def release(self) -> None:
        if self.leader:
            await DispatcherCursor.get_pymongo_collection().update_one(
                {"_id": CURSOR_ID, "owner": self.name},
                {"$set": {"owner": None, "lease_until": None, "position": self.savable()}},
            )
            self.leader = False

    async def run_once(self) -> int:
        """One pass over the events after the cursor. Answers the number of deliveries made."""
        if not await self._lead():
            return 0
        lost = self.worker.rewind() if self.worker is not None else None
        if lost is not None:
            self.position = min(self.position, lost - 1)  # taken and dropped uninserted: made again
        if self.worker is not None and self.worker.full():
            self.more = False
            return 0
        collection = Event.get_pymongo_collection()
        batch = (
            await collection.find({"seq": {"$gt": self.position}}).sort("seq", 1).limit(BATCH).to_list(BATCH)
        )
        created: list[dict[str, Any]] = []
        endpoints: list[WebhookEndpoint] = []
        made = 0
        if batch:
            endpoints = await endpoints_for(tenant for event in batch for tenant in event.get("audience", []))
            if endpoints:
                planned = await unmade(await plan(batch, endpoints, self.clock.now()))
                made = len(planned)
                for doc in planned:
                    attempts = self.interrupted.get((doc["event_id"], doc["endpoint_id"]))
                    if attempts:
                        doc.update(attempts=attempts, attempt_count=len(attempts),
                                   claims=[attempt["at"] for attempt in attempts])
                if self.worker is not None:
                    planned = self.worker.take(planned, endpoints)
                created = await _insert(planned)
                made -= len(planned) - len(created)
            self.position = int(batch[-1]["seq"])
        if self.orphans:
            await self._forget_orphans()
        self.more = len(batch) == BATCH
        if created and self.worker is not None:
            self.worker.offer(created, endpoints)
        return made

    def wake(self) -> None:
        """A new event is in the log (the process's event bus saw it): dispatch now rather than at the next poll."""
        self.wakeup.set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.run_once()
                except Exception:
                    log.exception("webhook dispatch pass failed; retrying")
                    self.more = False
                if not self.more:
                    with suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), self.poll_seconds)
                self.wakeup.clear()
        finally:
            await asyncio.shield(self.release())
