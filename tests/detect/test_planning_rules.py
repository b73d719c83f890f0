"""Velocity, obsolescence, FEFO and transfer rules as pure functions (fast, no database)."""

from __future__ import annotations

from datetime import date, timedelta

from hub.detect import fefo, obsolescence, transfers, velocity
from hub.detect.velocity import CauseFacts, VelocityRules

TODAY = date(2026, 7, 15)
RULES = VelocityRules()


# -- velocity ----------------------------------------------------------------------------------------------------

def test_a_forty_percent_drop_with_volume_is_a_velocity_drop():
    finding = velocity.assess(expected=210, actual=126, rules=RULES)

    assert finding is not None and finding.kind == "velocity_drop"
    assert round(finding.change_pct, 6) == -40.0 and finding.p_value < 0.01 and finding.severity == "warning"


def test_a_drop_below_the_threshold_or_without_volume_is_not_news():
    assert velocity.assess(expected=210, actual=130, rules=RULES) is None  # −38 %
    assert velocity.assess(expected=10, actual=2, rules=RULES) is None  # −80 % but 10 expected < 20
    # a small window where −45 % is within Poisson noise
    assert velocity.assess(expected=22, actual=12, rules=RULES) is None


def test_a_spike_alerts_only_when_cover_falls_below_lead_time():
    rules = VelocityRules()
    # 105 sold vs 70 expected: 15 a day now; 60 in stock covers 4 days, lead time 7 → alert
    finding = velocity.assess(expected=70, actual=105, rules=rules, stock_units=60, lead_time_days=7)
    assert finding is not None and finding.kind == "velocity_spike" and round(finding.cover_days or 0, 1) == 4.0
    # same surge with 300 in stock (20 days of cover) is good news, not an alert
    assert velocity.assess(expected=70, actual=105, rules=rules, stock_units=300, lead_time_days=7) is None


def test_drop_causes_are_ranked_and_each_carries_evidence():
    facts = CauseFacts(
        window_days=7, daily_expected=30, stockout_days=3, on_hand=100,
        held_lots=[{"lotCode": "L1", "status": "on_hold", "onHand": 40}],
        near_expiry=[{"lotCode": "L2", "daysLeft": 2, "onHand": 20}],
        late_inbound=[{"ref": "ASN-9", "expectedOn": "2026-07-10", "daysLate": 5}],
        excursions=[{"id": "x", "deviceId": "T-1", "peakC": 12.0}],
        receipt_mismatches=[{"receiptId": "r", "dispatchRef": "ASN-8", "kinds": ["short"]}],
        price_before=2.0, price_recent=2.5,
    )

    causes = velocity.drop_causes(facts)

    codes = [c.code for c in causes]
    assert codes[0] == "stockout"
    assert set(codes) == {"stockout", "lots_held", "inbound_late_or_short", "receipt_mismatch", "sensor_excursion",
                          "near_expiry", "price_change"}
    assert all(c.evidence for c in causes)
    assert [c.score for c in causes] == sorted((c.score for c in causes), reverse=True)


def test_low_on_hand_and_an_ended_promotion_are_causes_too():
    facts = CauseFacts(window_days=7, daily_expected=30, min_on_hand=10, on_hand=10,
                       promo_share_before=0.5, promo_share_recent=0.0)

    assert {c.code for c in velocity.drop_causes(facts)} == {"low_on_hand", "promotion_ended"}


def test_without_a_cause_in_the_data_the_market_is_named():
    [cause] = velocity.drop_causes(CauseFacts(window_days=7, daily_expected=30, on_hand=500, min_on_hand=400))

    assert cause.code == "market" and "competitor launch, weather, promotion" in cause.summary


def test_spike_causes_name_a_price_cut_or_promotion():
    assert velocity.spike_causes(CauseFacts(7, 10, price_before=2.0, price_recent=1.5))[0].code == "price_change"
    assert velocity.spike_causes(CauseFacts(7, 10, promo_share_recent=0.6))[0].code == "promotion"
    assert velocity.spike_causes(CauseFacts(7, 10))[0].code == "market"


# -- obsolescence ------------------------------------------------------------------------------------------------

OBS = obsolescence.ObsolescenceRules()


def test_days_of_supply_above_the_threshold_is_obsolescence_risk():
    finding = obsolescence.assess(on_hand=2000, rate_per_day=10, idle_days=0, rules=OBS)

    assert finding is not None and finding.reason == "days_of_supply" and finding.days_of_supply == 200
    assert obsolescence.assess(on_hand=1500, rate_per_day=10, idle_days=0, rules=OBS) is None


def test_stock_without_consumption_for_the_idle_period_is_obsolescence_risk_dated_or_not():
    finding = obsolescence.assess(on_hand=50, rate_per_day=0, idle_days=95, rules=OBS)

    assert finding is not None and finding.reason == "no_consumption"
    assert obsolescence.assess(on_hand=50, rate_per_day=0, idle_days=None, rules=OBS) is None  # new, no history


def test_over_receipt_names_the_receipts_and_supplier():
    receipts = [
        obsolescence.ReceiptFact("2026-05-01", 300, 10.0, "r1", "ASN-1", "acme"),  # 30 days: fine
        obsolescence.ReceiptFact("2026-06-01", 2000, 10.0, "r2", "ASN-2", "acme"),  # 200 days: over-receipt
    ]

    causes = obsolescence.root_causes(2100, receipts, rate_before=10, rate_since=10, rules=OBS)

    assert causes[0].code == "over_receipt"
    assert [r["receiptId"] for r in causes[0].evidence["receipts"]] == ["r2"]
    assert causes[0].evidence["suppliers"] == ["acme"] and "acme" in causes[0].summary


def test_forecast_miss_quality_and_discontinued_are_root_causes():
    receipts = [obsolescence.ReceiptFact("2026-06-01", 500, 10.0, "r1", "ASN-1", "acme")]

    miss = obsolescence.root_causes(500, receipts, rate_before=10, rate_since=2, rules=OBS)
    quality = obsolescence.root_causes(500, receipts, 10, 10, OBS, quality={"held_lots": [{"lotCode": "L"}]})
    gone = obsolescence.root_causes(500, receipts, 10, 10, OBS, discontinued=True)

    assert [c.code for c in miss] == ["forecast_miss"]
    assert [c.code for c in quality] == ["quality"]
    assert [c.code for c in gone] == ["discontinued"]
    assert obsolescence.root_causes(500, receipts, 10, 10, OBS) == []


# -- FEFO --------------------------------------------------------------------------------------------------------

def lot(code: str, days: int | None, on_hand: int = 10, sellable: bool = True) -> fefo.LotAtHand:
    return fefo.LotAtHand(code, TODAY + timedelta(days=days) if days is not None else None, on_hand, sellable)


def test_selling_a_newer_lot_while_an_older_one_sits_is_a_fefo_violation():
    violation = fefo.check(lot("NEW", 30), 5, [lot("OLD", 10), lot("NEW", 30)], TODAY, fefo.FefoRules())

    assert violation is not None and [l.lot_code for l in violation.older] == ["OLD"]
    assert violation.figures()["daysFresher"] == 20


def test_fefo_tolerates_close_dates_small_remnants_held_expired_and_undated_stock():
    rules = fefo.FefoRules(tolerance_days=2, tolerance_units=3)
    others = [lot("CLOSE", 29), lot("CRUMBS", 5, on_hand=3), lot("HELD", 5, sellable=False), lot("GONE", -1),
              lot("UNDATED", None)]

    assert fefo.check(lot("NEW", 30), 5, others, TODAY, rules) is None
    assert fefo.check(lot("UNDATED", None), 5, [lot("OLD", 1)], TODAY, rules) is None


# -- transfers and replenishment ---------------------------------------------------------------------------------

def site(code: str, rate: float, on_hand: int, lots: tuple = (), **kw) -> transfers.Site:
    return transfers.Site(holder="t", location_id=code, location_code=code, rate=rate, on_hand=on_hand, lots=lots, **kw)


def test_a_store_facing_a_stockout_gets_surplus_from_the_warehouse_first_expired_first_out():
    rules = transfers.PlanningRules()
    store = site("STORE", 10, 20, lead_time_days=7, review_days=7, sigma=3.0)
    wh_lots = (transfers.LotAtSite("a", "A-OLD", TODAY + timedelta(days=40), 300),
               transfers.LotAtSite("b", "B-NEW", TODAY + timedelta(days=200), 1000))
    warehouse = site("WH", 5, 1300, lots=wh_lots)

    [plan] = transfers.plan_transfers([store, warehouse], TODAY, rules)

    assert plan.source.location_id == "WH" and plan.destination.location_id == "STORE"
    assert plan.quantity == transfers.need(store, rules) > 0
    assert plan.lots[0].lot_code == "A-OLD"  # first expired, first out
    assert plan.stockout_days_avoided > 0
    assert plan.units_saved_from_expiry > 0  # A-OLD would not sell at the warehouse's pace in 40 days


def test_no_transfer_without_a_need_or_without_surplus():
    rules = transfers.PlanningRules()
    assert transfers.plan_transfers([site("A", 10, 500), site("B", 10, 400)], TODAY, rules) == []
    assert transfers.plan_transfers([site("A", 10, 5), site("B", 10, 100)], TODAY, rules) == []


def test_replenishment_covers_lead_time_review_and_safety_less_stock_and_inbound():
    rules = transfers.PlanningRules(service_z=1.65)
    s = site("S", 10, 30, inbound=20, lead_time_days=5, review_days=2, sigma=4.0)

    suggestion = transfers.replenishment(s, rules)

    safety = 1.65 * 4.0 * 7 ** 0.5
    assert suggestion is not None
    assert round(suggestion.safety_stock, 6) == round(safety, 6)
    assert suggestion.quantity == -(-(70 + safety - 50) // 1)
    assert transfers.replenishment(site("S", 10, 500), rules) is None
