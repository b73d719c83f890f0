"""Who may see what: the one place that turns a Principal into MongoDB filters (DESIGN.md §4).

Every read and write of tenant data goes through an ``Access``. It is loaded once per request (or per event for a
live subscription), so a revoked partnership stops being honoured on the very next request. Ids that exist but are
not visible answer NOT_FOUND, never FORBIDDEN, so nobody learns that another tenant's object exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from beanie import Document, PydanticObjectId
from bson import ObjectId
from bson.errors import InvalidId

from hub import audit
from hub.auth import Principal
from hub.errors import Forbidden, NotFound
from tenants.models import Partnership, PartnershipStatus, Scope

Capability = Literal["read", "write"]
D = TypeVar("D", bound=Document)


def object_id(value: str | ObjectId, what: str = "object") -> PydanticObjectId:
    """Parse an id from the API; a malformed id is simply not found."""
    try:
        return PydanticObjectId(value)
    except (InvalidId, TypeError, ValueError):
        raise NotFound(f"{what} not found") from None


async def partner_grants(tenant_id: str) -> dict[Scope, frozenset[str]]:
    """For each scope, the tenants that share it with ``tenant_id`` through an active partnership."""
    grants: dict[Scope, set[str]] = {scope: set() for scope in Scope}
    cursor = Partnership.find(
        {"status": PartnershipStatus.active.value, "$or": [{"inviter_id": tenant_id}, {"invitee_id": tenant_id}]}
    )
    async for partnership in cursor:
        other = partnership.other(tenant_id)
        for scope in partnership.shares.get(other, []):
            grants[Scope(scope)].add(other)
    return {scope: frozenset(tenants) for scope, tenants in grants.items()}


async def grantees(tenant_id: str, scope: Scope) -> frozenset[str]:
    """The tenants ``tenant_id`` shares ``scope`` with through an active partnership (the reverse of the grants)."""
    cursor = Partnership.find(
        {"status": PartnershipStatus.active.value, "$or": [{"inviter_id": tenant_id}, {"invitee_id": tenant_id}]}
    )
    return frozenset([p.other(tenant_id) async for p in cursor if scope in p.shares.get(tenant_id, [])])


@dataclass
class Access:
    principal: Principal
    grants: dict[Scope, frozenset[str]] = field(default_factory=dict)

    @classmethod
    async def load(cls, principal: Principal) -> Access:
        audit.bind(principal)  # who acts, for audit entries written deeper in this request
        return cls(principal, await partner_grants(principal.tenant_id))

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def sharing(self, scope: Scope) -> frozenset[str]:
        """Tenants that share ``scope`` with the caller."""
        return self.grants.get(scope, frozenset())

    def require_write(self) -> None:
        if not self.principal.can_write:
            raise Forbidden("your role may not change data")

    def require_admin(self) -> None:
        if not self.principal.has_role("admin"):
            raise Forbidden("only tenant admins may do this")

    # -- filters per collection ------------------------------------------------------------------------------------

    def owned(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id}

    def skus(self, capability: Capability = "read") -> dict[str, Any]:
        if capability == "write":
            return self.owned()
        return {"tenant_id": {"$in": [self.tenant_id, *sorted(self.sharing(Scope.sku_master))]}}

    def locations(self, capability: Capability = "read") -> dict[str, Any]:
        # Partners learn of each other's locations through dispatches and stock, which carry what they need.
        return self.owned()

    def lots(self, capability: Capability = "read") -> dict[str, Any]:
        if capability == "write":
            return self.owned()
        return {"$or": [{"tenant_id": self.tenant_id}, {"visible_to": self.tenant_id}]}

    def dispatches(self, capability: Capability = "read") -> dict[str, Any]:
        """Shipper, consignee and carrier all see a dispatch; only the shipper changes its notice."""
        if capability == "write":
            return self.owned()
        return {"parties": self.tenant_id}

    def receipts(self, capability: Capability = "read") -> dict[str, Any]:
        """Receipts are seen by every party of their dispatch; written by the receiving tenant."""
        if capability == "write":
            return self.owned()
        return {"parties": self.tenant_id}

    def stock(self, capability: Capability = "read") -> dict[str, Any]:
        """Own positions, plus (VMI) partners' positions of the caller's SKUs where they share ``stock``."""
        if capability == "write":
            return self.owned()
        vmi = sorted(self.sharing(Scope.stock))
        if not vmi:
            return self.owned()
        return {"$or": [self.owned(), {"tenant_id": {"$in": vmi}, "sku_owner_id": self.tenant_id}]}

    def oauth_clients(self) -> dict[str, Any]:
        """OAuth clients and identity providers: the tenant's own, never a partner's."""
        return self.owned()

    def audit_log(self) -> dict[str, Any]:
        """Audit entries about the caller's tenant (refusals by unknown clients belong to no tenant)."""
        return {"tenant_id": self.tenant_id}

    def sensors(self, capability: Capability = "read") -> dict[str, Any]:
        """Sensors, their readings and excursions: own, plus partners' that watch the caller's goods (``sensors``)."""
        if capability == "write":
            return self.owned()
        partners = sorted(self.sharing(Scope.sensors))
        if not partners:
            return self.owned()
        return {"$or": [self.owned(), {"tenant_id": {"$in": partners}, "goods_owners": self.tenant_id}]}

    def audience(self) -> dict[str, Any]:
        """Alerts and events: those whose audience names the caller."""
        return {"audience": self.tenant_id}

    def alerts(self) -> dict[str, Any]:
        """Alerts naming the caller that it owns, or whose owner shares ``alerts`` with it through an active
        partnership: the rule the event bus and the webhook dispatcher apply to alert events, so a revoked partner
        loses the list, the live stream and the webhooks at the same moment.
        """
        owners = [self.tenant_id, *sorted(self.sharing(Scope.alerts))]
        return {"audience": self.tenant_id, "tenant_id": {"$in": owners}}

    # -- lookups ---------------------------------------------------------------------------------------------------

    async def get(
        self, model: type[D], id: str | ObjectId, filter: dict[str, Any], what: str | None = None
    ) -> D:
        """One document by id, only if ``filter`` (from this class) admits it."""
        label = what or model.__name__.lower()
        doc = await model.find_one({"_id": object_id(id, label), **filter})
        if doc is None:
            raise NotFound(f"{label} not found")
        return doc
