"""Escalation policies as the API shows and takes them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from hub.models.alert import AlertKind, Severity
from hub.models.escalation import ANY, BusinessHours, EscalationPolicy, EscalationStep, StepAction
from schema.scalars import AlertKindEnum, EscalationActionEnum, RoleEnum, SeverityEnum  # noqa: F401 - registers the enums
from tenants.models import Role


@strawberry.type(name="EscalationStep")
class EscalationStepType:
    after_minutes: int = strawberry.field(description="From when the alert opened; business minutes with hours set")
    action: StepAction
    role: Role | None = strawberry.field(description="notify_role: the owner's members with this role")
    member_id: strawberry.ID | None = strawberry.field(description="notify_member: this member of the owner")
    webhook_endpoint_id: strawberry.ID | None = strawberry.field(
        description="page_webhook: this endpoint only (null: the endpoints subscribed to alert.escalated)"
    )


@strawberry.type(name="BusinessHours")
class BusinessHoursType:
    time_zone: str
    days: list[int] = strawberry.field(description="ISO weekdays, 1 = Monday")
    start: str = strawberry.field(description="Local time HH:MM")
    end: str = strawberry.field(description="Local time HH:MM, the same day")


@strawberry.type(name="EscalationPolicy")
class EscalationPolicyType:
    id: strawberry.ID | None = strawberry.field(description="Null for the built-in default")
    alert_kind: AlertKind | None = strawberry.field(description="Null: any kind")
    severity: Severity | None = strawberry.field(description="Null: any severity")
    steps: list[EscalationStepType]
    business_hours: BusinessHoursType | None
    built_in: bool = strawberry.field(description="The default every alert follows without a policy of its own")
    updated_at: datetime | None
    updated_by: str | None

    @classmethod
    def from_model(cls, policy: EscalationPolicy, built_in: bool = False) -> EscalationPolicyType:
        hours = policy.business_hours
        return cls(
            id=strawberry.ID(str(policy.id)) if policy.id else None,
            alert_kind=AlertKind(policy.kind) if policy.kind != ANY else None,
            severity=Severity(policy.severity) if policy.severity != ANY else None,
            steps=[
                EscalationStepType(
                    after_minutes=step.after_minutes, action=step.action,
                    role=Role(step.role) if step.role else None,
                    member_id=strawberry.ID(step.member_id) if step.member_id else None,
                    webhook_endpoint_id=strawberry.ID(step.webhook_endpoint_id) if step.webhook_endpoint_id else None,
                )
                for step in policy.steps
            ],
            business_hours=BusinessHoursType(**hours.model_dump()) if hours else None,
            built_in=built_in,
            updated_at=None if built_in else policy.updated_at,
            updated_by=policy.updated_by,
        )


@strawberry.input
class EscalationStepInput:
    after_minutes: int
    action: StepAction
    role: Role | None = None
    member_id: strawberry.ID | None = None
    webhook_endpoint_id: strawberry.ID | None = None

    def to_model(self) -> EscalationStep:
        return EscalationStep(
            after_minutes=self.after_minutes, action=self.action, role=self.role.value if self.role else None,
            member_id=str(self.member_id) if self.member_id is not None else None,
            webhook_endpoint_id=str(self.webhook_endpoint_id) if self.webhook_endpoint_id is not None else None,
        )


@strawberry.input
class BusinessHoursInput:
    time_zone: str
    days: list[int] = strawberry.field(description="ISO weekdays, 1 = Monday")
    start: str = strawberry.field(description="Local time HH:MM")
    end: str = strawberry.field(description="Local time HH:MM, after start, the same day")

    def to_model(self) -> BusinessHours:
        return BusinessHours(time_zone=self.time_zone, days=self.days, start=self.start, end=self.end)


@strawberry.input
class EscalationPolicyInput:
    alert_kind: AlertKind | None = strawberry.field(default=None, description="Null: any kind")
    severity: Severity | None = strawberry.field(default=None, description="Null: any severity")
    steps: list[EscalationStepInput] = strawberry.field(description="In order; empty: never escalate")
    business_hours: BusinessHoursInput | None = None
