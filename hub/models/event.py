"""The event log: every accepted change, written in the same transaction as the state it describes.

``seq`` is the log's order. It comes from one counter incremented inside the writing transaction, so two
transactions that both emit serialise on it and ``seq`` order is commit order, across every hub process. ObjectIds are
not: they are minted before commit, by many processes, so an older id can commit after a newer one has been seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Document
from pydantic import Field

from tenants.models import Scope
from hub.dates import utcnow

EVENT_TYPES = (
    "mismatch.detected",
    "expiry_risk.detected",
    "sensor_spike.detected",
    "velocity_drop.detected",
    "velocity_spike.detected",
    "obsolescence_risk.detected",
    "fefo_violation.detected",
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
    seq: int = 0  # assigned by hub/events/log.py when written; commit order
    occurred_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime  # TTL: retention of the log

    class Settings:
        name = "events"
        indexes = [
            pymongo.IndexModel([("audience", 1), ("_id", 1)]),
            pymongo.IndexModel([("seq", 1)]),
            pymongo.IndexModel([("audience", 1), ("seq", 1)]),
            pymongo.IndexModel([("expires_at", 1)], expireAfterSeconds=0),
        ]
