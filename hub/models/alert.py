"""Alerts: what detection found, who should hear it, and its lifecycle."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

import pymongo
from beanie import Document
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class AlertKind(str, Enum):
    mismatch = "mismatch"
    expiry_risk = "expiry_risk"
    sensor_spike = "sensor_spike"
    velocity_drop = "velocity_drop"
    velocity_spike = "velocity_spike"
    obsolescence_risk = "obsolescence_risk"
    fefo_violation = "fefo_violation"
    sensor_offline = "sensor_offline"


class Severity(str, Enum):
    info = "info"
    warning = "warning"
    critical = "critical"

    def raised(self) -> Severity:
        order = list(Severity)
        return order[min(order.index(self) + 1, len(order) - 1)]


class AlertStatus(str, Enum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Decision(str, Enum):
    """What a person decided when resolving an alert: the fixed vocabulary the health figures count by."""

    markdown = "markdown"
    transfer = "transfer"
    return_to_supplier = "return_to_supplier"
    destroy = "destroy"
    accept_risk = "accept_risk"
    false_alarm = "false_alarm"
    other = "other"  # needs a note saying what


class SubjectRef(BaseModel):
    """What an alert is about: a dispatch, a lot, a sensor, a location..."""

    kind: str
    id: str
    label: str | None = None


class Alert(Document):
    kind: AlertKind
    severity: Severity
    tenant_id: str  # owner
    audience: list[str]
    # "sharing": partners in the audience hear it while the owner shares ``alerts`` with them; "dispatch": the
    # audience are a dispatch's parties, who hear it by being parties (like the dispatch's own events).
    audience_rule: str = "sharing"
    title: str
    subjects: list[SubjectRef] = Field(default_factory=list)
    evidence: dict[str, Any] = Field(default_factory=dict)
    recommendation: str | None = None
    dedupe_key: str
    status: AlertStatus = AlertStatus.open
    occurrences: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    opened_at: datetime = Field(default_factory=utcnow)  # created or last reopened: the escalation clock
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    note: str | None = None
    decision: Decision | None = None  # set by a person resolving it; None when the hub saw the finding go away
    decision_value: dict[str, float] | None = None  # the stock it was about, valued per currency when decided
    escalated_at: datetime | None = None  # when the first escalation step fired
    # The escalation chain (hub/services/escalation.py): the policy it follows (pinned at its first step), how many
    # of its steps fired (the compare-and-set that keeps each step single across processes), when it ran out.
    escalation_policy: str | None = None
    escalation_step: int = 0
    escalation_done_at: datetime | None = None
    escalations: list[dict[str, Any]] = Field(default_factory=list)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "status",
        why="the owner's alerts; partners in the audience read them across shards",
        before_sharding="the unique dedupe_key becomes (tenant_id, dedupe_key): the key already names the "
                        "owner's subject",
    )

    class Settings:
        name = "alerts"
        indexes = [
            pymongo.IndexModel([("dedupe_key", 1)], unique=True),
            pymongo.IndexModel([("tenant_id", 1), ("status", 1)]),  # the shard key's
            pymongo.IndexModel([("audience", 1), ("status", 1), ("_id", -1)]),
            pymongo.IndexModel([("status", 1), ("created_at", 1)]),
            pymongo.IndexModel([("status", 1), ("escalation_done_at", 1), ("opened_at", 1)]),
        ]
