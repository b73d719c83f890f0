"""Expiry risk is pure: days left against days to sell and against the consignee's minimum."""

from __future__ import annotations

from datetime import date, timedelta

from hub.detect.expiry import LotStock, arrival_shortfall, assess

TODAY = date(2026, 11, 23)


def test_a_lot_three_months_from_expiry_that_needs_five_months_to_sell_is_flagged():
    # 300 units selling 56 per 28 days (2 a day): 150 days to sell, 90 days left.
    stock = LotStock(on_hand=300, expires_on=TODAY + timedelta(days=90), sold_in_window=56)

    risk = assess(stock, TODAY)

    assert risk is not None
    assert risk.reason == "slow" and risk.severity == "warning"
    assert risk.days_left == 90 and risk.days_to_sell == 150
    assert risk.unsold_at_expiry == 120
    assert "mark down" in risk.recommendation


def test_a_lot_past_its_effective_expiry_with_stock_is_critical_even_if_recorded_expiry_is_ahead():
    stock = LotStock(
        on_hand=3, expires_on=TODAY - timedelta(days=1), recorded_expires_on=TODAY + timedelta(days=5),
        sold_in_window=100,
    )

    risk = assess(stock, TODAY)

    assert risk is not None and risk.reason == "expired" and risk.severity == "critical"


def test_stock_that_sells_in_time_is_not_flagged():
    stock = LotStock(on_hand=50, expires_on=TODAY + timedelta(days=90), sold_in_window=56)

    assert assess(stock, TODAY) is None


def test_sold_out_stock_is_not_flagged_even_when_expired():
    assert assess(LotStock(on_hand=0, expires_on=TODAY - timedelta(days=3)), TODAY) is None


def test_slow_stock_expiring_within_a_week_is_critical():
    stock = LotStock(on_hand=100, expires_on=TODAY + timedelta(days=5), sold_in_window=28)

    risk = assess(stock, TODAY)

    assert risk is not None and risk.severity == "critical" and risk.unsold_at_expiry == 95


def test_stock_without_sales_is_flagged_only_as_dead_stock_expiring_within_the_window():
    assert assess(LotStock(on_hand=10, expires_on=TODAY + timedelta(days=200), held_days=60), TODAY) is None
    risk = assess(LotStock(on_hand=10, expires_on=TODAY + timedelta(days=20), held_days=28), TODAY)
    assert risk is not None and risk.reason == "slow" and risk.days_to_sell is None


def test_a_fresh_receipt_with_no_sales_gets_no_velocity_verdict():
    just_received = LotStock(on_hand=10, expires_on=TODAY + timedelta(days=10), held_days=1)
    observed_for_less_than_the_window = LotStock(on_hand=10, expires_on=TODAY + timedelta(days=10), held_days=27)

    assert assess(just_received, TODAY) is None
    assert assess(observed_for_less_than_the_window, TODAY) is None


def test_velocity_is_sales_over_the_window_setting():
    stock = LotStock(on_hand=100, expires_on=TODAY + timedelta(days=30), sold_in_window=70, window_days=14)

    risk = assess(stock, TODAY)  # 5 a day: 20 days to sell, 30 left

    assert risk is None
    slow = assess(LotStock(on_hand=100, expires_on=TODAY + timedelta(days=30), sold_in_window=70), TODAY)
    assert slow is not None and slow.velocity_per_day == 2.5  # the same sales over the default 28 days


def test_expired_stock_on_hand_is_at_risk_even_without_any_history():
    risk = assess(LotStock(on_hand=1, expires_on=TODAY - timedelta(days=1)), TODAY)

    assert risk is not None and risk.reason == "expired" and risk.severity == "critical"


def test_stock_below_the_consignees_minimum_remaining_shelf_life_is_flagged():
    stock = LotStock(on_hand=10, expires_on=TODAY + timedelta(days=10), sold_in_window=280, min_remaining_days=14)

    risk = assess(stock, TODAY)

    assert risk is not None and risk.reason == "short_shelf_life" and risk.severity == "warning"


def test_a_dispatch_line_arriving_with_too_little_shelf_life_is_a_shortfall():
    arrives = TODAY + timedelta(days=2)

    short = arrival_shortfall(TODAY + timedelta(days=10), arrives, 14)

    assert short is not None and short.days_left_on_arrival == 8
    assert arrival_shortfall(TODAY + timedelta(days=30), arrives, 14) is None
    assert arrival_shortfall(None, arrives, 14) is None
