"""Spike detection is pure: episodes from readings, incremental across batches, noise never alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.detect.shelf_life import loss_fraction, shortened_expiry
from hub.detect.spikes import MAX_SAMPLES, Reading, SpikeConfig, SpikeState, area_above, detect

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SHELF = SpikeConfig(limit_c=20.0, min_minutes=15, rise_c=5.0)


def series(*temps: float, start: datetime = T0, every: int = 1) -> list[Reading]:
    return [Reading(start + timedelta(minutes=i * every), c) for i, c in enumerate(temps)]


def story() -> list[Reading]:
    """Shelf C-3: 18 °C, then 28 °C for 20 minutes, then 18 °C (one reading a minute)."""
    return series(*([18.0] * 10 + [28.0] * 20 + [18.0] * 10))


def test_the_story_spike_is_one_closed_excursion_with_its_peak_and_degree_minutes():
    result = detect(SpikeState(), story(), SHELF)

    assert len(result.updates) == 1
    update = result.updates[0]
    assert update.opened and update.closed
    episode = update.episode
    assert episode.started_at == T0 + timedelta(minutes=10)
    assert episode.ended_at == T0 + timedelta(minutes=30)
    assert episode.peak_c == 28.0
    # 8 °C over the limit for the 19 minutes between the first and last 28 °C reading, plus both ramps (3.2 each).
    assert episode.degree_minutes_above(20.0) == pytest.approx(19 * 8 + 3.2 + 3.2)
    assert result.state.episode is None


def test_a_single_wild_reading_is_noise_and_opens_nothing():
    result = detect(SpikeState(), series(18, 18, 18, 30, 18, 18), SHELF)

    assert result.updates == []
    assert result.state.episode is None


def test_staying_above_the_limit_shorter_than_the_minimum_is_not_an_excursion():
    slow_config = SpikeConfig(limit_c=20.0, min_minutes=15, rise_c=50.0)  # rise detection out of the way

    result = detect(SpikeState(), series(*([18] * 5 + [21] * 10 + [18] * 5)), slow_config)

    assert result.updates == []


def test_staying_above_the_limit_for_the_minimum_opens_an_excursion_by_duration():
    slow_config = SpikeConfig(limit_c=20.0, min_minutes=15, rise_c=50.0)

    result = detect(SpikeState(), series(*([18] * 5 + [21] * 16)), slow_config)

    [update] = result.updates
    assert update.opened and not update.closed
    assert update.episode.cause == "duration"
    assert update.episode.opened_at == T0 + timedelta(minutes=20)


def test_a_confirmed_fast_rise_opens_an_excursion_before_the_minimum_duration():
    result = detect(SpikeState(), series(18, 18, 18, 27, 27), SHELF)

    [update] = result.updates
    assert update.episode.cause == "rise"
    assert update.opened and not update.closed


def test_a_fast_rise_inside_the_limit_still_alerts_without_degree_minutes():
    chiller = SpikeConfig(limit_c=8.0, min_minutes=15, rise_c=4.0)

    result = detect(SpikeState(), series(2, 2, 2, 7, 7.5, 2), chiller)

    [update] = result.updates
    assert update.episode.cause == "rise" and update.closed
    assert update.episode.degree_minutes_above(8.0) == 0


def test_detection_continues_across_batches_and_restarts_through_the_persisted_state():
    readings = story()
    state = SpikeState()
    updates = []
    for start in range(0, len(readings), 7):  # batches that cut through the episode
        stored = state.to_doc()  # what the service writes to MongoDB between calls
        result = detect(SpikeState.from_doc(stored), readings[start : start + 7], SHELF)
        state = result.state
        updates.extend(result.updates)

    opened = [u for u in updates if u.opened]
    closed = [u for u in updates if u.closed]
    assert len(opened) == 1 and len(closed) == 1
    assert {u.episode.started_at for u in updates} == {T0 + timedelta(minutes=10)}
    assert closed[0].episode.degree_minutes_above(20.0) == pytest.approx(19 * 8 + 6.4)


def test_readings_out_of_order_within_a_batch_are_judged_in_time_order():
    shuffled = list(reversed(story()))

    result = detect(SpikeState(), shuffled, SHELF)

    assert len(result.updates) == 1 and result.updates[0].closed
    assert result.late == 0


def test_readings_older_than_the_watermark_are_counted_late_and_not_judged():
    first = detect(SpikeState(), series(18, 18, 18), SHELF)

    again = detect(first.state, series(35, 35, 35), SHELF)

    assert again.late == 3
    assert again.updates == []


def test_each_sku_limit_gets_its_own_degree_minutes():
    config = SpikeConfig(limit_c=20.0, min_minutes=15, rise_c=5.0, thresholds=(20.0, 25.0, 30.0))

    episode = detect(SpikeState(), story(), config).updates[0].episode

    assert episode.degree_minutes_above(25.0) == pytest.approx(19 * 3 + 2 * (3 * 3 / (2 * 10)))
    assert episode.degree_minutes_above(30.0) == 0


def test_without_a_known_limit_only_fast_rises_are_judged():
    unknown = SpikeConfig(limit_c=None, rise_c=5.0)

    assert detect(SpikeState(), series(*([18] * 5 + [22] * 30)), unknown).updates == []
    assert len(detect(SpikeState(), series(18, 18, 28, 28, 18), unknown).updates) == 1


def test_area_above_counts_only_the_part_of_a_crossing_above_the_limit():
    assert area_above(18, 28, 1, 20) == pytest.approx(3.2)
    assert area_above(28, 28, 2, 20) == 16
    assert area_above(10, 15, 5, 20) == 0


def test_the_story_spike_costs_a_sensitive_food_15_to_30_percent_of_its_shelf_life():
    episode = detect(SpikeState(), story(), SHELF).updates[0].episode
    against_18 = detect(SpikeState(), story(), SpikeConfig(limit_c=18.0, rise_c=5.0)).updates[0].episode

    assert 0.15 <= loss_fraction(1.0, episode.degree_minutes_above(20.0)) <= 0.30
    assert 0.15 <= loss_fraction(0.95, against_18.degree_minutes_above(18.0)) <= 0.30
    assert loss_fraction(0.0, 1000) == 0


def test_a_loss_moves_the_effective_expiry_earlier_never_later():
    today = T0.date()
    expires = today + timedelta(days=10)

    assert shortened_expiry(expires, today, 0.21) == today + timedelta(days=7)
    assert shortened_expiry(expires, today, 0.0) == expires
    assert shortened_expiry(today - timedelta(days=1), today, 0.5) == today - timedelta(days=1)
    assert shortened_expiry(expires, today, 1.0) == today - timedelta(days=1)  # spoiled: already expired


def test_a_long_episode_keeps_bounded_evidence_spanning_all_of_it():
    hours_hot = series(*([18.0] * 5 + [28.0] * 600 + [18.0]))

    episode = detect(SpikeState(), hours_hot, SHELF).updates[0].episode

    assert len(episode.samples) <= MAX_SAMPLES
    assert episode.samples[0].at == T0 + timedelta(minutes=4)  # the last normal reading, for context
    assert episode.samples[-1].at == episode.ended_at == T0 + timedelta(minutes=605)


def test_the_persisted_rise_window_stays_small_for_a_sensor_reporting_every_second():
    steady = [Reading(T0 + timedelta(seconds=i), 18.0 + (i % 5) * 0.1) for i in range(1200)]

    state = detect(SpikeState(), steady, SHELF).state

    assert len(state.window) <= 10
    assert min(r.c for r in state.window) == 18.0


def test_a_rise_that_settles_under_the_limit_ends_after_the_rise_window():
    chiller = SpikeConfig(limit_c=8.0, min_minutes=15, rise_c=3.0)

    result = detect(SpikeState(), series(*([2.0] * 5 + [6.0] * 30)), chiller)

    [update] = result.updates
    assert update.episode.cause == "rise" and update.closed
    assert update.episode.ended_at == T0 + timedelta(minutes=16)  # 11 minutes after it began at 6 °C
    assert result.state.episode is None
