"""Mutations: register and remove an OAuth client's safelisted queries, and enforce the safelist (tenant admins)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.services import persisted
from schema.permissions import allowed
from schema.persisted.types import SafelistedQueryType
from tenants.roles import Group


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=allowed(Group.administration))
    async def register_safelisted_query(
        self, info: Info, client_id: str, query: str, name: str | None = None
    ) -> SafelistedQueryType:
        hub = info.context.hub
        entry = await persisted.register_safelisted(
            await info.context.access(), hub.persisted_queries, hub.safelists, client_id, query, name
        )
        return SafelistedQueryType.from_model(entry)

    @strawberry.mutation(permission_classes=allowed(Group.administration))
    async def remove_safelisted_query(self, info: Info, client_id: str, hash: str) -> bool:
        return await persisted.remove_safelisted(await info.context.access(), info.context.hub.safelists, client_id,
                                                 hash)

    @strawberry.mutation(
        permission_classes=allowed(Group.administration),
        description="Only safelisted queries run for this client (or any)",
    )
    async def enforce_safelist(self, info: Info, client_id: str, enforced: bool) -> bool:
        return await persisted.set_enforced(await info.context.access(), info.context.hub.safelists, client_id,
                                            enforced)
