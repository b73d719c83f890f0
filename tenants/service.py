"""Creating tenants and members, and the partnership lifecycle (invite, accept, revoke)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pymongo.errors import DuplicateKeyError

from hub import audit
from hub.dates import utcnow
from hub.errors import BadInput, Conflict, NotFound
from hub.gs1 import validate_gln
from hub.services.text import EMAIL_MAX, IDENTITY_MAX, NAME_MAX, clean_optional, clean_text
from tenants.access import Access, invalidate, object_id, partnerships_of
from tenants.models import (
    Member,
    Partnership,
    PartnershipStatus,
    Role,
    Scope,
    Tenant,
    TenantKind,
    pair_key,
)
from tenants.roles import Group

TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")  # the slug rule of tenants.models.TenantId


async def create_tenant(tenant_id: str, name: str, kind: TenantKind | str, gln: str | None = None) -> Tenant:
    if not TENANT_ID.fullmatch(tenant_id):
        raise BadInput("tenant id must be 2-63 lowercase letters, digits or dashes, starting with a letter or digit",
                       field="id")
    try:
        kind = TenantKind(kind)
    except ValueError:
        raise BadInput(f"tenant kind must be one of {', '.join(k.value for k in TenantKind)}", field="kind") from None
    name = clean_text(name, "name", NAME_MAX, "tenant name")
    tenant = Tenant(id=tenant_id, name=name, kind=kind, gln=validate_gln(gln) if gln else None)
    try:
        await tenant.insert()
    except DuplicateKeyError:
        raise Conflict(f"tenant {tenant_id!r} already exists") from None
    return tenant


async def add_member(
    tenant_id: str, issuer: str, subject: str, roles: Sequence[Role | str], email: str | None = None
) -> Member:
    if await Tenant.find_one({"_id": tenant_id}) is None:
        raise NotFound("tenant not found")
    if not roles:
        raise BadInput("a member needs at least one role")
    issuer = clean_text(issuer, "issuer", IDENTITY_MAX)
    subject = clean_text(subject, "subject", IDENTITY_MAX)
    email = clean_optional(email, "email", EMAIL_MAX)
    member = Member(tenant_id=tenant_id, issuer=issuer, subject=subject, roles=[Role(r) for r in roles], email=email)
    try:
        await member.insert()
    except DuplicateKeyError:
        raise Conflict("this identity is already a member of a tenant") from None
    await audit.record(
        "member.added",
        tenant_id=tenant_id,
        target=str(member.id),
        details={"issuer": issuer, "subject": subject, "roles": [Role(r).value for r in roles]},
    )
    return member


async def remove_member(access: Access, member_id: str) -> Member:
    access.require(Group.administration)
    member = await access.get(Member, member_id, access.owned(), "member")
    await member.delete()
    await audit.record(
        "member.removed",
        tenant_id=access.tenant_id,
        principal=access.principal,
        target=member_id,
        details={"issuer": member.issuer, "subject": member.subject},
    )
    return member


async def invite_partner(
    access: Access, partner_id: str, we_share: list[Scope], they_share: list[Scope]
) -> Partnership:
    """Propose a partnership: ``we_share`` flows from us to them, ``they_share`` from them to us once they accept."""
    access.require(Group.administration)
    me = access.tenant_id
    if partner_id == me:
        raise BadInput("a tenant cannot partner with itself")
    if await Tenant.find_one({"_id": partner_id}) is None:
        raise NotFound("tenant not found")
    key = pair_key(me, partner_id)
    shares = {me: sorted(set(we_share)), partner_id: sorted(set(they_share))}
    existing = await Partnership.find_one({"pair_key": key})
    if existing is not None:
        if existing.status != PartnershipStatus.revoked:
            raise Conflict(f"a partnership with {partner_id!r} is already {existing.status.value}")
        # Compare-and-set from revoked, so two tenants re-inviting each other at once cannot both win.
        result = await Partnership.get_pymongo_collection().update_one(
            {"_id": existing.id, "status": PartnershipStatus.revoked.value},
            {"$set": {
                "inviter_id": me,
                "invitee_id": partner_id,
                "status": PartnershipStatus.invited.value,
                "shares": {tenant: [scope.value for scope in scopes] for tenant, scopes in shares.items()},
                "invited_at": utcnow(),
                "accepted_at": None,
                "revoked_at": None,
                "revoked_by": None,
            }},
        )
        if result.modified_count != 1:
            raise Conflict(f"a partnership with {partner_id!r} was just re-opened")
        existing = await Partnership.get(existing.id)
        assert existing is not None
        await audit.record(
            "partnership.invited",
            tenant_id=me,
            principal=access.principal,
            target=str(existing.id),
            details={
                "partner": partner_id,
                "shares": {k: [s.value for s in v] for k, v in shares.items()},
                "before": {"status": PartnershipStatus.revoked.value},
                "after": {"status": PartnershipStatus.invited.value},
            },
        )
        return existing
    partnership = Partnership(pair_key=key, inviter_id=me, invitee_id=partner_id, shares=shares)
    try:
        await partnership.insert()
    except DuplicateKeyError:
        raise Conflict(f"a partnership with {partner_id!r} already exists") from None
    await audit.record(
        "partnership.invited",
        tenant_id=me,
        principal=access.principal,
        target=str(partnership.id),
        details={
            "partner": partner_id,
            "shares": {k: [s.value for s in v] for k, v in shares.items()},
            "before": None,
            "after": {"status": PartnershipStatus.invited.value},
        },
    )
    return partnership


async def _party_partnership(access: Access, partnership_id: str) -> Partnership:
    partnership = await Partnership.find_one(
        {"_id": object_id(partnership_id, "partnership"), **partnerships_of(access.tenant_id)}
    )
    if partnership is None:
        raise NotFound("partnership not found")
    return partnership


async def accept_partnership(access: Access, partnership_id: str) -> Partnership:
    access.require(Group.administration)
    partnership = await _party_partnership(access, partnership_id)
    if partnership.invitee_id != access.tenant_id:
        raise Conflict("only the invited tenant can accept")
    # Compare-and-set on status, so two concurrent accepts/revokes cannot both win.
    result = await Partnership.get_pymongo_collection().update_one(
        {"_id": partnership.id, "status": PartnershipStatus.invited.value},
        {"$set": {"status": PartnershipStatus.active.value, "accepted_at": utcnow()}},
    )
    if result.modified_count != 1:
        raise Conflict(f"partnership is {partnership.status.value}, not invited")
    invalidate()  # this process shares differently from now on; other processes hear it from their event bus
    await audit.record(
        "partnership.accepted",
        tenant_id=access.tenant_id,
        principal=access.principal,
        target=str(partnership.id),
        details={
            "partner": partnership.inviter_id,
            "before": {"status": PartnershipStatus.invited.value},
            "after": {"status": PartnershipStatus.active.value},
        },
    )
    return await Partnership.get(partnership.id)  # type: ignore[return-value]


async def revoke_partnership(access: Access, partnership_id: str) -> Partnership:
    access.require(Group.administration)
    partnership = await _party_partnership(access, partnership_id)
    result = await Partnership.get_pymongo_collection().update_one(
        {"_id": partnership.id, "status": {"$ne": PartnershipStatus.revoked.value}},
        {"$set": {"status": PartnershipStatus.revoked.value, "revoked_at": utcnow(), "revoked_by": access.tenant_id}},
    )
    if result.modified_count != 1:
        raise Conflict("partnership is already revoked")
    invalidate()
    await audit.record(
        "partnership.revoked",
        tenant_id=access.tenant_id,
        principal=access.principal,
        target=str(partnership.id),
        details={
            "partner": partnership.other(access.tenant_id),
            "before": {"status": partnership.status.value},
            "after": {"status": PartnershipStatus.revoked.value},
        },
    )
    return await Partnership.get(partnership.id)  # type: ignore[return-value]
