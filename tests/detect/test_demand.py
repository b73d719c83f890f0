"""The demand baseline: weekday rhythm, stockout days, intermittent demand and its holdout error (pure, fast)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from hub.detect.demand import Day, demand, fit, holdout_error

MONDAY = date(2026, 6, 1)
RHYTHM = (24, 26, 28, 30, 34, 40, 28)  # Monday..Sunday, mean 30


def rhythmic(days: int, start: date = MONDAY, scale: float = 1.0) -> list[Day]:
    return [Day(start + timedelta(days=n), round(RHYTHM[(start + timedelta(days=n)).weekday()] * scale))
            for n in range(days)]


def test_a_steady_weekly_rhythm_is_learned_exactly():
    model = fit(rhythmic(84))

    assert model is not None and model.method == "weekday_seasonal"
    assert abs(model.daily_mean - 30) < 1e-6
    assert [round(model.rate(MONDAY + timedelta(days=n)), 6) for n in range(7)] == list(RHYTHM)


def test_stockout_days_are_censored_not_zero_demand():
    history = rhythmic(84)
    # the shelf was empty for ten days in the middle: nothing sold, but people wanted the usual
    history = [Day(d.day, 0, stockout=True) if 40 <= n < 50 else d for n, d in enumerate(history)]

    model = fit(history)

    assert model is not None and model.censored_days == 10
    assert abs(model.daily_mean - 30) < 1e-6


def test_zero_sales_days_with_stock_do_count_as_zero_demand():
    history = [Day(d.day, 0) if 70 <= n else d for n, d in enumerate(rhythmic(84))]

    model = fit(history)

    assert model is not None and model.daily_mean < 20


def test_intermittent_demand_uses_croston_sba():
    rng = random.Random(7)
    history = [Day(MONDAY + timedelta(days=n), rng.choice([0, 0, 0, 0, 0, 0, 3, 5])) for n in range(84)]
    sold = sum(d.units for d in history)

    model = fit(history)

    assert model is not None and model.method == "croston_sba"
    # SBA's rate is near the mean demand per day (slightly below by design: the bias correction)
    assert 0.5 * sold / 84 < model.level < 1.3 * sold / 84
    assert len(set(model.forecast(MONDAY, 7))) == 1


def test_too_little_history_gives_no_baseline():
    assert fit(rhythmic(5)) is None
    assert fit([Day(d.day, 0, stockout=True) for d in rhythmic(30)]) is None


def test_the_baseline_beats_the_naive_seasonal_forecast_on_noisy_sales():
    rng = random.Random(1)
    wins = 0
    for _ in range(20):
        history = [Day(d.day, max(0, round(rng.gauss(d.units, d.units ** 0.5)))) for d in rhythmic(84)]
        error = holdout_error(history)
        assert error is not None and error.mase is not None
        wins += error.mae < error.naive_mae
    assert wins >= 17


def test_demand_answers_history_forecast_and_error():
    history = rhythmic(84)
    today = history[-1].day + timedelta(days=1)

    answer = demand(history, today, 14)

    assert len(answer.history) == 84 and len(answer.forecast) == 14
    assert [round(x, 6) for x in answer.forecast[:7]] == list(RHYTHM)
    assert answer.error is not None and answer.error.mape < 1e-9 and answer.error.mae < 1e-9
