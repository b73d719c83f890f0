"""Tenant admins choose how inventory health bands stock by age."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.errors import BadInput
from hub.services import health as health_service
from schema.permissions import allowed
from tenants.roles import Group


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=allowed(Group.administration),
        description="Aging band upper bounds in days (increasing), e.g. [30, 60, 90, 180]; null restores that default",
    )
    async def set_aging_bands(self, info: Info, bands: list[int] | None = strawberry.UNSET) -> list[int]:
        if bands is strawberry.UNSET:  # GraphQL cannot require a nullable argument: leaving it out is a mistake
            raise BadInput("say the 'bands', or null for the default", field="bands")
        access = await info.context.access()
        return list(await health_service.set_tenant_bands(access, bands))
