"""Tenancy: nobody outside a dispatch sees it, its receipts or its lots; VMI stock follows the partnership."""

from __future__ import annotations

from hub.models.event import Event
from tests.supply.conftest import REVOKE, yogurt_line

EVERYTHING = """
query($id: ID!) {
  dispatch(id: $id) { id }
}
"""
LISTS = """
{ dispatches { nodes { id } } lots { nodes { id lotCode } } stockPositions { nodes { id } } }
"""
RECEIPTS = "query($id: ID!) { receipts(dispatchId: $id) { nodes { id } } }"
RECEIPT = "query($id: ID!) { receipt(id: $id) { id outcome } }"
LOT = "query($code: String!) { lots(filter: {lotCode: $code}) { nodes { id } } }"


def code(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"]


async def test_a_tenant_outside_the_dispatch_sees_nothing_of_it(supply):
    # given: a dispatch from Acme to Shopco through Haul, received with a mismatch
    dispatch = await supply.dispatch([yogurt_line(10)], carrier="haul")
    receipt = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240314", "quantity": 10}])
    # then: every party sees the dispatch, its receipt and its lot
    for party in ("acme", "shopco", "haul"):
        assert (await supply.hub.ok(EVERYTHING, {"id": dispatch["id"]}, tenant=party))["dispatch"]["id"]
        assert (await supply.hub.ok(RECEIPT, {"id": receipt["id"]}, tenant=party))["receipt"]["outcome"] == "mismatched"
        assert len((await supply.hub.ok(LOT, {"code": "B240315"}, tenant=party))["lots"]["nodes"]) == 1
    # and Rival, by id or by listing, finds none of it: NOT_FOUND, never FORBIDDEN
    assert code(await supply.hub.gql(EVERYTHING, {"id": dispatch["id"]}, tenant="rival")) == "NOT_FOUND"
    assert code(await supply.hub.gql(RECEIPTS, {"id": dispatch["id"]}, tenant="rival")) == "NOT_FOUND"
    assert code(await supply.hub.gql(RECEIPT, {"id": receipt["id"]}, tenant="rival")) == "NOT_FOUND"
    lists = await supply.hub.ok(LISTS, tenant="rival")
    assert lists == {"dispatches": {"nodes": []}, "lots": {"nodes": []}, "stockPositions": {"nodes": []}}
    assert await Event.find({"audience": "rival"}).count() == 0


async def test_a_tenant_outside_the_dispatch_cannot_change_it(supply):
    dispatch = await supply.dispatch([yogurt_line(10)])
    cancel = await supply.hub.gql("mutation($id: ID!) { cancelDispatch(id: $id) { id } }", {"id": dispatch["id"]},
                                  tenant="rival")
    assert code(cancel) == "NOT_FOUND"
    receive = await supply.hub.gql(
        "mutation($i: RecordReceiptInput!) { recordReceipt(input: $i) { id } }",
        {"i": {"dispatchId": dispatch["id"], "locationId": supply.rival_store,
               "lines": [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 10}]}}, tenant="rival")
    assert code(receive) == "NOT_FOUND"


async def test_malformed_ids_are_simply_not_found(supply):
    assert code(await supply.hub.gql(EVERYTHING, {"id": "not-an-id"}, tenant="shopco")) == "NOT_FOUND"


async def test_vmi_partner_sees_stock_of_its_own_skus_until_revoked(supply):
    # given: Shopco holds Acme's yogurt and its own private-label item
    dispatch = await supply.dispatch([yogurt_line(10)])
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 10}])
    own = await supply.hub.ok(
        "mutation($i: SkuInput!) { upsertSku(input: $i) { sku { id } } }",
        {"i": {"code": "SHOP-1", "name": "Own brand"}}, tenant="shopco")
    await supply.movements([{"sku": "SHOP-1", "kind": "receipt", "quantity": 3, "idempotencyKey": "own-1"}])
    # when nothing is shared, Acme sees no Shopco stock
    assert await supply.stock(tenant="acme") == []
    # when Shopco shares stock with Acme, Acme sees its yogurt at Shopco, but not Shopco's own brand
    pid = await supply.partner("shopco", "acme", ["stock"])
    seen = await supply.stock(tenant="acme")
    assert [(p["holderId"], p["skuOwnerId"], p["onHand"]) for p in seen] == [("shopco", "acme", 10)]
    assert own["upsertSku"]["sku"]["id"] not in {p["skuId"] for p in seen}
    # and Acme hears about later changes of its SKU only
    await supply.movements([
        {"sku": "YOG-1", "lotCode": "B240315", "kind": "sale", "quantity": -1, "idempotencyKey": "s1"},
        {"sku": "SHOP-1", "kind": "sale", "quantity": -1, "idempotencyKey": "s2"},
    ])
    heard = await Event.find({"type": "stock.changed", "audience": "acme"}).to_list()
    assert len(heard) == 1 and [p["skuOwnerId"] for p in heard[0].payload["positions"]] == ["acme"]
    # when Shopco revokes, visibility ends at once
    await supply.hub.ok(REVOKE, {"id": pid}, tenant="shopco")
    assert await supply.stock(tenant="acme") == []
    await supply.movements([{"sku": "YOG-1", "lotCode": "B240315", "kind": "sale", "quantity": -1,
                             "idempotencyKey": "s3"}])
    assert await Event.find({"type": "stock.changed", "audience": "acme"}).count() == 1


async def test_stock_shared_the_other_way_round_grants_nothing(supply):
    dispatch = await supply.dispatch([yogurt_line(10)])
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 10}])
    await supply.partner("acme", "shopco", ["stock"])  # Acme shares ITS stock with Shopco, not the reverse
    assert await supply.stock(tenant="acme") == []
