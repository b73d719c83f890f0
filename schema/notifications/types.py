"""A notification as the API shows it to one reader."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from hub.events.bus import LiveEvent
from hub.models.alert import AlertKind, Severity
from hub.models.escalation import StepAction
from hub.models.notification import Notification
from schema.scalars import AlertKindEnum, EscalationActionEnum, RoleEnum, SeverityEnum  # noqa: F401 - registers the enums
from tenants.models import Role


def _addressed(recipients: list[str]) -> tuple[Role | None, strawberry.ID | None]:
    role = next((Role(r.split(":", 1)[1]) for r in recipients if r.startswith("role:")), None)
    member = next((strawberry.ID(r.split(":", 1)[1]) for r in recipients if r.startswith("member:")), None)
    return role, member


@strawberry.type(name="Notification")
class NotificationType:
    id: strawberry.ID
    alert_id: strawberry.ID
    alert_kind: AlertKind
    severity: Severity = strawberry.field(description="The alert's severity when the step fired")
    title: str = strawberry.field(description="The alert's title")
    step: int = strawberry.field(description="Which step of the escalation policy sent it")
    of: int
    action: StepAction
    role: Role | None = strawberry.field(description="notify_role: sent to the owner's members with this role")
    member_id: strawberry.ID | None = strawberry.field(description="notify_member: sent to this member")
    created_at: datetime
    read: bool = strawberry.field(description="Whether you have read it (per reader)")
    acknowledged_at: datetime | None = strawberry.field(description="When someone addressed took it")
    acknowledged_by: str | None

    @classmethod
    def from_model(cls, notification: Notification, reader: str) -> NotificationType:
        role, member = _addressed(notification.recipients)
        return cls(
            id=strawberry.ID(str(notification.id)), alert_id=strawberry.ID(str(notification.alert_id)),
            alert_kind=AlertKind(notification.alert_kind), severity=Severity(notification.severity),
            title=notification.title, step=notification.step, of=notification.of,
            action=StepAction(notification.action), role=role, member_id=member, created_at=notification.created_at,
            read=reader in notification.read_by, acknowledged_at=notification.acknowledged_at,
            acknowledged_by=notification.acknowledged_by,
        )

    @classmethod
    def from_event(cls, event: LiveEvent) -> NotificationType:
        """A notification as it is sent: new, so nobody has read or acknowledged it yet."""
        notice: dict[str, Any] = event.payload["escalation"]
        alert: dict[str, Any] = event.payload["alert"]
        role, member = _addressed(notice.get("recipients") or [])
        return cls(
            id=strawberry.ID(notice["notificationId"]), alert_id=strawberry.ID(alert["id"]),
            alert_kind=AlertKind(alert["kind"]), severity=Severity(alert["severity"]), title=alert["title"],
            step=notice["step"], of=notice["of"], action=StepAction(notice["action"]), role=role, member_id=member,
            created_at=datetime.fromisoformat(notice["at"]), read=False, acknowledged_at=None, acknowledged_by=None,
        )
