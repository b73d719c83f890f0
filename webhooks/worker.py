"""The delivery worker: each endpoint's due deliveries are sent by one lane, in one process at a time.

Endpoints are spread over the hub processes by leased partitions (hub/leases.py): a process serves only the
endpoints of the partitions it holds, and a dead process's partitions are taken over once their lease lapses. In a
process every endpoint with due deliveries gets a lane of its own, so one slow ERP holds only its own slots.

New deliveries for endpoints this process serves are sent first and written once, finished: the dispatcher of the
process hands them to their lane without inserting them (``take``), the lane sends a batch and inserts every delivery
with its outcome and attempt log in one ``insert_many`` (a failed one goes in pending, with its next attempt; one
held back by its subject's order goes in pending, unsent). Updating each delivery document as it is claimed and
recorded cost the database more per delivery than sending it does. Until a batch is inserted the dispatcher's saved
cursor stays before it (``owed``), and before sending the lane names the batch in the worker's in-flight document
(models.DeliveriesInFlight): after a crash the dispatcher that re-reads the log creates those deliveries again, with
an interrupted attempt for each one named there, and they are sent again with the same ``webhook-id``.

Deliveries already in the database (retries, those made by another process's dispatcher, replays) are claimed in
batches with one update, sent, and recorded with one bulk write; claims carry a lease the lane renews while it runs:
when a process dies its claims lapse, and the next claimant logs the interrupted attempt and sends again.

A lane sends a batch while the one before it is recorded, so the receiver does not wait for the database; records
are written in the order the batches were sent. Deliveries about one subject (a lot, an alert, a dispatch: the
event's ordering key) go in the log's order, each once the one before it succeeded or was given up
(webhooks/ordering.py): within a lane a delivery waits for its predecessor's answer, not for its record.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import time
import uuid
from collections import Counter, deque
from collections.abc import Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError

from hub import metrics
from hub.config import Settings
from hub.models.event import EVENT_SCOPE
from tenants import access
from tenants.models import Scope
from webhooks import delivery, guard, ordering, retry
from webhooks.clock import Clock, SystemClock
from webhooks.models import (
    INTERRUPTED,
    KEPT_ATTEMPTS,
    DeliveriesInFlight,
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
)

if TYPE_CHECKING:
    from hub.leases import Partitions

log = logging.getLogger("lotpulse.webhooks.worker")
BATCH = 50  # deliveries claimed, and recorded, per write (each write well within the database deadline)
PIPELINE = 2  # batches of a lane in flight: one being sent while the one before is recorded
MAX_LANES = 64  # endpoints served at once by one worker
DRAIN_SECONDS = 5.0  # on shutdown, how long batches in flight may finish
ENDPOINT_FRESH_SECONDS = 1.0  # an endpoint read this recently is not read again (a disable or rotation shows after it)
HOLD_PER_ENDPOINT = 5_000  # fresh deliveries of one endpoint held unwritten; beyond, they are inserted pending
HOLD = 20_000  # fresh deliveries held unwritten in all; beyond, the dispatcher waits (they live in memory)
RECORD_RETRY_SECONDS = (0.2, 1.0, 5.0)  # a batch sent but not yet inserted is retried until it is (cursor: ``owed``)
UNSHARED = "refused: the event's owner no longer shares it with this tenant (partnership revoked or narrowed)"
ORDER_PAGES = 16  # pages of an endpoint's pending deliveries (in seq order) read past blocked subjects in one claim


@dataclass
class Batch:
    """Deliveries of one endpoint claimed together, with the address they go to (or why none may be used)."""

    endpoint: WebhookEndpoint
    token: str
    deliveries: list[dict[str, Any]]
    target: guard.Target | None = None
    refusal: str = ""
    interrupted: dict[ObjectId, list[datetime]] = field(default_factory=dict)  # earlier claims never finished
    after: dict[ObjectId, ObjectId] = field(default_factory=dict)  # delivery -> the one of its subject before it
    held: set[ObjectId] = field(default_factory=set)  # claimed but not to be sent yet: released unsent
    unshared: set[ObjectId] = field(default_factory=set)  # no longer the endpoint's tenant's to hear: given up unsent
    fresh: bool = False  # handed over by the dispatcher, not in the database yet: inserted once sent
    waits: dict[ObjectId, asyncio.Future[bool]] = field(default_factory=dict)  # on a fresh delivery not yet recorded
    futures: dict[ObjectId, asyncio.Future[bool]] = field(default_factory=dict)  # done for good? (``_register``)


def _due(now: datetime) -> dict[str, Any]:
    """Due and not leased now, as the (state, next attempt) index reads it: within bounds, with no hint and no
    top-level $or (SecantusDB walks a hinted index whole and scans the collection for an $or: every delivery ever
    made, per claim; tests/test_indexes.py, bench/growth.py). The lease is checked on what it returns."""
    return {"state": DeliveryState.pending.value, "next_attempt_at": {"$lte": now}}


def _key(token: str) -> str:
    """A batch's field in the in-flight document: the token's random part (a host name may hold dots)."""
    return token.rsplit(":", 1)[1]


def _unleased(doc: dict[str, Any], now: datetime) -> bool:
    return doc.get("lease_until") is None or doc["lease_until"] < now


async def disable_endpoint(endpoint_id: ObjectId, tenant_id: str, reason: str, now: datetime) -> None:
    """Disable the endpoint and fail what waits for it (a replay after re-enabling sends it again)."""
    result = await WebhookEndpoint.get_pymongo_collection().update_one(
        {"_id": endpoint_id, "enabled": True},
        {"$set": {"enabled": False, "disabled_reason": reason, "disabled_at": now, "updated_at": now}},
    )
    if result.modified_count:
        log.warning(
            "endpoint.disabled endpoint=%s tenant=%s reason=%s", endpoint_id, tenant_id, reason,
            extra={"event": "endpoint.disabled", "endpoint_id": str(endpoint_id), "tenant_id": tenant_id},
        )
    await WebhookDelivery.get_pymongo_collection().update_many(
        {"endpoint_id": endpoint_id, "state": DeliveryState.pending.value, "lease_token": None},
        {"$set": {"state": DeliveryState.failed.value, "last_error": f"endpoint disabled: {reason}",
                  "updated_at": now}},
    )


class Worker:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, partitions: Partitions | None = None,
                 name: str | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        # Host and process id: an operator (or a test) can tell which process holds a claim or sent an attempt.
        self.name = name or f"webhooks-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.partitions = partitions  # None: serve every endpoint (one process, the CLI's --once, tests)
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)
        self.concurrency = max(1, settings.webhook_endpoint_concurrency)
        self.batch = BATCH
        self.disable_after = timedelta(days=settings.webhook_disable_after_days)
        self.schedule = retry.schedule_of(settings.webhook_retry_schedule)
        self.http = delivery.client(settings.webhook_timeout_seconds)
        self.lanes: dict[ObjectId, asyncio.Task[None]] = {}
        self.endpoints: dict[ObjectId, tuple[WebhookEndpoint, float]] = {}  # as last read, and when (monotonic)
        self.running = False  # ``run`` is serving: new deliveries may start lanes at once
        self.started = asyncio.Event()  # ``run`` has begun (the dispatcher of the process waits for it)
        self.handed: dict[ObjectId, deque[Batch]] = {}  # fresh batches waiting for their lane (``take``)
        self.unrecorded: dict[str, int] = {}  # token of a fresh batch not inserted yet -> the lowest seq in it
        self.holding: set[tuple[ObjectId, ObjectId]] = set()  # (event, endpoint) of the fresh deliveries
        self.held_for: Counter[ObjectId] = Counter()  # how many of them per endpoint
        self.overflowed: set[ObjectId] = set()  # endpoints with deliveries inserted pending past HOLD_PER_ENDPOINT
        self.hold, self.hold_per_endpoint = HOLD, HOLD_PER_ENDPOINT
        self.lost: int | None = None  # lowest seq of fresh deliveries dropped unrecorded: the dispatcher reads again
        self.recorded_marks: set[str] = set()  # inserted batches still named in the in-flight document
        self.marked = False  # the in-flight document exists
        self.wakeup = asyncio.Event()

    def wake(self, *_: Any) -> None:
        """New deliveries may exist: look for them now, not at the next scan."""
        self.wakeup.set()

    def offer(self, created: list[dict[str, Any]], endpoints: list[WebhookEndpoint]) -> None:
        """The dispatcher inserted deliveries pending: those for endpoints this worker serves are looked for now,
        rather than at the next scan."""
        read_at = time.monotonic()
        for endpoint in endpoints:
            self.endpoints[endpoint.id] = (endpoint, read_at)  # type: ignore[index]
        if any(self.serves(doc["endpoint_id"]) for doc in created):
            self.wakeup.set()

    def take(self, planned: list[dict[str, Any]], endpoints: list[WebhookEndpoint]) -> list[dict[str, Any]]:
        """Of the deliveries the dispatcher of this process is about to create, take those for enabled endpoints
        this worker serves: their lanes send them and insert them finished. Answers the rest, for the dispatcher to
        insert pending (all of them while the worker is not running)."""
        if not self.running:
            return planned
        read_at = time.monotonic()
        for endpoint in endpoints:
            self.endpoints[endpoint.id] = (endpoint, read_at)  # type: ignore[index]
        enabled = {endpoint.id: endpoint for endpoint in endpoints if endpoint.enabled}
        filling: dict[ObjectId, Batch] = {}
        rest: list[dict[str, Any]] = []
        for doc in planned:
            endpoint_id, key = doc["endpoint_id"], (doc["event_id"], doc["endpoint_id"])
            if key in self.holding:
                continue  # read again (a rewind, a regained lead) while its lane still has it
            if endpoint_id not in enabled or not self.serves(endpoint_id) or doc.get("attempts"):
                rest.append(doc)  # an interrupted attempt to log: it goes in pending and is claimed
                continue
            if self.held_for[endpoint_id] >= self.hold_per_endpoint:
                rest.append(doc)  # a slow endpoint's backlog waits in the database, not in memory
                self.overflowed.add(endpoint_id)
                continue
            batch = filling.get(endpoint_id)
            if batch is None or len(batch.deliveries) == self.batch:
                batch = filling[endpoint_id] = Batch(enabled[endpoint_id], self.token(), [], fresh=True)
                self.handed.setdefault(endpoint_id, deque()).append(batch)
            doc["_id"] = ObjectId()
            batch.deliveries.append(doc)
            self.holding.add(key)
            self.held_for[endpoint_id] += 1
            seq = doc.get("seq") or 0
            self.unrecorded[batch.token] = min(self.unrecorded.get(batch.token, seq), seq)
        for endpoint_id in filling:
            if endpoint_id not in self.lanes:
                self._start(endpoint_id)
        return rest

    def full(self) -> bool:
        """Holding as many fresh deliveries as it may: the dispatcher reads no further for now."""
        return len(self.holding) >= self.hold

    def owed(self) -> int | None:
        """The lowest event seq with a delivery this worker took and has not inserted: the dispatcher's saved cursor
        stays before it, so a crash re-creates the delivery rather than losing it."""
        pending = [*self.unrecorded.values(), *([] if self.lost is None else [self.lost])]
        return min(pending) if pending else None

    def rewind(self) -> int | None:
        """The lowest seq of fresh deliveries dropped unrecorded (a lane failed, or its partition went elsewhere),
        once: the dispatcher reads the log again from there and makes them anew."""
        lost, self.lost = self.lost, None
        return lost

    def _settled(self, batch: Batch) -> None:
        self.unrecorded.pop(batch.token, None)
        for doc in batch.deliveries:
            self.holding.discard((doc["event_id"], doc["endpoint_id"]))
        for doc in batch.deliveries:
            self.held_for[doc["endpoint_id"]] -= 1
            if self.held_for[doc["endpoint_id"]] <= 0:
                del self.held_for[doc["endpoint_id"]]

    def _drop(self, batch: Batch) -> None:
        """A fresh batch that will not be inserted by this lane: forgotten here, made again by the dispatcher."""
        if batch.token in self.unrecorded:
            seq = self.unrecorded[batch.token]
            self.lost = seq if self.lost is None else min(self.lost, seq)
            self._settled(batch)

    async def endpoint(self, endpoint_id: ObjectId) -> WebhookEndpoint | None:
        """The endpoint as read within the last second, else read afresh (secrets rotate, endpoints get disabled)."""
        known = self.endpoints.get(endpoint_id)
        if known is not None and time.monotonic() - known[1] < ENDPOINT_FRESH_SECONDS:
            return known[0]
        endpoint = await WebhookEndpoint.get(endpoint_id)
        if endpoint is None:
            self.endpoints.pop(endpoint_id, None)
        else:
            self.endpoints[endpoint_id] = (endpoint, time.monotonic())
        return endpoint

    def serves(self, endpoint_id: ObjectId) -> bool:
        return self.partitions is None or self.partitions.owns(str(endpoint_id))

    async def close(self, drain_seconds: float = 0.0) -> None:
        """Stop: let batches in flight finish for up to ``drain_seconds`` (so a deploy does not resend them), then
        cancel the rest, whose leases lapse and are taken over (fresh ones are made again from the log)."""
        lanes = list(self.lanes.values())
        if lanes and drain_seconds > 0:
            await asyncio.wait(lanes, timeout=drain_seconds)
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        await self.http.aclose()
        if self.marked and self.owed() is None:  # everything it named is inserted
            with suppress(PyMongoError):
                await DeliveriesInFlight.get_pymongo_collection().delete_one({"_id": self.name})

    # -- claiming --------------------------------------------------------------------------------------------------

    async def waiting(self) -> list[ObjectId]:
        """Enabled endpoints this worker serves that have due deliveries and no lane yet."""
        collection = WebhookDelivery.get_pymongo_collection()
        found = await collection.distinct("endpoint_id", _due(self.clock.now()))  # leased ones too: claim finds out
        mine = [endpoint for endpoint in found if endpoint not in self.lanes and self.serves(endpoint)]
        if not mine:
            return []
        # A disabled endpoint's deliveries wait for it to be enabled again: no lane for them.
        enabled = WebhookEndpoint.get_pymongo_collection().find(
            {"_id": {"$in": mine}, "enabled": True}, projection={"_id": 1}
        )
        usable = {raw["_id"] async for raw in enabled}
        return [endpoint for endpoint in mine if endpoint in usable]

    def token(self) -> str:
        """A new claim's token: the worker's name and a value never used again (a claim that lapsed and was taken
        over can never be confused with a later one)."""
        return f"{self.name}:{uuid.uuid4().hex}"

    async def claim(
        self, endpoint_id: ObjectId, in_flight: Collection[str] = (), fresh: Collection[str] = ()
    ) -> Batch | None:
        """Lease the endpoint's next deliveries that may go (due, and first of their subject or after one in flight
        under the lane's tokens ``in_flight``, and of no subject in ``fresh``), in ``seq`` order: reads of the
        endpoint's pending deliveries in order, one write, one more read only if another worker took some of them in
        between. None when nothing may go or the endpoint is disabled."""
        token = self.token()
        now = self.clock.now()
        endpoint = await self.endpoint(endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return None
        collection = WebhookDelivery.get_pymongo_collection()
        # Read past the batches in flight (leased by the lane) to the next ones that may go, passing over the
        # subjects already found blocked (a lot waiting for a retry holds up none of the others).
        ahead = self.batch * (PIPELINE + 2)
        blocked = set(fresh)  # subjects with a fresh delivery of the lane not yet written: the later ones wait
        last: dict[str, ObjectId] = {}  # each subject's latest delivery read so far (chosen or in flight)
        docs: list[dict[str, Any]] = []
        after: dict[ObjectId, ObjectId] = {}
        since: int | None = None
        for _ in range(ORDER_PAGES):
            query: dict[str, Any] = {"endpoint_id": endpoint_id, "state": DeliveryState.pending.value}
            if since is not None:
                query["seq"] = {"$gt": since}
            # No subject clause: a field beyond the (endpoint, state, seq) index made SecantusDB scan every delivery.
            page = await collection.find(query).sort("seq", 1).limit(ahead).to_list(ahead)
            chosen, order = ordering.in_order(
                page, lambda doc: doc["next_attempt_at"] <= now and _unleased(doc, now), in_flight, blocked, last
            )
            docs += chosen
            after.update(order)
            since = page[-1].get("seq") if page else None
            if len(docs) >= self.batch or len(page) < ahead or since is None:
                break
        docs = docs[: self.batch]
        if not docs:
            return None
        ids = [doc["_id"] for doc in docs]
        # Still as read (no one claimed, recorded or disabled them since): a fence of plain equalities, which
        # SecantusDB checks several times faster than the due filter's ranges.
        seen = sorted({doc["lease_token"] for doc in docs}, key=str)
        claimed = await collection.update_many(
            {"_id": {"$in": ids}, "lease_token": {"$in": seen}, "state": DeliveryState.pending.value},
            {"$set": {"lease_token": token, "lease_until": now + self.lease, "updated_at": now},
             "$push": {"claims": now}},
        )  # _id first and no hint: the ids are looked up and the rest checked on them
        if claimed.modified_count < len(ids):
            mine = collection.find({"_id": {"$in": ids}, "lease_token": token}, projection={"_id": 1})
            kept = {raw["_id"] async for raw in mine}
            docs = [doc for doc in docs if doc["_id"] in kept]
            if not docs:
                return None
        # Every claim ends in one logged attempt: earlier claims beyond the count were interrupted.
        interrupted = {doc["_id"]: doc["claims"][doc["attempt_count"]:] for doc in docs}
        interrupted = {k: v for k, v in interrupted.items() if v}
        batch = Batch(endpoint, token, docs, interrupted=interrupted, after=after)
        return await self._checked(batch)

    async def ordered(
        self, batch: Batch, in_flight: Collection[str], tails: Mapping[str, asyncio.Future[bool]]
    ) -> Batch:
        """A fresh batch checked against what comes before it in its subjects: the endpoint's pending deliveries
        (one read) and the lane's fresh deliveries not yet recorded (``tails``). What may not go yet is held back,
        and inserted pending, unsent."""
        subjects = {doc["subject"] for doc in batch.deliveries if doc.get("subject") is not None}
        # Taken before the read: a fresh delivery recorded after the read is waited for here, one recorded before
        # it is in the read.
        before = {subject: tails[subject] for subject in subjects if subject in tails}
        seqs = [doc["seq"] for doc in batch.deliveries if doc.get("seq") is not None]
        if not subjects or not seqs:
            return batch
        limit = self.batch * (PIPELINE + 2)
        # The subjects are picked out here, not in the query: a field beyond the (endpoint, state, seq) index made
        # SecantusDB scan every delivery ever made. A page cut by the limit is a prefix in seq order: a delivery
        # after its end may have an earlier one of its subject unread, so it is held back, never sent early.
        page = await WebhookDelivery.get_pymongo_collection().find(
            {"endpoint_id": batch.endpoint.id, "state": DeliveryState.pending.value, "seq": {"$lte": max(seqs)}},
            projection={"_id": 1, "subject": 1, "seq": 1, "lease_token": 1},
        ).sort("seq", 1).limit(limit).to_list(limit)
        cut = page[-1]["seq"] if len(page) == limit else None
        fresh = {doc["_id"] for doc in batch.deliveries}
        merged = sorted([doc for doc in page if doc.get("subject") in subjects] + batch.deliveries,
                        key=lambda doc: doc.get("seq") or 0)
        chosen, batch.after = ordering.in_order(
            merged, lambda doc: doc["_id"] in fresh and (cut is None or doc["seq"] <= cut), in_flight, set()
        )
        keep = {doc["_id"] for doc in chosen}
        batch.held = {doc["_id"] for doc in batch.deliveries if doc.get("subject") is not None} - keep
        for doc in chosen:
            subject = doc.get("subject")
            if subject in before and doc["_id"] not in batch.after:
                batch.waits[doc["_id"]] = before.pop(subject)  # the first of its subject here
        return batch

    async def _current(self, batch: Batch) -> Batch | None:
        """A fresh batch with its endpoint as it is now, not as the dispatcher read it: the backlog a lane holds
        follows an admin's change (a new URL or secret) and stops with the endpoint. Deleted: dropped unsent, for
        good. Disabled: held back, inserted pending, unsent (sent once it is enabled again)."""
        endpoint = await self.endpoint(batch.endpoint.id)  # type: ignore[arg-type]
        if endpoint is None:
            self._settled(batch)
            return None
        batch.endpoint = endpoint
        if not endpoint.enabled:
            batch.held = {doc["_id"] for doc in batch.deliveries}
        return batch

    async def _checked(self, batch: Batch) -> Batch:
        batch.unshared = await self._unshared(batch)
        try:
            # Checked right before sending (DNS may have changed since creation); the requests go to this address.
            batch.target = await guard.check(batch.endpoint.url, self.settings.webhook_allow_private)
        except guard.UnsafeURL as exc:
            batch.refusal = exc.message
        return batch

    async def _unshared(self, batch: Batch) -> set[ObjectId]:
        """Deliveries to a partner whose event's owner no longer shares the event's scope with it. The dispatcher
        checks the partnership when it makes a delivery; checked again before each send, a revocation also stops
        the retries and the backlog already made, within seconds rather than after the retry schedule."""
        tenant = batch.endpoint.tenant_id
        foreign: dict[ObjectId, tuple[str, Scope]] = {}
        for doc in batch.deliveries:
            if doc["event_type"] not in EVENT_SCOPE:
                continue  # heard by being a party (a dispatch's events), not through a share
            data = json.loads(doc["body"]).get("data") or {}
            owner, scope = str(data.get("ownerId")), access.event_scope(doc["event_type"], data)
            if owner != tenant and scope is not None:
                foreign[doc["_id"]] = (owner, scope)
        if not foreign:
            return set()
        shares = await access.shares_of_many({owner for owner, _ in foreign.values()}, fresh=True)
        return {key for key, (owner, scope) in foreign.items()
                if not access.reaches(shares.get(owner, {}), owner, tenant, scope)}

    # -- sending ---------------------------------------------------------------------------------------------------

    def _register(
        self, batch: Batch, flight: dict[ObjectId, asyncio.Future[bool]],
        tails: dict[str, asyncio.Future[bool]] | None = None,
    ) -> dict[ObjectId, asyncio.Future[bool]]:
        """Per delivery, whether it is done for good (succeeded or given up), made before the batch is sent so that
        the lane's next batch, read meanwhile, can wait for it."""
        if not batch.futures:
            loop = asyncio.get_running_loop()
            batch.deliveries.sort(key=lambda doc: (doc.get("seq") is not None, doc.get("seq") or 0))
            batch.futures = {doc["_id"]: loop.create_future() for doc in batch.deliveries}
            flight.update(batch.futures)
            if batch.fresh and tails is not None:
                for doc in batch.deliveries:
                    if doc.get("subject") is not None:
                        tails[doc["subject"]] = batch.futures[doc["_id"]]
        return batch.futures

    async def deliver(
        self,
        batch: Batch,
        limit: asyncio.Semaphore | None = None,
        flight: dict[ObjectId, asyncio.Future[bool]] | None = None,
        tails: dict[str, asyncio.Future[bool]] | None = None,
        before: asyncio.Future[Any] | None = None,
        gone: asyncio.Event | None = None,
    ) -> int:
        """Send a batch (at most ``concurrency`` requests at once) and record every outcome in one write, after the
        batch ``before`` it was recorded; answers the number of attempts made.

        ``flight`` holds, per delivery of the lane's batches in flight, whether it is done for good (succeeded or
        given up): a delivery of a subject waits for the one before it there, and is held back when that one will
        be retried (or is no longer known: recorded meanwhile, so the next claim decides on what was recorded).
        ``tails`` holds each subject's latest fresh delivery of the lane until it is recorded. Once a receiver has
        answered 410 (``gone``, set for the lane), the deliveries not sent yet are held back: the endpoint is being
        disabled, and what it did not hear waits for a replay.
        """
        limit = limit or asyncio.Semaphore(self.concurrency)
        gone = gone or asyncio.Event()
        flight = {} if flight is None else flight
        endpoint = batch.endpoint
        loop = asyncio.get_running_loop()
        mine = self._register(batch, flight, tails)
        free: asyncio.Future[bool] = loop.create_future()  # for the first of its subject: nothing to wait for
        free.set_result(True)
        waits = {doc["_id"]: flight.get(batch.after[doc["_id"]]) if doc["_id"] in batch.after else free
                 for doc in batch.deliveries}  # None: the one before is no longer in flight

        async def may_go(doc: dict[str, Any]) -> bool:
            ahead = [waits[doc["_id"]], batch.waits.get(doc["_id"], free)]
            return doc["_id"] not in batch.held and None not in ahead and all(
                [await asyncio.shield(future) for future in ahead if future is not None]
            )

        async def one(doc: dict[str, Any]) -> delivery.Outcome | None:
            done = mine[doc["_id"]]
            try:
                if not await may_go(doc):
                    batch.held.add(doc["_id"])
                    return None
                if doc["_id"] in batch.unshared:
                    done.set_result(True)  # given up: the next of its subject is judged on its own
                    return delivery.refused(self.clock.now(), UNSHARED)
                async with limit:
                    if gone.is_set():
                        batch.held.add(doc["_id"])
                        return None
                    now = self.clock.now()
                    if batch.target is None:
                        outcome = delivery.refused(now, batch.refusal)
                    else:
                        outcome = await delivery.send(
                            self.http,
                            batch.target,
                            str(doc["event_id"]),
                            doc["body"],
                            endpoint.signing_secrets(now),
                            at=now,
                            signed_at=datetime.now(UTC),
                            deadline=self.settings.webhook_timeout_seconds,
                        )
                if outcome.status_code == 410:
                    gone.set()
                done.set_result(self._final(doc, outcome, endpoint))
                return outcome
            finally:
                if not done.done():
                    done.set_result(False)

        try:
            if batch.fresh:
                await self._mark(batch)
            outcomes = await asyncio.gather(*(one(doc) for doc in batch.deliveries))
            if before is not None:
                await asyncio.wait([before])  # its outcome is its own: only its turn matters here
            await self.record(batch, outcomes)
        finally:
            for key, future in mine.items():
                if not future.done():
                    future.set_result(False)  # never sent: what waits for it is held back
                flight.pop(key, None)  # recorded (or lost): a later claim reads its state from the database
            if tails is not None:
                for doc in batch.deliveries:
                    if doc.get("subject") is not None and tails.get(doc["subject"]) is mine[doc["_id"]]:
                        del tails[doc["subject"]]
            if batch.fresh:
                self._drop(batch)  # not inserted (the lane failed or was stopped): the dispatcher makes it again
        return sum(outcome is not None for outcome in outcomes)

    def _final(self, doc: dict[str, Any], outcome: delivery.Outcome, endpoint: WebhookEndpoint) -> bool:
        """Succeeded or given up: the next delivery of its subject may go. A retry, or an endpoint about to be
        disabled, holds the subject up."""
        decision = retry.decide(
            status_code=outcome.status_code, failures_before=doc.get("failures", 0), now=outcome.at,
            retry_after=outcome.retry_after, failing_since=endpoint.failing_since or outcome.at,
            disable_after=self.disable_after, schedule=self.schedule,
        )
        return decision.succeeded or (decision.failed and decision.disable_reason is None)

    async def _mark(self, batch: Batch) -> None:
        """Name the deliveries about to be sent in this worker's in-flight document, dropping the batches inserted
        since its last write: one write per fresh batch, read only by a dispatcher re-creating them after a crash."""
        sending = [doc for doc in batch.deliveries if doc["_id"] not in batch.held]
        if not sending:
            return
        now = self.clock.now()
        recorded = set(self.recorded_marks)
        update: dict[str, Any] = {
            "$set": {f"batches.{_key(batch.token)}": {"endpoint_id": batch.endpoint.id, "at": now,
                                                     "events": [doc["event_id"] for doc in sending]},
                     "updated_at": now},
            "$max": {"seq_max": max(doc.get("seq") or 0 for doc in sending)},
        }
        if recorded:
            update["$unset"] = {f"batches.{_key(token)}": "" for token in recorded}
        await DeliveriesInFlight.get_pymongo_collection().update_one({"_id": self.name}, update, upsert=True)
        self.recorded_marks -= recorded
        self.marked = True

    async def record(self, batch: Batch, outcomes: list[delivery.Outcome | None]) -> None:
        """One write: each delivery's new state and its attempts, atomically per delivery (so a crash never leaves
        an attempt logged but not counted). A claimed batch is updated only while it still holds the claim, and a
        delivery held back (``None``) is released as it was, its claim taken back; a fresh batch is inserted, the
        ones held back pending and unsent."""
        endpoint = batch.endpoint
        now = self.clock.now()
        attempted = [o for doc, o in zip(batch.deliveries, outcomes, strict=True)
                     if o is not None and doc["_id"] not in batch.unshared]  # sent: the endpoint's health
        any_success = any(o.status_code is not None and 200 <= o.status_code < 300 for o in attempted)
        failing_since = None if any_success else (endpoint.failing_since or now)
        writes: list[UpdateOne] = []
        finished: list[dict[str, Any]] = []
        succeeded = gave_up = 0
        disable_reason: str | None = None
        for doc, outcome in zip(batch.deliveries, outcomes, strict=True):
            if outcome is None:
                if batch.fresh:
                    finished.append(doc)
                else:
                    writes.append(UpdateOne(
                        {"_id": doc["_id"], "lease_token": batch.token},
                        {"$set": {"lease_token": None, "lease_until": None, "updated_at": now},
                         "$pop": {"claims": 1}},
                    ))
                continue
            decision = retry.Decision() if doc["_id"] in batch.unshared else retry.decide(
                status_code=outcome.status_code,
                failures_before=doc.get("failures", 0),
                now=now,
                retry_after=outcome.retry_after,
                failing_since=failing_since,
                disable_after=self.disable_after,
                schedule=self.schedule,
            )
            disable_reason = disable_reason or decision.disable_reason
            attempts = [self._attempt(at, None, 0, None, INTERRUPTED) for at in batch.interrupted.get(doc["_id"], [])]
            attempts.append(self._attempt(outcome.at, outcome.status_code, outcome.duration_ms,
                                          outcome.response_excerpt, outcome.error))
            fields: dict[str, Any] = {"lease_token": None, "lease_until": None, "updated_at": now, "last_error": None}
            inc = {"attempt_count": len(attempts), "failures": 0}
            if decision.succeeded:
                succeeded += 1
                fields.update(state=DeliveryState.succeeded.value, delivered_at=now)
            else:
                fields["last_error"] = outcome.error or f"HTTP {outcome.status_code}"
                inc["failures"] = 1
                if decision.next_attempt_at is not None:
                    fields["next_attempt_at"] = decision.next_attempt_at
                else:
                    gave_up += 1
                    fields["state"] = DeliveryState.failed.value
            if batch.fresh:
                finished.append({
                    **doc, **fields, "attempts": attempts[-KEPT_ATTEMPTS:], "claims": [a["at"] for a in attempts],
                    "attempt_count": doc.get("attempt_count", 0) + inc["attempt_count"],
                    "failures": doc.get("failures", 0) + inc["failures"],
                })
                continue
            if not inc["failures"]:
                del inc["failures"]
            writes.append(UpdateOne(
                {"_id": doc["_id"], "lease_token": batch.token},
                {"$set": fields, "$inc": inc, "$push": {"attempts": {"$each": attempts, "$slice": -KEPT_ATTEMPTS}}},
            ))
        if batch.fresh:
            await self._insert(finished)
            self._settled(batch)
            self.recorded_marks.add(batch.token)
        else:
            await WebhookDelivery.get_pymongo_collection().bulk_write(writes, ordered=False)
        metrics.WEBHOOK_ATTEMPTS.labels("success").inc(succeeded)
        metrics.WEBHOOK_ATTEMPTS.labels("failure").inc(len(attempted) - succeeded)
        metrics.WEBHOOK_FAILURES.inc(gave_up)
        if attempted:
            await self._endpoint_health(endpoint, any_success, now)
        if disable_reason is not None:
            await disable_endpoint(endpoint.id, endpoint.tenant_id, disable_reason, now)  # type: ignore[arg-type]
            endpoint.enabled = False  # the lane stops at its next claim
            self.endpoints.pop(endpoint.id, None)  # type: ignore[arg-type]  # and holds back what it was handed

    async def _insert(self, docs: list[dict[str, Any]]) -> None:
        """Insert a fresh batch, retrying until it is in (until then only this process knows what was sent). A
        delivery made meanwhile by someone else (a replay) keeps its state and gets this batch's attempt logged."""
        collection = WebhookDelivery.get_pymongo_collection()
        for failures in itertools.count():
            try:
                await collection.insert_many(docs, ordered=False)
                return
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(error.get("code") != 11000 for error in errors):
                    raise
                known = [docs[error["index"]] for error in errors]
                # Not ours (an insert retried after a lost answer finds its own _id, and leaves it alone).
                pushes = [UpdateOne(
                    {"event_id": doc["event_id"], "endpoint_id": doc["endpoint_id"], "_id": {"$ne": doc["_id"]}},
                    {"$push": {"attempts": {"$each": doc["attempts"], "$slice": -KEPT_ATTEMPTS},
                               "claims": {"$each": doc["claims"]}},
                     "$inc": {"attempt_count": len(doc["attempts"])}},
                ) for doc in known if doc["attempts"]]
                if pushes:
                    await collection.bulk_write(pushes, ordered=False)
                return
            except PyMongoError as exc:
                wait = RECORD_RETRY_SECONDS[min(failures, len(RECORD_RETRY_SECONDS) - 1)]
                log.warning("could not record %d webhook deliveries (%s); retrying in %.1f s", len(docs), exc, wait)
                await asyncio.sleep(wait)

    def _attempt(
        self, at: datetime, status: int | None, duration_ms: int, excerpt: str | None, error: str | None
    ) -> dict[str, Any]:
        return {"at": at, "status_code": status, "duration_ms": duration_ms, "response_excerpt": excerpt,
                "error": error, "worker": self.name}

    async def _endpoint_health(self, endpoint: WebhookEndpoint, any_success: bool, now: datetime) -> None:
        """Written only when the endpoint starts or stops failing, not per batch; the endpoint as this worker keeps
        it (``self.endpoints``) follows, since its lane is the one that changes it."""
        collection = WebhookEndpoint.get_pymongo_collection()
        if any_success and endpoint.failing_since is not None:
            await collection.update_one({"_id": endpoint.id}, {"$set": {"failing_since": None}})
            endpoint.failing_since = None
        elif not any_success and endpoint.failing_since is None:
            await collection.update_one({"_id": endpoint.id, "failing_since": None}, {"$set": {"failing_since": now}})
            endpoint.failing_since = now

    async def _heartbeat(self, tokens: set[str]) -> None:
        """Keep a lane's claims while it runs: renewed every third of a lease, they lapse soon after a crash."""
        collection = WebhookDelivery.get_pymongo_collection()
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            if not tokens:
                continue
            try:
                await collection.update_many(
                    {"lease_token": {"$in": sorted(tokens)}}, {"$set": {"lease_until": self.clock.now() + self.lease}}
                )
            except PyMongoError as exc:
                log.warning("could not renew webhook claims (%s); they may be taken over", exc)

    # -- loops -----------------------------------------------------------------------------------------------------

    async def lane(self, endpoint_id: ObjectId) -> None:
        """Serve one endpoint until nothing of it is due (or it is disabled, or its partition went elsewhere)."""
        limit = asyncio.Semaphore(self.concurrency)  # shared by the lane's batches: the per-endpoint bound
        gone = asyncio.Event()  # the receiver answered 410: nothing more goes from this lane
        tokens: set[str] = set()  # batches in flight (a delivery claimed by one of them is waited for, not skipped)
        leased: set[str] = set()  # the claims among them, renewed by the heartbeat
        flight: dict[ObjectId, asyncio.Future[bool]] = {}  # their deliveries: done for good or not (``deliver``)
        tails: dict[str, asyncio.Future[bool]] = {}  # each subject's latest fresh delivery, until it is recorded
        heartbeat = asyncio.create_task(self._heartbeat(leased))
        in_flight: deque[asyncio.Task[int]] = deque()
        last: asyncio.Task[int] | None = None  # the batch sent before: recorded first
        held = False  # a batch held deliveries back: look again once the ones before them are recorded

        async def deliver(batch: Batch, before: asyncio.Task[int] | None) -> int:
            nonlocal held
            try:
                return await self.deliver(batch, limit, flight, tails, before, gone)
            finally:
                tokens.discard(batch.token)
                leased.discard(batch.token)
                held = held or bool(batch.held)

        scan = True  # whether to look for due deliveries once the handed batches are sent
        try:
            while self.serves(endpoint_id) and not gone.is_set():  # after a 410 a new lane reads the endpoint
                handed = self.handed.get(endpoint_id)
                if handed:
                    batch: Batch | None = handed.popleft()
                    ours = set(tokens)
                    try:
                        batch = await self._current(batch)  # type: ignore[arg-type]
                        if batch is None:
                            continue
                        if batch.endpoint.enabled:
                            batch = await self._checked(await self.ordered(batch, ours, tails))
                    except BaseException:
                        self._drop(batch)  # type: ignore[arg-type]
                        raise
                    scan = scan and len(in_flight) > 0  # a lane started for new deliveries leaves retries to the scan
                elif scan or held or endpoint_id in self.overflowed:
                    held = False
                    self.overflowed.discard(endpoint_id)
                    self.handed.pop(endpoint_id, None)
                    batch = await self.claim(endpoint_id, tokens, set(tails))
                    if batch is None:
                        scan = False
                        continue
                    leased.add(batch.token)
                elif in_flight:
                    await in_flight.popleft()
                    continue
                else:
                    break
                tokens.add(batch.token)
                self._register(batch, flight, tails)
                last = asyncio.create_task(deliver(batch, last))
                in_flight.append(last)
                if len(in_flight) >= PIPELINE:
                    await in_flight.popleft()
            while in_flight:
                await in_flight.popleft()
        finally:
            heartbeat.cancel()
            for task in in_flight:
                task.cancel()
            await asyncio.gather(heartbeat, *in_flight, return_exceptions=True)

    def _start(self, endpoint_id: ObjectId) -> None:
        async def guarded() -> None:
            try:
                await self.lane(endpoint_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivering to endpoint %s failed; its claims will lapse and be retried", endpoint_id)
            finally:
                # What became due while the lane was finishing is found by the next scan.
                self.lanes.pop(endpoint_id, None)
                if not self.serves(endpoint_id):
                    # The endpoint's new owner sends them: claims lapse, fresh ones are made again (pending).
                    for batch in self.handed.pop(endpoint_id, ()):
                        self._drop(batch)
                if self.running and self.handed.get(endpoint_id):
                    self._start(endpoint_id)  # handed over while the lane was finishing: no scan would find it

        self.lanes[endpoint_id] = asyncio.create_task(guarded(), name=f"webhook-{endpoint_id}")

    async def run_once(self) -> int:
        """One batch for each served endpoint with due deliveries, sent and recorded; answers the number of
        attempts made (for tests and ``lotpulse webhooks worker --once``)."""
        batches = [batch for batch in await asyncio.gather(*(self.claim(e) for e in await self.waiting())) if batch]
        return sum(await asyncio.gather(*(self.deliver(batch) for batch in batches)))

    async def drain(self, max_passes: int = 1000) -> int:
        """Run passes until nothing is due now."""
        total = 0
        for _ in range(max_passes):
            made = await self.run_once()
            if not made:
                break
            total += made
        return total

    async def run(self) -> None:
        """Keep a lane running for every served endpoint with due deliveries, until cancelled."""
        self.running = True
        self.started.set()
        try:
            while True:
                self.wakeup.clear()
                try:
                    if len(self.lanes) < MAX_LANES:
                        for endpoint_id in (await self.waiting())[: MAX_LANES - len(self.lanes)]:
                            self._start(endpoint_id)
                except Exception:
                    log.exception("looking for due webhook deliveries failed; retrying")
                try:  # retries falling due and deliveries made by other processes are found by this scan
                    await asyncio.wait_for(self.wakeup.wait(), self.settings.webhook_poll_seconds)
                except TimeoutError:
                    pass
        finally:
            self.running = False
            await self.close(drain_seconds=min(DRAIN_SECONDS, self.settings.webhook_timeout_seconds))
