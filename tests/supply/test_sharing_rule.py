"""Read vs use: a partner that may read a shared SKU never creates or reveals the owner's lots through it, and a
dispatch needs the consignee's consent (it shares ``dispatches`` with the shipper)."""

from __future__ import annotations

from hub.models.dispatch import Dispatch
from hub.models.lot import Lot
from tests.supply.conftest import CREATE_DISPATCH, yogurt_line

REGISTER_LOT = "mutation($input: RegisterLotInput!) { registerLot(input: $input) { id lotCode } }"
LOTS = "query($code: String!) { lots(filter: {lotCode: $code}) { nodes { id lotCode effectiveExpiresOn } } }"


def code(body: dict) -> str:
    assert body.get("data") in (None, {}) or not any((body.get("data") or {}).values()), body
    return body["errors"][0]["extensions"]["code"]


async def private_lot(supply, lot_code: str = "SECRET-1") -> str:
    data = await supply.hub.ok(REGISTER_LOT, {"input": {"skuId": supply.yogurt, "lotCode": lot_code,
                                                        "expiresOn": "2030-05-01"}}, tenant="acme")
    return data["registerLot"]["id"]


async def lots_seen(supply, tenant: str, lot_code: str) -> list[dict]:
    return (await supply.hub.ok(LOTS, {"code": lot_code}, tenant=tenant))["lots"]["nodes"]


async def shipper_with_read_only_catalogue(supply) -> None:
    """Shopco reads Acme's SKU master; Rival accepts Shopco's dispatches (so only the lot rule can refuse)."""
    await supply.partner("acme", "shopco", ["sku_master"])
    await supply.partner("rival", "shopco", ["dispatches"])


async def test_a_partner_cannot_ship_the_owners_private_lot_to_expose_it(supply):
    lot_id = await private_lot(supply)
    await shipper_with_read_only_catalogue(supply)
    payload = {"ref": "STEAL-1", "consigneeId": "rival", "lines": [yogurt_line(1, lot="SECRET-1")]}

    body = await supply.hub.gql(CREATE_DISPATCH, {"input": payload}, tenant="shopco")

    assert code(body) == "NOT_FOUND"
    assert await lots_seen(supply, "shopco", "SECRET-1") == []
    assert await lots_seen(supply, "rival", "SECRET-1") == []
    lot = await Lot.get(lot_id)
    assert lot is not None and lot.visible_to == []
    assert await Dispatch.find({"tenant_id": "shopco"}).count() == 0


async def test_a_partner_cannot_create_lots_of_the_owners_sku_by_shipping_them(supply):
    await shipper_with_read_only_catalogue(supply)
    payload = {"ref": "FAKE-1", "consigneeId": "rival", "lines": [yogurt_line(1, lot="INVENTED-1")]}

    body = await supply.hub.gql(CREATE_DISPATCH, {"input": payload}, tenant="shopco")

    assert code(body) == "NOT_FOUND"
    assert await Lot.find({"lot_code": "INVENTED-1"}).count() == 0


async def test_a_zero_count_cannot_expose_or_create_the_owners_lots(supply):
    lot_id = await private_lot(supply)
    await supply.partner("acme", "shopco", ["sku_master"])
    for lot_code in ("SECRET-1", "INVENTED-2"):
        count = [{"sku": "YOG-1", "kind": "count", "quantity": 0, "lotCode": lot_code,
                  "idempotencyKey": f"count-{lot_code}"}]
        body = await supply.movements(count)
        assert code(body) == "NOT_FOUND", body
    assert await lots_seen(supply, "shopco", "SECRET-1") == []
    lot = await Lot.get(lot_id)
    assert lot is not None and lot.visible_to == []
    assert await Lot.find({"lot_code": "INVENTED-2"}).count() == 0
    assert (await supply.hub.ok("{ stockPositions { nodes { id } } }", tenant="shopco"))["stockPositions"] == {
        "nodes": []}


async def test_lots_shipped_to_a_tenant_travel_on_with_it(supply):
    # given: Acme ships its lot to Shopco, which receives it
    await private_lot(supply, "B240315")
    dispatch = await supply.dispatch([yogurt_line(10)])
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 10}], final=True)
    # when: Shopco counts it and ships part of it on to Rival, which accepts Shopco's dispatches
    await supply.partner("rival", "shopco", ["dispatches"])
    counted = await supply.movements([{"sku": "YOG-1", "kind": "count", "quantity": 10, "lotCode": "B240315",
                                       "idempotencyKey": "count-1"}])
    assert "errors" not in counted, counted
    onward = await supply.hub.ok(CREATE_DISPATCH, {"input": {"ref": "ON-1", "consigneeId": "rival",
                                                             "toLocation": "ST-1",
                                                             "lines": [yogurt_line(4)]}}, tenant="shopco")
    # then: the lot it was shipped is usable, and now Rival sees it too
    assert onward["createDispatch"]["toLocationId"] == supply.rival_store
    assert len(await lots_seen(supply, "rival", "B240315")) == 1
    # and Rival, scanning a private lot code of Acme's on receipt, neither sees nor holds that lot (the line is
    # flagged against the dispatched lot)
    secret = await private_lot(supply)
    receipt = await supply.receive(onward["createDispatch"]["id"], [
        {"sku": "YOG-1", "lotCode": "B240315", "quantity": 4}, {"sku": "YOG-1", "lotCode": "SECRET-1", "quantity": 1},
    ], tenant="rival")
    assert receipt["lines"][1]["lotId"] != secret and receipt["outcome"] == "mismatched"
    assert await lots_seen(supply, "rival", "SECRET-1") == []
    lot = await Lot.get(secret)
    assert lot is not None and (lot.visible_to, lot.status.value) == ([], "released")


async def test_a_dispatch_needs_the_consignees_consent_and_reveals_no_tenant_or_location(supply):
    # given: Rival is Acme's partner, but shares only its alerts with it (no consent to receive dispatches)
    await supply.partner("rival", "acme", ["alerts"])

    async def attempt(tenant: str, consignee: str, to_location: str | None) -> dict:
        payload = {"ref": f"U-{consignee}-{to_location}", "consigneeId": consignee, "lines": [yogurt_line(1)]}
        if to_location is not None:
            payload["toLocation"] = to_location
        return await supply.hub.gql(CREATE_DISPATCH, {"input": payload}, tenant=tenant)

    # then: unsolicited dispatches are refused alike for a partner without consent and a tenant that does not
    # exist; a real location code or id answers exactly like a made-up one
    answers = [
        await attempt("acme", "rival", None),
        await attempt("acme", "rival", "ST-1"),
        await attempt("acme", "rival", supply.rival_store),
        await attempt("acme", "rival", "NOPE"),
        await attempt("acme", "no-such-tenant", None),
        await attempt("acme", "no-such-tenant", "ST-1"),
    ]
    shapes = {(a["errors"][0]["extensions"]["code"], a["errors"][0]["message"]) for a in answers}
    assert shapes == {("NOT_FOUND", "consignee not found")}, answers
    assert await Dispatch.find({"consignee_id": {"$in": ["rival", "no-such-tenant"]}}).count() == 0
    # a carrier must consent too
    body = await supply.hub.gql(CREATE_DISPATCH, {"input": {"ref": "C-1", "consigneeId": "shopco",
                                                            "carrierId": "rival", "lines": [yogurt_line(1)]}},
                                tenant="acme")
    assert code(body) == "NOT_FOUND" and body["errors"][0]["message"] == "carrier not found"
    # and with consent, only the consignee's own locations resolve: Acme cannot reach Rival's store through Shopco
    body = await supply.hub.gql(CREATE_DISPATCH, {"input": {"ref": "L-1", "consigneeId": "shopco",
                                                            "toLocation": supply.rival_store,
                                                            "lines": [yogurt_line(1)]}}, tenant="acme")
    assert code(body) == "NOT_FOUND" and body["errors"][0]["message"] == "consignee location not found"
