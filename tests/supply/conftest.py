"""A small supply chain: Acme (supplier) ships yogurt to Shopco (retailer) through Haul (3PL); Rival watches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

UPSERT_SKU = """
mutation($input: SkuInput!) { upsertSku(input: $input) { sku { id code } } }
"""
CREATE_LOCATION = """
mutation($input: CreateLocationInput!) { createLocation(input: $input) { id code } }
"""
CREATE_DISPATCH = """
mutation($input: CreateDispatchInput!) {
  createDispatch(input: $input) {
    id ref status shipperId consigneeId carrierId toLocationId hasMismatch receiptCount
    lines { skuId lotId lotCode quantity received producedOn expiresOn sku { code } }
  }
}
"""
RECORD_RECEIPT = """
mutation($input: RecordReceiptInput!) {
  recordReceipt(input: $input) {
    id outcome final alertId
    mismatches { kind line dispatchLine expected found nearMiss lotCode }
    lines { skuRef skuId lotCode lotId quantity dispatchLine }
  }
}
"""
RECORD_MOVEMENTS = """
mutation($movements: [MovementInput!]!, $locationId: ID) {
  recordMovements(movements: $movements, locationId: $locationId) {
    accepted duplicates positions { locationId skuId lotCode onHand delta }
  }
}
"""
STOCK = """
query($filter: StockFilter) {
  stockPositions(filter: $filter, first: 500) {
    nodes { holderId locationId skuId skuOwnerId lotCode lotStatus onHand expiresOn sku { code } }
  }
}
"""
INVITE = """
mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }
"""
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id status } }"
REVOKE = "mutation($id: ID!) { revokePartnership(id: $id) { id status } }"

YOGURT_GTIN = "4006381333931"


@dataclass
class Supply:
    hub: Any
    yogurt: str = ""
    milk: str = ""
    acme_wh: str = ""
    shop_dc: str = ""
    haul_wh: str = ""
    rival_store: str = ""
    counter: dict[str, int] = field(default_factory=dict)
    partnerships: dict[tuple[str, ...], str] = field(default_factory=dict)
    shares: dict[tuple[str, ...], dict[str, set[str]]] = field(default_factory=dict)

    async def dispatch(self, lines: list[dict], ref: str | None = None, carrier: str | None = None,
                       tenant: str = "acme", **extra: Any) -> dict:
        n = self.counter["dispatch"] = self.counter.get("dispatch", 0) + 1
        payload = {"ref": ref or f"ASN-{n}", "consigneeId": "shopco", "toLocation": "DC-1", "lines": lines, **extra}
        if carrier:
            payload["carrierId"] = carrier
        data = await self.hub.ok(CREATE_DISPATCH, {"input": payload}, tenant=tenant)
        return data["createDispatch"]

    async def ship_lots(self, *lots: tuple[str, str, str | None], to: str = "shopco") -> dict:
        """Acme ships one of each (SKU code, lot code, expiry) to ``to``: the lots its movements may then name
        (a partner never creates lots of Acme's SKUs)."""
        lines = [{"sku": sku, "lotCode": lot, "quantity": 1, **({"expiresOn": expires} if expires else {})}
                 for sku, lot, expires in lots]
        return await self.dispatch(lines, consigneeId=to, toLocation=None)

    async def receive(self, dispatch_id: str, lines: list[dict], final: bool = False, tenant: str = "shopco",
                      **extra: Any) -> dict:
        data = await self.hub.ok(
            RECORD_RECEIPT, {"input": {"dispatchId": dispatch_id, "lines": lines, "final": final, **extra}},
            tenant=tenant,
        )
        return data["recordReceipt"]

    async def movements(self, items: list[dict], tenant: str = "shopco", location: str | None = None) -> dict:
        body = await self.hub.gql(RECORD_MOVEMENTS, {"movements": items, "locationId": location or self.shop_dc},
                                  tenant=tenant)
        return body

    async def stock(self, tenant: str = "shopco", **filter: Any) -> list[dict]:
        data = await self.hub.ok(STOCK, {"filter": filter or None}, tenant=tenant)
        return data["stockPositions"]["nodes"]

    async def partner(self, sharer: str, other: str, scopes: list[str]) -> str:
        """``sharer`` shares ``scopes`` with ``other`` (on top of what the pair already shares): invited and
        accepted, or re-opened with the union when the pair has a partnership already. Answers its id."""
        pair = tuple(sorted((sharer, other)))
        shares = self.shares.setdefault(pair, {sharer: set(), other: set()})
        shares[sharer] |= set(scopes)
        if pair in self.partnerships:
            await self.hub.ok(REVOKE, {"id": self.partnerships[pair]}, tenant=sharer)
        data = await self.hub.ok(INVITE, {"input": {"partnerId": other, "weShare": sorted(shares[sharer]),
                                                    "theyShare": sorted(shares[other])}}, tenant=sharer)
        pid = self.partnerships[pair] = data["invitePartner"]["id"]
        await self.hub.ok(ACCEPT, {"id": pid}, tenant=other)
        return pid


def yogurt_line(quantity: int = 100, lot: str = "B240315", **extra: Any) -> dict:
    return {"sku": "YOG-1", "lotCode": lot, "quantity": quantity, "producedOn": "2030-03-15",
            "expiresOn": "2030-04-14", **extra}


@pytest.fixture
async def supply(hub) -> Supply:
    for tenant, kind in (("acme", "supplier"), ("shopco", "retailer"), ("haul", "logistics"), ("rival", "retailer")):
        await hub.tenant(tenant, kind)
    s = Supply(hub)
    yogurt = await hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt 500 g", "gtin": YOGURT_GTIN,
                                                "shelfLifeDays": 30}}, tenant="acme")
    milk = await hub.ok(UPSERT_SKU, {"input": {"code": "MLK-1", "name": "Milk 1 l", "shelfLifeDays": 10}},
                        tenant="acme")
    s.yogurt, s.milk = yogurt["upsertSku"]["sku"]["id"], milk["upsertSku"]["sku"]["id"]
    for attr, tenant, code, kind in (("acme_wh", "acme", "WH-1", "warehouse"), ("shop_dc", "shopco", "DC-1", "dc"),
                                     ("haul_wh", "haul", "HW-1", "warehouse"),
                                     ("rival_store", "rival", "ST-1", "store")):
        data = await hub.ok(CREATE_LOCATION, {"input": {"code": code, "name": code, "kind": kind}}, tenant=tenant)
        setattr(s, attr, data["createLocation"]["id"])
    # Shopco and Haul accept Acme's dispatches (as consignee and carrier)
    for tenant in ("shopco", "haul"):
        await s.partner(tenant, "acme", ["dispatches"])
    return s
