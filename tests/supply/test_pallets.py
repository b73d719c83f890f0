"""Pallets and cases (SSCC) on dispatch lines and receipts: a scanned pallet is received like its typed contents."""

from __future__ import annotations

from bson import ObjectId

from hub.events.payloads import DispatchPayload, ReceiptPayload
from hub.models.dispatch import Dispatch, DispatchLine
from hub.models.event import Event
from hub.models.receipt import Receipt
from hub.services.pallets import goods_on
from tests.supply.conftest import CREATE_DISPATCH, RECORD_RECEIPT, YOGURT_GTIN, yogurt_line

GTIN14 = "0" + YOGURT_GTIN
PALLET = "106141411234567897"
CASES = "106141411234567903"  # a case-level unit stacked on PALLET
OTHER = "106141411234567910"
BAD = "106141411234567890"  # check digit should be 7
LOT = ObjectId()
LINES = "lines { lotCode quantity sscc inSscc }"
RECEIPT_WITH_UNITS = RECORD_RECEIPT.replace("dispatchLine }", "dispatchLine sscc }")


async def test_dispatch_lines_carry_pallets_typed_or_scanned(supply):
    dispatch = await supply.dispatch([
        yogurt_line(970, "B240315", sscc=PALLET),
        yogurt_line(30, "B240315", sscc=CASES, inSscc=PALLET),
        {"scan": f"(00){OTHER}(02){GTIN14}(37)240(10)B240316(17)300414"},
    ])
    stored = await Dispatch.get(dispatch["id"])
    assert [(l.lot_code, l.quantity, l.sscc, l.in_sscc) for l in stored.lines] == [
        ("B240315", 970, PALLET, None), ("B240315", 30, CASES, PALLET), ("B240316", 240, OTHER, None)]
    assert stored.ssccs == sorted([PALLET, CASES, OTHER])
    # the notice's event (webhooks, subscriptions) carries them, in the shape the catalogue's schema says
    event = await Event.find_one({"type": "dispatch.created", "payload.dispatch.id": dispatch["id"]})
    payload = DispatchPayload.model_validate(event.payload)
    assert [(line.sscc, line.in_sscc) for line in payload.dispatch.lines] == [
        (PALLET, None), (CASES, PALLET), (OTHER, None)]
    # the parties see the units on the notice
    query = f"query($id: ID!) {{ dispatch(id: $id) {{ {LINES} }} }}"
    seen = (await supply.hub.ok(query, {"id": dispatch["id"]}, tenant="shopco"))["dispatch"]["lines"]
    assert [line["sscc"] for line in seen] == [PALLET, CASES, OTHER]


async def test_a_scanned_pallet_is_received_and_reconciled_like_its_typed_contents(supply):
    # receiving the pallet by its SSCC alone books what the notice lists on it, cases stacked on it included
    dispatch = await supply.dispatch([yogurt_line(970, "B240315", sscc=PALLET),
                                      yogurt_line(30, "B240315", sscc=CASES, inSscc=PALLET),
                                      yogurt_line(240, "B240316", sscc=OTHER)], ref="ASN-P")
    whole = await supply.hub.ok(RECEIPT_WITH_UNITS, {"input": {"dispatchId": dispatch["id"],
                                                               "lines": [{"scan": f"]C100{PALLET}"}]}},
                                tenant="shopco")
    receipt = whole["recordReceipt"]
    assert receipt["outcome"] == "matched", receipt["mismatches"]
    assert [(l["lotCode"], l["quantity"], l["dispatchLine"], l["sscc"]) for l in receipt["lines"]] == [
        ("B240315", 970, 0, PALLET), ("B240315", 30, 1, CASES)]
    # the third pallet, typed by its SSCC, completes the dispatch
    rest = await supply.receive(dispatch["id"], [{"sscc": OTHER}])
    event = await Event.find_one({"type": "receipt.recorded", "payload.receipt.id": rest["id"]})
    assert [line.sscc for line in ReceiptPayload.model_validate(event.payload).receipt.lines] == [OTHER]
    assert rest["outcome"] == "matched"
    assert [p["onHand"] for p in await supply.stock(lotCode="B240315")] == [1000]

    # a pallet label whose contents differ from the notice: the B240315 / B240314 near miss, scanned and typed
    results = []
    for n, line in enumerate(({"scan": f"(00){OTHER}(02){GTIN14}(37)240(10)B240314"},
                              {"sku": YOGURT_GTIN, "lotCode": "B240314", "quantity": 240, "sscc": OTHER})):
        shipped = await supply.dispatch([yogurt_line(240, "B240315", sscc=OTHER)], ref=f"ASN-N{n}")
        received = await supply.receive(shipped["id"], [line], final=True)
        results.append((received["outcome"], received["mismatches"]))
    assert results[0] == results[1]
    assert results[0] == ("mismatched", [{"kind": "lot_code", "line": 0, "dispatchLine": 0, "expected": "B240315",
                                          "found": "B240314", "nearMiss": True, "lotCode": "B240315"}])


async def test_a_bad_sscc_is_refused_by_name_and_nothing_is_stored(supply):
    dispatches, receipts = await Dispatch.count(), await Receipt.count()
    for line, field, says in (
        (yogurt_line(10, sscc=BAD), "lines.0.sscc", "check digit"),
        (yogurt_line(10, sscc="12345"), "lines.0.sscc", "18 digits"),
        (yogurt_line(10, sscc="1" * 5000), "lines.0.sscc", "18 digits"),
        (yogurt_line(10, sscc=CASES, inSscc=BAD), "lines.0.inSscc", "check digit"),
        (yogurt_line(10, inSscc=PALLET), "lines.0.inSscc", "own SSCC"),
        ({"scan": f"(00){BAD}(02){GTIN14}(37)10(10)B1"}, "lines.0.scan", "(00)"),
    ):
        body = await supply.hub.gql(CREATE_DISPATCH, {"input": {"ref": "ASN-BAD", "consigneeId": "shopco",
                                                                "lines": [yogurt_line(5), line]}}, tenant="acme")
        error = body["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (line, error)
        assert error["extensions"]["field"] == field.replace("0", "1"), (line, error)
        assert says in error["message"], (line, error["message"])
    assert await Dispatch.count() == dispatches

    dispatch = await supply.dispatch([yogurt_line(100, "B240315", sscc=PALLET)], ref="ASN-R")
    for line, field, says in (
        ({"scan": f"(00){BAD}"}, "lines.1.scan", "(00)"),
        ({"sscc": BAD}, "lines.1.sscc", "check digit"),
        ({"sscc": OTHER}, "lines.1.sscc", "on no line"),
        ({"scan": f"(00){PALLET}", "lotCode": "B240315"}, "lines.1.scan", "SSCC"),
    ):
        body = await supply.hub.gql(RECORD_RECEIPT, {"input": {"dispatchId": dispatch["id"],
                                                               "lines": [{"sscc": PALLET}, line]}}, tenant="shopco")
        error = body["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (line, error)
        assert error["extensions"]["field"] == field, (line, error)
        assert says in error["message"], (line, error["message"])
    assert await Receipt.count() == receipts
    assert (await Dispatch.get(dispatch["id"])).lines[0].received == 0


PALLET_QUERY = """
query($sscc: String!) {
  pallet(sscc: $sscc) { sscc lines { dispatchRef line sscc inSscc lotCode quantity received } contents { epc } }
}
"""


async def test_the_parties_see_a_pallet_and_another_tenant_cannot_see_or_receive_it(supply):
    dispatch = await supply.dispatch([yogurt_line(970, "B240315", sscc=PALLET),
                                      yogurt_line(30, "B240315", sscc=CASES, inSscc=PALLET)],
                                     ref="ASN-I", carrier="haul")
    for tenant in ("acme", "shopco", "haul"):
        seen = (await supply.hub.ok(PALLET_QUERY, {"sscc": PALLET}, tenant=tenant))["pallet"]
        assert [(l["dispatchRef"], l["line"], l["sscc"], l["quantity"]) for l in seen["lines"]] == [
            ("ASN-I", 0, PALLET, 970), ("ASN-I", 1, CASES, 30)], tenant
    cases = (await supply.hub.ok(PALLET_QUERY, {"sscc": CASES}, tenant="shopco"))["pallet"]["lines"]
    assert [(l["sscc"], l["inSscc"]) for l in cases] == [(CASES, PALLET)]
    # a partner of the shipper that is no party of this dispatch does not see the pallet
    other = await supply.dispatch([yogurt_line(10, "B240315", sscc=OTHER)], ref="ASN-J")
    body = await supply.hub.gql(PALLET_QUERY, {"sscc": OTHER}, tenant="haul")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", (other, body)
    # a stranger: the pallet, its dispatch and a receipt against it are all NOT_FOUND
    for query, variables in ((PALLET_QUERY, {"sscc": PALLET}),
                             (f"query($id: ID!) {{ dispatch(id: $id) {{ {LINES} }} }}", {"id": dispatch["id"]}),
                             (RECORD_RECEIPT, {"input": {"dispatchId": dispatch["id"], "lines": [{"sscc": PALLET}]}})):
        body = await supply.hub.gql(query, variables, tenant="rival")
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
    bad = await supply.hub.gql(PALLET_QUERY, {"sscc": BAD}, tenant="shopco")
    assert (bad["errors"][0]["extensions"]["code"], bad["errors"][0]["extensions"]["field"]) == (
        "BAD_USER_INPUT", "sscc")
    stored = await Dispatch.get(dispatch["id"])
    assert await Receipt.find({"dispatch_id": stored.id}).count() == 0
    assert [line.received for line in stored.lines] == [0, 0]


def test_a_relayed_pallet_counts_on_its_latest_leg_only():
    def leg(parties: list[str], quantity: int) -> Dispatch:
        line = DispatchLine(sku_id=ObjectId(), lot_id=LOT, lot_code="B240315", quantity=quantity, sscc=PALLET)
        return Dispatch.model_construct(id=ObjectId(), tenant_id=parties[0], ref="R", consignee_id=parties[1],
                                        parties=parties, lines=[line, line.model_copy(update={"sscc": OTHER})],
                                        ssccs=[PALLET, OTHER])

    first, second = leg(["acme", "haul"], 100), leg(["haul", "shopco"], 90)
    [goods] = goods_on("haul", [PALLET], [second, first])
    assert (goods.dispatch_id, goods.units, goods.dispatch_units, goods.ssccs) == (second.id, 90, 180, (PALLET,))
    [goods] = goods_on("acme", [PALLET], [first, second])  # acme is no party of the second leg
    assert (goods.dispatch_id, goods.units) == (first.id, 100)
    assert goods_on("rival", [PALLET], [first, second]) == []
