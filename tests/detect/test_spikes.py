"""Spike detection is pure: excursions judged from a series, robust to noise, sampling-aware, order-independent."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from hub.detect.shelf_life import loss_fraction, shortened_expiry
from hub.detect.spikes import MAX_SAMPLES, Reading, SpikeConfig, area_above, infer_interval, judge, robust

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SHELF = SpikeConfig(limit_c=20.0, min_minutes=15, rise_c=5.0)
CHILLER = SpikeConfig(limit_c=8.0, min_minutes=15, rise_c=50.0)  # fast rises out of the way: duration only


def series(*temps: float, start: datetime = T0, every: float = 1) -> list[Reading]:
    return [Reading(start + timedelta(minutes=i * every), c) for i, c in enumerate(temps)]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def story() -> list[Reading]:
    """Shelf C-3: 18 °C, then 28 °C for 20 minutes, then 18 °C (one reading a minute)."""
    return series(*([18.0] * 10 + [28.0] * 20 + [18.0] * 10))


def test_the_story_spike_is_one_closed_excursion_with_its_peak_and_degree_minutes():
    [episode] = judge(story(), SHELF).episodes

    assert episode.started_at == at(9)  # the rising window starts at the last 18 °C reading before the jump
    assert episode.first_hot_at == at(10) and episode.ended_at == at(30)
    assert episode.peak_c == 28.0 and episode.hot_minutes == 20
    # 8 °C over the limit for the 19 minutes between the first and last 28 °C reading, plus both ramps (3.2 each).
    assert episode.degree_minutes_above(20.0) == pytest.approx(19 * 8 + 3.2 + 3.2)


# Rule 1: samples stand for their interval.

def test_exactly_three_five_minute_samples_above_the_limit_are_a_fifteen_minute_excursion():
    [episode] = judge(series(4, 4, 4, 10, 10, 10, 4, 4, 4, every=5), CHILLER).episodes

    assert episode.cause == "duration" and episode.hot_minutes == 15
    assert episode.opened_at == at(25) and episode.duration_minutes == 15


def test_two_five_minute_samples_above_the_limit_are_ten_minutes_and_no_excursion():
    assert judge(series(4, 4, 4, 10, 10, 4, 4, 4, every=5), CHILLER).episodes == []


def test_the_interval_is_inferred_as_the_median_spacing_or_taken_as_registered():
    readings = series(4, 4, 4, 10, 10, 10, 4, 4, every=10)

    assert infer_interval(readings) == 10
    assert infer_interval(readings[:2]) == 5  # too few to tell: the default
    [inferred] = judge(readings, CHILLER).episodes
    assert inferred.hot_minutes == 30  # 20 minutes from first to last, plus the last one's 10
    # registered as 15 minutes: the last sample stands for 15
    [registered] = judge(readings, SpikeConfig(limit_c=8.0, rise_c=50.0, interval_minutes=15)).episodes
    assert registered.hot_minutes == 35


# Rule 2: noise never alerts.

def test_a_single_wild_reading_up_is_noise():
    assert judge(series(18, 18, 18, 30, 18, 18), SHELF).episodes == []
    assert judge(series(*([4] * 5 + [30] + [4] * 5), every=5), CHILLER).episodes == []


def test_a_single_reading_down_is_noise_and_its_recovery_is_not_a_rise():
    rises = SpikeConfig(limit_c=20.0, rise_c=5.0)

    assert judge(series(18, 18, 18, -20, 18, 18, 18), rises).episodes == []
    assert robust(series(18, 18, -20, 18, 18))[2].c == 18


def test_a_single_hot_reading_at_the_end_of_the_series_is_not_taken_for_the_start_of_a_run():
    judgement = judge(series(4, 4, 4, 4, 30, every=5), CHILLER)

    assert judgement.episodes == [] and judgement.pending_since is None


def test_a_one_reading_dip_inside_an_excursion_does_not_split_it():
    [episode] = judge(series(4, 4, 10, 10, 10, 4, 10, 10, 10, 4, 4, 4, every=5), CHILLER).episodes

    assert episode.started_at == at(10) and episode.ended_at == at(45)
    assert episode.hot_minutes == 35


# Rule 3: hysteresis.

def test_two_in_range_readings_between_hot_runs_do_not_split_the_episode():
    hot, cold = [10.0] * 3, [4.0] * 2
    [episode] = judge(series(4, 4, *hot, *cold, *hot, 4, 4, 4, 4, every=5), CHILLER).episodes

    assert episode.started_at == at(10) and episode.hot_minutes == 30


def test_two_excursions_ninety_minutes_apart_are_two_episodes():
    temps = [4.0] * 3 + [10.0] * 4 + [4.0] * 18 + [10.0] * 4 + [4.0] * 4  # second starts 90 min after the first ends

    first, second = judge(series(*temps, every=5), CHILLER).episodes

    assert (first.started_at, second.started_at) == (at(15), at(125))
    assert first.ended_at == at(35)


def test_a_gap_in_the_data_between_hot_runs_does_not_split_the_episode():
    before = series(4, 4, 10, 10, 10, every=5)
    after = series(10, 10, 10, 4, 4, 4, start=at(45), every=5)  # nothing arrived for 20 minutes in between

    [episode] = judge(before + after, CHILLER).episodes

    assert episode.started_at == at(10) and episode.ended_at == at(60)
    assert episode.hot_minutes == 30  # the silence itself is not counted as hot


def test_an_episode_starts_at_the_start_of_its_rising_window_when_that_is_earlier():
    [episode] = judge(series(18, 18, 18, 27, 27), SHELF).episodes

    assert episode.cause == "rise" and episode.started_at == at(2)


def test_a_fast_rise_inside_the_limit_still_alerts_without_degree_minutes():
    chiller = SpikeConfig(limit_c=8.0, min_minutes=15, rise_c=4.0)

    [episode] = judge(series(2, 2, 2, 7, 7.5, 7, 2, 2), chiller).episodes

    assert episode.cause == "rise" and episode.ended_at is not None
    assert episode.degree_minutes_above(8.0) == 0


def test_a_rise_that_settles_under_the_limit_ends_when_the_rise_window_has_passed():
    chiller = SpikeConfig(limit_c=8.0, min_minutes=15, rise_c=3.0)

    [episode] = judge(series(*([2.0] * 5 + [6.0] * 30)), chiller).episodes

    # the rising window slides past the last 2 °C reading after 10 minutes: 6 °C is the new normal
    assert episode.cause == "rise" and episode.ended_at == at(15)


def test_an_episode_still_within_its_hysteresis_is_pending_for_the_next_judgement():
    judgement = judge(series(4, 4, 10, 10, 10, 4, every=5), CHILLER)

    assert judgement.pending_since == at(10)
    assert judge(series(*([4.0] * 10), every=5), CHILLER).pending_since is None


# Rule 4: a pure function of the series, so late data is judged by judging again.

def test_the_judgement_does_not_depend_on_the_order_readings_arrive_in():
    readings = story()
    shuffled = random.Random(7).sample(readings, len(readings))

    assert judge(shuffled, SHELF) == judge(readings, SHELF)


def test_a_reading_sent_twice_counts_once():
    readings = series(4, 4, 4, 10, 10, 10, 4, 4, 4, every=5)

    assert judge(readings + readings[3:5], CHILLER) == judge(readings, CHILLER)


def test_each_sku_limit_gets_its_own_degree_minutes():
    config = SpikeConfig(limit_c=20.0, min_minutes=15, rise_c=5.0, thresholds=(20.0, 25.0, 30.0))

    [episode] = judge(story(), config).episodes

    assert episode.degree_minutes_above(25.0) == pytest.approx(19 * 3 + 2 * (3 * 3 / (2 * 10)))
    assert episode.degree_minutes_above(30.0) == 0


def test_without_a_known_limit_only_fast_rises_are_judged():
    unknown = SpikeConfig(limit_c=None, rise_c=5.0)

    assert judge(series(*([18] * 5 + [22] * 30)), unknown).episodes == []
    assert len(judge(series(18, 18, 28, 28, 18, 18), unknown).episodes) == 1


def test_area_above_counts_only_the_part_of_a_crossing_above_the_limit():
    assert area_above(18, 28, 1, 20) == pytest.approx(3.2)
    assert area_above(28, 28, 2, 20) == 16
    assert area_above(10, 15, 5, 20) == 0


def test_the_story_spike_costs_a_sensitive_food_15_to_30_percent_of_its_shelf_life():
    [episode] = judge(story(), SHELF).episodes
    [against_18] = judge(story(), SpikeConfig(limit_c=18.0, rise_c=5.0)).episodes

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
    [episode] = judge(series(*([18.0] * 5 + [28.0] * 600 + [18.0] * 3)), SHELF).episodes

    assert len(episode.samples) <= MAX_SAMPLES
    assert episode.samples[0].at <= at(4)  # the last normal reading, for context
    assert episode.samples[-1].at == episode.ended_at == at(605)
