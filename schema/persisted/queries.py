"""Queries: an OAuth client's safelist (tenant admins)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.services import persisted
from schema.permissions import allowed
from schema.persisted.types import ClientSafelistType, SafelistedQueryType
from tenants.roles import Group


@strawberry.type
class Query:
    @strawberry.field(permission_classes=allowed(Group.administration))
    async def client_safelist(self, info: Info, client_id: str) -> ClientSafelistType:
        enforced, entries = await persisted.safelist_of(await info.context.access(), client_id)
        return ClientSafelistType(
            client_id=client_id, enforced=enforced, queries=[SafelistedQueryType.from_model(e) for e in entries]
        )
