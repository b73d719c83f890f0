"""Webhook endpoints, deliveries (one per event and endpoint, each with its attempts) and the dispatcher's cursor."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, Unsharded, key

LOG_RETENTION_SECONDS = 30 * 86400  # deliveries and their attempts, like the event log's default
KEPT_ATTEMPTS = 50  # per delivery; a full retry schedule is 8 attempts, so only repeated replays reach it
INTERRUPTED = "interrupted: the worker lost its lease before recording the outcome (crash or restart)"


class EndpointSecret(BaseModel):
    """A signing secret. Kept in clear because it must sign; never logged, never answered after creation."""

    value: str = Field(repr=False)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None  # set on the old secret when rotated: it keeps signing until then

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class WebhookEndpoint(Document):
    tenant_id: str
    url: str
    description: str | None = None
    event_types: list[str] = Field(default_factory=list)  # empty: every event type
    secrets: list[EndpointSecret] = Field(repr=False)
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None  # first failure of the current unbroken run of failures
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "enabled",
        why="the tenant's endpoints",
    )

    class Settings:
        name = "webhook_endpoints"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("enabled", 1)])]

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types

    def signing_secrets(self, now: datetime) -> list[str]:
        return [secret.value for secret in self.secrets if secret.active(now)]


class DeliveryState(str, Enum):
    pending = "pending"  # waiting for its next attempt (or in flight while leased)
    succeeded = "succeeded"
    failed = "failed"  # retries exhausted, or the endpoint was disabled


class WebhookAttempt(BaseModel):
    """One try at sending a delivery, kept inside the delivery: the outcome and its log are one atomic write."""

    at: datetime
    status_code: int | None = None
    duration_ms: int = 0
    response_excerpt: str | None = None
    error: str | None = None  # transport error, refused address, or an attempt interrupted by a crash
    worker: str | None = None  # the worker (host, process id) that sent it


class WebhookDelivery(Document):
    event_id: PydanticObjectId  # also the webhook-id header, stable across retries
    endpoint_id: PydanticObjectId
    tenant_id: str  # the endpoint's tenant
    event_type: str
    subject: str | None = None  # the event's ordering key: one subject's deliveries go in ``seq`` order
    seq: int | None = None  # the event's place in the log
    body: str  # the JSON body, fixed when the delivery is created
    state: DeliveryState = DeliveryState.pending
    next_attempt_at: datetime
    failures: int = 0  # completed failed attempts since the last (re)play: drives the retry schedule
    attempt_count: int = 0  # attempts made, interrupted ones included (``attempts`` keeps the latest KEPT_ATTEMPTS)
    attempts: list[WebhookAttempt] = Field(default_factory=list)
    lease_token: str | None = None
    lease_until: datetime | None = None
    claims: list[datetime] = Field(default_factory=list)  # when each lease began: more than logged = interrupted
    delivered_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id",
        why="claimed and completed per endpoint, i.e. per tenant",
        before_sharding="the unique (event_id, endpoint_id) becomes (tenant_id, event_id, endpoint_id)",
    )

    class Settings:
        name = "webhook_deliveries"
        indexes = [
            pymongo.IndexModel([("event_id", 1), ("endpoint_id", 1)], unique=True),
            pymongo.IndexModel([("state", 1), ("next_attempt_at", 1)]),
            pymongo.IndexModel([("endpoint_id", 1), ("state", 1), ("seq", 1)]),  # an endpoint's pending, in order
            # Claims: SecantusDB looks an _id up directly only when the filter has nothing else, so the fenced
            # writes ({_id, lease_token}) find their document along this index.
            pymongo.IndexModel([("lease_token", 1)]),
            pymongo.IndexModel([("endpoint_id", 1), ("_id", -1)]),
            pymongo.IndexModel([("tenant_id", 1), ("_id", -1)]),
            # Kept as long as the events they carry (the retry schedule spans about 28 hours), then deleted along this
            # index by the hub (webhooks/retention.py: a TTL index stalls SecantusDB once a minute).
            pymongo.IndexModel([("created_at", 1), ("_id", 1)], name="retention"),
        ]


class DispatcherCursor(Document):
    """Every event with ``seq <= position`` has its deliveries; ``owner`` holds the dispatching lease."""

    id: str  # type: ignore[assignment]
    position: int | None = None
    owner: str | None = None
    lease_until: datetime | None = None

    shard_key: ClassVar[Declaration] = Unsharded(
        "a few documents of the dispatchers' leases",
    )

    class Settings:
        name = "webhook_cursors"


class DeliveriesInFlight(Document):
    """What one worker is sending that is not yet in ``webhook_deliveries`` (webhooks/worker.py sends the deliveries
    its own dispatcher makes first and inserts them finished): per batch, the endpoint, the events and when sending
    began. A worker that dies leaves its document behind, and the dispatcher that re-creates those deliveries logs
    an interrupted attempt for each one named here; recorded batches are removed by the worker's next write."""

    id: str  # type: ignore[assignment]  # the worker's name
    batches: dict[str, dict[str, Any]] = Field(default_factory=dict)  # claim token -> endpoint_id, events, at
    seq_max: int = 0  # the latest event named: the dispatcher deletes the document once its cursor has passed it
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = Unsharded(
        "one small document per worker process",
    )

    class Settings:
        name = "webhook_in_flight"


MODELS: list[type[Document]] = [WebhookEndpoint, WebhookDelivery, DispatcherCursor, DeliveriesInFlight]
