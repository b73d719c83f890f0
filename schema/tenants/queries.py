"""Queries: who am I, my partners, my members."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
from strawberry.types import Info

from hub.errors import NotFound
from schema.pagination import Connection, paginate
from schema.permissions import READ, allowed
from schema.tenants.types import MemberType, MeType, PartnerFilter, PartnershipType, TenantType
from tenants.access import partnerships_of
from tenants.models import Member, Partnership, Tenant
from tenants.roles import Group


async def tenant_names(ids: set[str]) -> dict[str, str]:
    return {tenant.id: tenant.name async for tenant in Tenant.find({"_id": {"$in": sorted(ids)}})}


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ)
    async def me(self, info: Info) -> MeType:
        principal = info.context.require_principal()
        tenant = await Tenant.find_one({"_id": principal.tenant_id})
        if tenant is None:
            raise NotFound("tenant not found")
        return MeType(
            tenant=TenantType.from_model(tenant),
            subject=principal.subject,
            issuer=principal.issuer,
            roles=sorted(principal.roles),
            scopes=sorted(principal.scopes) if principal.scopes is not None else None,
        )

    @strawberry.field(permission_classes=READ)
    async def partners(
        self, info: Info, filter: PartnerFilter | None = None, first: int = 100, after: str | None = None
    ) -> Connection[PartnershipType]:
        me = info.context.require_principal().tenant_id
        query = partnerships_of(me, filter.status if filter else None)

        async def nodes(page: Sequence[Partnership]) -> list[PartnershipType]:
            names = await tenant_names({p.other(me) for p in page})
            return [PartnershipType.from_model(p, me, names) for p in page]

        return await paginate(
            Partnership, query, first, after, info.context.hub.settings.max_page_size, nodes, batch=True
        )

    @strawberry.field(permission_classes=allowed(Group.administration))
    async def members(self, info: Info, first: int = 100, after: str | None = None) -> Connection[MemberType]:
        access = await info.context.access()
        return await paginate(
            Member, access.owned(), first, after, info.context.hub.settings.max_page_size, MemberType.from_model
        )
