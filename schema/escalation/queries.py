"""escalationPolicies: the caller's own tenant's chains, and the default when no catch-all policy replaces it."""

from __future__ import annotations

from datetime import timedelta

import strawberry
from strawberry.types import Info

from hub.models.escalation import ANY, EscalationPolicy
from hub.services import escalation as escalation_service
from schema.escalation.types import EscalationPolicyType
from schema.permissions import READ


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ, description="Your tenant's policies; the built-in default last")
    async def escalation_policies(self, info: Info) -> list[EscalationPolicyType]:
        access = await info.context.access()
        policies = await escalation_service.list_policies(access)
        answer = [EscalationPolicyType.from_model(policy) for policy in policies]
        if not any(p.kind == ANY and p.severity == ANY for p in policies):
            after = timedelta(minutes=info.context.hub.settings.alert_escalation_minutes)
            default = EscalationPolicy(tenant_id=access.tenant_id,
                                       steps=[step for _, step in escalation_service.default_chain(after).steps])
            answer.append(EscalationPolicyType.from_model(default, built_in=True))
        return answer
