"""Tenants, their members and the partnerships between tenants."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, ClassVar

import pymongo
from beanie import Document
from pydantic import Field, StringConstraints

from hub.dates import utcnow
from hub.sharding import Declaration, Unsharded

TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]


class TenantKind(str, Enum):
    supplier = "supplier"
    retailer = "retailer"
    logistics = "logistics"
    manufacturer = "manufacturer"


class Role(str, Enum):
    admin = "admin"
    planner = "planner"
    operator = "operator"
    viewer = "viewer"
    integration = "integration"


class Scope(str, Enum):
    """What one partner shares with the other, per direction."""

    sku_master = "sku_master"
    dispatches = "dispatches"
    stock = "stock"
    sensors = "sensors"
    alerts = "alerts"


class PartnershipStatus(str, Enum):
    invited = "invited"
    active = "active"
    revoked = "revoked"


class Tenant(Document):
    id: TenantId  # type: ignore[assignment]  # a readable slug, used in tokens and audiences
    name: str
    kind: TenantKind
    gln: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = Unsharded(
        "one small document per tenant, read on every request",
    )

    class Settings:
        name = "tenants"


class Member(Document):
    tenant_id: str
    issuer: str
    subject: str
    roles: list[Role]
    email: str | None = None
    created_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = Unsharded(
        "a few per tenant, looked up by (issuer, subject) on sign-in, before the tenant is known",
    )

    class Settings:
        name = "members"
        indexes = [
            pymongo.IndexModel([("issuer", 1), ("subject", 1)], unique=True),
            pymongo.IndexModel([("tenant_id", 1)]),
        ]


class Partnership(Document):
    """Two tenants; ``shares[t]`` is what tenant ``t`` shares with the other one."""

    pair_key: str  # "a|b" with a < b: at most one partnership per pair
    inviter_id: str
    invitee_id: str
    status: PartnershipStatus = PartnershipStatus.invited
    shares: dict[str, list[Scope]]
    invited_at: datetime = Field(default_factory=utcnow)
    accepted_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    shard_key: ClassVar[Declaration] = Unsharded(
        "a few per tenant, read from either side; the unique pair key names two tenants",
    )

    class Settings:
        name = "partnerships"
        indexes = [
            pymongo.IndexModel([("pair_key", 1)], unique=True),
            pymongo.IndexModel([("inviter_id", 1), ("status", 1)]),
            pymongo.IndexModel([("invitee_id", 1), ("status", 1)]),
        ]

    def other(self, tenant_id: str) -> str:
        return self.invitee_id if tenant_id == self.inviter_id else self.inviter_id


def pair_key(a: str, b: str) -> str:
    return "|".join(sorted((a, b)))


MODELS: list[type[Document]] = [Tenant, Member, Partnership]
