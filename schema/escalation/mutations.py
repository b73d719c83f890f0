"""upsertEscalationPolicy: tenant admins set the chain for one alert kind and severity (audited before -> after)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.services import escalation as escalation_service
from schema.escalation.types import EscalationPolicyInput, EscalationPolicyType
from schema.permissions import allowed
from tenants.roles import Group


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=allowed(Group.administration))
    async def upsert_escalation_policy(self, info: Info, input: EscalationPolicyInput) -> EscalationPolicyType:
        access = await info.context.access()
        policy = await escalation_service.upsert_policy(
            access, input.alert_kind, input.severity, [step.to_model() for step in input.steps],
            input.business_hours.to_model() if input.business_hours else None,
        )
        return EscalationPolicyType.from_model(policy)
