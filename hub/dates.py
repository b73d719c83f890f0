"""The hub's clock and dates in BSON: MongoDB has no date-only type, so a date is stored as midnight UTC (as beanie
does)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hub import clock


def utcnow() -> datetime:
    """Now, timezone-aware: every stored and compared time in the hub is UTC (from ``hub.clock``: settable)."""
    return clock.now()


def to_bson(value: date | None) -> datetime | None:
    return datetime(value.year, value.month, value.day, tzinfo=UTC) if value else None


def from_bson(value: datetime | date | None) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value
