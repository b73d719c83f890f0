"""The receipt stories: scanning what arrived reconciles it with the dispatch on the spot."""

from __future__ import annotations

import asyncio

from hub.models.alert import Alert
from hub.models.event import Event
from tests.supply.conftest import RECORD_RECEIPT, YOGURT_GTIN, yogurt_line

DISPATCH = """
query($id: ID!) {
  dispatch(id: $id) { id status hasMismatch receiptCount lines { lotCode quantity received } history { status by } }
}
"""
LOT_STATUS = """
query($code: String!) { lots(filter: {lotCode: $code}) { nodes { lotCode status holdReason } } }
"""


async def test_scanning_the_neighbouring_lot_flags_one_near_miss_and_holds_the_lot(supply):
    # given: Acme dispatches lot B240315 to Shopco
    dispatch = await supply.dispatch([yogurt_line(100, "B240315")])
    assert dispatch["status"] == "dispatched" and dispatch["lines"][0]["lotCode"] == "B240315"
    # when: Shopco scans B240314 and closes the receipt
    receipt = await supply.receive(dispatch["id"], [{"sku": YOGURT_GTIN, "lotCode": "B240314", "quantity": 100}],
                                   final=True)
    # then: one lot mismatch, flagged as a near miss
    assert receipt["outcome"] == "mismatched"
    assert receipt["mismatches"] == [{"kind": "lot_code", "line": 0, "dispatchLine": 0, "expected": "B240315",
                                      "found": "B240314", "nearMiss": True, "lotCode": "B240315"}]
    lots = await supply.hub.ok(LOT_STATUS, {"code": "B240315"}, tenant="shopco")
    assert lots["lots"]["nodes"][0]["status"] == "on_hold"
    assert "did not match" in lots["lots"]["nodes"][0]["holdReason"]
    after = await supply.hub.ok(DISPATCH, {"id": dispatch["id"]}, tenant="acme")
    assert after["dispatch"]["status"] == "received_with_mismatch"
    assert after["dispatch"]["lines"][0]["received"] == 100
    # and one mismatch alert for the receipt, owned by the consignee, heard by both parties
    alerts = await Alert.find({"kind": "mismatch"}).to_list()
    assert len(alerts) == 1
    assert str(alerts[0].id) == receipt["alertId"]
    assert alerts[0].tenant_id == "shopco" and alerts[0].audience == ["acme", "shopco"]
    assert alerts[0].evidence["mismatches"][0]["nearMiss"] is True
    assert alerts[0].recommendation.startswith("Re-scan")
    types = [e.type for e in await Event.find({}).sort("_id").to_list()]
    assert "mismatch.detected" in types and "dispatch.received" in types
    # the goods are on Shopco's books, against the announced lot, and held
    stock = await supply.stock()
    assert [(p["lotCode"], p["onHand"], p["lotStatus"]) for p in stock] == [("B240315", 100, "on_hold")]


async def test_matching_receipt_closes_the_dispatch_as_received(supply):
    dispatch = await supply.dispatch([yogurt_line(100)])
    receipt = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 100}])
    assert receipt["outcome"] == "matched" and receipt["mismatches"] == [] and receipt["alertId"] is None
    after = await supply.hub.ok(DISPATCH, {"id": dispatch["id"]}, tenant="shopco")
    assert after["dispatch"]["status"] == "received"
    assert [h["status"] for h in after["dispatch"]["history"]] == ["dispatched", "received"]
    assert await Alert.find({"kind": "mismatch"}).count() == 0


async def test_expiry_inconsistent_with_shelf_life_is_flagged(supply):
    # produced 5 March with a 30-day shelf life cannot expire 14 April: the production date is wrong
    dispatch = await supply.dispatch([yogurt_line(50, producedOn="2030-03-05")])
    receipt = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 50}])
    assert [(m["kind"], m["expected"], m["found"]) for m in receipt["mismatches"]] == [
        ("shelf_life", "2030-04-04", "2030-04-14")
    ]
    alert = await Alert.find_one({"kind": "mismatch"})
    assert alert is not None and alert.severity.value == "critical"


async def test_short_delivery_is_flagged_when_the_receipt_is_final(supply):
    dispatch = await supply.dispatch([yogurt_line(100)])
    receipt = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 90}],
                                   final=True)
    assert [(m["kind"], m["expected"], m["found"]) for m in receipt["mismatches"]] == [("quantity_short", "100", "90")]
    lots = await supply.hub.ok(LOT_STATUS, {"code": "B240315"}, tenant="shopco")
    assert lots["lots"]["nodes"][0]["status"] == "released"  # nothing wrong with what arrived


async def test_over_delivery_is_flagged_on_the_running_total(supply):
    dispatch = await supply.dispatch([yogurt_line(100)])
    first = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 70}])
    second = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 40}])
    assert first["outcome"] == "matched"
    assert [(m["kind"], m["found"]) for m in second["mismatches"]] == [("quantity_over", "110")]
    after = await supply.hub.ok(DISPATCH, {"id": dispatch["id"]}, tenant="acme")
    assert after["dispatch"]["status"] == "received_with_mismatch"
    assert (await supply.stock())[0]["onHand"] == 110


async def test_unexpected_sku_is_flagged_and_held(supply):
    await supply.partner("acme", "shopco", ["sku_master"])  # so Shopco's scanner knows MLK-1
    dispatch = await supply.dispatch([yogurt_line(10)])
    receipt = await supply.receive(dispatch["id"], [
        {"sku": "YOG-1", "lotCode": "B240315", "quantity": 10},
        {"sku": "MLK-1", "lotCode": "M77", "quantity": 4},
        {"sku": "0000000000000", "lotCode": "X1", "quantity": 1},
    ])
    assert [(m["kind"], m["line"], m["found"]) for m in receipt["mismatches"]] == [
        ("unexpected_sku", 1, "MLK-1"), ("unexpected_sku", 2, "0000000000000")
    ]
    assert receipt["lines"][2]["skuId"] is None
    held = await supply.hub.ok(LOT_STATUS, {"code": "M77"}, tenant="shopco")
    assert held["lots"]["nodes"][0]["status"] == "on_hold"


async def test_partial_receipts_complete_the_dispatch_without_false_shortages(supply):
    dispatch = await supply.dispatch([yogurt_line(100), {"sku": "MLK-1", "lotCode": "M1", "quantity": 20,
                                                         "producedOn": "2030-03-15", "expiresOn": "2030-03-25"}])
    first = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 60}])
    mid = await supply.hub.ok(DISPATCH, {"id": dispatch["id"]}, tenant="acme")
    second = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 40},
                                                   {"sku": "MLK-1", "lotCode": "M1", "quantity": 20}])
    after = await supply.hub.ok(DISPATCH, {"id": dispatch["id"]}, tenant="acme")
    assert first["outcome"] == second["outcome"] == "matched"
    assert mid["dispatch"]["status"] == "dispatched"
    assert after["dispatch"]["status"] == "received" and after["dispatch"]["receiptCount"] == 2
    assert [line["received"] for line in after["dispatch"]["lines"]] == [100, 20]


async def test_missing_line_is_flagged_when_final(supply):
    dispatch = await supply.dispatch([yogurt_line(10), {"sku": "MLK-1", "lotCode": "M1", "quantity": 20}])
    receipt = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 10}],
                                   final=True)
    assert [(m["kind"], m["dispatchLine"]) for m in receipt["mismatches"]] == [("missing_line", 1)]


async def test_resending_a_receipt_with_the_same_ref_books_nothing_twice(supply):
    dispatch = await supply.dispatch([yogurt_line(100)])
    line = [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 30}]
    first = await supply.receive(dispatch["id"], line, ref="GR-1")
    again = await supply.receive(dispatch["id"], line, ref="GR-1")
    both = await asyncio.gather(*(supply.receive(dispatch["id"], line, ref="GR-2") for _ in range(2)))
    assert first["id"] == again["id"] and both[0]["id"] == both[1]["id"]
    assert (await supply.stock())[0]["onHand"] == 60


async def test_a_closed_dispatch_takes_no_more_receipts(supply):
    dispatch = await supply.dispatch([yogurt_line(5)])
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 5}])
    body = await supply.hub.gql(
        RECORD_RECEIPT,
        {"input": {"dispatchId": dispatch["id"], "lines": [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 1}]}},
        tenant="shopco",
    )
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_carrier_receives_into_its_own_warehouse_as_receiving_3pl(supply):
    dispatch = await supply.dispatch([yogurt_line(10)], carrier="haul")
    receipt = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 10}],
                                   tenant="haul", locationId=supply.haul_wh)
    assert receipt["outcome"] == "matched"
    assert [(p["holderId"], p["onHand"]) for p in await supply.stock(tenant="haul")] == [("haul", 10)]
    assert await supply.stock(tenant="shopco") == []


async def test_concurrent_partial_receipts_are_judged_on_each_others_totals(supply):
    dispatch = await supply.dispatch([yogurt_line(100)])
    line = [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 40}]
    receipts = await asyncio.gather(*(supply.receive(dispatch["id"], line) for _ in range(3)))
    after = await supply.hub.ok(DISPATCH, {"id": dispatch["id"]}, tenant="acme")
    # they serialise on the dispatch: whichever came third pushed the running total over what was announced
    assert sorted(r["outcome"] for r in receipts) == ["matched", "matched", "mismatched"]
    assert after["dispatch"]["receiptCount"] == 3 and after["dispatch"]["lines"][0]["received"] == 120
    assert after["dispatch"]["status"] == "received_with_mismatch"
    assert (await supply.stock())[0]["onHand"] == 120


RESOLVE = """
mutation($id: ID!, $note: String, $decision: AlertDecision) {
  resolveReceipt(id: $id, note: $note, decision: $decision) { id resolvedAt resolutionNote heldLotIds }
}
"""


async def test_resolving_a_mismatched_receipt_releases_its_lots_and_resolves_its_alert(supply):
    # given: two receipts of two dispatches both hold lot B240315
    first = await supply.dispatch([yogurt_line(10)])
    second = await supply.dispatch([yogurt_line(10)])
    one = await supply.receive(first["id"], [{"sku": "YOG-1", "lotCode": "B240314", "quantity": 10}])
    two = await supply.receive(second["id"], [{"sku": "YOG-1", "lotCode": "B240316", "quantity": 10}])
    # when: the shipper tries, then the receiver resolves the first
    assert (await supply.hub.gql(RESOLVE, {"id": one["id"]}, tenant="acme"))["errors"][0]["extensions"]["code"] == (
        "FORBIDDEN")
    assert (await supply.hub.gql(RESOLVE, {"id": one["id"]}, tenant="rival"))["errors"][0]["extensions"]["code"] == (
        "NOT_FOUND")
    resolved = await supply.hub.ok(RESOLVE, {"id": one["id"], "note": "label misprint"}, tenant="shopco")
    # then: the lot stays held while the second receipt still holds it
    assert resolved["resolveReceipt"]["resolutionNote"] == "label misprint"
    assert len(resolved["resolveReceipt"]["heldLotIds"]) == 1
    held = await supply.hub.ok(LOT_STATUS, {"code": "B240315"}, tenant="shopco")
    assert held["lots"]["nodes"][0]["status"] == "on_hold"
    first_alert = await Alert.get(one["alertId"])
    assert first_alert.status.value == "resolved" and first_alert.decision.value == "accept_risk"  # the default
    # and is released when the last one is resolved; 'other' needs a note; resolving twice is a conflict
    vague = await supply.hub.gql(RESOLVE, {"id": two["id"], "decision": "other"}, tenant="shopco")
    assert vague["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await supply.hub.ok(RESOLVE, {"id": two["id"], "decision": "return_to_supplier"}, tenant="shopco")
    assert (await Alert.get(two["alertId"])).decision.value == "return_to_supplier"
    released = await supply.hub.ok(LOT_STATUS, {"code": "B240315"}, tenant="acme")
    assert released["lots"]["nodes"][0] == {"lotCode": "B240315", "status": "released", "holdReason": None}
    again = await supply.hub.gql(RESOLVE, {"id": two["id"]}, tenant="shopco")
    assert again["errors"][0]["extensions"]["code"] == "CONFLICT"


async def test_held_stock_cannot_be_sold_until_its_receipt_is_resolved(supply):
    # given: a near-miss receipt holds lot B240315 at Shopco's DC
    dispatch = await supply.dispatch([yogurt_line(10)])
    receipt = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240314", "quantity": 10}])
    sale = [{"sku": "YOG-1", "lotCode": "B240315", "kind": "sale", "quantity": -2, "idempotencyKey": "till-1"}]
    # when: the till sells from the held lot
    refused = await supply.movements(sale)
    # then: refused, nothing stored
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["CONFLICT"]
    assert "on_hold" in refused["errors"][0]["message"]
    assert (await supply.stock())[0]["onHand"] == 10
    # when the receipt is resolved, the same sale goes through
    await supply.hub.ok(RESOLVE, {"id": receipt["id"]}, tenant="shopco")
    accepted = await supply.movements(sale)
    assert accepted["data"]["recordMovements"]["accepted"] == 1
    assert (await supply.stock())[0]["onHand"] == 8
