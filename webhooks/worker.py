"""The delivery worker: claims due deliveries under a lease, sends them, records every attempt.

Any number of workers can run (one in each hub process, or alone as ``lotpulse webhooks worker``). Claims are
batched per endpoint (a few database operations for dozens of deliveries) and each endpoint's batch runs as its own
task with its own concurrency limit, so one slow ERP holds only its own slots. A worker that dies leaves leases that
lapse; the next claimant records the interrupted attempt in the log and sends again (same ``webhook-id``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import PyMongoError

from hub import metrics
from hub.config import Settings
from hub.db import run_transaction
from webhooks import delivery, guard, retry
from webhooks.clock import Clock, SystemClock
from webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("lotpulse.webhooks.worker")
# Named for the planner: SecantusDB scans the collection when a filter has fields beyond an index
# (tests/test_indexes.py).
DUE_INDEX = [("endpoint_id", 1), ("state", 1), ("next_attempt_at", 1)]
MAX_BATCH = 100
BACKLOG = 1000  # due deliveries read per endpoint per scan
MAX_GROUPS = 64  # endpoints served at once by one worker
DRAIN_SECONDS = 5.0  # on shutdown, how long batches in flight may finish
INTERRUPTED = "interrupted: the worker lost its lease before recording the outcome (crash or restart)"


@dataclass
class Group:
    """Deliveries of one endpoint claimed together under one lease token."""

    endpoint: WebhookEndpoint
    token: str
    deliveries: list[dict[str, Any]]
    interrupted: dict[ObjectId, list[datetime]] = field(default_factory=dict)  # earlier claims never finished


def _due(now: datetime) -> dict[str, Any]:
    return {
        "state": DeliveryState.pending.value,
        "next_attempt_at": {"$lte": now},
        "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}],
    }


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
    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.name = f"worker-{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)
        self.concurrency = max(1, settings.webhook_endpoint_concurrency)
        # Leases are renewed while a batch is in flight (``_heartbeat``), so a batch may outlast one lease; a short
        # lease is what lets another worker take a dead worker's claims over quickly.
        self.batch = MAX_BATCH
        self.disable_after = timedelta(days=settings.webhook_disable_after_days)
        self.schedule = retry.schedule_of(settings.webhook_retry_schedule)
        self.http = delivery.client(settings.webhook_timeout_seconds)
        self.busy: set[ObjectId] = set()
        self.backlog: dict[ObjectId, list[ObjectId]] = {}  # endpoint -> due deliveries not yet tried to claim
        self.discovered_at = -math.inf
        self.stale = True
        # Retries falling due and deliveries made by other processes are found by a periodic scan.
        self.rescan_seconds = max(settings.webhook_poll_seconds, 0.5)
        self.tasks: set[asyncio.Task[None]] = set()
        self.wakeup = asyncio.Event()

    def wake(self, *_: Any) -> None:
        """New deliveries exist (the dispatcher made them): look for them now, not at the next scan."""
        self.stale = True
        self.wakeup.set()

    async def close(self, drain_seconds: float = 0.0) -> None:
        """Stop: let batches in flight finish for up to ``drain_seconds`` (so a deploy does not resend them), then
        cancel the rest, whose leases lapse and are taken over."""
        if self.tasks and drain_seconds > 0:
            await asyncio.wait(self.tasks, timeout=drain_seconds)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.http.aclose()

    # -- claiming --------------------------------------------------------------------------------------------------

    async def _discover(self, due: dict[str, Any]) -> None:
        """Which endpoints have due deliveries, and the next due ones of each endpoint with no cached backlog.

        Scanning for due deliveries is the expensive read, so its answer serves many claims; the claim itself
        re-checks every condition atomically, so a stale backlog can only miss, never double-claim.
        """
        collection = WebhookDelivery.get_pymongo_collection()
        waiting = await collection.distinct("endpoint_id", {**due, "endpoint_id": {"$nin": sorted(self.busy)}})
        need = [endpoint for endpoint in waiting if not self.backlog.get(endpoint)]
        if need:  # a disabled endpoint's deliveries wait for it to be enabled again: do not scan them
            enabled = WebhookEndpoint.get_pymongo_collection().find(
                {"_id": {"$in": need}, "enabled": True}, projection={"_id": 1}
            )
            usable = {raw["_id"] async for raw in enabled}
            need = [endpoint for endpoint in need if endpoint in usable]
        found = await asyncio.gather(
            *(
                collection.find({**due, "endpoint_id": endpoint}, projection={"_id": 1}, hint=DUE_INDEX)
                .sort("next_attempt_at", 1)
                .limit(BACKLOG)
                .to_list(BACKLOG)
                for endpoint in need
            )
        )
        for endpoint, docs in zip(need, found, strict=True):
            self.backlog[endpoint] = [doc["_id"] for doc in docs]
        self.discovered_at = time.monotonic()
        self.stale = False

    async def claim(self, limit_groups: int = MAX_GROUPS) -> list[Group]:
        """Lease due deliveries of enabled endpoints this worker is not already serving, batched per endpoint."""
        now = self.clock.now()
        due = _due(now)
        ready = [e for e, ids in self.backlog.items() if ids and e not in self.busy]
        cached = any(self.backlog.values())  # a busy endpoint's cached backlog is not a reason to scan again
        if not cached or self.stale or time.monotonic() - self.discovered_at >= self.rescan_seconds:
            await self._discover(due)
            ready = [e for e, ids in self.backlog.items() if ids and e not in self.busy]
        if not ready:
            return []
        endpoints = await WebhookEndpoint.find({"_id": {"$in": ready}, "enabled": True}).to_list()
        endpoints = endpoints[:limit_groups]
        for disabled in set(ready) - {endpoint.id for endpoint in endpoints}:
            self.backlog.pop(disabled, None)
        chosen: list[ObjectId] = []
        for endpoint in endpoints:
            ids = self.backlog[endpoint.id]  # type: ignore[index]
            chosen.extend(ids[: self.batch])
            self.backlog[endpoint.id] = ids[self.batch :]  # type: ignore[index]
        token = f"{self.name}:{uuid.uuid4().hex}"
        collection = WebhookDelivery.get_pymongo_collection()
        await collection.update_many(
            {**due, "_id": {"$in": chosen}},
            {
                "$set": {"lease_token": token, "lease_until": now + self.lease, "updated_at": now},
                "$push": {"claims": now},
            },
        )
        by_endpoint: dict[ObjectId | None, list[dict[str, Any]]] = {}
        async for doc in collection.find({"lease_token": token}):
            by_endpoint.setdefault(doc["endpoint_id"], []).append(doc)
        groups = []
        for endpoint in endpoints:
            docs = by_endpoint.get(endpoint.id, [])
            if docs:
                # Every claim ends in one logged attempt; claims beyond the log (but this one) were interrupted.
                interrupted = {doc["_id"]: doc["claims"][doc["attempt_count"] : -1] for doc in docs}
                groups.append(Group(endpoint, token, docs, {k: v for k, v in interrupted.items() if v}))
        return groups

    # -- sending ---------------------------------------------------------------------------------------------------

    async def deliver(self, group: Group) -> None:
        """Send a group's deliveries (at most ``concurrency`` at once) and record every outcome in one write."""
        endpoint = group.endpoint
        limit = asyncio.Semaphore(self.concurrency)
        try:
            # Checked right before sending (DNS may have changed since creation); the requests go to this address.
            target: guard.Target | None = await guard.check(endpoint.url, self.settings.webhook_allow_private)
            refusal = ""
        except guard.UnsafeURL as exc:
            target, refusal = None, exc.message

        async def one(doc: dict[str, Any]) -> delivery.Outcome:
            async with limit:
                now = self.clock.now()
                if target is None:
                    return delivery.refused(now, refusal)
                return await delivery.send(
                    self.http,
                    target,
                    str(doc["event_id"]),
                    doc["body"],
                    endpoint.signing_secrets(now),
                    at=now,
                    signed_at=datetime.now(UTC),
                )

        heartbeat = asyncio.create_task(self._heartbeat(group.token))
        try:
            outcomes = await asyncio.gather(*(one(doc) for doc in group.deliveries))
        finally:
            heartbeat.cancel()
        now = self.clock.now()
        any_success = any(o.status_code is not None and 200 <= o.status_code < 300 for o in outcomes)
        failing_since = None if any_success else (endpoint.failing_since or now)
        attempts: list[dict[str, Any]] = []
        # Deliveries whose outcome writes the same fields share one update_many (one round trip, not one per row).
        same: dict[tuple[Any, ...], list[ObjectId]] = {}
        disable_reason: str | None = None
        for doc, outcome in zip(group.deliveries, outcomes, strict=True):
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
            interrupted = group.interrupted.get(doc["_id"], [])
            for claimed_at in interrupted:
                attempts.append(self._attempt(doc, claimed_at, None, 0, None, INTERRUPTED))
            attempts.append(
                self._attempt(doc, outcome.at, outcome.status_code, outcome.duration_ms, outcome.response_excerpt,
                              outcome.error)
            )
            error = None if decision.succeeded else (outcome.error or f"HTTP {outcome.status_code}")
            key = (decision.succeeded, decision.next_attempt_at, 1 + len(interrupted), error)
            same.setdefault(key, []).append(doc["_id"])
        collection = WebhookDelivery.get_pymongo_collection()
        updates: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for (succeeded, next_at, tries, error), ids in same.items():
            fields: dict[str, Any] = {"lease_token": None, "lease_until": None, "updated_at": now, "last_error": error}
            inc = {"attempt_count": tries}
            if succeeded:
                fields.update(state=DeliveryState.succeeded.value, delivered_at=now)
            else:
                inc["failures"] = 1
                if next_at is not None:
                    fields["next_attempt_at"] = next_at
                else:
                    fields["state"] = DeliveryState.failed.value
            updates.append(({"_id": {"$in": ids}, "lease_token": group.token}, {"$set": fields, "$inc": inc}))

        async def record(session: AsyncClientSession) -> None:
            # The attempt log and the deliveries' counters commit together: a crash between them would make the
            # next claimant log a finished attempt a second time, as interrupted.
            if attempts:
                await WebhookAttempt.get_pymongo_collection().insert_many(
                    [dict(attempt) for attempt in attempts], ordered=False, session=session
                )
            for query, change in updates:
                await collection.update_many(query, change, session=session)

        await run_transaction(collection.database.client, record)
        for (succeeded, next_at, _tries, _), ids in same.items():
            metrics.WEBHOOK_ATTEMPTS.labels("success" if succeeded else "failure").inc(len(ids))
            if not succeeded and next_at is None:
                metrics.WEBHOOK_FAILURES.inc(len(ids))
        await self._endpoint_health(endpoint, any_success, now)
        if disable_reason is not None:
            await disable_endpoint(endpoint.id, endpoint.tenant_id, disable_reason, now)  # type: ignore[arg-type]

    async def _heartbeat(self, token: str) -> None:
        """Keep this batch's claims while it is sent: renewed every third of a lease, they lapse soon after a crash."""
        collection = WebhookDelivery.get_pymongo_collection()
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await collection.update_many(
                    {"lease_token": token}, {"$set": {"lease_until": self.clock.now() + self.lease}}
                )
            except PyMongoError as exc:
                log.warning("could not renew webhook claims (%s); they may be taken over", exc)

    @staticmethod
    def _attempt(
        doc: dict[str, Any], at: datetime, status: int | None, duration_ms: int, excerpt: str | None, error: str | None
    ) -> dict[str, Any]:
        return {
            "delivery_id": doc["_id"],
            "endpoint_id": doc["endpoint_id"],
            "tenant_id": doc["tenant_id"],
            "at": at,
            "status_code": status,
            "duration_ms": duration_ms,
            "response_excerpt": excerpt,
            "error": error,
        }

    async def _endpoint_health(self, endpoint: WebhookEndpoint, any_success: bool, now: datetime) -> None:
        collection = WebhookEndpoint.get_pymongo_collection()
        if any_success and endpoint.failing_since is not None:
            await collection.update_one({"_id": endpoint.id}, {"$set": {"failing_since": None}})
        elif not any_success and endpoint.failing_since is None:
            await collection.update_one({"_id": endpoint.id, "failing_since": None}, {"$set": {"failing_since": now}})

    # -- loops -----------------------------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim what is due and deliver it to completion; answers the number of attempts made (for tests, CLI)."""
        groups = await self.claim()
        await asyncio.gather(*(self.deliver(group) for group in groups))
        return sum(len(group.deliveries) for group in groups)

    async def drain(self, max_passes: int = 1000) -> int:
        """Run passes until nothing is due now."""
        total = 0
        for _ in range(max_passes):
            made = await self.run_once()
            if not made:
                break
            total += made
        return total

    def _start(self, group: Group) -> None:
        endpoint_id: ObjectId = group.endpoint.id  # type: ignore[assignment]
        self.busy.add(endpoint_id)

        async def guarded() -> None:
            try:
                await self.deliver(group)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivering to endpoint %s failed; its lease will lapse and be retried", endpoint_id)
            finally:
                self.busy.discard(endpoint_id)
                self.wakeup.set()

        task = asyncio.create_task(guarded(), name=f"webhook-{endpoint_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self) -> None:
        """Keep every endpoint with due deliveries served, until cancelled."""
        try:
            while True:
                self.wakeup.clear()
                try:
                    free = MAX_GROUPS - len(self.busy)
                    groups = await self.claim(free) if free > 0 else []
                except Exception:
                    log.exception("claiming webhook deliveries failed; retrying")
                    groups = []
                for group in groups:
                    self._start(group)
                if not groups:
                    try:
                        await asyncio.wait_for(self.wakeup.wait(), self.settings.webhook_poll_seconds)
                    except TimeoutError:
                        pass
        finally:
            await self.close(drain_seconds=min(DRAIN_SECONDS, self.settings.webhook_timeout_seconds))
