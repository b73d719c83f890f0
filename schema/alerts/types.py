"""GraphQL types for alerts and the events that carry them.

An alert is rendered from the same payload its events carry (hub/services/alerts.py ``alert_payload``), so a query
result and a subscription message for the same alert version can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from hub.errors import BadInput
from hub.events.bus import LiveEvent
from hub.models.alert import Alert, AlertKind, AlertStatus, Decision, Severity
from hub.models.escalation import StepAction
from hub.services import exposure_views
from hub.services.alerts import ALERT_EVENT_TYPES, alert_payload
from schema.node import Node
from schema.scalars import (  # noqa: F401 - registers the enums
    AlertKindEnum,
    AlertStatusEnum,
    DecisionEnum,
    EscalationActionEnum,
    SeverityEnum,
)


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@strawberry.type(name="AlertSubject")
class AlertSubjectType:
    kind: str
    id: strawberry.ID
    label: str | None


@strawberry.type
class EscalationNotice:
    """One step of an escalation policy taken on an alert (hub/services/escalation.py)."""

    step: int
    of: int
    action: StepAction
    after_minutes: int
    role: str | None
    member_id: strawberry.ID | None
    webhook_endpoint_id: strawberry.ID | None
    at: datetime | None = strawberry.field(description="When the step fired")

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> EscalationNotice:
        endpoint = data.get("webhookEndpointId")
        return cls(step=data["step"], of=data["of"], action=StepAction(data["action"]),
                   after_minutes=data["afterMinutes"], role=data.get("role"),
                   member_id=strawberry.ID(data["memberId"]) if data.get("memberId") else None,
                   webhook_endpoint_id=strawberry.ID(endpoint) if endpoint else None, at=_when(data.get("at")))


@strawberry.type(name="Alert")
class AlertType(Node):
    id: strawberry.ID
    kind: AlertKind
    severity: Severity
    status: AlertStatus
    owner_id: strawberry.ID
    title: str
    subjects: list[AlertSubjectType]
    evidence: JSON
    recommendation: str | None
    occurrences: int = strawberry.field(description="How many times the finding was raised")
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    note: str | None
    decision: Decision | None = strawberry.field(
        description="What the resolver decided; null while unresolved or when the hub saw the finding go away"
    )
    escalated_at: datetime | None
    # Read from the stored alert only (queries), never from event payloads: partners must not learn the owner's
    # internal steps (the roles and members it notified) through an event.
    history: strawberry.Private[list[dict[str, Any]]]

    @strawberry.field(description="Escalation steps taken since the alert last opened, in order; partners see the "
                                  "steps addressed to them (severity raises and partner notices), the owner all")
    def escalations(self, info: Info) -> list[EscalationNotice]:
        principal = info.context.principal
        own = principal is not None and principal.tenant_id == self.owner_id
        shared = (StepAction.raise_severity.value, StepAction.notify_partners.value)
        return [EscalationNotice.from_payload(step) for step in self.history if own or step["action"] in shared]

    @classmethod
    def from_payload(cls, data: Mapping[str, Any], viewer: str | None) -> AlertType:
        """``viewer``: the tenant it is shown to (a partner sees a sensor alert with its own goods only)."""
        data = exposure_views.alert_for(data, viewer)
        return cls(
            id=strawberry.ID(data["id"]),
            kind=AlertKind(data["kind"]),
            severity=Severity(data["severity"]),
            status=AlertStatus(data["status"]),
            owner_id=strawberry.ID(data["ownerId"]),
            title=data["title"],
            subjects=[
                AlertSubjectType(kind=s["kind"], id=strawberry.ID(s["id"]), label=s.get("label"))
                for s in data.get("subjects", [])
            ],
            evidence=JSON(data.get("evidence") or {}),
            recommendation=data.get("recommendation"),
            occurrences=data.get("occurrences", 1),
            created_at=datetime.fromisoformat(data["createdAt"]),
            updated_at=datetime.fromisoformat(data["updatedAt"]),
            acknowledged_at=_when(data.get("acknowledgedAt")),
            acknowledged_by=data.get("acknowledgedBy"),
            resolved_at=_when(data.get("resolvedAt")),
            resolved_by=data.get("resolvedBy"),
            note=data.get("note"),
            decision=Decision(data["decision"]) if data.get("decision") else None,
            escalated_at=_when(data.get("escalatedAt")),
            history=[],
        )

    @classmethod
    def from_model(cls, alert: Alert, viewer: str) -> AlertType:
        answer = cls.from_payload(alert_payload(alert)["alert"], viewer)
        answer.history = [{**step, "at": step["at"].isoformat()} for step in alert.escalations]
        return answer


@strawberry.type(name="AlertEvent")
class AlertEventType:
    cursor: strawberry.ID = strawberry.field(description="The event id: pass it as 'after' to resume from here")
    type: str = strawberry.field(description="mismatch.detected, alert.acknowledged, alert.escalated, ...")
    occurred_at: datetime
    alert: AlertType
    previous_severity: Severity | None = strawberry.field(description="Set on alert.escalated raising the severity")
    escalation: EscalationNotice | None = strawberry.field(description="Set on alert.escalated: the step taken")

    @classmethod
    def from_event(cls, event: LiveEvent, viewer: str) -> AlertEventType:
        previous = event.payload.get("previousSeverity")
        return cls(
            cursor=strawberry.ID(event.id),
            type=event.type,
            occurred_at=event.occurred_at,
            alert=AlertType.from_payload(event.payload["alert"], viewer),
            previous_severity=Severity(previous) if previous else None,
            escalation=EscalationNotice.from_payload(notice) if (notice := event.payload.get("escalation")) else None,
        )


@strawberry.input
class AlertFilter:
    kinds: list[AlertKind] | None = None
    severities: list[Severity] | None = None
    statuses: list[AlertStatus] | None = None
    owner_id: strawberry.ID | None = None
    subject_id: strawberry.ID | None = strawberry.field(default=None, description="A dispatch, lot, sensor... id")

    def to_query(self, viewer: str) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = []
        if self.kinds is not None:
            clauses.append({"kind": {"$in": [kind.value for kind in self.kinds]}})
        if self.severities is not None:
            clauses.append({"severity": {"$in": [severity.value for severity in self.severities]}})
        if self.statuses is not None:
            clauses.append({"status": {"$in": [status.value for status in self.statuses]}})
        if self.owner_id is not None:
            clauses.append({"tenant_id": str(self.owner_id)})
        if self.subject_id is not None:
            subject = str(self.subject_id)
            clauses.append({"subjects.id": subject})
            # Only by a subject the caller is shown: a partner's sensor alert names another brand's lots to the
            # owner alone (hub/services/exposure_views.py), so it is not found by them either.
            clauses.append({"$or": [
                {"tenant_id": viewer}, {"audience_rule": exposure_views.DISPATCH_PARTIES},
                {"kind": {"$nin": sorted(exposure_views.SENSOR_ALERTS)}},
                {"subjects": {"$elemMatch": {"id": subject, "kind": {"$ne": "lot"}}}},
                {"evidence.lots": {"$elemMatch": {"lotId": subject, "ownerId": viewer}}},
            ]})
        return clauses


@strawberry.input
class AlertEventFilter:
    types: list[str] | None = strawberry.field(default=None, description="Event types; all alert events if unset")
    kinds: list[AlertKind] | None = None
    severities: list[Severity] | None = None
    subject_id: strawberry.ID | None = None

    def event_types(self) -> list[str]:
        if self.types is None:
            return list(ALERT_EVENT_TYPES)
        unknown = sorted(set(self.types) - set(ALERT_EVENT_TYPES))
        if unknown:
            raise BadInput(f"not alert event types: {', '.join(unknown)}", field="filter.types")
        return list(self.types)

    def matches(self, event: LiveEvent, viewer: str) -> bool:
        alert = exposure_views.alert_for(event.payload.get("alert", {}), viewer)
        if self.kinds is not None and alert.get("kind") not in {kind.value for kind in self.kinds}:
            return False
        if self.severities is not None and alert.get("severity") not in {s.value for s in self.severities}:
            return False
        if self.subject_id is not None and not any(
            subject.get("id") == str(self.subject_id) for subject in alert.get("subjects", [])
        ):
            return False
        return True
