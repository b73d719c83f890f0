"""The hub's clock and dates in BSON: MongoDB has no date-only type, so a date is stored as midnight UTC (as beanie
does)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hub import clock

# The calendar the hub accepts from outside. Python and BSON stop at years 1 and 9999, and the hub adds shelf lives
# (up to 100 years), windows and offsets to the dates it is given: a date near either end would overflow there, as an
# error for whoever reads it later rather than for whoever sent it.
EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)
RANGE_MESSAGE = f"dates must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}"


def utcnow() -> datetime:
    """Now, timezone-aware: every stored and compared time in the hub is UTC (from ``hub.clock``: settable)."""
    return clock.now()


def in_range(value: date | datetime) -> bool:
    """Whether a date, or an instant in UTC (a naive one taken as UTC), lies between ``EARLIEST`` and ``LATEST``."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:  # an offset that takes it past year 1 or 9999
                return False
        value = value.date()
    return EARLIEST <= value <= LATEST


def to_bson(value: date | None) -> datetime | None:
    return datetime(value.year, value.month, value.day, tzinfo=UTC) if value else None


def from_bson(value: datetime | date | None) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value
