"""EPCIS over real HTTP: a brand (Acme) ships to a retailer (Shopco) that shares ``dispatches`` with it; Rival has no
partnership. Each test gets fresh tenants, GLNs and GTINs, so tests share one hub per module."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.gs1 import check_digit
from tenants import service as tenant_service

DATA = Path(__file__).parent / "data"
OFFICIAL = ("Example_9.6.1-ObjectEvent.jsonld", "Example_9.6.3-AggregationEvent.jsonld",
            "SensorDataExample1.jsonld", "SensorDataExample10.jsonld")
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
UPSERT_SKU = "mutation($input: SkuInput!) { upsertSku(input: $input) { sku { id code gtin } } }"
CREATE_LOCATION = "mutation($input: CreateLocationInput!) { createLocation(input: $input) { id code } }"
INVITE = "mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id status } }"


def official(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA / name).read_text())
    return document


def with_check(body: str) -> str:
    return body + str(check_digit(body))


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {"@context": CONTEXT, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2030-03-16T10:00:00Z", "epcisBody": {"eventList": list(events)}}


@dataclass
class Chain:
    """Tenants and GS1 keys of one test. ``prefix`` is a 7-digit company prefix of the test's own."""

    hub: Any
    acme: str
    shopco: str
    rival: str
    prefix: str
    gtin: str = ""  # GTIN-14 of Acme's yogurt
    acme_wh: str = ""
    shop_dc: str = ""

    def gln(self, ref: str) -> str:
        return with_check(self.prefix + ref)

    def sgln(self, ref: str, extension: str = "0") -> str:
        return f"urn:epc:id:sgln:{self.prefix}.{ref}.{extension}"

    def pgln(self, ref: str) -> str:
        return f"urn:epc:id:pgln:{self.prefix}.{ref}"

    def lgtin(self, lot: str) -> str:
        return f"urn:epc:class:lgtin:{self.gtin[1:8]}.{self.gtin[0]}{self.gtin[8:13]}.{lot}"

    def sgtin(self, serial: str) -> str:
        return f"urn:epc:id:sgtin:{self.gtin[1:8]}.{self.gtin[0]}{self.gtin[8:13]}.{serial}"

    def headers(self, tenant: str, *roles: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.hub.token(tenant, *(roles or ('integration',)))}"}

    async def capture(self, body: Any, tenant: str | None = None, **headers: str) -> httpx.Response:
        return await self.hub.http.post("/epcis/capture", json=body,
                                        headers={**self.headers(tenant or self.acme), **headers})

    async def captured(self, body: Any, tenant: str | None = None) -> dict[str, Any]:
        """Capture, check the 202 and its Location, and answer the job as polled there."""
        response = await self.capture(body, tenant)
        assert response.status_code == 202, response.text
        job = await self.hub.http.get(response.headers["location"], headers=self.headers(tenant or self.acme))
        assert job.status_code == 200, job.text
        polled: dict[str, Any] = job.json()
        return polled

    async def events(self, tenant: str | None = None, **params: Any) -> httpx.Response:
        return await self.hub.http.get("/epcis/events", params=params, headers=self.headers(tenant or self.acme))

    async def event_list(self, tenant: str | None = None, **params: Any) -> list[dict[str, Any]]:
        response = await self.events(tenant, **params)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        return found


async def partner(hub: Any, sharer: str, other: str, we_share: list[str], they_share: list[str]) -> None:
    data = await hub.ok(INVITE, {"input": {"partnerId": other, "weShare": we_share, "theyShare": they_share}},
                        tenant=sharer)
    await hub.ok(ACCEPT, {"id": data["invitePartner"]["id"]}, tenant=other)


@pytest.fixture
async def chain(module_hub: Any, suffix: str) -> Chain:
    prefix = str(random.randint(4_100_000, 4_999_999))
    made = Chain(module_hub, f"acme-{suffix}", f"shopco-{suffix}", f"rival-{suffix}", prefix)
    await tenant_service.create_tenant(made.acme, "Acme", "supplier", gln=made.gln("00001"))
    await tenant_service.create_tenant(made.shopco, "Shopco", "retailer", gln=made.gln("00002"))
    await tenant_service.create_tenant(made.rival, "Rival", "retailer", gln=made.gln("00003"))
    await partner(module_hub, made.acme, made.shopco, ["sku_master", "dispatches"], ["dispatches"])
    made.gtin = with_check("0" + prefix + "33393")
    sku = {"code": "YOG-1", "name": "Yogurt", "gtin": made.gtin, "shelfLifeDays": 30}
    await module_hub.ok(UPSERT_SKU, {"input": sku}, tenant=made.acme)
    wh = {"code": "WH-1", "name": "Acme warehouse", "kind": "warehouse", "gln": made.gln("00011")}
    made.acme_wh = (await module_hub.ok(CREATE_LOCATION, {"input": wh}, tenant=made.acme))["createLocation"]["id"]
    dc = {"code": "DC-1", "name": "Shopco DC", "kind": "dc", "gln": made.gln("00012")}
    made.shop_dc = (await module_hub.ok(CREATE_LOCATION, {"input": dc}, tenant=made.shopco))["createLocation"]["id"]
    return made
