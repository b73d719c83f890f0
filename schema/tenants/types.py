"""GraphQL types for tenants, members and partnerships."""

from __future__ import annotations

from datetime import datetime

import strawberry

import schema.scalars  # noqa: F401 - binds the model enums to GraphQL
from tenants.models import Member, Partnership, PartnershipStatus, Role, Scope, Tenant, TenantKind


@strawberry.type(name="Tenant")
class TenantType:
    id: strawberry.ID
    name: str
    kind: TenantKind
    gln: str | None

    @classmethod
    def from_model(cls, tenant: Tenant) -> TenantType:
        return cls(id=strawberry.ID(tenant.id), name=tenant.name, kind=tenant.kind, gln=tenant.gln)


@strawberry.type(name="Me")
class MeType:
    tenant: TenantType
    subject: str
    issuer: str
    roles: list[Role]
    scopes: list[str] | None


@strawberry.type(name="Member")
class MemberType:
    id: strawberry.ID
    issuer: str
    subject: str
    email: str | None
    roles: list[Role]
    created_at: datetime

    @classmethod
    def from_model(cls, member: Member) -> MemberType:
        return cls(
            id=strawberry.ID(str(member.id)),
            issuer=member.issuer,
            subject=member.subject,
            email=member.email,
            roles=list(member.roles),
            created_at=member.created_at,
        )


@strawberry.type(name="Partnership")
class PartnershipType:
    id: strawberry.ID
    partner_id: strawberry.ID
    partner_name: str | None
    status: PartnershipStatus
    invited_by_us: bool
    we_share: list[Scope]
    they_share: list[Scope]
    invited_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, partnership: Partnership, me: str, names: dict[str, str]) -> PartnershipType:
        other = partnership.other(me)
        return cls(
            id=strawberry.ID(str(partnership.id)),
            partner_id=strawberry.ID(other),
            partner_name=names.get(other),
            status=partnership.status,
            invited_by_us=partnership.inviter_id == me,
            we_share=[Scope(s) for s in partnership.shares.get(me, [])],
            they_share=[Scope(s) for s in partnership.shares.get(other, [])],
            invited_at=partnership.invited_at,
            accepted_at=partnership.accepted_at,
            revoked_at=partnership.revoked_at,
        )


@strawberry.input
class InvitePartnerInput:
    partner_id: strawberry.ID
    we_share: list[Scope] = strawberry.field(default_factory=list, description="What we share with the partner")
    they_share: list[Scope] = strawberry.field(default_factory=list, description="What we ask the partner to share")


@strawberry.input
class AddMemberInput:
    issuer: str
    subject: str
    roles: list[Role]
    email: str | None = None


@strawberry.input
class PartnerFilter:
    status: PartnershipStatus | None = None
