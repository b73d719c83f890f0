"""Who may see and use what: the one sharing rule of the hub (README: "The sharing rule").

Two halves live here and nowhere else:

* **The sharing rule**, over partnerships: which scopes an owner shares with which partner through an *active*
  partnership, now. ``shares_of`` / ``grantees`` / ``may_reach`` / ``may_hear`` answer it for any module that decides
  who hears an event or an alert (event bus, webhook dispatcher, alert audiences); ``Access`` answers it for a
  request. Nobody else reads the ``partnerships`` collection for sharing.
* **Filters per collection**, separately for ``read`` and for ``use`` (write, or name in a write). A partner may
  *read* what is shared with it (a SKU through ``sku_master``), but a write only ever *uses* what the caller owns or
  was given: it never creates, upserts or reveals the owner's lots or locations through a shared SKU.

Ids that exist but are not visible answer NOT_FOUND, never FORBIDDEN, so nobody learns that another tenant's object
exists.

Freshness: a request's ``Access`` reads the partnerships afresh (one query), so a revocation holds on the very next
request on every process. Event delivery asks the process-wide cache; the event bus invalidates it as partnership
changes commit (they arrive on the same change stream as the events, in commit order), and partnership changes made
by this process invalidate it at once. ``fresh=True`` bypasses it where a stale answer could leak (replays, the
webhook dispatcher, which reads the log on its own clock).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from beanie import Document, PydanticObjectId
from bson import ObjectId
from bson.errors import InvalidId

from hub import audit
from hub.auth import Principal
from hub.errors import Forbidden, NotFound
from hub.models.event import EVENT_SCOPE
from hub.models.lot import Lot
from tenants.models import Partnership, PartnershipStatus, Scope
from tenants.roles import Group, allows, refusal

Capability = Literal["read", "use", "write"]  # see Access
D = TypeVar("D", bound=Document)
Shares = Mapping[str, frozenset[Scope]]  # partner -> scopes the owner shares with it
PARTNERSHIPS = Partnership.Settings.name  # the collection whose changes invalidate the cache
CACHE_TTL_SECONDS = 60.0  # a safety net only: partnership changes invalidate the cache as they commit
DISPATCH_PARTIES = "dispatch"  # Alert.audience_rule of alerts heard by being a party of a dispatch


def object_id(value: str | ObjectId, what: str = "object") -> PydanticObjectId:
    """Parse an id from the API; a malformed id is simply not found."""
    try:
        return PydanticObjectId(value)
    except (InvalidId, TypeError, ValueError):
        raise NotFound(f"{what} not found") from None


# -- the sharing rule -------------------------------------------------------------------------------------------------


def _active_with(tenants: list[str]) -> dict[str, Any]:
    """Active partnerships that have any of ``tenants`` on either side."""
    return {
        "status": PartnershipStatus.active.value,
        "$or": [{"inviter_id": {"$in": tenants}}, {"invitee_id": {"$in": tenants}}],
    }


class _ShareCache:
    """Owner -> what it shares with whom, per database (tests run several hubs in one process)."""

    def __init__(self, ttl: float = CACHE_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[float, Shares]] = {}

    def clear(self) -> None:
        self._entries.clear()

    async def load(self, owners: Iterable[str], fresh: bool) -> dict[str, Shares]:
        collection = Partnership.get_pymongo_collection()
        db = collection.database.name
        now = time.monotonic()
        found: dict[str, Shares] = {}
        missing: list[str] = []
        for owner in set(owners):
            cached = None if fresh else self._entries.get((db, owner))
            if cached is not None and cached[0] > now:
                found[owner] = cached[1]
            else:
                missing.append(owner)
        if not missing:
            return found
        loaded: dict[str, dict[str, frozenset[Scope]]] = {owner: {} for owner in missing}
        cursor = collection.find(_active_with(sorted(missing)), {"inviter_id": 1, "invitee_id": 1, "shares": 1})
        async for doc in cursor:
            for owner, partner in ((doc["inviter_id"], doc["invitee_id"]), (doc["invitee_id"], doc["inviter_id"])):
                if owner in loaded:
                    loaded[owner][partner] = frozenset(Scope(s) for s in doc.get("shares", {}).get(owner, []))
        for owner, shares in loaded.items():
            self._entries[(db, owner)] = (now + self.ttl, shares)
            found[owner] = shares
        return found


_cache = _ShareCache()


def invalidate() -> None:
    """Forget cached shares: call on every partnership change (the event bus does, as changes commit)."""
    _cache.clear()


async def shares_of_many(owners: Iterable[str], *, fresh: bool = False) -> dict[str, Shares]:
    """For each owner: partner -> scopes it shares with that partner through an active partnership (one query)."""
    return await _cache.load(owners, fresh)


async def shares_of(owner: str, *, fresh: bool = False) -> Shares:
    """Partner -> scopes ``owner`` shares with it through an active partnership, now."""
    return (await _cache.load([owner], fresh))[owner]


async def grantees(owner: str, scope: Scope, *, fresh: bool = False) -> frozenset[str]:
    """The partners ``owner`` shares ``scope`` with: who may be put in the audience of the owner's ``scope`` news.

    Alert audiences: an owner's alert of kind K goes to ``grantees(owner, Scope.alerts)`` (intersected with the
    tenants the alert concerns); exposure of a partner's goods to ``grantees(owner, Scope.sensors)``.
    """
    return frozenset(partner for partner, scopes in (await shares_of(owner, fresh=fresh)).items() if scope in scopes)


def reaches(shares: Shares, owner: str, tenant: str, scope: Scope | None) -> bool:
    """The pure rule: the owner always; a partner only with ``scope`` shared (``None``: no share needed)."""
    return tenant == owner or scope is None or scope in shares.get(tenant, frozenset())


async def may_reach(owner: str, tenant: str, scope: Scope | None, *, fresh: bool = False) -> bool:
    """May news of ``owner`` that needs ``scope`` reach ``tenant``? The owner always; a partner while shared.

    ``scope=None`` is news that needs no share (a dispatch's parties hear of it by being parties).
    """
    if tenant == owner or scope is None:
        return True
    return reaches(await shares_of(owner, fresh=fresh), owner, tenant, scope)


def event_scope(event_type: str, payload: Mapping[str, Any] | None = None) -> Scope | None:
    """The scope a partner in an event's audience needs to hear it (``None``: the audience is authoritative).

    Alerts addressed to a dispatch's parties (``audienceRule: dispatch``: mismatches, dispatch-level expiry risk, a
    logger travelling with the dispatch) are heard by being a party, like the dispatch's own events.
    """
    alert = (payload or {}).get("alert")
    if isinstance(alert, Mapping) and alert.get("audienceRule") == DISPATCH_PARTIES:
        return None
    return EVENT_SCOPE.get(event_type)


async def may_hear(
    tenant: str, owner: str, event_type: str, payload: Mapping[str, Any] | None = None, *, fresh: bool = False
) -> bool:
    """May ``tenant`` (named in the audience of an event of ``owner``) still hear it? The audience was fixed when the
    event was written; this re-checks it against the partnership now, so a revocation stops delivery at once."""
    return await may_reach(owner, tenant, event_scope(event_type, payload), fresh=fresh)


async def shared_with(tenant: str) -> dict[Scope, frozenset[str]]:
    """For each scope, the owners that share it with ``tenant`` through an active partnership (read afresh)."""
    grants: dict[Scope, set[str]] = {scope: set() for scope in Scope}
    cursor = Partnership.get_pymongo_collection().find(_active_with([tenant]), {"inviter_id": 1, "invitee_id": 1,
                                                                              "shares": 1})
    async for doc in cursor:
        other = doc["invitee_id"] if doc["inviter_id"] == tenant else doc["inviter_id"]
        for scope in doc.get("shares", {}).get(other, []):
            grants[Scope(scope)].add(other)
    return {scope: frozenset(owners) for scope, owners in grants.items()}


def partnerships_of(tenant: str, status: PartnershipStatus | None = None) -> dict[str, Any]:
    """Filter: the partnerships ``tenant`` is a side of (any status unless given), for listing them."""
    query: dict[str, Any] = {"$or": [{"inviter_id": tenant}, {"invitee_id": tenant}]}
    if status is not None:
        query["status"] = status.value
    return query


# -- a request's view -------------------------------------------------------------------------------------------------


@dataclass
class Access:
    """The caller of one request: its tenant, roles, and the scopes partners share with it right now.

    Capabilities of the filters below:
    ``read``: what the caller may see (own, plus what partners share with it);
    ``use``: what the caller may *name in its own writes* (a SKU in a dispatch or movement, a lot, a location);
    ``write``: what the caller may change itself: always its own objects only.
    """

    principal: Principal
    grants: dict[Scope, frozenset[str]] = field(default_factory=dict)

    @classmethod
    async def load(cls, principal: Principal) -> Access:
        audit.bind(principal)  # who acts, for audit entries written deeper in this request
        return cls(principal, await shared_with(principal.tenant_id))

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def sharing(self, scope: Scope) -> frozenset[str]:
        """Tenants that share ``scope`` with the caller."""
        return self.grants.get(scope, frozenset())

    def require(self, group: Group) -> None:
        """The role table (tenants/roles.py) holds for every caller of a service, not only GraphQL."""
        if not allows(self.principal, group):
            raise Forbidden(refusal(group))

    # -- filters per collection ------------------------------------------------------------------------------------

    def owned(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id}

    def skus(self, capability: Capability = "read") -> dict[str, Any]:
        """Read: own SKUs and those of owners sharing ``sku_master``. Use: see ``usable_skus``. Write: own only."""
        if capability == "write":
            return self.owned()
        return {"tenant_id": {"$in": [self.tenant_id, *sorted(self.sharing(Scope.sku_master))]}}

    async def usable_skus(self) -> dict[str, Any]:
        """SKUs the caller may name in its own writes: those it may read, plus the SKUs of lots it was shipped (a
        retailer sells what it received without needing the brand's catalogue). Naming a SKU never grants its lots:
        see ``lots("use")``."""
        via_lots = await Lot.get_pymongo_collection().distinct("sku_id", {"visible_to": self.tenant_id})
        return {"$or": [self.skus("read"), {"_id": {"$in": via_lots}}]} if via_lots else self.skus("read")

    def may_create_lots(self, sku_owner: str) -> bool:
        """Only a SKU's owner creates (or dates) its lots; a partner that may read the SKU may not."""
        return sku_owner == self.tenant_id

    def locations(self, capability: Capability = "read") -> dict[str, Any]:
        """Own locations only, for every capability: partners learn of each other's locations through dispatches
        and stock, which carry what they need. A consignee's locations are named in a dispatch through
        ``receiving_locations``."""
        return self.owned()

    def receiving_locations(self, consignee: str) -> dict[str, Any]:
        """The consignee's locations the caller may address a dispatch to: all of them, if the consignee shares
        ``dispatches`` with the caller (that share is its consent to receive the caller's dispatches); otherwise
        none, answered as NOT_FOUND like an unknown tenant."""
        if consignee not in self.sharing(Scope.dispatches):
            raise NotFound("consignee not found", field="consigneeId")
        return {"tenant_id": consignee}

    def may_dispatch_to(self, tenant: str) -> bool:
        """A dispatch names a consignee (or carrier) only if that tenant shares ``dispatches`` with the caller."""
        return tenant in self.sharing(Scope.dispatches)

    def lots(self, capability: Capability = "read") -> dict[str, Any]:
        """Read and use: own lots and lots dispatches brought to the caller (``visible_to``). Write: own only.
        A lot the caller cannot read is not usable either, whatever SKU it belongs to."""
        if capability == "write":
            return self.owned()
        return {"$or": [{"tenant_id": self.tenant_id}, {"visible_to": self.tenant_id}]}

    def dispatches(self, capability: Capability = "read") -> dict[str, Any]:
        """Shipper, consignee and carrier all see a dispatch; only the shipper changes its notice."""
        if capability != "read":
            return self.owned()
        return {"parties": self.tenant_id}

    def receipts(self, capability: Capability = "read") -> dict[str, Any]:
        """Receipts are seen by every party of their dispatch; written by the receiving tenant."""
        if capability != "read":
            return self.owned()
        return {"parties": self.tenant_id}

    def stock(self, capability: Capability = "read") -> dict[str, Any]:
        """Own positions, plus (VMI) partners' positions of the caller's SKUs where they share ``stock``."""
        if capability != "read":
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
        if capability != "read":
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
        return {
            "audience": self.tenant_id,
            "$or": [{"tenant_id": {"$in": owners}}, {"audience_rule": DISPATCH_PARTIES}],
        }

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
