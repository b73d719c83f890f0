"""Planning mutations: accept or dismiss a transfer recommendation, set a planning policy."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.services import transfers
from schema.permissions import allowed
from schema.planning.types import PlanningPolicyInput, PlanningPolicyType, TransferRecommendationType
from tenants.roles import Group


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=allowed(Group.decisions),
        description="Book the transfer (once: accepting twice is a no-op)",
    )
    async def accept_transfer_recommendation(self, info: Info, id: strawberry.ID) -> TransferRecommendationType:
        access = await info.context.access()
        found = await transfers.accept(access, info.context.hub.database, str(id))
        return TransferRecommendationType.from_model(found)

    @strawberry.mutation(permission_classes=allowed(Group.decisions))
    async def dismiss_transfer_recommendation(
        self, info: Info, id: strawberry.ID, reason: str
    ) -> TransferRecommendationType:
        access = await info.context.access()
        found = await transfers.dismiss(access, info.context.hub.database, str(id), reason)
        return TransferRecommendationType.from_model(found)

    @strawberry.mutation(
        permission_classes=allowed(Group.master_data),
        description="Lead time, review period, targets, discontinued",
    )
    async def set_planning_policy(self, info: Info, input: PlanningPolicyInput) -> PlanningPolicyType:
        access = await info.context.access()
        policy = await transfers.set_policy(access, transfers.PolicyInput(
            sku=input.sku, location_id=str(input.location_id) if input.location_id else None,
            lead_time_days=input.lead_time_days, review_days=input.review_days,
            target_days_of_supply=input.target_days_of_supply, max_days_of_supply=input.max_days_of_supply,
            discontinued=input.discontinued,
        ))
        return PlanningPolicyType.from_model(policy)
