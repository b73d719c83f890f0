"""inventoryHealth on a small ledger whose figures are worked out by hand in the comments."""

from __future__ import annotations

from hub.models.lot import Lot
from hub.services import health as health_service
from tests.supply.conftest import RECORD_RECEIPT, UPSERT_SKU, yogurt_line

HEALTH = """
query($filter: HealthFilter) {
  inventoryHealth(filter: $filter) {
    asOf onHandUnits unvaluedUnits consumedUnits daysOfSupply
    value { currency amount } valueAtRisk { currency amount } heldValue { currency amount }
    expiryRiskValue { currency amount } obsolescenceRiskValue { currency amount }
    aging { fromDays toDays units value { currency amount } }
  }
}
"""
AS_OF = "2030-06-30"


def eur(amount: float) -> list[dict]:
    return [{"currency": "EUR", "amount": amount}]


async def health(supply, tenant: str = "shopco", **filter) -> dict:
    body = await supply.hub.ok(HEALTH, {"filter": {"asOf": AS_OF, **filter}}, tenant=tenant)
    return body["inventoryHealth"]


async def test_value_aging_risk_and_days_of_supply_on_a_known_ledger(supply, monkeypatch):
    # Acme's yogurt costs 2.50 EUR a unit; its milk has no cost
    await supply.hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt 500 g", "shelfLifeDays": 30,
                                               "unitCost": 2.5, "currency": "eur"}}, tenant="acme")
    await supply.ship_lots(("YOG-1", "L1", "2030-12-31"), ("YOG-1", "L2", "2030-06-15"),
                           ("YOG-1", "L3", "2030-05-01"), ("MLK-1", "M1", "2030-12-31"))
    booked = await supply.movements([
        {"sku": "YOG-1", "lotCode": "L1", "kind": "receipt", "quantity": 100, "idempotencyKey": "h1",
         "occurredAt": "2030-06-20T09:00:00Z"},  # 10 days old on 30 June
        {"sku": "YOG-1", "lotCode": "L1", "kind": "sale", "quantity": -30, "idempotencyKey": "h2",
         "occurredAt": "2030-06-25T09:00:00Z"},  # inside the 30-day supply window
        {"sku": "YOG-1", "lotCode": "L2", "kind": "receipt", "quantity": 20, "idempotencyKey": "h3",
         "occurredAt": "2030-04-01T09:00:00Z"},  # 90 days old, expired on 15 June
        {"sku": "YOG-1", "lotCode": "L3", "kind": "receipt", "quantity": 10, "idempotencyKey": "h4",
         "occurredAt": "2029-12-01T09:00:00Z"},  # 211 days old, expired, and (below) on hold
        {"sku": "MLK-1", "lotCode": "M1", "kind": "receipt", "quantity": 7, "idempotencyKey": "h5",
         "occurredAt": "2030-06-29T09:00:00Z"},  # no cost: counted, not valued
    ])
    assert "errors" not in booked, booked["errors"]
    assert booked["data"]["recordMovements"]["accepted"] == 5
    await Lot.get_pymongo_collection().update_one({"lot_code": "L3"}, {"$set": {"status": "on_hold"}})
    figures = await health(supply)
    # units 70 + 20 + 10 + 7 = 107; value (70 + 20 + 10) x 2.50 = 250
    assert figures["onHandUnits"] == 107 and figures["unvaluedUnits"] == 7
    assert figures["value"] == eur(250.0)
    # L3 is held and expired: counted once, as held (25); L2 expired (50); nothing double counted
    assert figures["heldValue"] == eur(25.0) and figures["expiryRiskValue"] == eur(50.0)
    assert figures["obsolescenceRiskValue"] == [] and figures["valueAtRisk"] == eur(75.0)
    assert figures["aging"] == [
        {"fromDays": 0, "toDays": 30, "units": 77, "value": eur(175.0)},
        {"fromDays": 31, "toDays": 60, "units": 0, "value": []},
        {"fromDays": 61, "toDays": 90, "units": 20, "value": eur(50.0)},
        {"fromDays": 91, "toDays": 180, "units": 0, "value": []},
        {"fromDays": 181, "toDays": None, "units": 10, "value": eur(25.0)},
    ]
    # 30 sold in 30 days is 1 a day: 107 units last 107 days
    assert figures["consumedUnits"] == 30 and figures["daysOfSupply"] == 107.0
    # judged from the owner's held and expired lots (many SKUs) instead of the SKUs' own lots (a few): the same
    monkeypatch.setattr(health_service, "FEW_SKUS", 0)
    assert await health(supply) == figures
    monkeypatch.undo()
    # bands of the caller's choosing; filters narrow the figures
    custom = await health(supply, bands=[60])
    assert [(b["fromDays"], b["toDays"], b["units"]) for b in custom["aging"]] == [(0, 60, 77), (61, None, 30)]
    milk = await health(supply, skuId=supply.milk)
    assert milk["onHandUnits"] == 7 and milk["value"] == [] and milk["daysOfSupply"] is None
    for bad in ([], [60, 30], [0, 30]):
        body = await supply.hub.gql(HEALTH, {"filter": {"bands": bad}}, tenant="shopco")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", bad
    # a stranger sees none of it; the brand sees its SKUs at Shopco only once Shopco shares stock with it
    assert (await health(supply, tenant="rival"))["onHandUnits"] == 0
    assert (await health(supply, tenant="rival", locationId=supply.shop_dc))["onHandUnits"] == 0
    assert (await health(supply, tenant="acme", holderId="shopco"))["onHandUnits"] == 0
    await supply.partner("shopco", "acme", ["stock"])
    brand = await health(supply, tenant="acme", holderId="shopco")
    assert brand["onHandUnits"] == 107 and brand["value"] == eur(250.0)
    # positions recorded before arrival dates were kept get theirs from the ledger, once, and keep it
    from hub.models.stock import StockPosition

    await StockPosition.get_pymongo_collection().update_many({}, {"$unset": {"arrived_at": ""}})
    assert (await health(supply))["aging"] == figures["aging"]
    assert await StockPosition.get_pymongo_collection().count_documents({"arrived_at": None}) == 0


async def test_a_unit_cost_needs_its_currency(supply):
    for extra in ({"unitCost": 2.5}, {"currency": "EUR"}, {"unitCost": -1, "currency": "EUR"},
                  {"unitCost": 1, "currency": "EURO"}):
        body = await supply.hub.gql(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt", **extra}},
                                    tenant="acme")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", extra


SET_BANDS = "mutation($bands: [Int!]) { setAgingBands(bands: $bands) }"


async def test_each_tenant_sets_its_own_aging_bands_and_the_change_is_audited(supply):
    def bounds(figures: dict) -> list:
        return [(b["fromDays"], b["toDays"]) for b in figures["aging"]]

    assert bounds(await health(supply)) == [(0, 30), (31, 60), (61, 90), (91, 180), (181, None)]
    refused = await supply.hub.gql(SET_BANDS, {"bands": [60]}, tenant="shopco", roles=("operator",))
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for bad in ([], [90, 30], [-5]):
        body = await supply.hub.gql(SET_BANDS, {"bands": bad}, tenant="shopco")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", bad
    missing = await supply.hub.gql("mutation { setAgingBands }", tenant="shopco")
    assert missing["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await supply.hub.ok(SET_BANDS, {"bands": [7, 60]}, tenant="shopco"))["setAgingBands"] == [7, 60]
    assert bounds(await health(supply)) == [(0, 7), (8, 60), (61, None)]
    # another tenant keeps the default
    assert len((await health(supply, tenant="rival"))["aging"]) == 5
    [entry] = (await supply.hub.ok("{ auditLog(filter: {action: \"health.aging_bands_set\"}) { nodes { details } } }",
                                   tenant="shopco"))["auditLog"]["nodes"]
    assert entry["details"] == {"before": {"agingBands": [30, 60, 90, 180]}, "after": {"agingBands": [7, 60]}}
    # null restores the default
    assert (await supply.hub.ok(SET_BANDS, {"bands": None}, tenant="shopco"))["setAgingBands"] == [30, 60, 90, 180]
    assert len((await health(supply))["aging"]) == 5


async def test_a_lot_is_valued_at_what_its_receipt_lines_cost_else_at_standard_cost(supply, monkeypatch):
    await supply.hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt 500 g", "shelfLifeDays": 30,
                                               "unitCost": 2.5, "currency": "EUR"}}, tenant="acme")
    dispatch = await supply.dispatch([yogurt_line(10)])
    bad = await supply.hub.gql(RECORD_RECEIPT, {"input": {"dispatchId": dispatch["id"], "lines": [
        {"sku": "YOG-1", "lotCode": "B240315", "quantity": 10, "currency": "EUR"}]}}, tenant="shopco")
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # received in two parts at 1.50 and 2.10: the lot's cost is (6 x 1.50 + 4 x 2.10) / 10 = 1.74
    for quantity, cost in ((6, 1.5), (4, 2.1)):
        receipt = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": quantity,
                                                         "unitCost": cost, "currency": "EUR"}])
        assert receipt["outcome"] == "matched"
    # a lot with no cost on any receipt line is at standard cost: 4 x 2.50
    await supply.ship_lots(("YOG-1", "L9", "2030-12-31"))
    await supply.movements([{"sku": "YOG-1", "lotCode": "L9", "kind": "receipt", "quantity": 4,
                             "idempotencyKey": "s1"}])
    figures = (await supply.hub.ok(HEALTH, tenant="shopco"))["inventoryHealth"]
    assert figures["onHandUnits"] == 14 and figures["value"] == eur(27.4)  # 17.40 + 10.00
    # valued from the holder's lot costs (many SKUs) instead of the SKU's own (a few): the same figures
    monkeypatch.setattr(health_service, "PER_SKU_QUERIES", 0)
    assert (await supply.hub.ok(HEALTH, tenant="shopco"))["inventoryHealth"] == figures


TREND = """
query($filter: HealthFilter) {
  inventoryHealth(filter: $filter) {
    onHandUnits consumedUnits turnover
    trend { asOf source onHandUnits value { currency amount } valueAtRisk { currency amount }
            consumedUnits daysOfSupply turnover }
  }
}
"""


async def test_turnover_category_and_the_trend_from_the_series_then_from_a_snapshot(supply):
    from datetime import date

    await supply.hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt 500 g", "shelfLifeDays": 30,
                                               "unitCost": 2.5, "currency": "EUR", "category": "dairy"}},
                        tenant="acme")
    await supply.ship_lots(("YOG-1", "L1", "2030-12-31"), ("YOG-1", "L3", "2030-05-01"))
    booked = await supply.movements([
        {"sku": "YOG-1", "lotCode": "L3", "kind": "receipt", "quantity": 30, "idempotencyKey": "t1",
         "occurredAt": "2030-04-01T09:00:00Z"},
        {"sku": "YOG-1", "lotCode": "L1", "kind": "receipt", "quantity": 100, "idempotencyKey": "t2",
         "occurredAt": "2030-06-20T09:00:00Z"},
        {"sku": "YOG-1", "lotCode": "L1", "kind": "sale", "quantity": -30, "idempotencyKey": "t3",
         "occurredAt": "2030-06-25T09:00:00Z"},
    ])
    assert "errors" not in booked, booked["errors"]
    figures = (await supply.hub.ok(TREND, {"filter": {"asOf": AS_OF}}, tenant="shopco"))["inventoryHealth"]
    # 100 on hand on 30 June, 30 on 31 May; 30 sold in between: 30 / ((100 + 30) / 2) x 365 / 30 = 5.62 a year
    assert figures["onHandUnits"] == 100 and figures["consumedUnits"] == 30 and figures["turnover"] == 5.62
    # 31 May rebuilt from the series: 30 units (valued at today's 2.50), nothing sold in May, risk unknown
    assert figures["trend"] == {"asOf": "2030-05-31", "source": "series", "onHandUnits": 30, "value": eur(75.0),
                                "valueAtRisk": None, "consumedUnits": 0, "daysOfSupply": None, "turnover": 0.0}
    # the category narrows it; an unknown category holds nothing
    dairy = (await supply.hub.ok(TREND, {"filter": {"asOf": AS_OF, "category": "dairy"}}, tenant="shopco"))
    assert dairy["inventoryHealth"]["onHandUnits"] == 100
    other = (await supply.hub.ok(TREND, {"filter": {"asOf": AS_OF, "category": "frozen"}}, tenant="shopco"))
    assert other["inventoryHealth"]["onHandUnits"] == 0 and other["inventoryHealth"]["trend"]["onHandUnits"] == 0
    # a snapshot of that day (taken here from today's stock) replaces the rebuild and knows what was at risk:
    # L3 expired on 1 May, so its 30 units (75.00) were at risk on 31 May
    assert await health_service.snapshot("shopco", date(2030, 5, 31)) == 1
    trend = (await supply.hub.ok(TREND, {"filter": {"asOf": AS_OF}}, tenant="shopco"))["inventoryHealth"]["trend"]
    assert trend["source"] == "snapshot" and trend["onHandUnits"] == 100
    assert trend["value"] == eur(250.0) and trend["valueAtRisk"] == eur(75.0)
    # taking it again replaces it; a stranger's trend holds none of it, the brand's only once Shopco shares stock
    assert await health_service.snapshot("shopco", date(2030, 5, 31)) == 1
    rival = (await supply.hub.ok(TREND, {"filter": {"asOf": AS_OF}}, tenant="rival"))["inventoryHealth"]
    assert rival["trend"]["onHandUnits"] == 0 and rival["trend"]["value"] == [] and rival["turnover"] is None
    brand = (await supply.hub.ok(TREND, {"filter": {"asOf": AS_OF, "holderId": "shopco"}}, tenant="acme"))
    assert brand["inventoryHealth"]["trend"]["onHandUnits"] == 0
    await supply.partner("shopco", "acme", ["stock"])
    brand = (await supply.hub.ok(TREND, {"filter": {"asOf": AS_OF, "holderId": "shopco"}}, tenant="acme"))
    assert brand["inventoryHealth"]["trend"]["valueAtRisk"] == eur(75.0)


DECISIONS = """
query($asOf: Date) {
  inventoryHealth(filter: {asOf: $asOf}) { decisions { decision alerts value { currency amount } } }
  alertPerformance(filter: {by: LOCATION}) {
    groups { kind locationId locationLabel decisions { decision alerts value { currency amount } } }
  }
}
"""


async def test_a_decision_is_valued_at_the_stock_it_was_about(supply):
    from hub.dates import utcnow
    from hub.models.alert import Alert, AlertKind, Severity, SubjectRef

    await supply.hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt 500 g", "shelfLifeDays": 30,
                                               "unitCost": 2.5, "currency": "EUR"}}, tenant="acme")
    await supply.ship_lots(("YOG-1", "L1", "2030-12-31"), ("YOG-1", "L2", "2030-12-31"))
    await supply.movements([
        {"sku": "YOG-1", "lotCode": lot, "kind": "receipt", "quantity": units, "idempotencyKey": f"d{lot}"}
        for lot, units in (("L1", 40), ("L2", 60))])
    lot = await Lot.find_one({"lot_code": "L1"})
    assert lot is not None
    alert = Alert(kind=AlertKind.expiry_risk, severity=Severity.warning, tenant_id="shopco", audience=["shopco"],
                  title="L1 close to expiry", dedupe_key=f"expiry_risk:{lot.id}:{supply.shop_dc}",
                  subjects=[SubjectRef(kind="lot", id=str(lot.id), label="L1"),
                            SubjectRef(kind="location", id=supply.shop_dc, label="DC-1")])
    await alert.insert()
    resolve = "mutation($id: ID!, $d: AlertDecision) { resolveAlert(id: $id, decision: $d) { decision } }"
    refused = await supply.hub.gql(resolve, {"id": str(alert.id), "d": "transfer"}, tenant="rival")
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    decided = await supply.hub.ok(resolve, {"id": str(alert.id), "d": "transfer"}, tenant="shopco")
    assert decided["resolveAlert"]["decision"] == "transfer"
    # the alert named lot L1 at DC-1: 40 units x 2.50, not the 60 of L2
    figures = await supply.hub.ok(DECISIONS, {"asOf": utcnow().date().isoformat()}, tenant="shopco")
    assert figures["inventoryHealth"]["decisions"] == [{"decision": "transfer", "alerts": 1, "value": eur(100.0)}]
    [group] = figures["alertPerformance"]["groups"]
    assert group["locationId"] == supply.shop_dc and group["locationLabel"] == "DC-1"
    assert group["decisions"] == [{"decision": "transfer", "alerts": 1, "value": eur(100.0)}]
    stranger = await supply.hub.ok(DECISIONS, {"asOf": utcnow().date().isoformat()}, tenant="rival")
    assert stranger["inventoryHealth"]["decisions"] == [] and stranger["alertPerformance"]["groups"] == []


AT_RISK = """
query($filter: HealthFilter) {
  inventoryHealth(filter: $filter) {
    onHandUnits unvaluedUnits unvaluedUnitsAtRisk value { currency amount } valueAtRisk { currency amount }
    heldValue { currency amount }
  }
}
"""


async def test_stock_at_risk_without_a_cost_is_unknown_value_at_risk_not_zero(supply):
    # Milk has no cost: 7 units of a held lot, 3 of a released one; yogurt at 2.00 EUR, 5 units of a held lot
    await supply.hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt 500 g", "shelfLifeDays": 30,
                                               "unitCost": 2.0, "currency": "EUR"}}, tenant="acme")
    await supply.ship_lots(("MLK-1", "M-HELD", "2030-12-31"), ("MLK-1", "M-OK", "2030-12-31"),
                           ("YOG-1", "Y-HELD", "2030-12-31"))
    booked = await supply.movements([
        {"sku": "MLK-1", "lotCode": "M-HELD", "kind": "receipt", "quantity": 7, "idempotencyKey": "u1"},
        {"sku": "MLK-1", "lotCode": "M-OK", "kind": "receipt", "quantity": 3, "idempotencyKey": "u2"},
        {"sku": "YOG-1", "lotCode": "Y-HELD", "kind": "receipt", "quantity": 5, "idempotencyKey": "u3"},
    ])
    assert "errors" not in booked, booked["errors"]
    await Lot.get_pymongo_collection().update_many({"lot_code": {"$in": ["M-HELD", "Y-HELD"]}},
                                                   {"$set": {"status": "on_hold"}})

    figures = (await supply.hub.ok(AT_RISK, {"filter": {"asOf": AS_OF}}, tenant="shopco"))["inventoryHealth"]

    # 15 units, 10 of them unvalued; at risk: 5 yogurt (10.00 EUR) and 7 milk of unknown value
    assert figures["onHandUnits"] == 15 and figures["unvaluedUnits"] == 10
    assert figures["valueAtRisk"] == eur(10.0) and figures["heldValue"] == eur(10.0)
    assert figures["unvaluedUnitsAtRisk"] == 7


async def test_a_lot_received_in_two_currencies_is_valued_in_both(supply):
    await supply.hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt 500 g", "shelfLifeDays": 30,
                                               "unitCost": 9.0, "currency": "GBP"}}, tenant="acme")
    dispatch = await supply.dispatch([yogurt_line(10)])
    # 6 units bought at 1.50 EUR, 4 at 2.00 USD; then 5 sold: the 5 left are valued at the lot's mix of both,
    # 5 x 6/10 x 1.50 = 4.50 EUR and 5 x 4/10 x 2.00 = 4.00 USD (never 5 x 1.50 EUR nor 5 x 2.00 USD alone)
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 6,
                                           "unitCost": 1.5, "currency": "EUR"}])
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 4,
                                           "unitCost": 2.0, "currency": "USD"}])
    sold = await supply.movements([{"sku": "YOG-1", "lotCode": "B240315", "kind": "sale", "quantity": -5,
                                    "idempotencyKey": "c1"}])
    assert "errors" not in sold, sold["errors"]

    figures = (await supply.hub.ok(HEALTH, tenant="shopco"))["inventoryHealth"]

    assert figures["onHandUnits"] == 5 and figures["unvaluedUnits"] == 0
    assert figures["value"] == [{"currency": "EUR", "amount": 4.5}, {"currency": "USD", "amount": 4.0}]
    assert figures["aging"][0]["value"] == figures["value"]


async def test_stock_restocked_into_an_empty_position_ages_from_the_restock(supply):
    # untracked milk: 100 received 250 days ago, sold out 240 days ago; the shelf stayed empty until 50 arrived 10
    # days ago. Those 50 are 10 days old, not 250
    from datetime import UTC, datetime, time, timedelta

    def noon(days_ago: int) -> str:
        return datetime.combine(datetime.now(UTC).date() - timedelta(days=days_ago), time(12), tzinfo=UTC).isoformat()

    await supply.ship_lots(("MLK-1", "M-NOTICE", None))  # Shopco learns of Acme's milk from a dispatch
    booked = await supply.movements([
        {"sku": "MLK-1", "kind": "receipt", "quantity": 100, "idempotencyKey": "a1", "occurredAt": noon(250)},
        *[{"sku": "MLK-1", "kind": "sale", "quantity": -10, "idempotencyKey": f"a-s{n}", "occurredAt": noon(n)}
          for n in range(249, 239, -1)],
    ])
    assert "errors" not in booked, booked["errors"]
    booked = await supply.movements([{"sku": "MLK-1", "kind": "receipt", "quantity": 50, "idempotencyKey": "a2",
                                      "occurredAt": noon(10)}])
    assert "errors" not in booked, booked["errors"]

    figures = (await supply.hub.ok(HEALTH, tenant="shopco"))["inventoryHealth"]

    assert figures["onHandUnits"] == 50
    assert [(b["fromDays"], b["units"]) for b in figures["aging"]] == [(0, 50), (31, 0), (61, 0), (91, 0), (181, 0)]
