"""Planning on awkward data an outside reviewer checks by hand: expired stock, stockouts, odd currencies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.planning.conftest import noon, rhythm, today
from tests.planning.test_transfers import ACCEPT, regional_shortage


async def test_a_source_whose_other_stock_is_expired_keeps_what_it_needs_itself(net):
    # given: ST-2 sells ~30 a day and has 40 left. WH-1 issues 10 a day; it holds 1,000 units of a lot that expired
    # two days ago (unsellable, it cannot cover anything) and 150 of a fresh lot: 15 days of its own issues, just
    # above its own order-up-to level of 10 x (7 lead + 7 review) = 140 (its issues never vary: no safety stock)
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i) for i in range(91)]
    await net.history("ST-2", "SUN-50", daily, stock=sum(daily) + 40, lot="ST-LOT", expires_in=300)
    await net.history("WH-1", "SUN-50", [10] * 91, stock=910 + 1000, lot="WH-GONE", expires_in=-2, kind="issue")
    await net.move("WH-1", [{"sku": "SUN-50", "kind": "receipt", "quantity": 150, "lotCode": "WH-FRESH",
                             "expiresOn": (today() + timedelta(days=300)).isoformat(), "occurredAt": noon(2)}])

    # when
    await net.sweep()

    # then: the expired units are no surplus; taking the fresh lot would leave WH-1 with nothing to issue
    assert [r for r in await net.recommendations() if r["fromLocationCode"] == "WH-1"] == []


async def test_a_recommendation_accepted_twice_at_once_books_once(net, hub):
    await regional_shortage(net)
    await net.sweep()
    [rec] = await net.recommendations()
    store, warehouse = await net.on_hand("ST-2"), await net.on_hand("WH-1")

    bodies = await asyncio.gather(*(hub.gql(ACCEPT, {"id": rec["id"]}, tenant="shopco") for _ in range(3)))

    # each answers the accepted recommendation; the transfer is booked once
    assert all("errors" not in b for b in bodies), bodies
    answers = [b["data"]["acceptTransferRecommendation"] for b in bodies]
    assert answers[0]["status"] == "accepted" and answers == [answers[0]] * 3
    assert await net.on_hand("ST-2") == store + rec["quantity"]
    assert await net.on_hand("WH-1") == warehouse - rec["quantity"]


async def test_a_short_promotion_moves_neither_the_level_nor_the_weekday_factors(net, hub):
    from tests.planning.test_transfers import DEMAND

    # given: 10 a day for 60 days, except 3 consecutive days of a promotion (flagged by the partner) selling 50
    await net.sku("SUN-50", shelfLifeDays=730)
    items = [{"sku": "SUN-50", "kind": "receipt", "quantity": 2000, "occurredAt": noon(60)}]
    for days_ago in range(60, 0, -1):
        promoted = days_ago in (5, 6, 7)
        items.append({"sku": "SUN-50", "kind": "sale", "quantity": -50 if promoted else -10,
                      "occurredAt": noon(days_ago), "promotion": promoted})
    await net.move("ST-1", items)

    # when
    answer = (await hub.ok(DEMAND.replace("censoredDays", "censoredDays promotionDays"),
                           {"sku": "SUN-50", "location": net.locations["ST-1"]}, tenant="shopco"))["demand"]

    # then: the baseline is the 57 ordinary days: 10 a day, no weekday rhythm, a forecast of 10 every day
    assert (answer["method"], answer["levelPerDay"]) == ("weekday_seasonal", 10.0)
    assert answer["weekdayFactors"] == [1.0] * 7
    assert (answer["observedDays"], answer["promotionDays"], answer["censoredDays"]) == (57, 3, 0)
    assert [f["units"] for f in answer["forecast"]] == [10.0] * 14


def salad_selling_one_a_day(received: int, expires: str, received_ago: int, selling_from: int) -> list[dict]:
    """Lot S-1 of SALAD-1: ``received`` units ``received_ago`` days ago, then one sold at noon each day from
    ``selling_from`` days ago up to yesterday, oldest first."""
    items = [{"sku": "SALAD-1", "kind": "receipt", "quantity": received, "lotCode": "S-1", "expiresOn": expires,
              "occurredAt": noon(received_ago)}]
    return items + [{"sku": "SALAD-1", "kind": "sale", "quantity": -1, "lotCode": "S-1", "occurredAt": noon(n)}
                    for n in range(selling_from, 0, -1)]


async def test_expiry_velocity_counts_exactly_the_trailing_window_of_days(net):
    # given: 100 units of a lot expiring in 60 days, one sold every day for 40 days up to and including today
    await net.sku("SALAD-1", shelfLifeDays=90)
    expires = (today() + timedelta(days=60)).isoformat()
    items = salad_selling_one_a_day(140, expires, received_ago=41, selling_from=39)
    items.append({"sku": "SALAD-1", "kind": "sale", "quantity": -1, "lotCode": "S-1",
                  "occurredAt": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()})
    await net.move("ST-1", items)

    # then: the trailing 28 days (today and the 27 before it) sold 28: 1 a day, 100 units need 100 days > 60 left
    [alert] = await net.alerts("shopco", "expiry_risk")
    evidence = alert["evidence"]
    assert (evidence["soldInWindow"], evidence["velocityPerDay"], evidence["daysToSell"]) == (28, 1.0, 100.0)
    assert (evidence["daysLeft"], evidence["onHand"], evidence["unsoldAtExpiry"]) == (60, 100, 40)


async def test_idle_days_count_only_while_stock_sat_there(net):
    # given: a seasonal line sold out 200 days ago and restocked 10 days ago (nothing sold since: off season); and a
    # line received 120 days ago that never sold once
    await net.sku("SUN-50", shelfLifeDays=730)
    await net.sku("DUD-1", shelfLifeDays=730)
    items = [{"sku": "SUN-50", "kind": "receipt", "quantity": 500, "occurredAt": noon(251)}]
    items += [{"sku": "SUN-50", "kind": "sale", "quantity": -10, "occurredAt": noon(n)} for n in range(250, 200, -1)]
    items += [{"sku": "SUN-50", "kind": "receipt", "quantity": 300, "occurredAt": noon(10)}]
    await net.move("ST-1", items)
    await net.move("ST-2", [{"sku": "DUD-1", "kind": "receipt", "quantity": 80, "occurredAt": noon(120)}])

    # when
    await net.sweep()

    # then: the restocked line has sat unsold for 10 days, not 200: no dead stock; the other one is
    [alert] = await net.alerts("shopco", "obsolescence_risk")
    assert "DUD-1" in alert["title"]
    assert (alert["evidence"]["reason"], alert["evidence"]["daysWithoutConsumption"]) == ("no_consumption", 120)


async def test_accepting_a_recommendation_whose_lot_was_put_on_hold_since_books_nothing(net, hub):
    from hub.models.lot import Lot

    await regional_shortage(net)
    await net.sweep()
    [rec] = await net.recommendations()
    assert rec["lots"][0]["lotCode"] == "WH-OLD"
    store, warehouse = await net.on_hand("ST-2"), await net.on_hand("WH-1")
    # the lot is recalled between the sweep and the planner's click
    await Lot.get_pymongo_collection().update_one({"lot_code": "WH-OLD"},
                                                  {"$set": {"status": "recalled", "hold_reason": "supplier recall"}})

    body = await hub.gql(ACCEPT, {"id": rec["id"]}, tenant="shopco")

    # then: recalled goods are not sent to a store shelf; the recommendation stays open for the next sweep
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT" and "recalled" in body["errors"][0]["message"]
    assert (await net.on_hand("ST-2"), await net.on_hand("WH-1")) == (store, warehouse)
    assert [r["status"] for r in await net.recommendations()] == ["open"]


RESOLVE = """
mutation($id: ID!, $decision: AlertDecision, $note: String) {
  resolveAlert(id: $id, decision: $decision, note: $note) { status decision resolvedBy }
}
"""


async def test_a_decided_finding_stays_resolved_until_it_gets_worse(net, hub):
    # given: 80 units received 120 days ago that never sold: dead stock (warning), and a planner accepts the risk
    await net.sku("DUD-1", shelfLifeDays=730)
    await net.move("ST-2", [{"sku": "DUD-1", "kind": "receipt", "quantity": 80, "occurredAt": noon(120)}])
    await net.sweep()
    [alert] = await net.alerts("shopco", "obsolescence_risk")
    assert alert["severity"] == "warning"
    # another tenant cannot decide on it: its id is not found there
    body = await hub.gql(RESOLVE, {"id": alert["id"], "decision": "false_alarm"}, tenant="rival")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    await hub.ok(RESOLVE, {"id": alert["id"], "decision": "accept_risk", "note": "display stock"}, tenant="shopco")

    # when: the next sweeps find the same finding, also once its figures moved (a count found 75, not 80)
    await net.sweep()
    await net.move("ST-2", [{"sku": "DUD-1", "kind": "count", "quantity": 75, "occurredAt": noon(1)}])
    await net.sweep()

    # then: the decision stands (no reopening, no page)
    [kept] = await net.alerts("shopco", "obsolescence_risk")
    assert (kept["id"], kept["status"], kept["resolvedBy"]) == (alert["id"], "resolved", "shopco:local:shopco")

    # when: it gets worse: 61 days on, nothing has sold for 181 days (twice the idle threshold: critical)
    await net.sweep(today=today() + timedelta(days=61))

    # then: the same alert reopens
    [again] = await net.alerts("shopco", "obsolescence_risk")
    assert (again["id"], again["status"], again["severity"]) == (alert["id"], "open", "critical")
    assert again["evidence"]["daysWithoutConsumption"] == 181


async def test_a_decided_expiry_risk_is_not_reopened_by_the_next_sale_only_when_it_gets_worse(net, hub):
    from hub.services import expiry

    # given: 100 units expiring in 60 days selling one a day (40 would be left unsold: warning); a markdown decided
    await net.sku("SALAD-1", shelfLifeDays=90)
    expires = (today() + timedelta(days=60)).isoformat()
    items = salad_selling_one_a_day(130, expires, received_ago=31, selling_from=30)
    await net.move("ST-1", items)
    [alert] = await net.alerts("shopco", "expiry_risk")
    assert (alert["severity"], alert["evidence"]["reason"]) == ("warning", "slow")
    await hub.ok(RESOLVE, {"id": alert["id"], "decision": "markdown", "note": "-30 % this week"}, tenant="shopco")

    # when: the markdown sells (a stock change re-assesses the lot) and the sweep runs
    await net.move("ST-1", [{"sku": "SALAD-1", "kind": "sale", "quantity": -3, "lotCode": "S-1",
                             "occurredAt": datetime.now(UTC).isoformat()}])
    await expiry.sweep(hub.state.database)

    # then: the decision stands
    [kept] = await net.alerts("shopco", "expiry_risk")
    assert (kept["id"], kept["status"]) == (alert["id"], "resolved")

    # when: it gets worse: a week before expiry the lot is still there (critical)
    await expiry.sweep(hub.state.database, today=today() + timedelta(days=54))

    # then: the same alert reopens
    [again] = await net.alerts("shopco", "expiry_risk")
    assert (again["id"], again["status"], again["severity"]) == (alert["id"], "open", "critical")


async def test_a_receipt_into_a_shelf_that_sold_nothing_is_an_over_receipt(net):
    # given: 50 units received 150 days ago never sold; 90 days later (60 days ago) 200 more were received anyway
    await net.sku("DUD-2", shelfLifeDays=730)
    await net.move("ST-1", [{"sku": "DUD-2", "kind": "receipt", "quantity": 50, "occurredAt": noon(150)},
                            {"sku": "DUD-2", "kind": "receipt", "quantity": 200, "occurredAt": noon(60)}])

    # when
    await net.sweep()

    # then: the second receipt came when the shelf had sold nothing in 90 in-stock days: all 200 beyond demand
    [alert] = await net.alerts("shopco", "obsolescence_risk")
    assert alert["evidence"]["reason"] == "no_consumption" and alert["evidence"]["rootCause"] == "over_receipt"
    over = {c["code"]: c for c in alert["evidence"]["rootCauses"]}["over_receipt"]["evidence"]
    assert over["excessUnits"] == 200
    assert [(r["quantity"], r["ratePerDayAtReceipt"]) for r in over["receipts"]] == [(200, 0.0)]


async def test_a_warehouse_that_feeds_its_stores_by_transfer_is_not_idle_stock(net):
    # given: WH-1 received 3,000 units 120 days ago and has sent ST-1 10 a day since, by transfer; ST-1 sells them.
    # DUD-1 at WH-1, received the same day, never moved
    await net.sku("SUN-50", shelfLifeDays=730)
    await net.sku("DUD-1", shelfLifeDays=730)
    out = [{"sku": "SUN-50", "kind": "transfer_out", "quantity": -10, "occurredAt": noon(n)} for n in range(119, 0, -1)]
    await net.move("WH-1", [{"sku": "SUN-50", "kind": "receipt", "quantity": 3000, "occurredAt": noon(120)},
                            {"sku": "DUD-1", "kind": "receipt", "quantity": 300, "occurredAt": noon(120)}, *out])
    await net.move("ST-1", [{"sku": "SUN-50", "kind": kind, "quantity": units, "occurredAt": noon(n)}
                            for n in range(119, 0, -1) for kind, units in (("transfer_in", 10), ("sale", -10))])

    # when
    await net.sweep()

    # then: nothing sold at WH-1, but its stock moved on every day: only DUD-1 sits idle there
    alerts = await net.alerts("shopco", "obsolescence_risk")
    assert [(a["title"].split(" at ")[0], a["evidence"]["daysWithoutConsumption"]) for a in alerts] == [("DUD-1", 120)]


async def test_a_store_whose_shelf_holds_only_expired_stock_gets_the_warehouse_surplus(net):
    # given: ST-2 sells ~30 a day; it holds 40 fresh units and 600 of a lot that expired yesterday. WH-1 issues 10 a
    # day from 1,500 units (a surplus far beyond its 60 days of target)
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i) for i in range(91)]
    await net.history("ST-2", "SUN-50", daily, stock=sum(daily) + 40, lot="ST-FRESH", expires_in=300)
    await net.move("ST-2", [{"sku": "SUN-50", "kind": "receipt", "quantity": 600, "lotCode": "ST-GONE",
                             "expiresOn": (today() - timedelta(days=1)).isoformat(), "occurredAt": noon(20)}])
    await net.history("WH-1", "SUN-50", [10] * 91, stock=910 + 1500, lot="WH-A", expires_in=300, kind="issue")

    # when
    await net.sweep()

    # then: 640 on hand but 40 sellable, a day and a half of demand: the warehouse surplus goes to ST-2
    [rec] = await net.recommendations()
    assert (rec["fromLocationCode"], rec["toLocationCode"]) == ("WH-1", "ST-2")
    assert rec["evidence"]["destination"]["onHand"] == 40 and rec["quantity"] >= 30 * 14 - 40
