"""Mutations: partnerships and members (tenant admins only)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from schema.permissions import allowed
from schema.tenants.queries import tenant_names
from schema.tenants.types import AddMemberInput, InvitePartnerInput, MemberType, PartnershipType
from tenants import service
from tenants.models import Partnership
from tenants.roles import Group


async def _out(partnership: Partnership, me: str) -> PartnershipType:
    return PartnershipType.from_model(partnership, me, await tenant_names({partnership.other(me)}))


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=allowed(Group.administration))
    async def invite_partner(self, info: Info, input: InvitePartnerInput) -> PartnershipType:
        access = await info.context.access()
        partnership = await service.invite_partner(access, str(input.partner_id), input.we_share, input.they_share)
        return await _out(partnership, access.tenant_id)

    @strawberry.mutation(permission_classes=allowed(Group.administration))
    async def accept_partnership(self, info: Info, id: strawberry.ID) -> PartnershipType:
        access = await info.context.access()
        return await _out(await service.accept_partnership(access, str(id)), access.tenant_id)

    @strawberry.mutation(permission_classes=allowed(Group.administration))
    async def revoke_partnership(self, info: Info, id: strawberry.ID) -> PartnershipType:
        access = await info.context.access()
        return await _out(await service.revoke_partnership(access, str(id)), access.tenant_id)

    @strawberry.mutation(permission_classes=allowed(Group.administration))
    async def add_member(self, info: Info, input: AddMemberInput) -> MemberType:
        access = await info.context.access()
        member = await service.add_member(access.tenant_id, input.issuer, input.subject, input.roles, input.email)
        info.context.hub.validator.forget_member(member)
        return MemberType.from_model(member)

    @strawberry.mutation(permission_classes=allowed(Group.administration))
    async def remove_member(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        member = await service.remove_member(await info.context.access(), str(id))
        info.context.hub.validator.forget_member(member)
        return id
