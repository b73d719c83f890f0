"""The event log: every accepted change, written in the same transaction as the state it describes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Document
from pydantic import Field

from tenants.models import utcnow

EVENT_TYPES = (
    "mismatch.detected",
    "expiry_risk.detected",
    "sensor_spike.detected",
    "alert.acknowledged",
    "alert.resolved",
    "alert.escalated",
    "dispatch.created",
    "dispatch.updated",
    "dispatch.received",
    "stock.changed",
)


class Event(Document):
    type: str
    tenant_id: str  # owner
    audience: list[str]  # tenant ids entitled to hear it (always includes the owner)
    payload: dict[str, Any]
    occurred_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime  # TTL: retention of the log

    class Settings:
        name = "events"
        indexes = [
            pymongo.IndexModel([("audience", 1), ("_id", 1)]),
            pymongo.IndexModel([("expires_at", 1)], expireAfterSeconds=0),
        ]
