"""Queries: an OAuth client's safelist (tenant admins)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.services import persisted
from schema.permissions import ADMIN
from schema.persisted.types import ClientSafelistType, SafelistedQueryType


@strawberry.type
class Query:
    @strawberry.field(permission_classes=ADMIN)
    async def client_safelist(self, info: Info, client_id: str) -> ClientSafelistType:
        enforced, entries = await persisted.safelist_of(await info.context.access(), client_id)
        return ClientSafelistType(
            client_id=client_id, enforced=enforced, queries=[SafelistedQueryType.from_model(e) for e in entries]
        )
