"""Temperature spikes: turning a sensor's readings into excursion episodes (DESIGN.md §5, ``sensor_spike``).

An *episode* starts at the first reading that is elevated: above the storage limit of the goods exposed (the
strictest ``temp_max_c`` among them), or more than ``rise_c`` above the lowest reading of the preceding 10 minutes.
It becomes an *excursion* (is "opened") once it has lasted: readings above the limit spanning at least
``min_minutes``, or two readings confirming the fast rise. It closes at the first reading back in range, which is also
where an episode that never opened is forgotten: one wild reading (noise) never alerts. "In range" means at or below
the limit and, for the first 10 minutes, no more than ``rise_c`` above the baseline; after that a rise that stays
under the limit is the new normal, not an excursion.

The detector is incremental: ``detect`` takes the state left by the previous batch and answers the new state, which
the caller persists per sensor, so episodes continue across batches, hour buckets and restarts. Readings at or before
the state's watermark (``last_at``) arrive too late to be judged in order; they are counted, never re-judged.

Degree-minutes are the area between the temperature curve and a limit (linear between readings, so a crossing
counts only its part above), kept for every limit in ``thresholds`` so each SKU is judged against its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

RISE_WINDOW = timedelta(minutes=10)
# A sensor silent for longer than this is not assumed to have stayed on its last trend (area is capped per gap).
MAX_GAP_MINUTES = 60.0
MAX_SAMPLES = 240  # readings kept as evidence per episode


@dataclass(frozen=True)
class Reading:
    at: datetime
    c: float


@dataclass(frozen=True)
class SpikeConfig:
    limit_c: float | None  # strictest storage limit of the goods exposed; None: judge fast rises only
    min_minutes: float = 15.0  # strictest excursion_min_minutes of those goods
    rise_c: float = 5.0  # a rise of more than this within RISE_WINDOW is a spike on its own
    thresholds: tuple[float, ...] = ()  # every SKU limit present, each gets its own degree-minutes


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


@dataclass
class Episode:
    started_at: datetime
    baseline_c: float | None  # lowest reading of the 10 minutes before the start (rise reference)
    last_at: datetime
    peak_c: float
    peak_at: datetime
    first_above_at: datetime | None = None
    last_above_at: datetime | None = None
    rise_hits: int = 0
    degree_minutes: dict[str, float] = field(default_factory=dict)
    cause: str | None = None  # None while a candidate; "duration" or "rise" once it is an excursion
    opened_at: datetime | None = None
    ended_at: datetime | None = None
    samples: list[Reading] = field(default_factory=list)

    @property
    def opened(self) -> bool:
        return self.cause is not None

    @property
    def duration_minutes(self) -> float:
        return ((self.ended_at or self.last_at) - self.started_at).total_seconds() / 60

    def degree_minutes_above(self, limit: float | None) -> float:
        return 0.0 if limit is None else self.degree_minutes.get(threshold_key(limit), 0.0)

    def to_doc(self) -> dict[str, Any]:
        doc = {k: v for k, v in self.__dict__.items() if k != "samples"}
        doc["samples"] = [[s.at, s.c] for s in self.samples]
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Episode:
        data = dict(doc)
        data["samples"] = [Reading(at, c) for at, c in data.get("samples", [])]
        data["degree_minutes"] = dict(data.get("degree_minutes", {}))
        return cls(**data)

    def copy(self) -> Episode:
        return replace(self, degree_minutes=dict(self.degree_minutes), samples=list(self.samples))


@dataclass
class SpikeState:
    """What the detector remembers about one sensor between batches."""

    last_at: datetime | None = None
    last_c: float | None = None
    window: list[Reading] = field(default_factory=list)  # candidates for the minimum of the last RISE_WINDOW
    episode: Episode | None = None

    def to_doc(self) -> dict[str, Any]:
        return {
            "last_at": self.last_at,
            "last_c": self.last_c,
            "window": [[r.at, r.c] for r in self.window],
            "episode": self.episode.to_doc() if self.episode else None,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> SpikeState:
        if not doc:
            return cls()
        return cls(
            last_at=doc.get("last_at"),
            last_c=doc.get("last_c"),
            window=[Reading(at, c) for at, c in doc.get("window", [])],
            episode=Episode.from_doc(doc["episode"]) if doc.get("episode") else None,
        )


@dataclass(frozen=True)
class EpisodeUpdate:
    """An excursion this batch opened, extended or closed (a snapshot at the end of the batch)."""

    episode: Episode
    opened: bool  # it became an excursion during this batch
    closed: bool


@dataclass
class DetectResult:
    state: SpikeState
    updates: list[EpisodeUpdate]
    late: int  # readings at or before the watermark: stored, but not judged


def _add_segment(episode: Episode, prev: Reading | None, cur: Reading, config: SpikeConfig) -> None:
    if prev is None:
        return
    minutes = min((cur.at - prev.at).total_seconds() / 60, MAX_GAP_MINUTES)
    for limit in config.thresholds:
        key = threshold_key(limit)
        episode.degree_minutes[key] = episode.degree_minutes.get(key, 0.0) + area_above(prev.c, cur.c, minutes, limit)


def _sample(episode: Episode, reading: Reading) -> None:
    """Keep evidence of the whole episode in bounded space: when full, halve the resolution."""
    if len(episode.samples) >= MAX_SAMPLES:
        episode.samples = episode.samples[::2]
    episode.samples.append(reading)


def detect(state: SpikeState, readings: Iterable[Reading], config: SpikeConfig) -> DetectResult:
    """Feed ``readings`` (any order) after ``state``; answers the new state and the excursions touched."""
    state = SpikeState(state.last_at, state.last_c, list(state.window), state.episode.copy() if state.episode else None)
    touched: dict[datetime, EpisodeUpdate] = {}
    late = 0
    thresholds = tuple(sorted({*config.thresholds, *([config.limit_c] if config.limit_c is not None else [])}))
    config = replace(config, thresholds=thresholds)
    for reading in sorted(readings, key=lambda r: r.at):
        if state.last_at is not None and reading.at <= state.last_at:
            late += 1
            continue
        prev = Reading(state.last_at, state.last_c) if state.last_at is not None and state.last_c is not None else None
        window = [r for r in state.window if reading.at - r.at <= RISE_WINDOW]
        above = config.limit_c is not None and reading.c > config.limit_c
        episode = state.episode
        if episode is None:
            baseline = min((r.c for r in window), default=None)
            if above or (baseline is not None and reading.c - baseline > config.rise_c):
                episode = Episode(
                    started_at=reading.at, baseline_c=baseline, last_at=reading.at, peak_c=reading.c, peak_at=reading.at
                )
                if prev is not None:
                    _sample(episode, prev)
                state.episode = episode
        if episode is not None:
            _add_segment(episode, prev, reading, config)
            _sample(episode, reading)
            episode.last_at = reading.at
            rising = (
                episode.baseline_c is not None
                and reading.c - episode.baseline_c > config.rise_c
                and reading.at - episode.started_at <= RISE_WINDOW
            )
            if above or rising:
                if reading.c > episode.peak_c:
                    episode.peak_c, episode.peak_at = reading.c, reading.at
                if above:
                    episode.first_above_at = episode.first_above_at or reading.at
                    episode.last_above_at = reading.at
                episode.rise_hits += int(rising)
                if not episode.opened:
                    lasted = episode.first_above_at is not None and (
                        (episode.last_above_at - episode.first_above_at).total_seconds() / 60  # type: ignore[operator]
                        >= config.min_minutes
                    )
                    if lasted or episode.rise_hits >= 2:
                        episode.cause = "duration" if lasted else "rise"
                        episode.opened_at = reading.at
                        touched[episode.started_at] = EpisodeUpdate(episode, opened=True, closed=False)
                elif episode.started_at not in touched:
                    touched[episode.started_at] = EpisodeUpdate(episode, opened=False, closed=False)
            else:
                episode.ended_at = reading.at
                if episode.opened:
                    update = touched.get(episode.started_at)
                    opened = bool(update and update.opened)
                    touched[episode.started_at] = EpisodeUpdate(episode, opened=opened, closed=True)
                state.episode = None
        state.last_at, state.last_c = reading.at, reading.c
        # Only the window's minimum matters: drop readings a newer, colder one outlives (a monotonic queue), so a
        # sensor reporting every second persists a handful of points, not 600.
        while window and window[-1].c >= reading.c:
            window.pop()
        state.window = [*window, reading]
    updates = [replace(u, episode=u.episode.copy()) for u in touched.values()]
    return DetectResult(state=state, updates=updates, late=late)
