"""EPCIS exports follow the location rule: a tenant's own locations are named to it only.

GraphQL shows a dispatch's origin (``fromLocationId``) to its shipper only and a receipt's location to its receiver
only; the hub's own dispatches and receipts, exported as EPCIS events to every party, must not name them either (by
GLN or by id). The consignee's destination is on the notice for every party, as in GraphQL.
"""

from __future__ import annotations

from typing import Any

from hub.gs1 import check_digit

INVITE = "mutation($i: InvitePartnerInput!) { invitePartner(input: $i) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id } }"
LOCATION = "mutation($i: CreateLocationInput!) { createLocation(input: $i) { id } }"
DISPATCH = "mutation($i: CreateDispatchInput!) { createDispatch(input: $i) { id fromLocationId } }"
RECEIPT = "mutation($i: RecordReceiptInput!) { recordReceipt(input: $i) { id } }"


def gln(seed: str) -> str:
    body = f"40{int(seed, 16) % 10**10:010d}"
    return body + str(check_digit(body))


async def events(hub: Any, tenant: str, step: str) -> list[dict[str, Any]]:
    response = await hub.http.get("/epcis/events", params={"EQ_bizStep": step},
                                  headers={"authorization": f"Bearer {hub.token(tenant)}"})
    assert response.status_code == 200, response.text
    return response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]


async def test_a_party_is_not_told_the_other_partys_own_location(hub, suffix):
    brand, shop = await hub.tenant(f"brand-{suffix}"), await hub.tenant(f"shop-{suffix}", "retailer")
    invited = await hub.ok(INVITE, {"i": {"partnerId": shop, "weShare": [], "theyShare": ["dispatches"]}},
                           tenant=brand)
    await hub.ok(ACCEPT, {"id": invited["invitePartner"]["id"]}, tenant=shop)
    await hub.ok("mutation($i: SkuInput!) { upsertSku(input: $i) { created } }",
                 {"i": {"code": "S1", "name": "s"}}, tenant=brand)
    plant_gln, dock_gln, dc_gln = gln(suffix), gln(suffix[::-1]), gln(suffix[1:] + "7")
    plant = (await hub.ok(LOCATION, {"i": {"code": "PLANT", "name": "p", "kind": "warehouse", "gln": plant_gln}},
                          tenant=brand))["createLocation"]["id"]
    dock = (await hub.ok(LOCATION, {"i": {"code": "DOCK", "name": "d", "kind": "dc", "gln": dock_gln}},
                         tenant=shop))["createLocation"]["id"]
    await hub.ok(LOCATION, {"i": {"code": "DC", "name": "d", "kind": "dc", "gln": dc_gln}}, tenant=shop)
    dispatch = (await hub.ok(DISPATCH, {"i": {"ref": "ASN-1", "consigneeId": shop, "toLocation": "DC",
                                              "fromLocationId": plant,
                                              "lines": [{"sku": "S1", "lotCode": "L1", "quantity": 5}]}},
                             tenant=brand))["createDispatch"]
    await hub.ok(RECEIPT, {"i": {"dispatchId": dispatch["id"], "locationId": dock, "final": True,
                                 "lines": [{"sku": "S1", "lotCode": "L1", "quantity": 5}]}}, tenant=shop)

    [shipped_to_shop] = await events(hub, shop, "shipping")
    [received_by_brand] = await events(hub, brand, "receiving")
    [shipped_by_brand] = await events(hub, brand, "shipping")
    received_by_shop = await events(hub, shop, "receiving")  # the receipt, and the movement it booked

    assert plant_gln in str(shipped_by_brand) and dock_gln in str(received_by_shop)  # each names its own
    assert plant_gln not in str(shipped_to_shop) and plant not in str(shipped_to_shop)
    assert dc_gln in str(shipped_to_shop)  # the destination is on the notice
    assert dock_gln not in str(received_by_brand) and dock not in str(received_by_brand)
