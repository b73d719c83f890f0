"""Temperature spikes: judging a sensor's series into excursion episodes (``sensor_spike``).

The rules (stated for users in the README's detection section):

1. Samples stand for their interval. A run of consecutive readings above the limit lasts ``last - first + interval``
   (the sensor's registered interval, else the median spacing of the readings judged, else 5 minutes).
2. Noise never alerts. The rules run on a robust series, the running median of 3 in time order, so one outlier (up
   or down) is neither an excursion, nor a rise's baseline, nor the end of an episode. Raw readings stay the evidence.
3. Episodes have hysteresis. Hot readings and rise triggers at most ``hysteresis_minutes`` apart form one episode;
   marks further apart split it only if a reading in range came between them (a gap in the data is no evidence
   that the episode ended).
   It is an excursion when its hot runs add up to ``min_minutes``, or when two readings confirm a rise of more than
   ``rise_c`` over the lowest reading of the preceding 10 minutes. It starts at its first hot reading or at the
   start of its rising window (the baseline reading), whichever is earlier, and ends at the first reading back in
   range after its last mark (a later mark within the hysteresis extends it again).
4. The judgement is a pure function of the series, so late and out-of-order readings are judged by judging the
   affected window again (``hub.services.readings`` chooses and bounds the window).

Degree-minutes are the area between the robust curve and a limit (linear between readings, a gap counting for at
most ``MAX_GAP_MINUTES``), kept for every limit in ``thresholds`` so each SKU is judged against its own.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

RISE_WINDOW = timedelta(minutes=10)
MAX_GAP_MINUTES = 60.0  # a silent sensor is not assumed to have stayed on its last trend for longer
MAX_SAMPLES = 240  # raw readings kept as evidence per episode
DEFAULT_INTERVAL_MINUTES = 5.0


class Reading(NamedTuple):  # a tuple: ingestion builds thousands per call, and a frozen dataclass costs 3x to make
    at: datetime
    c: float


@dataclass(frozen=True)
class SpikeConfig:
    limit_c: float | None  # strictest storage limit of the goods exposed; None: judge fast rises only
    min_minutes: float = 15.0  # strictest excursion_min_minutes of those goods
    rise_c: float = 5.0  # a rise of more than this within RISE_WINDOW, confirmed twice, is a spike on its own
    thresholds: tuple[float, ...] = ()  # every SKU limit present, each gets its own degree-minutes
    interval_minutes: float | None = None  # the sensor's registered reporting interval
    hysteresis_minutes: float = 15.0  # marks this close together are one episode

    def all_thresholds(self) -> tuple[float, ...]:
        limits = {*self.thresholds, *([self.limit_c] if self.limit_c is not None else [])}
        return tuple(sorted(limits))


def threshold_key(limit: float) -> str:
    """Degree-minutes are stored per limit under this key (BSON keys are strings)."""
    return f"{float(limit):g}"


def area_above(c0: float, c1: float, minutes: float, limit: float) -> float:
    """°C·min above ``limit`` between two readings, temperature linear in between."""
    e0, e1 = c0 - limit, c1 - limit
    if e0 <= 0 and e1 <= 0:
        return 0.0
    if e0 >= 0 and e1 >= 0:
        return (e0 + e1) / 2 * minutes
    high, low = max(e0, e1), min(e0, e1)
    return minutes * high * high / (2 * (high - low))


def robust(readings: Sequence[Reading]) -> list[Reading]:
    """The running median of 3 in time order (the last reading takes the median of the last three).

    With fewer than three readings nothing can tell an outlier from a trend, so each takes the lower value.
    """
    n = len(readings)
    if n < 3:
        low = min((r.c for r in readings), default=0.0)
        return [Reading(r.at, low) for r in readings]
    out = []
    for i, reading in enumerate(readings):
        lo = min(max(i - 1, 0), n - 3)
        out.append(Reading(reading.at, sorted((readings[lo].c, readings[lo + 1].c, readings[lo + 2].c))[1]))
    return out


def infer_interval(readings: Sequence[Reading], default: float = DEFAULT_INTERVAL_MINUTES) -> float:
    """The median spacing of the readings, in minutes (the default with fewer than three)."""
    if len(readings) < 3:
        return default
    gaps = [(b.at - a.at).total_seconds() / 60 for a, b in zip(readings, readings[1:])]
    return max(statistics.median(gaps), 1 / 60)


@dataclass
class Episode:
    """One excursion (or a candidate that has not qualified yet) as the series shows it."""

    started_at: datetime
    last_mark_at: datetime  # last hot reading or rise trigger
    peak_c: float
    peak_at: datetime
    first_hot_at: datetime | None = None
    hot_minutes: float = 0.0
    rise_hits: int = 0
    cause: str | None = None  # None while a candidate; "duration" or "rise" once an excursion
    opened_at: datetime | None = None  # the reading that made it an excursion
    ended_at: datetime | None = None  # first reading back in range after the last mark; None: ongoing
    interval_minutes: float = DEFAULT_INTERVAL_MINUTES
    degree_minutes: dict[str, float] = field(default_factory=dict)
    samples: list[Reading] = field(default_factory=list)  # raw readings (evidence)

    @property
    def opened(self) -> bool:
        return self.cause is not None

    @property
    def duration_minutes(self) -> float:
        """From the start to the end of the last mark's interval (samples stand for their interval)."""
        end = self.ended_at if self.ended_at is not None else self.last_mark_at
        span = (min(end, self.last_mark_at + timedelta(minutes=self.interval_minutes)) - self.started_at)
        return max(span.total_seconds() / 60, self.hot_minutes)

    def degree_minutes_above(self, limit: float | None) -> float:
        return 0.0 if limit is None else self.degree_minutes.get(threshold_key(limit), 0.0)


@dataclass(frozen=True)
class Judgement:
    episodes: list[Episode]  # excursions, in time order
    pending_since: datetime | None  # start of a trailing episode (excursion or candidate) that may still grow
    interval_minutes: float


def _thin(samples: list[Reading]) -> list[Reading]:
    """Evidence of the whole episode in bounded space: halve the resolution until it fits, keeping both ends."""
    while len(samples) > MAX_SAMPLES:
        samples = samples[:-1:2] + samples[-1:]
    return samples


def judge(readings: Iterable[Reading], config: SpikeConfig, since: datetime | None = None) -> Judgement:
    """Every excursion in ``readings`` (any order; one reading per instant) from ``since`` on.

    Readings before ``since`` are only the neighbours of the first ones judged: a window cut out of a longer series
    gives each reading the running median it has in the whole series.
    """
    raw = sorted({r.at: r for r in readings}.values(), key=lambda r: r.at)
    series = robust(raw)
    if since is not None:
        skip = bisect.bisect_left([r.at for r in raw], since)
        raw, series = raw[skip:], series[skip:]
    interval = config.interval_minutes or infer_interval(raw)
    if not series:
        return Judgement([], None, interval)
    limit = config.limit_c
    hysteresis = timedelta(minutes=config.hysteresis_minutes)
    run_break = timedelta(minutes=2 * interval)  # a longer silence between hot readings starts a new run
    found: list[tuple[Episode, int, int]] = []  # episode, index of its first reading, index of its last mark
    current: tuple[Episode, int, int] | None = None
    previous_hot: Reading | None = None
    window: list[int] = []  # the last RISE_WINDOW as a monotonic queue: its front is the lowest reading

    for i, reading in enumerate(series):
        while window and reading.at - series[window[0]].at > RISE_WINDOW:
            window.pop(0)
        base = window[0] if window else None
        hot = limit is not None and reading.c > limit
        rising = base is not None and reading.c - series[base].c > config.rise_c
        if not (hot or rising):
            previous_hot = None
            if current is not None and current[0].ended_at is None:
                current[0].ended_at = reading.at
        else:
            if current is not None and current[0].ended_at is not None and (
                reading.at - current[0].last_mark_at > hysteresis
            ):
                found.append(current)
                current = None
            first = base if rising and base is not None else i
            if current is None:
                current = (Episode(series[first].at, reading.at, reading.c, reading.at, interval_minutes=interval),
                           first, i)
            episode, start, _ = current
            if first < start:  # the rising window reaches back before the episode's first mark
                episode.started_at, start = series[first].at, first
            current = (episode, start, i)
            episode.last_mark_at, episode.ended_at = reading.at, None
            if reading.c > episode.peak_c:
                episode.peak_c, episode.peak_at = reading.c, reading.at
            if hot:
                episode.first_hot_at = episode.first_hot_at or reading.at
                if previous_hot is not None and reading.at - previous_hot.at <= run_break:
                    episode.hot_minutes += (reading.at - previous_hot.at).total_seconds() / 60
                else:
                    episode.hot_minutes += interval
                previous_hot = reading
            else:
                previous_hot = None
            episode.rise_hits += int(rising)
            if not episode.opened:
                if episode.hot_minutes >= config.min_minutes - 1e-9:
                    episode.cause, episode.opened_at = "duration", reading.at
                elif episode.rise_hits >= 2:
                    episode.cause, episode.opened_at = "rise", reading.at
        while window and series[window[-1]].c >= reading.c:
            window.pop()
        window.append(i)

    last = series[-1]
    pending_since: datetime | None = None
    if current is not None:
        found.append(current)
        if last.at - current[0].last_mark_at <= hysteresis:
            pending_since = current[0].started_at
    excursions = []
    for episode, first, last_mark in found:
        if not episode.opened:
            continue
        until = episode.ended_at or last.at
        end = next(j for j in range(last_mark, len(series)) if series[j].at >= until)
        lo = max(first - 1, 0)
        for a, b in zip(series[lo:end], series[lo + 1 : end + 1]):
            minutes = min((b.at - a.at).total_seconds() / 60, MAX_GAP_MINUTES)
            for threshold in config.all_thresholds():
                key = threshold_key(threshold)
                episode.degree_minutes[key] = episode.degree_minutes.get(key, 0.0) + area_above(
                    a.c, b.c, minutes, threshold
                )
        episode.samples = _thin(list(raw[lo : end + 1]))
        excursions.append(episode)
    return Judgement(excursions, pending_since, interval)


def state_doc(judgement: Judgement, last_at: datetime | None) -> dict[str, Any]:
    """What ingestion remembers per sensor between calls: where the next judgement has to start from."""
    return {
        "last_at": last_at,
        "pending_since": judgement.pending_since,
        "interval_minutes": judgement.interval_minutes,
    }
