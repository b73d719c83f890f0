"""Obsolescence with its root cause, and first-expired-first-out slips."""

from __future__ import annotations

from datetime import timedelta

from tests.planning.conftest import noon, partner, today

CREATE_DISPATCH = "mutation($input: CreateDispatchInput!) { createDispatch(input: $input) { id ref } }"
RECORD_RECEIPT = "mutation($input: RecordReceiptInput!) { recordReceipt(input: $input) { id outcome } }"


def root(alert: dict) -> dict[str, dict]:
    return {c["code"]: c for c in alert["evidence"]["rootCauses"]}


async def deliver(hub, ref: str, lines: list[dict], to: str = "ST-1", received: list[dict] | None = None) -> str:
    shipped = await hub.ok(CREATE_DISPATCH, {"input": {"ref": ref, "consigneeId": "shopco", "toLocation": to,
                                                       "lines": lines}}, tenant="brand")
    dispatch_id = shipped["createDispatch"]["id"]
    receipt = await hub.ok(RECORD_RECEIPT, {"input": {"dispatchId": dispatch_id, "final": True,
                                                      "lines": received or lines}}, tenant="shopco")
    return receipt["recordReceipt"]["id"]


async def test_stock_above_the_days_of_supply_threshold_names_over_receipt_the_receipt_and_the_supplier(net, hub):
    # given: ST-1 sells 10 a day; then Brand delivers 3,000 (300 days of that demand) and Shopco receives it
    await net.sku("SUN-50", shelfLifeDays=730)
    await net.history("ST-1", "SUN-50", [10] * 91, stock=910 + 60, lot=None)
    receipt_id = await deliver(hub, "ASN-BIG", [{"sku": "SUN-50", "lotCode": "BIG-1", "quantity": 3000,
                                                "expiresOn": (today() + timedelta(days=700)).isoformat()}])

    # when
    report = await net.sweep()

    # then
    assert report.findings == {"obsolescence_risk": 1}
    [alert] = await net.alerts("shopco", "obsolescence_risk")
    evidence = alert["evidence"]
    assert evidence["reason"] == "days_of_supply" and evidence["daysOfSupply"] == 306 and evidence["onHand"] == 3060
    assert evidence["rootCause"] == "over_receipt" and "over-receipt" in alert["title"]
    [over] = root(alert)["over_receipt"]["evidence"]["receipts"]
    assert (over["receiptId"], over["dispatchRef"], over["supplier"]) == (receipt_id, "ASN-BIG", "brand")
    assert over["daysOfDemandReceived"] == 300 and evidence["suppliers"] == ["brand"]
    assert "supplier brand" in alert["recommendation"]
    assert [a["id"] for a in await net.alerts("brand", "obsolescence_risk")] == [alert["id"]]
    assert await net.alerts("rival") == []


async def test_a_velocity_drop_after_receipt_is_a_forecast_miss(net):
    # given: 10 a day; 600 received a month ago (60 days of demand then); since then 1 a day
    await net.sku("SUN-50", shelfLifeDays=730)
    items = [{"sku": "SUN-50", "kind": "receipt", "quantity": 850, "occurredAt": noon(115)}]
    items += [{"sku": "SUN-50", "kind": "sale", "quantity": -10, "occurredAt": noon(114 - i)} for i in range(84)]
    items += [{"sku": "SUN-50", "kind": "receipt", "quantity": 600, "occurredAt": noon(30)}]
    items += [{"sku": "SUN-50", "kind": "sale", "quantity": -1, "occurredAt": noon(30 - i)} for i in range(30)]
    await net.move("ST-1", items)

    await net.sweep()

    [alert] = await net.alerts("shopco", "obsolescence_risk")
    causes = root(alert)
    assert alert["evidence"]["rootCause"] == "forecast_miss" and "over_receipt" not in causes
    assert causes["forecast_miss"]["evidence"]["ratePerDayBefore"] == 10


async def test_held_and_mismatched_lots_are_a_quality_root_cause_and_a_discontinued_sku_is_named(net, hub):
    # given: a delivery whose expiry disagrees with its notice (held), and a discontinued SKU with stock
    await net.sku("SUN-50", shelfLifeDays=730)
    await net.sku("OLD-RANGE", shelfLifeDays=730)
    await net.history("ST-1", "SUN-50", [10] * 91, stock=910, lot=None)
    await deliver(hub, "ASN-Q", [{"sku": "SUN-50", "lotCode": "Q-1", "quantity": 2500,
                                  "expiresOn": (today() + timedelta(days=700)).isoformat()}],
                  received=[{"sku": "SUN-50", "lotCode": "Q-1", "quantity": 2500,
                             "expiresOn": (today() + timedelta(days=500)).isoformat()}])
    await net.history("ST-2", "OLD-RANGE", [5] * 91, stock=5 * 91 + 300, lot=None)
    await net.policy(sku="OLD-RANGE", discontinued=True)

    await net.sweep()

    alerts = {a["subjects"][0]["label"]: a for a in await net.alerts("shopco", "obsolescence_risk")}
    quality = root(alerts["SUN-50"])["quality"]["evidence"]
    assert quality["held_lots"][0]["lotCode"] == "Q-1" and quality["receipt_mismatches"][0]["kinds"] == ["expiry"]
    assert alerts["OLD-RANGE"]["evidence"]["rootCause"] == "discontinued"


async def test_undated_stock_without_consumption_for_the_idle_period_is_flagged(net):
    await net.sku("BOLTS", shelfLifeDays=None)
    await net.history("WH-1", "BOLTS", [0] * 100, stock=400, lot=None)

    await net.sweep()

    [alert] = await net.alerts("shopco", "obsolescence_risk")
    assert alert["evidence"]["reason"] == "no_consumption" and alert["evidence"]["daysWithoutConsumption"] == 101
    assert await net.alerts("rival") == []


# -- FEFO --------------------------------------------------------------------------------------------------------

def lot_receipt(code: str, days: int, quantity: int = 50) -> dict:
    return {"sku": "SUN-50", "kind": "receipt", "quantity": quantity, "lotCode": code,
            "expiresOn": (today() + timedelta(days=days)).isoformat()}


async def test_selling_a_newer_lot_while_an_older_one_sits_is_a_fefo_violation_for_the_holder(net):
    # given: two lots on the shelf, one expiring in 10 days, one in 60
    await net.sku("SUN-50", shelfLifeDays=730)
    await net.move("ST-1", [lot_receipt("OLD", 10), lot_receipt("NEW", 60)])

    # when: the newer lot sells
    await net.move("ST-1", [{"sku": "SUN-50", "kind": "sale", "quantity": -5, "lotCode": "NEW"}])

    # then
    [alert] = await net.alerts("shopco", "fefo_violation")
    assert alert["evidence"]["takenLot"] == "NEW" and alert["evidence"]["olderLots"][0]["lotCode"] == "OLD"
    assert alert["evidence"]["daysFresher"] == 50 and "Sell or issue lot OLD" in alert["recommendation"]
    assert [a["id"] for a in await net.alerts("brand", "fefo_violation")] == [alert["id"]]
    assert await net.alerts("rival") == []
    # selling the older lot is right; the same slip again is counted, not paged
    await net.move("ST-1", [{"sku": "SUN-50", "kind": "sale", "quantity": -5, "lotCode": "OLD"}])
    await net.move("ST-1", [{"sku": "SUN-50", "kind": "sale", "quantity": -3, "lotCode": "NEW"}])
    [again] = await net.alerts("shopco", "fefo_violation")
    assert again["id"] == alert["id"] and again["evidence"]["quantity"] == 8


async def test_a_sale_within_the_tolerance_or_of_the_oldest_lot_raises_nothing(net):
    await net.sku("SUN-50", shelfLifeDays=730)
    await net.move("ST-1", [lot_receipt("A", 10), lot_receipt("B", 11), lot_receipt("C", 40)])

    await net.move("ST-1", [{"sku": "SUN-50", "kind": "sale", "quantity": -5, "lotCode": "B"},
                            {"sku": "SUN-50", "kind": "sale", "quantity": -5, "lotCode": "A"}])

    assert await net.alerts("shopco", "fefo_violation") == []


async def test_dispatching_a_newer_lot_than_the_shipper_keeps_alerts_the_shipper_and_a_consignee_sharing_alerts(
    net, hub
):
    # given: Brand's warehouse holds an older and a newer lot; Mart receives Brand's alerts, Shopco does not
    await net.sku("SUN-50", shelfLifeDays=730)
    await hub.tenant("mart", "retailer")
    await partner(hub, "brand", "mart", ["alerts", "sku_master", "dispatches"], ["dispatches"])
    await net.location("BW-1", "warehouse", tenant="brand")
    await net.move("BW-1", [lot_receipt("B-OLD", 20, 500), lot_receipt("B-NEW", 90, 500)], tenant="brand")

    # when: Brand ships the newer lot to both
    for consignee in ("shopco", "mart"):
        await hub.ok(CREATE_DISPATCH, {"input": {
            "ref": f"ASN-{consignee}", "consigneeId": consignee, "fromLocationId": net.locations["BW-1"],
            "lines": [{"sku": "SUN-50", "lotCode": "B-NEW", "quantity": 100}]}}, tenant="brand")

    # then: Brand hears of both, Mart of its own, Shopco and Rival of none
    alerts = await net.alerts("brand", "fefo_violation")
    assert sorted(a["evidence"]["consigneeId"] for a in alerts) == ["mart", "shopco"]
    assert alerts[0]["evidence"]["lines"][0]["olderLots"][0]["lotCode"] == "B-OLD"
    [heard] = await net.alerts("mart", "fefo_violation")
    assert heard["evidence"]["consigneeId"] == "mart"
    assert await net.alerts("shopco", "fefo_violation") == []
    assert await net.alerts("rival") == []
