"""Transfers instead of purchase orders, replenishment suggestions, and the demand answer."""

from __future__ import annotations

from datetime import timedelta

from tests.planning.conftest import noon, rhythm, today

ACCEPT = """
mutation($id: ID!) {
  acceptTransferRecommendation(id: $id) { id status quantity decidedBy lots { lotCode quantity } }
}
"""
DISMISS = (
    "mutation($id: ID!, $reason: String!) { dismissTransferRecommendation(id: $id, reason: $reason) { status reason } }"
)
REPLENISH = """
query($filter: ReplenishmentFilter) {
  replenishmentSuggestions(filter: $filter) {
    skuCode locationCode quantity source transferUnits purchaseUnits safetyStock orderUpTo forecastPerDay onHand
    transfers { fromLocationCode quantity }
  }
}
"""
DEMAND = """
query($sku: String!, $location: ID!) {
  demand(sku: $sku, locationId: $location, days: 14) {
    method levelPerDay weekdayFactors observedDays censoredDays holderId
    history { day units stockout } forecast { day units } error { holdoutDays mape mase mae naiveSeasonalMae }
  }
}
"""


async def regional_shortage(net) -> None:
    """ST-2 sells ~30 a day and has 40 left; the central warehouse issues 10 a day from 1,500 in two lots."""
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i) for i in range(91)]
    await net.history("ST-2", "SUN-50", daily, stock=sum(daily) + 40, lot="ST-LOT", expires_in=300)
    await net.history("WH-1", "SUN-50", [10] * 91, stock=910 + 300, lot="WH-OLD", expires_in=60, kind="issue")
    await net.move("WH-1", [{"sku": "SUN-50", "kind": "receipt", "quantity": 1200, "lotCode": "WH-NEW",
                             "expiresOn": (today() + timedelta(days=300)).isoformat(), "occurredAt": noon(2)}])


async def test_a_store_facing_a_stockout_gets_the_warehouse_surplus_and_accepting_books_it_once(net, hub):
    # given
    await regional_shortage(net)

    # when
    report = await net.sweep()

    # then: one recommendation, warehouse → regional store, oldest lot first
    assert report.recommendations == 1
    [rec] = await net.recommendations()
    assert (rec["fromLocationCode"], rec["toLocationCode"], rec["status"]) == ("WH-1", "ST-2", "open")
    assert rec["lots"][0]["lotCode"] == "WH-OLD" and rec["quantity"] == sum(l["quantity"] for l in rec["lots"])
    assert rec["quantity"] >= 30 * 14 - 40 and rec["stockoutDaysAvoided"] > 10
    assert rec["evidence"]["destination"]["onHand"] == 40
    # Brand (VMI: Shopco shares stock with it) sees it, Rival does not and cannot act on it
    assert [r["id"] for r in await net.recommendations("brand")] == [rec["id"]]
    assert await net.recommendations("rival") == []
    body = await hub.gql(ACCEPT, {"id": rec["id"]}, tenant="rival")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    body = await hub.gql(ACCEPT, {"id": rec["id"]}, tenant="brand")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    store, warehouse = await net.on_hand("ST-2"), await net.on_hand("WH-1")

    # when: accepted twice
    first = (await hub.ok(ACCEPT, {"id": rec["id"]}, tenant="shopco"))["acceptTransferRecommendation"]
    second = (await hub.ok(ACCEPT, {"id": rec["id"]}, tenant="shopco"))["acceptTransferRecommendation"]

    # then: booked once
    assert first == second and first["status"] == "accepted"
    assert await net.on_hand("ST-2") == store + rec["quantity"]
    assert await net.on_hand("WH-1") == warehouse - rec["quantity"]
    # and the next sweep has nothing more to move
    assert (await net.sweep()).recommendations == 0
    [done] = await net.recommendations()
    assert done["status"] == "accepted"


async def test_a_dismissed_recommendation_keeps_its_reason_and_is_not_proposed_again(net, hub):
    await regional_shortage(net)
    await net.sweep()
    [rec] = await net.recommendations()

    empty = await hub.gql(DISMISS, {"id": rec["id"], "reason": "  "}, tenant="shopco")
    assert empty["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    dismissed = (await hub.ok(DISMISS, {"id": rec["id"], "reason": "store is being refitted"}, tenant="shopco"))
    assert dismissed["dismissTransferRecommendation"] == {"status": "dismissed", "reason": "store is being refitted"}
    body = await hub.gql(ACCEPT, {"id": rec["id"]}, tenant="shopco")
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"

    await net.sweep()

    assert [r["status"] for r in await net.recommendations()] == ["dismissed"]


async def test_a_recommendation_expires_when_the_situation_changes(net):
    await regional_shortage(net)
    await net.sweep()

    # when: the store is restocked by other means
    await net.move("ST-2", [{"sku": "SUN-50", "kind": "receipt", "quantity": 2000, "lotCode": "ST-LOT"}])
    await net.sweep()

    [rec] = await net.recommendations()
    assert rec["status"] == "expired" and "situation changed" in rec["reason"]


async def test_replenishment_is_suggested_as_a_transfer_where_surplus_exists_else_as_a_purchase(net, hub):
    # given: the regional shortage, and ST-1 short too but for a SKU nobody has in surplus
    await regional_shortage(net)
    await net.sku("AFTER-1", shelfLifeDays=730)
    await net.history("ST-1", "AFTER-1", [8] * 91, stock=8 * 91 + 10, lot="A-1")
    await net.policy(sku="SUN-50", locationId=net.locations["ST-2"], leadTimeDays=5, reviewDays=2)
    await net.policy(sku="AFTER-1", leadTimeDays=5, reviewDays=2)
    await net.sweep()

    found = {s["locationCode"]: s for s in (await hub.ok(REPLENISH, tenant="shopco"))["replenishmentSuggestions"]}

    assert set(found) == {"ST-2", "ST-1"}  # WH-1 has no lead time set and stock to spare
    store = found["ST-2"]
    assert (
        store["source"] in ("transfer", "transfer_and_purchase") and store["transfers"][0]["fromLocationCode"] == "WH-1"
    )
    assert store["quantity"] == store["transferUnits"] + store["purchaseUnits"]
    other = found["ST-1"]
    assert other["source"] == "purchase" and other["forecastPerDay"] == 8
    # order-up-to = 8 × (5 + 2) + safety; the quantity tops 10 on hand up to it
    assert other["quantity"] == -(-(other["orderUpTo"] - 10) // 1)
    assert (await hub.ok(REPLENISH, tenant="rival"))["replenishmentSuggestions"] == []


async def test_demand_answers_history_baseline_forecast_and_error_to_holder_and_vmi_partner_only(net, hub):
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i) for i in range(91)]
    await net.history("ST-1", "SUN-50", daily, stock=sum(daily) + 500)
    variables = {"sku": net.skus["SUN-50"], "location": net.locations["ST-1"]}

    answer = (await hub.ok(DEMAND, variables, tenant="shopco"))["demand"]

    assert answer["method"] == "weekday_seasonal" and answer["levelPerDay"] == 30 and answer["holderId"] == "shopco"
    assert len(answer["history"]) == 92 and len(answer["forecast"]) == 14
    assert answer["forecast"][0]["day"] == today().isoformat()
    assert answer["forecast"][0]["units"] == rhythm(0)
    assert answer["error"]["mae"] < 1 and answer["error"]["holdoutDays"] == 14 and answer["error"]["mape"] < 0.05
    assert (await hub.ok(DEMAND, variables, tenant="brand"))["demand"]["levelPerDay"] == 30
    body = await hub.gql(DEMAND, variables, tenant="rival")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
