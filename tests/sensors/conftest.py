"""A cold chain in miniature: FreshCo (brand) has salads on Shopmart's shelf C-3, watched by Shopmart's sensor.

Shopmart shares ``sensors`` and ``alerts`` with FreshCo; Rival is a retailer with no partnership at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

UPSERT_SKU = "mutation($input: SkuInput!) { upsertSku(input: $input) { sku { id code } } }"
CREATE_LOCATION = "mutation($input: CreateLocationInput!) { createLocation(input: $input) { id code } }"
CREATE_DISPATCH = "mutation($input: CreateDispatchInput!) { createDispatch(input: $input) { id } }"
INVITE = "mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id status } }"
RECORD_MOVEMENTS = """
mutation($movements: [MovementInput!]!, $locationId: ID) {
  recordMovements(movements: $movements, locationId: $locationId) { accepted }
}
"""
REGISTER_SENSOR = """
mutation($input: RegisterSensorInput!) {
  registerSensor(input: $input) { created sensor { id deviceId locationId lotIds ownerId online readingsCount } }
}
"""
INGEST = """
mutation($input: [SensorReadingsInput!]!) {
  ingestReadings(input: $input) {
    received accepted duplicates late
    rejected { sensor index at reason }
    excursions { excursionId opened closed }
  }
}
"""
LOTS = "query { lots(first: 50) { nodes { id lotCode expiresOn effectiveExpiresOn } } }"
SALAD_SHELF_LIFE = 10


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes)


def readings(temps: list[float], start: datetime, every_minutes: float = 1.0) -> list[dict[str, Any]]:
    return [
        {"at": (start + timedelta(minutes=i * every_minutes)).isoformat(), "temperatureC": c}
        for i, c in enumerate(temps)
    ]


@dataclass
class ColdChain:
    hub: Any
    salad: str = ""
    shelf: str = ""  # Shopmart's shelf C-3
    sensor: str = ""
    lot: str = ""
    lot_expires: date = field(default_factory=date.today)

    async def ingest(self, batches: list[dict[str, Any]], tenant: str = "shopmart") -> dict[str, Any]:
        return (await self.hub.ok(INGEST, {"input": batches}, tenant=tenant, roles=("integration",)))["ingestReadings"]

    async def ingest_temps(self, temps: list[float], start: datetime, every_minutes: float = 1.0) -> dict[str, Any]:
        return await self.ingest([{"sensorId": self.sensor, "readings": readings(temps, start, every_minutes)}])

    async def partner(self, sharer: str, other: str, scopes: list[str], they_share: list[str] = ()) -> None:
        data = await self.hub.ok(
            INVITE, {"input": {"partnerId": other, "weShare": scopes, "theyShare": list(they_share)}}, tenant=sharer
        )
        await self.hub.ok(ACCEPT, {"id": data["invitePartner"]["id"]}, tenant=other)

    async def ship(self, owner: str, sku: str, lot: str, expires: date, quantity: int = 3) -> None:
        """The brand ships a lot to Shopmart, which may then book it (a retailer never creates a brand's lots)."""
        line = {"sku": sku, "lotCode": lot, "quantity": quantity, "expiresOn": expires.isoformat()}
        await self.hub.ok(CREATE_DISPATCH, {"input": {"ref": f"SHIP-{lot}", "consigneeId": "shopmart",
                                                      "lines": [line]}}, tenant=owner)

    async def lot_expiry(self, tenant: str = "freshco") -> dict[str, Any]:
        nodes = (await self.hub.ok(LOTS, tenant=tenant))["lots"]["nodes"]
        return next(node for node in nodes if node["id"] == self.lot)


@pytest.fixture
async def cold(hub) -> ColdChain:
    return await build_cold_chain(hub)


async def build_cold_chain(hub: Any) -> ColdChain:
    chain = ColdChain(hub)
    for tenant, kind in (("freshco", "supplier"), ("shopmart", "retailer"), ("rival", "retailer")):
        await hub.tenant(tenant, kind)
    await chain.partner(
        "freshco", "shopmart", ["sku_master", "dispatches"], ["sensors", "alerts", "stock", "dispatches"]
    )
    sku = {
        "code": "SALAD-1", "name": "Mixed salad 200 g", "shelfLifeDays": SALAD_SHELF_LIFE,
        "storage": {"tempMaxC": 20.0}, "excursionSensitivity": 1.0, "excursionMinMinutes": 15,
    }
    chain.salad = (await hub.ok(UPSERT_SKU, {"input": sku}, tenant="freshco"))["upsertSku"]["sku"]["id"]
    shelf = {"code": "C-3", "name": "Shelf C-3", "kind": "zone"}
    chain.shelf = (await hub.ok(CREATE_LOCATION, {"input": shelf}, tenant="shopmart"))["createLocation"]["id"]
    chain.lot_expires = datetime.now(UTC).date() + timedelta(days=SALAD_SHELF_LIFE)
    await chain.ship("freshco", "SALAD-1", "L-C3", chain.lot_expires)
    receipt = {
        "sku": "SALAD-1", "kind": "receipt", "quantity": 3, "idempotencyKey": "rcv-1",
        "lotCode": "L-C3", "expiresOn": chain.lot_expires.isoformat(),
        "occurredAt": (datetime.now(UTC) - timedelta(days=1)).isoformat(),  # on the shelf before the stories begin
    }
    await hub.ok(RECORD_MOVEMENTS, {"movements": [receipt], "locationId": chain.shelf}, tenant="shopmart")
    nodes = (await hub.ok(LOTS, tenant="freshco"))["lots"]["nodes"]
    chain.lot = next(node["id"] for node in nodes if node["lotCode"] == "L-C3")
    registered = await hub.ok(
        REGISTER_SENSOR, {"input": {"deviceId": "pallet-c3", "locationId": chain.shelf}}, tenant="shopmart"
    )
    chain.sensor = registered["registerSensor"]["sensor"]["id"]
    return chain
