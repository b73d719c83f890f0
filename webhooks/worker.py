"""The delivery worker: each endpoint's due deliveries are sent by one lane, in one process at a time.

Endpoints are spread over the hub processes by leased partitions (hub/leases.py): a process serves only the
endpoints of the partitions it holds, and a dead process's partitions are taken over once their lease lapses. In a
process every endpoint with due deliveries gets a lane of its own, so one slow ERP holds only its own slots.

A lane claims a batch of due deliveries with one update, sends them (at most ``concurrency`` requests in flight) and
records every outcome, attempt log included, with one bulk write; the next batch is claimed and sent while the
previous one is recorded, so the receiver does not wait for the database. Deliveries about one subject (a lot, an
alert, a dispatch: the event's ordering key) go in the log's order, each once the one before it succeeded or was
given up (webhooks/ordering.py): within a lane a delivery waits for its predecessor's answer, not for its record, and
one held back is released unsent in the same bulk write. Claims carry a lease the lane renews while
it runs: when a process dies its claims lapse, and the next claimant logs the interrupted attempt and sends again
(same ``webhook-id``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import PyMongoError

from hub import metrics
from hub.config import Settings
from webhooks import delivery, guard, ordering, retry
from webhooks.clock import Clock, SystemClock
from webhooks.models import KEPT_ATTEMPTS, DeliveryState, WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from hub.leases import Partitions

log = logging.getLogger("lotpulse.webhooks.worker")
BATCH = 50  # deliveries claimed, and recorded, per write (each write well within the database deadline)
PIPELINE = 2  # batches of a lane in flight: one being sent while the one before is recorded
MAX_LANES = 64  # endpoints served at once by one worker
DRAIN_SECONDS = 5.0  # on shutdown, how long batches in flight may finish
ENDPOINT_FRESH_SECONDS = 1.0  # an endpoint read this recently is not read again (a disable or rotation shows after it)
INTERRUPTED = "interrupted: the worker lost its lease before recording the outcome (crash or restart)"
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


def _due(now: datetime) -> dict[str, Any]:
    """Due and not leased now, as the (state, next attempt) index reads it: within bounds, with no hint and no
    top-level $or (SecantusDB walks a hinted index whole and scans the collection for an $or: every delivery ever
    made, per claim; tests/test_indexes.py, bench/growth.py). The lease is checked on what it returns."""
    return {"state": DeliveryState.pending.value, "next_attempt_at": {"$lte": now}}


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
        self.handed: dict[ObjectId, deque[Batch]] = {}  # batches inserted already claimed (``pre_claim``)
        self.wakeup = asyncio.Event()

    def wake(self, *_: Any) -> None:
        """New deliveries may exist: look for them now, not at the next scan."""
        self.wakeup.set()

    def offer(self, created: list[dict[str, Any]], endpoints: list[WebhookEndpoint]) -> None:
        """The dispatcher of this process made deliveries: their endpoints' lanes start now, with the endpoints as
        the dispatcher just read them, rather than after a scan (which is what the other processes do)."""
        read_at = time.monotonic()
        for endpoint in endpoints:
            self.endpoints[endpoint.id] = (endpoint, read_at)  # type: ignore[index]
        by_token: dict[str, list[dict[str, Any]]] = {}
        for doc in created:
            if doc.get("lease_token") and doc["lease_token"].startswith(f"{self.name}:"):
                by_token.setdefault(doc["lease_token"], []).append(doc)
        known = {endpoint.id: endpoint for endpoint in endpoints}
        for token, docs in by_token.items():
            endpoint_id = docs[0]["endpoint_id"]
            self.handed.setdefault(endpoint_id, deque()).append(Batch(known[endpoint_id], token, docs))
        if self.running:
            for endpoint_id in dict.fromkeys(doc["endpoint_id"] for doc in created):
                if endpoint_id not in self.lanes and self.serves(endpoint_id) and (
                    len(self.lanes) < MAX_LANES or endpoint_id in self.handed
                ):
                    self._start(endpoint_id)
        if any(not doc.get("lease_token") and self.serves(doc["endpoint_id"]) for doc in created):
            self.wakeup.set()  # not handed over (the worker was not running, or the endpoint disabled): scan

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
        cancel the rest, whose leases lapse and are taken over."""
        lanes = list(self.lanes.values())
        if lanes and drain_seconds > 0:
            await asyncio.wait(lanes, timeout=drain_seconds)
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        await self.http.aclose()

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

    async def claim(self, endpoint_id: ObjectId, in_flight: Collection[str] = ()) -> Batch | None:
        """Lease the endpoint's next deliveries that may go (due, and first of their subject or after one in flight
        under the lane's tokens ``in_flight``), in ``seq`` order: reads of the endpoint's pending deliveries in
        order, one write, one more read only if another worker took some of them in between. None when nothing may
        go or the endpoint is disabled."""
        token = self.token()
        now = self.clock.now()
        endpoint = await self.endpoint(endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return None
        collection = WebhookDelivery.get_pymongo_collection()
        # Read past the batches in flight (leased by the lane) to the next ones that may go, passing over the
        # subjects already found blocked (a lot waiting for a retry holds up none of the others).
        ahead = self.batch * (PIPELINE + 2)
        blocked: set[str] = set()
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

    async def ordered(self, batch: Batch, in_flight: Collection[str]) -> Batch:
        """A batch handed over at insertion, checked against the endpoint's earlier pending deliveries of the same
        subjects (one read): what may not go yet is held back, released unsent when the batch is recorded."""
        subjects = sorted({doc["subject"] for doc in batch.deliveries if doc.get("subject") is not None})
        seqs = [doc["seq"] for doc in batch.deliveries if doc.get("seq") is not None]
        if not subjects or not seqs:
            return batch
        limit = self.batch * (PIPELINE + 2)
        # The subjects are picked out here, not in the query: a field beyond the (endpoint, state, seq) index made
        # SecantusDB scan every delivery ever made. A page cut by the limit is still a prefix in seq order, so a
        # delivery read has every earlier one of its subject read too; one not read is held back, never sent early.
        page = await WebhookDelivery.get_pymongo_collection().find(
            {"endpoint_id": batch.endpoint.id, "state": DeliveryState.pending.value, "seq": {"$lte": max(seqs)}},
            projection={"_id": 1, "subject": 1, "seq": 1, "lease_token": 1},
        ).sort("seq", 1).limit(limit).to_list(limit)
        wanted = set(subjects)
        earlier = [doc for doc in page if doc.get("subject") in wanted]
        chosen, batch.after = ordering.in_order(
            earlier, lambda doc: doc.get("lease_token") == batch.token, in_flight, set()
        )
        keep = {doc["_id"] for doc in chosen}
        batch.held = {doc["_id"] for doc in batch.deliveries if doc.get("subject") is not None} - keep
        return batch

    async def _checked(self, batch: Batch) -> Batch:
        try:
            # Checked right before sending (DNS may have changed since creation); the requests go to this address.
            batch.target = await guard.check(batch.endpoint.url, self.settings.webhook_allow_private)
        except guard.UnsafeURL as exc:
            batch.refusal = exc.message
        return batch

    def pre_claim(self, planned: list[dict[str, Any]], endpoints: list[WebhookEndpoint]) -> None:
        """Deliveries the dispatcher of this process is about to insert for endpoints this worker serves are
        inserted already claimed by it, and handed to their lanes by ``offer``: no read and no claim write for
        them. A crash before they are sent leaves claims that lapse like any other."""
        if not self.running:
            return
        now = self.clock.now()
        enabled = {endpoint.id for endpoint in endpoints if endpoint.enabled}
        tokens: dict[ObjectId, tuple[str, int]] = {}  # endpoint -> the token of its batch being filled, its size
        for doc in planned:
            endpoint_id = doc["endpoint_id"]
            if endpoint_id not in enabled or not self.serves(endpoint_id):
                continue
            token, size = tokens.get(endpoint_id, ("", self.batch))
            if size == self.batch:
                token, size = self.token(), 0
            tokens[endpoint_id] = (token, size + 1)
            doc.update(lease_token=token, lease_until=now + self.lease, claims=[now])

    # -- sending ---------------------------------------------------------------------------------------------------

    async def deliver(
        self, batch: Batch, limit: asyncio.Semaphore | None = None, flight: dict[ObjectId, asyncio.Future[bool]] | None
        = None,
    ) -> int:
        """Send a batch (at most ``concurrency`` requests at once) and record every outcome in one write; answers
        the number of attempts made.

        ``flight`` holds, per delivery of the lane's batches in flight, whether it is done for good (succeeded or
        given up): a delivery of a subject waits for the one before it there, and is held back when that one will
        be retried (or is no longer known: recorded meanwhile, so the next claim decides on what was recorded).
        """
        limit = limit or asyncio.Semaphore(self.concurrency)
        flight = {} if flight is None else flight
        endpoint = batch.endpoint
        loop = asyncio.get_running_loop()
        batch.deliveries.sort(key=lambda doc: (doc.get("seq") is not None, doc.get("seq") or 0))
        mine: dict[ObjectId, asyncio.Future[bool]] = {doc["_id"]: loop.create_future() for doc in batch.deliveries}
        free: asyncio.Future[bool] = loop.create_future()  # for the first of its subject: nothing to wait for
        free.set_result(True)
        flight.update(mine)
        waits = {doc["_id"]: flight.get(batch.after[doc["_id"]]) if doc["_id"] in batch.after else free
                 for doc in batch.deliveries}  # None: the one before is no longer in flight

        async def one(doc: dict[str, Any]) -> delivery.Outcome | None:
            done = mine[doc["_id"]]
            try:
                before = waits[doc["_id"]]
                if doc["_id"] in batch.held or before is None or not await asyncio.shield(before):
                    batch.held.add(doc["_id"])
                    return None
                async with limit:
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
                        )
                done.set_result(self._final(doc, outcome, endpoint))
                return outcome
            finally:
                if not done.done():
                    done.set_result(False)

        try:
            outcomes = await asyncio.gather(*(one(doc) for doc in batch.deliveries))
            await self.record(batch, outcomes)
        finally:
            for key in mine:
                flight.pop(key, None)  # recorded (or lost): a later claim reads its state from the database
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

    async def record(self, batch: Batch, outcomes: list[delivery.Outcome | None]) -> None:
        """One bulk write: each delivery's new state and its attempts, atomically per delivery (so a crash never
        leaves an attempt logged but not counted), and only while this batch still holds the claim. A delivery held
        back (``None``) is released as it was, its claim taken back."""
        endpoint = batch.endpoint
        now = self.clock.now()
        attempted = [o for o in outcomes if o is not None]
        any_success = any(o.status_code is not None and 200 <= o.status_code < 300 for o in attempted)
        failing_since = None if any_success else (endpoint.failing_since or now)
        writes: list[UpdateOne] = []
        succeeded = gave_up = 0
        disable_reason: str | None = None
        for doc, outcome in zip(batch.deliveries, outcomes, strict=True):
            if outcome is None:
                writes.append(UpdateOne(
                    {"_id": doc["_id"], "lease_token": batch.token},
                    {"$set": {"lease_token": None, "lease_until": None, "updated_at": now}, "$pop": {"claims": 1}},
                ))
                continue
            decision = retry.decide(
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
            inc = {"attempt_count": len(attempts)}
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
            writes.append(UpdateOne(
                {"_id": doc["_id"], "lease_token": batch.token},
                {"$set": fields, "$inc": inc, "$push": {"attempts": {"$each": attempts, "$slice": -KEPT_ATTEMPTS}}},
            ))
        await WebhookDelivery.get_pymongo_collection().bulk_write(writes, ordered=False)
        metrics.WEBHOOK_ATTEMPTS.labels("success").inc(succeeded)
        metrics.WEBHOOK_ATTEMPTS.labels("failure").inc(len(attempted) - succeeded)
        metrics.WEBHOOK_FAILURES.inc(gave_up)
        if attempted:
            await self._endpoint_health(endpoint, any_success, now)
        if disable_reason is not None:
            await disable_endpoint(endpoint.id, endpoint.tenant_id, disable_reason, now)  # type: ignore[arg-type]
            endpoint.enabled = False  # the lane stops at its next claim

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
        tokens: set[str] = set()  # claims in flight
        flight: dict[ObjectId, asyncio.Future[bool]] = {}  # their deliveries: done for good or not (``deliver``)
        heartbeat = asyncio.create_task(self._heartbeat(tokens))
        in_flight: deque[asyncio.Task[int]] = deque()
        held = False  # a batch held deliveries back: look again once the ones before them are recorded

        async def deliver(batch: Batch) -> int:
            nonlocal held
            try:
                return await self.deliver(batch, limit, flight)
            finally:
                tokens.discard(batch.token)
                held = held or bool(batch.held)

        scan = True  # whether to look for due deliveries once the handed batches are sent
        try:
            while self.serves(endpoint_id):
                handed = self.handed.get(endpoint_id)
                if handed:
                    batch: Batch | None = handed.popleft()
                    ours = set(tokens)
                    tokens.add(batch.token)  # type: ignore[union-attr]
                    batch = await self._checked(await self.ordered(batch, ours))  # type: ignore[arg-type]
                    scan = scan and len(in_flight) > 0  # a lane started for new deliveries leaves retries to the scan
                elif scan or held:
                    held = False
                    self.handed.pop(endpoint_id, None)
                    batch = await self.claim(endpoint_id, tokens)
                    if batch is None:
                        scan = False
                        continue
                elif in_flight:
                    await in_flight.popleft()
                    continue
                else:
                    break
                tokens.add(batch.token)
                in_flight.append(asyncio.create_task(deliver(batch)))
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
                    self.handed.pop(endpoint_id, None)  # their claims lapse and the endpoint's new owner sends them
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
