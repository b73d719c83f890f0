"""The hub's clock: the wall clock in production, a virtual one for tests and replays (``LOTPULSE_CLOCK``).

Every time the hub stamps or compares (``utcnow``) comes from here, so detectors, the sweep, the heartbeat and the
records they write all agree on "now" when a replay drives time forward.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to (never backwards)."""

    def __init__(self, start: datetime) -> None:
        self._now = start if start.tzinfo else start.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        self._now = max(self._now, at)

    def advance(self, delta: timedelta) -> None:
        self._now += max(delta, timedelta(0))


_current: Clock = WallClock()


def now() -> datetime:
    return _current.now()


def current() -> Clock:
    return _current


def use(clock: Clock) -> Clock:
    """Make ``clock`` the process's clock; answers the previous one (to restore it)."""
    global _current
    previous, _current = _current, clock
    return previous


def from_setting(value: str) -> Clock:
    """``wall`` (the default) or an ISO 8601 instant where a virtual clock starts."""
    if value.strip().lower() in ("", "wall"):
        return WallClock()
    return VirtualClock(datetime.fromisoformat(value.strip()))
