"""The event log: every accepted change, written in the same transaction as the state it describes.

``seq`` is the log's order. Events are written ``pending`` and numbered after commit by the one leased sequencer
(hub/events/sequencer.py), so a reader that has seen ``seq`` n never meets a new event below n. ObjectIds are no order:
they are minted before commit, by many processes, so an older id can commit after a newer one has been seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pymongo
from beanie import Document
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, key
from tenants.models import Scope

EVENT_TYPES = (
    "mismatch.detected",
    "expiry_risk.detected",
    "sensor_spike.detected",
    "velocity_drop.detected",
    "velocity_spike.detected",
    "obsolescence_risk.detected",
    "fefo_violation.detected",
    "sensor_offline.detected",
    "alert.updated",
    "alert.acknowledged",
    "alert.resolved",
    "alert.escalated",
    "dispatch.created",
    "dispatch.updated",
    "dispatch.received",
    "stock.changed",
)

# The partnership scope that entitles a partner (an audience member other than the owner) to hear an event, checked
# against the live partnership when the event is delivered. Dispatch events have none: the parties to a dispatch hear
# it by being parties (DESIGN.md §4), so the audience written with the event is authoritative.
EVENT_SCOPE: dict[str, Scope] = {
    "mismatch.detected": Scope.alerts,
    "expiry_risk.detected": Scope.alerts,
    "sensor_spike.detected": Scope.alerts,
    "velocity_drop.detected": Scope.alerts,
    "velocity_spike.detected": Scope.alerts,
    "obsolescence_risk.detected": Scope.alerts,
    "fefo_violation.detected": Scope.alerts,
    "sensor_offline.detected": Scope.alerts,
    "alert.updated": Scope.alerts,
    "alert.acknowledged": Scope.alerts,
    "alert.resolved": Scope.alerts,
    "alert.escalated": Scope.alerts,
    "stock.changed": Scope.stock,
}


class Event(Document):
    type: str
    tenant_id: str  # owner
    audience: list[str]  # tenant ids entitled to hear it (always includes the owner)
    payload: dict[str, Any]
    seq: int | None = None  # stamped after commit by the sequencer; readers see numbered events only
    pending: bool | None = None  # True until numbered (written so by hub.events; the sequencer removes it)
    occurred_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime  # leaves the live log for the month's archive after this (hub/events/archive.py)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "type",
        why="written in the owner's transaction, on the owner's shard, with the state it describes",
        before_sharding="seq is unique across the log: the fence of the one sequencer (docs/event-log.md) "
                        "moves to its own state document, since a unique index on seq alone cannot span "
                        "shards; and its stamps (upserts) name the event's tenant and type",
    )

    class Settings:
        name = "events"
        indexes = [
            pymongo.IndexModel([("audience", 1), ("_id", 1)]),
            pymongo.IndexModel([("tenant_id", 1), ("type", 1)]),  # the shard key's
            # Numbers are unique (the sequencer's fence) and only numbered events are in the index.
            pymongo.IndexModel([("seq", 1)], name="seq_unique", unique=True,
                               partialFilterExpression={"seq": {"$gt": 0}}),
            pymongo.IndexModel([("pending", 1), ("_id", 1)], name="pending_id",
                               partialFilterExpression={"pending": True}),
            pymongo.IndexModel([("audience", 1), ("seq", 1)]),
            # No TTL: expired events are archived, never dropped (hub/events/archive.py).
            pymongo.IndexModel([("expires_at", 1), ("seq", 1)], name="archive_due"),
        ]
