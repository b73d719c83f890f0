"""A small retail network: Brand owns the SKUs; Shopco sells them from a central warehouse and two stores.

Shopco shares ``stock``, ``alerts`` and ``dispatches`` with Brand (vendor-managed inventory; Brand may ship to it);
Brand shares its SKU master and dispatches with Shopco. Rival is a retailer with no partnership: it must never see
any of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from hub.services import signals

UPSERT_SKU = "mutation($input: SkuInput!) { upsertSku(input: $input) { sku { id code } } }"
CREATE_LOCATION = "mutation($input: CreateLocationInput!) { createLocation(input: $input) { id code } }"
INVITE = "mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id status } }"
RECORD_MOVEMENTS = """
mutation($movements: [MovementInput!]!, $locationId: ID) {
  recordMovements(movements: $movements, locationId: $locationId) { accepted duplicates }
}
"""
ALERTS = """
query($filter: AlertFilter) {
  alerts(filter: $filter, first: 100) {
    nodes { id kind severity status title recommendation evidence ownerId resolvedBy subjects { kind id label } }
  }
}
"""
RECOMMENDATIONS = """
query($filter: TransferRecommendationFilter) {
  transferRecommendations(filter: $filter, first: 50) {
    nodes {
      id status holderId skuCode fromLocationCode toLocationCode quantity unitsSavedFromExpiry stockoutDaysAvoided
      lots { lotCode quantity expiresOn } evidence reason decidedBy
    }
  }
}
"""
STOCK = """
query($filter: StockFilter) { stockPositions(filter: $filter, first: 500) { nodes { locationId lotCode onHand } } }
"""
CREATE_DISPATCH = "mutation($input: CreateDispatchInput!) { createDispatch(input: $input) { id } }"
CANCEL_DISPATCH = "mutation($id: ID!) { cancelDispatch(id: $id) { status } }"
SET_POLICY = """
mutation($input: PlanningPolicyInput!) {
  setPlanningPolicy(input: $input) { skuId locationId leadTimeDays discontinued maxDaysOfSupply }
}
"""
REGISTER_SENSOR = "mutation($input: RegisterSensorInput!) { registerSensor(input: $input) { sensor { id } } }"
INGEST = """
mutation($input: [SensorReadingsInput!]!) { ingestReadings(input: $input) { accepted excursions { excursionId } } }
"""
RHYTHM = (24, 26, 28, 30, 34, 40, 28)  # Monday..Sunday: 30 a day on average, busier at the weekend


def today() -> date:
    return datetime.now(UTC).date()


def noon(days_ago: int) -> str:
    return datetime.combine(today() - timedelta(days=days_ago), time(12), tzinfo=UTC).isoformat()


def rhythm(days_ago: int, scale: float = 1.0) -> int:
    return round(RHYTHM[(today() - timedelta(days=days_ago)).weekday()] * scale)


@dataclass
class Network:
    hub: Any
    locations: dict[str, str] = field(default_factory=dict)
    skus: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    announced: set[str] = field(default_factory=set)

    async def sku(self, code: str, **extra: Any) -> str:
        data = await self.hub.ok(UPSERT_SKU, {"input": {"code": code, "name": code, **extra}}, tenant="brand")
        self.skus[code] = data["upsertSku"]["sku"]["id"]
        return self.skus[code]

    async def location(self, code: str, kind: str = "store", tenant: str = "shopco") -> str:
        data = await self.hub.ok(CREATE_LOCATION, {"input": {"code": code, "name": code, "kind": kind}}, tenant=tenant)
        self.locations[code] = data["createLocation"]["id"]
        return self.locations[code]

    def key(self) -> str:
        self.counter += 1
        return f"m-{self.counter}"

    async def announce(self, sku: str, lot: str, expires_on: str | None, consignee: str = "shopco") -> None:
        """Lots reach a retailer the way they do in life, named on a Brand dispatch notice (only a SKU's owner
        creates its lots). The notice is cancelled: the history's own backdated receipt movement books the stock."""
        line = {"sku": sku, "lotCode": lot, "quantity": 1, **({"expiresOn": expires_on} if expires_on else {})}
        data = await self.hub.ok(CREATE_DISPATCH, {"input": {"ref": f"NOTICE-{lot}-{self.key()}",
                                                             "consigneeId": consignee, "lines": [line]}},
                                 tenant="brand")
        await self.hub.ok(CANCEL_DISPATCH, {"id": data["createDispatch"]["id"]}, tenant="brand")
        self.announced.add(f"{consignee}:{lot}")

    async def move(self, location: str, items: list[dict[str, Any]], tenant: str = "shopco") -> dict[str, Any]:
        for item in items:
            item.setdefault("idempotencyKey", self.key())
            lot = item.get("lotCode")
            if tenant != "brand" and lot and f"{tenant}:{lot}" not in self.announced:
                await self.announce(item["sku"], lot, item.get("expiresOn"), consignee=tenant)
        data = await self.hub.ok(RECORD_MOVEMENTS, {"movements": items, "locationId": self.locations[location]},
                                 tenant=tenant)
        return data["recordMovements"]

    async def history(self, location: str, sku: str, daily: list[int], *, stock: int, lot: str | None = "L-1",
                      expires_in: int | None = 365, kind: str = "sale", prices: list[float] | None = None,
                      promo: list[bool] | None = None, tenant: str = "shopco") -> None:
        """``stock`` received the day before the history starts, then ``daily[i]`` sold ``len(daily) - i`` days ago."""
        start = len(daily)
        receipt: dict[str, Any] = {"sku": sku, "kind": "receipt", "quantity": stock, "occurredAt": noon(start + 1)}
        if lot:
            receipt["lotCode"] = lot
            if expires_in is not None:
                receipt["expiresOn"] = (today() + timedelta(days=expires_in)).isoformat()
        items = [receipt]
        for i, units in enumerate(daily):
            if units <= 0:
                continue
            item: dict[str, Any] = {"sku": sku, "kind": kind, "quantity": -units, "occurredAt": noon(start - i)}
            if lot:
                item["lotCode"] = lot
            if prices:
                item["unitPrice"] = prices[i]
            if promo:
                item["promotion"] = promo[i]
            items.append(item)
        await self.move(location, items, tenant=tenant)

    async def sweep(self, **kw: Any) -> signals.SignalReport:
        return await signals.sweep(self.hub.state.database, full=True, **kw)

    async def alerts(self, tenant: str, kind: str | None = None) -> list[dict[str, Any]]:
        filter = {"kinds": [kind]} if kind else None
        return (await self.hub.ok(ALERTS, {"filter": filter}, tenant=tenant))["alerts"]["nodes"]

    async def recommendations(self, tenant: str = "shopco", **filter: Any) -> list[dict[str, Any]]:
        data = await self.hub.ok(RECOMMENDATIONS, {"filter": filter or None}, tenant=tenant)
        return data["transferRecommendations"]["nodes"]

    async def on_hand(self, location: str, tenant: str = "shopco") -> int:
        data = await self.hub.ok(STOCK, {"filter": {"locationId": self.locations[location]}}, tenant=tenant)
        return sum(n["onHand"] for n in data["stockPositions"]["nodes"])

    async def policy(self, tenant: str = "shopco", **input: Any) -> dict[str, Any]:
        return (await self.hub.ok(SET_POLICY, {"input": input}, tenant=tenant))["setPlanningPolicy"]


async def partner(hub: Any, sharer: str, other: str, scopes: list[str], they_share: list[str]) -> None:
    data = await hub.ok(INVITE, {"input": {"partnerId": other, "weShare": scopes, "theyShare": they_share}},
                        tenant=sharer)
    await hub.ok(ACCEPT, {"id": data["invitePartner"]["id"]}, tenant=other)


@pytest.fixture
async def net(hub) -> Network:
    for tenant, kind in (("brand", "supplier"), ("shopco", "retailer"), ("rival", "retailer")):
        await hub.tenant(tenant, kind)
    await partner(hub, "shopco", "brand", ["stock", "alerts", "dispatches"], ["sku_master", "dispatches"])
    network = Network(hub)
    for code, kind in (("ST-1", "store"), ("ST-2", "store"), ("WH-1", "warehouse")):
        await network.location(code, kind)
    await network.location("R-1", "store", tenant="rival")
    return network
