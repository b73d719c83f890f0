"""Business minutes: when N minutes of business hours have passed since an instant (pure, for escalation steps)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hub.models.escalation import BusinessHours

MAX_DAYS = 3660  # a step whose time do not fit in ten years of its windows never becomes due


def parse_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def due_at(start: datetime, after: timedelta, hours: BusinessHours | None) -> datetime | None:
    """The instant ``after`` has passed since ``start``, counting only business hours when set."""
    if hours is None:
        return start + after
    zone = ZoneInfo(hours.time_zone)
    opens, closes = parse_time(hours.start), parse_time(hours.end)
    days = set(hours.days)
    remaining = after
    cursor = start.astimezone(UTC)
    day = start.astimezone(zone).date()
    for _ in range(MAX_DAYS):
        if day.isoweekday() in days:
            # In UTC: arithmetic on two times of one zone ignores a DST change between them.
            window_start = max(cursor, datetime.combine(day, opens, tzinfo=zone).astimezone(UTC))
            window_end = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
            if window_end > window_start:
                if window_start + remaining <= window_end:
                    return window_start + remaining
                remaining -= window_end - window_start
        day += timedelta(days=1)
    return None
