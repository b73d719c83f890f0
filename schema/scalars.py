"""GraphQL enums shared across domains, bound to the model enums so values never drift."""

from __future__ import annotations

import strawberry

from hub.models.alert import AlertKind, AlertStatus, Decision, Severity
from hub.models.escalation import StepAction
from hub.models.location import LocationKind
from hub.models.lot import LotStatus
from tenants.models import PartnershipStatus, Role, Scope, TenantKind

TenantKindEnum = strawberry.enum(TenantKind, name="TenantKind")
RoleEnum = strawberry.enum(Role, name="Role")
ScopeEnum = strawberry.enum(Scope, name="PartnerScope")
PartnershipStatusEnum = strawberry.enum(PartnershipStatus, name="PartnershipStatus")
LocationKindEnum = strawberry.enum(LocationKind, name="LocationKind")
LotStatusEnum = strawberry.enum(LotStatus, name="LotStatus")
AlertKindEnum = strawberry.enum(AlertKind, name="AlertKind")
SeverityEnum = strawberry.enum(Severity, name="Severity")
AlertStatusEnum = strawberry.enum(AlertStatus, name="AlertStatus")
DecisionEnum = strawberry.enum(Decision, name="AlertDecision")
EscalationActionEnum = strawberry.enum(StepAction, name="EscalationAction")

from hub.detect.mismatch import MismatchKind  # noqa: E402 - supply flow enums
from hub.models.dispatch import DispatchStatus  # noqa: E402
from hub.models.receipt import ReceiptOutcome  # noqa: E402

DispatchStatusEnum = strawberry.enum(DispatchStatus, name="DispatchStatus")
ReceiptOutcomeEnum = strawberry.enum(ReceiptOutcome, name="ReceiptOutcome")
MismatchKindEnum = strawberry.enum(MismatchKind, name="MismatchKind")

from hub.models.oauth import ClientKind  # noqa: E402 - OAuth clients

ClientKindEnum = strawberry.enum(ClientKind, name="OAuthClientKind")
