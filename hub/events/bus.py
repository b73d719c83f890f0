"""The event bus: every hub process tails the event log and fans each event out to its own live subscribers.

Live delivery comes from one change stream on the database, filtered to event inserts and partnership changes. One
stream (not two) matters: a revocation and the events written after it arrive in commit order, so the entitlement
cache is invalidated before the first event that must no longer reach the revoked partner. The stream resumes from
its last token after a hiccup; if the token is gone, the bus catches up from the log by ``seq``.

A database without change streams (a standalone mongod) gets the fallback: the bus polls the log by ``seq``, which
still reaches every process, only later and without cached entitlements. It says so in the log.

Events reach the stream twice: inserted (``pending``, kept here briefly) and stamped with their ``seq`` by the
sequencer (hub/events/sequencer.py), which is when they are delivered, in ``seq`` order. A stamp whose insert this
process did not see, or that skips a number, sends the bus to the log for what it missed.

Subscribers with a cursor replay from the log first, then switch to live; both halves are ordered by ``seq`` (see
hub/events/sequencer.py) and anything at or below the last delivered ``seq`` is dropped, so the seam has no gap
and no duplicate.

``max_subscriptions_per_tenant`` holds across processes: every live subscription is counted in the lease ledger
(hub/events/ledger.py). A subscriber whose queue overflows (``subscriber_queue_size``) is cut off with RATE_LIMITED
and resumes with its last cursor: its queue is emptied at once, and its owner (the WebSocket handler, which may be
stuck writing to a socket nobody reads) is told through ``on_overflow``.

A subscriber whose reader is live and waiting on an empty queue is not woken for an event: the fan-out hands it to
the subscriber's ``direct`` writer (schema/subscriptions.py), which frames the event's shared rendering and queues it
for the socket's write in the same turn. Waking one task per subscriber cost more than the write itself (thousands of
task switches per broadcast). Whatever cannot be written without waiting (a socket that is not taking writes, a
reader still replaying or busy with an earlier event) goes through the queue as before, and every later event queues
behind it, so each subscriber still gets its events once and in ``seq`` order, and ``last_seq`` (the seam with the
replay) is kept the same way on both paths.

An event for thousands of subscribers is offered in chunks of ``FANOUT_CHUNK``, with the loop's other work (requests,
the sockets' writes) let in between: one broadcast never holds the process for its whole duration.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.errors import OperationFailure, PyMongoError

from hub import metrics, tracing
from hub.dates import utcnow
from hub.errors import BadInput, RateLimited
from hub.events.archive import archived_cursor
from hub.events.ledger import Ledger
from hub.events.sequencer import Sequencer, highest_seq
from tenants import access

if TYPE_CHECKING:
    from hub.config import Settings
    from hub.db import Database
    from hub.state import HubState

log = logging.getLogger("lotpulse.bus")
REPLAY_PAGE = 200
UNSTAMPED_KEPT = 20_000  # inserts awaiting their stamp; older ones are read from the log when stamped
CURSOR_STAMP_WAIT = 5.0  # a cursor of an event not numbered yet waits this long for its number
FANOUT_CHUNK = 100  # subscribers offered an event between two turns of the event loop
NEWEST_WINDOW = 256  # numbers searched first, backwards from the top, for a tenant's newest event


@dataclass(frozen=True)
class LiveEvent:
    id: str
    seq: int
    type: str
    tenant_id: str
    audience: tuple[str, ...]
    payload: dict[str, Any]
    occurred_at: datetime
    arrival: int = 0  # when this process saw the insert (0: read from the log)

    @classmethod
    def from_doc(cls, doc: dict[str, Any], seq: int | None = None, arrival: int = 0) -> LiveEvent:
        return cls(
            id=str(doc["_id"]),
            seq=int(seq if seq is not None else doc.get("seq") or 0),
            type=doc["type"],
            tenant_id=doc["tenant_id"],
            audience=tuple(doc.get("audience", ())),
            payload=doc.get("payload") or {},
            occurred_at=doc["occurred_at"],
            arrival=arrival,
        )


class Subscription:
    """One live subscriber: its tenant, what it wants, and a bounded queue the bus fills."""

    def __init__(
        self,
        tenant_id: str,
        types: frozenset[str],
        predicate: Callable[[LiveEvent], bool] | None,
        queue_size: int,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.types = types
        self.predicate = predicate
        self.queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(queue_size)
        self.overflowed = False
        # None: the end of the stream is queued instead (its reader is not blocked elsewhere)
        self.on_overflow = on_overflow
        self.last_seq = 0
        # Without a cursor a subscriber hears what commits after it joined: inserts this process had already seen
        # (arrival <= joined_at) are skipped when they are numbered. None: a cursor decides instead.
        self.joined_at: int | None = None
        # Writes an event from the fan-out's own turn if it can without waiting (answers whether it did); None: every
        # event goes through the queue.
        self.direct: Callable[[LiveEvent], bool] | None = None
        self.parked = False  # the reader is live (replay done) and waiting on an empty queue

    def wants(self, event: LiveEvent) -> bool:
        return event.type in self.types and (self.predicate is None or self.predicate(event))

    def offer(self, event: LiveEvent) -> bool:
        """Deliver or queue ``event`` if wanted; answers whether it was."""
        if self.overflowed or not self.wants(event):
            return False
        if self.joined_at is not None and 0 < event.arrival <= self.joined_at:
            return False
        if self.parked and self.direct is not None and self.queue.empty():
            # Nothing is ahead of it: written now, without waking the reader. What cannot be written without waiting
            # is queued as before.
            if event.seq <= self.last_seq:
                return False
            if tracing.active:
                with tracing.delivering(event.id, event.type, self.tenant_id):
                    written = self.direct(event)
            else:
                written = self.direct(event)
            if written:
                self.last_seq = event.seq
                return True
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            # A subscriber that cannot keep up is cut off rather than buffered without bound; it resumes by cursor.
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            if self.on_overflow is not None:
                self.on_overflow()
            else:
                self.queue.put_nowait(None)
            return False


class EventBus:
    def __init__(self, database: Database, settings: Settings, ledger: Ledger | None = None) -> None:
        self.database = database
        self.settings = settings
        self.ledger = ledger  # None: the limit counts this process's subscriptions only
        # In subscription order (a dict, not a set): a socket's subscriptions are offered an event one after the
        # other, so their messages leave in one write (hub/websocket.py).
        self.by_tenant: dict[str, dict[Subscription, None]] = {}
        self.last_seq = 0
        self.mode = "starting"
        self.ready = asyncio.Event()
        self.delivered = 0
        # Called once per new numbered event (no arguments): other consumers of the log, such as the webhook
        # dispatcher, wake on it instead of waiting for their next poll.
        self.listeners: list[Callable[[], None]] = []
        # Called once per inserted (not yet numbered) event: the sequencer wakes on it.
        self.insert_listeners: list[Callable[[], None]] = []
        self.unstamped: OrderedDict[Any, tuple[int, dict[str, Any]]] = OrderedDict()
        self.arrivals = 0  # inserts seen

    # -- subscribers -----------------------------------------------------------------------------------------------

    def count(self, tenant_id: str) -> int:
        return len(self.by_tenant.get(tenant_id, ()))

    async def cursor_seq(self, tenant_id: str, cursor: str) -> int:
        """The ``seq`` of an event the tenant was in the audience of; unknown and expired cursors are refused."""
        try:
            oid = ObjectId(cursor)
        except (InvalidId, TypeError):
            raise BadInput("invalid cursor", field="after") from None
        deadline = time.monotonic() + CURSOR_STAMP_WAIT
        while True:
            doc = await self.database.db["events"].find_one({"_id": oid, "audience": tenant_id}, {"seq": 1})
            if doc is None:
                archived = await archived_cursor(self.database, tenant_id, oid, self.settings.event_retention_days)
                if archived is not None:
                    raise archived
                raise BadInput("unknown or expired cursor: query the current state and subscribe without 'after'",
                               field="after")
            if doc.get("seq") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)  # committed, not numbered yet: the sequencer is a moment behind
        if not doc.get("seq"):
            raise BadInput("this event is not in the log's order yet; try again in a moment", field="after")
        return int(doc["seq"])

    async def newest(self, tenant_id: str) -> ObjectId | None:
        """The id of the newest event ``tenant_id`` hears (None: none yet), committed events not numbered yet included:
        a client reads its state, then this, so an event whose change it already saw must not be replayed to it as
        news, nor one it did not see be skipped.

        A pending event's number will be above every number given out so far, and the pending ones are few. Else the
        numbered events are searched backwards from the top in windows that double: a tenant that hears often is
        answered from the last few hundred numbers, and no call sorts everything the tenant ever heard (SecantusDB
        reads a whole sorted range; bench/growth.py)."""
        events = self.database.db["events"]
        # The pending index's prefix only (a filter beyond an index makes SecantusDB scan); the audience is checked
        # here.
        async for doc in events.find({"pending": True}, {"_id": 1, "audience": 1}).sort("_id", -1):
            if tenant_id in doc.get("audience", ()):
                return ObjectId(doc["_id"])
        high: int | None = None  # the first window is open upwards: numbers given out since ``last_seq`` count too
        width = NEWEST_WINDOW
        low = self.last_seq - width
        while True:
            bounds: dict[str, int] = {"$gt": max(low, 0)} | ({"$lte": high} if high is not None else {})
            doc = await events.find_one({"audience": tenant_id, "seq": bounds}, {"_id": 1}, sort=[("seq", -1)])
            if doc is not None:
                return ObjectId(doc["_id"])
            if low <= 0:
                return None
            high, width = low, width * 2
            low = high - width

    @asynccontextmanager
    async def subscribe(
        self,
        tenant_id: str,
        types: Iterable[str],
        predicate: Callable[[LiveEvent], bool] | None = None,
        after: str | None = None,
        on_overflow: Callable[[], None] | None = None,
        direct: Callable[[LiveEvent], bool] | None = None,
    ) -> AsyncIterator[AsyncIterator[LiveEvent]]:
        """Register a subscriber; the yielded iterator replays from ``after`` (an event id), then stays live.

        ``on_overflow`` is called (synchronously, from the fan-out) when the subscriber falls ``subscriber_queue_size``
        events behind; without it the iterator raises RATE_LIMITED instead. ``direct`` (synchronous, from the
        fan-out) is offered each live event while the iterator's reader waits with nothing queued: it writes the event
        and answers True, or answers False and the event is queued for the iterator as usual. Events it wrote are not
        yielded by the iterator."""
        limit = self.settings.max_subscriptions_per_tenant
        after_seq = await self.cursor_seq(tenant_id, after) if after is not None else None
        if self.count(tenant_id) >= limit:  # refused here without asking the database
            raise RateLimited(f"tenant already has {limit} live subscriptions")
        entry = await self.ledger.admit(tenant_id, limit) if self.ledger is not None else None
        subscription = Subscription(
            tenant_id, frozenset(types), predicate, self.settings.subscriber_queue_size, on_overflow
        )
        subscription.direct = direct
        if after_seq is None:
            subscription.joined_at = self.arrivals
        # Registered before the replay query: whatever commits from now on is queued, and the seq check dedupes.
        self.by_tenant.setdefault(tenant_id, {})[subscription] = None
        live = metrics.LIVE_SUBSCRIPTIONS.labels(tenant_id)
        live.inc()
        try:
            yield self._stream(subscription, after_seq)
        finally:
            live.dec()
            subscribers = self.by_tenant.get(tenant_id)
            if subscribers is not None:
                subscribers.pop(subscription, None)
                if not subscribers:
                    del self.by_tenant[tenant_id]
            if entry is not None and self.ledger is not None:
                self.ledger.release(entry)

    async def _replay(self, subscription: Subscription, after_seq: int) -> AsyncIterator[LiveEvent]:
        # Not the live cache: it may trail a revocation that already committed. One read per owner per replay.
        checked: dict[str, access.Shares] = {}
        last = after_seq
        while True:
            # The (audience, seq) index's prefix and one range, no hint and no type: SecantusDB would walk every event
            # the tenant ever heard (tests/test_indexes.py); the types are checked here, by ``wants``.
            docs = (
                await self.database.db["events"]
                .find({"audience": subscription.tenant_id, "seq": {"$gt": last}})
                .sort("seq", 1)
                .limit(REPLAY_PAGE)
                .to_list()
            )
            for doc in docs:
                event = LiveEvent.from_doc(doc)
                last = event.seq
                if not subscription.wants(event):
                    continue
                owner, scope = event.tenant_id, access.event_scope(event.type, event.payload)
                if owner != subscription.tenant_id and scope is not None and owner not in checked:
                    checked[owner] = await access.shares_of(owner, fresh=True)
                if access.reaches(checked.get(owner, {}), owner, subscription.tenant_id, scope):
                    yield event
            if len(docs) < REPLAY_PAGE:
                return

    async def _stream(self, subscription: Subscription, after_seq: int | None) -> AsyncIterator[LiveEvent]:
        if after_seq is not None:
            subscription.last_seq = after_seq
            async for event in self._replay(subscription, after_seq):
                subscription.last_seq = event.seq
                with tracing.delivering(event.id, event.type, subscription.tenant_id):
                    yield event
        while True:
            subscription.parked = True
            try:
                queued = await subscription.queue.get()
            finally:
                subscription.parked = False
            if queued is None:
                raise RateLimited("subscriber fell behind the live stream; resubscribe with 'after' = last cursor")
            event = queued
            if event.seq <= subscription.last_seq:
                continue  # already replayed
            subscription.last_seq = event.seq
            with tracing.delivering(event.id, event.type, subscription.tenant_id):
                yield event

    # -- the feed --------------------------------------------------------------------------------------------------

    async def _dispatch(self, event: LiveEvent) -> None:
        if event.seq <= self.last_seq:
            return  # seen before a resume or during a catch-up
        self.last_seq = event.seq
        metrics.BUS_LAG.observe(max(0.0, (utcnow() - event.occurred_at).total_seconds()))
        for listener in self.listeners:
            listener()
        offered = 0
        for tenant in event.audience:
            subscribers = self.by_tenant.get(tenant)
            if not subscribers or not await access.may_hear(tenant, event.tenant_id, event.type, event.payload):
                continue
            for subscription in tuple(subscribers):
                self.delivered += subscription.offer(event)
                offered += 1
                if offered % FANOUT_CHUNK == 0:
                    await asyncio.sleep(0)  # the subscribers offered so far write, requests are served

    async def _stamped(self, event_id: Any, seq: int) -> None:
        """The sequencer numbered an event: deliver it from the insert kept, or read what was missed from the log."""
        kept = self.unstamped.pop(event_id, None)
        if seq <= self.last_seq:
            return
        if kept is None or seq != self.last_seq + 1:
            await self._catch_up()
            return
        arrival, doc = kept
        await self._dispatch(LiveEvent.from_doc(doc, seq=seq, arrival=arrival))

    def _inserted(self, doc: dict[str, Any]) -> None:
        self.arrivals += 1
        self.unstamped[doc["_id"]] = (self.arrivals, doc)
        while len(self.unstamped) > UNSTAMPED_KEPT:
            self.unstamped.popitem(last=False)
        for listener in self.insert_listeners:
            listener()

    async def _catch_up(self) -> None:
        """Everything committed after ``last_seq`` that the stream will not (or may not) deliver."""
        while True:
            docs = (
                await self.database.db["events"]
                .find({"seq": {"$gt": self.last_seq}})
                .sort("seq", 1)
                .limit(REPLAY_PAGE)
                .to_list()
            )
            for doc in docs:
                await self._dispatch(LiveEvent.from_doc(doc))
            if len(docs) < REPLAY_PAGE:
                return

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                self.last_seq = await highest_seq(self.database.db)
                break
            except PyMongoError as exc:  # the database is not up yet: live delivery starts once it is
                log.warning("event bus waiting for the database (%s)", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        mode = self.settings.event_bus_mode
        if mode != "polling":
            try:
                await self._watch()
                return
            except OperationFailure as exc:
                if mode == "change_stream":
                    raise
                log.warning(
                    "change streams are not available (%s): falling back to polling the event log every %d ms; "
                    "live delivery is slower and partnership changes are re-read per batch",
                    exc.details.get("errmsg") if exc.details else exc,
                    self.settings.event_poll_interval_ms,
                )
        await self._poll()

    async def _watch(self) -> None:
        pipeline = [
            {
                "$match": {
                    "$or": [
                        {"ns.coll": "events", "operationType": "insert"},
                        {"ns.coll": "events", "updateDescription.updatedFields.seq": {"$exists": True}},
                        {"ns.coll": access.PARTNERSHIPS},
                    ]
                }
            }
        ]
        token: Any = None
        backoff = 0.1
        opened_once = False
        while True:
            try:
                stream = await self.database.db.watch(pipeline, resume_after=token)
                async with stream:
                    if not opened_once or token is None:
                        # Events committed while no stream was open reach subscribers from the log.
                        await self._catch_up()
                    if not opened_once:
                        log.info("event bus live on a change stream from seq %d", self.last_seq)
                    opened_once = True
                    self.mode = "change_stream"
                    self.ready.set()
                    backoff = 0.1
                    while True:
                        # One getMore per call, each within the client's operation deadline (an endless
                        # ``async for`` would hold quiet time against one deadline); nothing new answers None.
                        change = await stream.try_next()
                        token = stream.resume_token
                        if change is None:
                            continue
                        if change["ns"]["coll"] == access.PARTNERSHIPS:
                            access.invalidate()
                        elif change.get("operationType") == "insert":
                            self._inserted(change["fullDocument"])
                        else:
                            seq = change["updateDescription"]["updatedFields"]["seq"]
                            await self._stamped(change["documentKey"]["_id"], int(seq))
            except PyMongoError as exc:
                if isinstance(exc, OperationFailure) and not exc.timeout:
                    if not opened_once:
                        raise
                    # The resume point fell out of the oplog (or the stream was invalidated): catch up from the log.
                    log.warning("change stream lost its resume point (%s); catching up from the event log", exc)
                    token = None
                    access.invalidate()
                    continue
                # Unreachable, connection lost, or no answer within the deadline: resume where the stream was.
                log.warning("change stream interrupted (%s); resuming in %.1fs", exc, backoff)
                access.invalidate()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _poll(self) -> None:
        self.mode = "polling"
        self.ready.set()
        interval = self.settings.event_poll_interval_ms / 1000
        while True:
            try:
                # Without an ordered partnership feed, entitlements are re-read for each batch.
                access.invalidate()
                before = self.last_seq
                await self._catch_up()
                if self.last_seq == before:
                    await asyncio.sleep(interval)
            except PyMongoError as exc:
                log.warning("polling the event log failed (%s); retrying", exc)
                await asyncio.sleep(interval)


async def start_event_bus(hub: HubState) -> None:
    """Startup hook: one bus per process, live before the hub takes requests."""
    ledger = Ledger(hub.database)
    await ledger.ensure_indexes()
    bus = EventBus(hub.database, hub.settings, ledger)
    # Every process runs a sequencer; one at a time holds the lease and numbers the log.
    sequencer = Sequencer(
        hub.database,
        lease_seconds=hub.settings.work_lease_seconds,
        poll_seconds=hub.settings.event_poll_interval_ms / 1000,
    )
    bus.insert_listeners.append(sequencer.wake)
    hub.bus = bus
    hub.sequencer = sequencer
    hub.spawn("event-sequencer", sequencer.run)
    hub.spawn("event-bus", bus.run)
    hub.spawn("live-subscription-leases", ledger.renew_forever)
    try:
        await asyncio.wait_for(bus.ready.wait(), timeout=10)
    except TimeoutError:
        log.error("event bus not ready after 10 s; live subscriptions will lag until it is")
