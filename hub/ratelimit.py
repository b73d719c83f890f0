"""Rate limits per tenant and per OAuth client: token buckets for requests and for query cost, shared by every hub
process through MongoDB.

Why not the ``limits`` library: its asyncio MongoDB storage is built on motor (deprecated, and rejected by beanie 2,
see the README), it offers fixed and moving windows rather than token buckets, and it asks the database on every
hit, which would double the cost of a trivial query on the embedded database. Here each bucket is one document
(``rate_buckets``) refilled and drawn by one atomic update pipeline, and a process *leases* tokens from it that it
spends locally for at most ``LEASE_SECONDS``. A lease starts at a tenth of the burst (``Limit.chunk``) and doubles
while the process spends each one within ``GROW_SECONDS``, up to a second of the refill rate (never more than the
burst, never less than the first chunk); it halves again when a lease lasts longer. So the database is asked about
once per lease (a draw costs the hub about a millisecond of CPU, several times a trivial query), the limit holds
across processes, and a process can over-spend by at most what it holds unspent: one and a half leases.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from hub import metrics
from hub.config import Settings
from hub.sharding import Unsharded

COLLECTION = "rate_buckets"
SHARDING = Unsharded("a bucket per caller key and limit, drawn before the tenant is known")

if TYPE_CHECKING:
    from hub.auth import Principal
    from hub.state import HubState

# Unspent leased tokens are dropped after this. A process never holds more than about one chunk, so the cluster
# over-admits by at most a chunk per process whatever a lease's age; a short life only costs database round trips.
LEASE_SECONDS = 10.0
CHUNK_FRACTION = 0.1
# A lease of this many tokens or more is topped up in the background once half of it is left, so a busy caller's
# requests do not all wait for the database round trip of the next draw (which stalled every request in flight).
PREFETCH_CHUNK = 10
# A process that spends a whole lease within this many seconds draws a lease twice as large next time (up to
# ``Limit.largest_lease``); one that takes more than four times as long draws half as much.
GROW_SECONDS = 1.0
log = logging.getLogger("lotpulse.ratelimit")


@dataclass(frozen=True)
class Limit:
    per_second: float
    burst: float

    @property
    def chunk(self) -> float:
        """The first lease of a process: a tenth of the burst."""
        return max(1.0, math.floor(self.burst * CHUNK_FRACTION))

    @property
    def largest_lease(self) -> float:
        """What one process may lease at once: a second of the refill rate, within the burst, at least a chunk."""
        return max(self.chunk, math.floor(min(self.burst, self.per_second * GROW_SECONDS)))


@dataclass(slots=True)  # one or two per request: not frozen, whose construction costs several times more
class Decision:
    allowed: bool
    limit: Limit
    remaining: float  # what this process knows is left (its lease plus the bucket at its last read)
    retry_after: float  # seconds until the refused amount is available again (0 when allowed)

    def tighter(self, other: Decision | None) -> Decision:
        """Of two decisions for one request, the one to report: a refusal, else the one with less left."""
        if other is None or not self.allowed:
            return self
        if not other.allowed:
            return other
        return self if self.remaining / self.limit.burst <= other.remaining / other.limit.burst else other

    def headers(self) -> dict[str, str]:
        """IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers), plus Retry-After when refused."""
        reset = 0.0 if self.limit.per_second <= 0 else (self.limit.burst - self.remaining) / self.limit.per_second
        headers = {
            "RateLimit-Limit": str(int(self.limit.burst)),
            "RateLimit-Remaining": str(max(0, int(self.remaining))),
            "RateLimit-Reset": str(max(0, math.ceil(reset))),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """``headers()`` of an allowed request, as the ASGI response's raw header list (sent on every response)."""
        left = self.remaining
        reset = 0.0 if self.limit.per_second <= 0 else (self.limit.burst - left) / self.limit.per_second
        return [
            (b"ratelimit-limit", b"%d" % self.limit.burst),
            (b"ratelimit-remaining", b"%d" % max(0, int(left))),
            (b"ratelimit-reset", b"%d" % max(0, math.ceil(reset))),
        ]


@dataclass
class _Lease:
    tokens: float = 0.0
    taken_at: float = 0.0
    bucket_left: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    refilling: bool = False
    size: float = 0.0  # what the next draw asks for (0: not drawn yet, the limit's first chunk)

    def resize(self, limit: Limit, now: float) -> float:
        """The size of the draw about to be made: doubled if the last lease went within ``GROW_SECONDS``, halved if
        it lasted more than four times that, within ``limit.chunk`` and ``limit.largest_lease``."""
        since = now - self.taken_at
        size = self.size or limit.chunk
        if since < GROW_SECONDS:
            size *= 2
        elif since > 4 * GROW_SECONDS:
            size /= 2
        self.size = min(max(size, limit.chunk), limit.largest_lease)
        return self.size


class SharedBuckets:
    """Token buckets in one MongoDB collection, drawn through per-process leases."""

    def __init__(self, collection: AsyncCollection[Any]) -> None:
        self.collection = collection
        self.leases: dict[str, _Lease] = {}
        self._refills: set[asyncio.Task[None]] = set()

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expire_at", expireAfterSeconds=0)

    def take_leased(self, key: str, amount: float, limit: Limit) -> Decision | None:
        """The common case, without awaiting: ``amount`` from this process's live lease, or None if it has not
        enough (then ``take``)."""
        lease = self.leases.get(key)
        if lease is None or lease.tokens < amount or time.monotonic() - lease.taken_at > LEASE_SECONDS:
            return None
        lease.tokens -= amount
        size = lease.size
        if size >= PREFETCH_CHUNK and lease.tokens < size / 2 and not lease.refilling:
            lease.refilling = True
            task = asyncio.get_running_loop().create_task(self._top_up(key, lease, limit))
            self._refills.add(task)
            task.add_done_callback(self._refills.discard)
        return Decision(True, limit, lease.tokens + lease.bucket_left, 0.0)

    async def _top_up(self, key: str, lease: _Lease, limit: Limit) -> None:
        """One more lease for a lease running low, drawn while requests still spend what is left. A process then
        holds at most one and a half leases."""
        try:
            async with lease.lock:
                now = time.monotonic()
                if now - lease.taken_at > LEASE_SECONDS:
                    lease.tokens = 0.0
                if lease.tokens >= lease.size / 2:
                    return
                granted, lease.bucket_left = await self._draw(key, lease.resize(limit, now), limit)
                lease.tokens += granted
                lease.taken_at = time.monotonic()
        except Exception:  # the next request that finds the lease dry draws for itself (and reports any outage)
            log.debug("rate-limit lease top-up failed", exc_info=True)
        finally:
            lease.refilling = False

    async def take(self, key: str, amount: float, limit: Limit) -> Decision:
        lease = self.leases.get(key)
        if lease is None:  # not setdefault: that would build a lease and its lock on every request
            lease = self.leases[key] = _Lease()
        now = time.monotonic()
        if now - lease.taken_at > LEASE_SECONDS:
            lease.tokens = 0.0
        if lease.tokens >= amount:
            lease.tokens -= amount
            return Decision(True, limit, lease.tokens + lease.bucket_left, 0.0)
        async with lease.lock:
            # Another request of this process may have refilled meanwhile; and requests served from the lease
            # without the lock may spend it while a draw is awaited, so draw until enough or the bucket is dry.
            size = lease.resize(limit, time.monotonic()) if lease.tokens < amount else 0.0
            while lease.tokens < amount:
                want = max(amount - lease.tokens, size)
                granted, lease.bucket_left = await self._draw(key, want, limit)
                lease.tokens += granted
                lease.taken_at = time.monotonic()
                if granted < want:
                    break
            if lease.tokens >= amount:
                lease.tokens -= amount
                return Decision(True, limit, lease.tokens + lease.bucket_left, 0.0)
            # More than the whole bucket never fits: the wait reported is then that of a full bucket.
            missing = min(amount, limit.burst) - lease.tokens - lease.bucket_left
            wait = max(0.0, missing) / max(limit.per_second, 1e-9)
            return Decision(False, limit, lease.tokens + lease.bucket_left, wait)

    async def _draw(self, key: str, want: float, limit: Limit) -> tuple[float, float]:
        """Refill the shared bucket for the time elapsed and take up to ``want`` whole tokens from it, atomically."""
        now = time.time()
        full_in = limit.burst / max(limit.per_second, 1e-9)
        expire_at = datetime.now(UTC) + timedelta(seconds=min(full_in, 86400) + 60)
        elapsed = {"$max": [0, {"$subtract": [now, {"$ifNull": ["$at", now]}]}]}
        doc = await self.collection.find_one_and_update(
            {"_id": key},
            [
                {"$set": {"level": {"$min": [limit.burst, {"$add": [{"$ifNull": ["$tokens", limit.burst]},
                                                                    {"$multiply": [elapsed, limit.per_second]}]}]}}},
                {"$set": {"granted": {"$max": [0, {"$min": [want, {"$floor": "$level"}]}]}}},
                {"$set": {"tokens": {"$subtract": ["$level", "$granted"]}, "at": now,
                          "expire_at": {"$literal": expire_at}}},
                {"$unset": "level"},
            ],
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        return float(doc["granted"]), float(doc["tokens"])



class RateLimiter:
    """The hub's limits: per tenant and per OAuth client, for requests and for query cost (settings, with overrides
    per tenant or client)."""

    def __init__(self, settings: Settings, buckets: SharedBuckets) -> None:
        self.settings = settings
        self.buckets = buckets
        self.overrides = {
            ("t", o.tenant) if o.tenant else ("c", o.client_id): o for o in settings.rate_limit_overrides
        }
        # per kind, tenant and client: the key and limit of each bucket a request draws from
        self._callers: dict[tuple[str, str, str | None], tuple[tuple[str, Limit], ...]] = {}

    def _buckets_of(self, kind: str, principal: Principal) -> tuple[tuple[str, Limit], ...]:
        """The caller's tenant bucket and, for OAuth clients, its client bucket (worked out once per caller)."""
        whom = (kind, principal.tenant_id, principal.client_id)
        found = self._callers.get(whom)
        if found is None:
            callers: list[tuple[str, str | None]] = [("t", principal.tenant_id)]
            if principal.client_id:
                callers.append(("c", principal.client_id))
            found = self._callers[whom] = tuple(
                (f"{kind}:{who[0]}:{who[1]}", self._limit(kind, who)) for who in callers
            )
        return found

    def _limit(self, kind: str, who: tuple[str, str | None]) -> Limit:
        s, override = self.settings, self.overrides.get(who)
        per_second = getattr(override, f"{kind}_per_second", None)
        burst = getattr(override, f"{kind}_burst", None)
        return Limit(
            per_second if per_second is not None else getattr(s, f"rate_limit_{kind}_per_second"),
            burst if burst is not None else getattr(s, f"rate_limit_{kind}_burst"),
        )

    def take_leased(self, kind: str, principal: Principal, amount: float) -> Decision | None:
        """``take`` without awaiting, when the caller has only its tenant's bucket and this process's lease of it
        holds enough (the common case); else None, and then ``take``."""
        buckets = self._callers.get((kind, principal.tenant_id, principal.client_id)) or self._buckets_of(
            kind, principal
        )
        if len(buckets) != 1:
            return None
        key, limit = buckets[0]
        return self.buckets.take_leased(key, amount, limit)

    async def take(self, kind: str, principal: Principal, amount: float) -> Decision:
        """Draw ``amount`` from the caller's tenant bucket and, for OAuth clients, its client bucket (``kind`` is
        ``requests`` or ``cost``); answers the refusal, else the tighter of the two."""
        chosen: Decision | None = None
        buckets = self._callers.get((kind, principal.tenant_id, principal.client_id)) or self._buckets_of(
            kind, principal
        )
        for key, limit in buckets:
            decision = self.buckets.take_leased(key, amount, limit) or await self.buckets.take(key, amount, limit)
            if not decision.allowed:
                metrics.RATE_LIMITED.labels(kind).inc()
                return decision
            if chosen is None or decision.remaining < chosen.remaining:
                chosen = decision
        assert chosen is not None  # every caller has a tenant bucket
        return chosen


async def start_rate_limits(hub: HubState) -> None:
    """Startup hook: the limiter on the hub's database (off with ``LOTPULSE_RATE_LIMITS=false``)."""
    if not hub.settings.rate_limits:
        return
    buckets = SharedBuckets(hub.database.db[COLLECTION])
    await buckets.ensure_indexes()
    hub.rate_limiter = RateLimiter(hub.settings, buckets)
