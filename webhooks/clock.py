"""Time for the webhook schedule, injectable so tests step through hours of retries without waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        now = start or datetime.now(UTC)
        # BSON keeps milliseconds: start on one so times read back compare equal.
        self._now = now.replace(microsecond=now.microsecond // 1000 * 1000)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now
