"""A tenant's escalation policies: per alert kind and severity, the steps taken while an alert waits unacknowledged."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import ClassVar

import pymongo
from beanie import Document
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, key

ANY = "*"  # a policy for every kind (or every severity): stored as "*" so (tenant, kind, severity) stays unique


class StepAction(str, Enum):
    raise_severity = "raise_severity"
    notify_role = "notify_role"
    notify_member = "notify_member"
    notify_partners = "notify_partners"  # the partners that share the alert (its audience)
    page_webhook = "page_webhook"  # one named endpoint of the owner, else its endpoints subscribed to alert.escalated


class EscalationStep(BaseModel):
    after_minutes: int  # from when the alert was opened (or reopened); business minutes when hours are set
    action: StepAction
    role: str | None = None
    member_id: str | None = None
    webhook_endpoint_id: str | None = None


class BusinessHours(BaseModel):
    time_zone: str  # IANA name, e.g. Europe/Berlin
    days: list[int]  # ISO weekdays, 1 = Monday
    start: str  # "08:00", local time
    end: str  # "18:00", local time, after start (no windows across midnight)


class EscalationPolicy(Document):
    tenant_id: str
    kind: str = ANY
    severity: str = ANY
    steps: list[EscalationStep] = Field(default_factory=list)
    business_hours: BusinessHours | None = None
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = None

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "kind",
        why="a tenant's policies; the unique (tenant_id, kind, severity) starts with it",
    )

    class Settings:
        name = "escalation_policies"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("kind", 1), ("severity", 1)], unique=True)]
