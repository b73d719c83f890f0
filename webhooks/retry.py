"""What happens after an attempt: done, try again later (when), give up, or disable the endpoint.

Pure functions of the attempt's outcome, so the schedule is tested without a network or a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# Waits after the 1st, 2nd, ... failed attempt (Standard Webhooks); after the last one: failed. The default of
# LOTPULSE_WEBHOOK_RETRY_SCHEDULE, which operators may change.
SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)


def schedule_of(seconds: Sequence[float]) -> tuple[timedelta, ...]:
    """The retry schedule from settings (seconds per wait); a negative wait is a configuration mistake."""
    if any(wait < 0 for wait in seconds):
        raise ValueError(f"webhook retry waits must not be negative: {list(seconds)}")
    return tuple(timedelta(seconds=wait) for wait in seconds)


# A Retry-After beyond this is treated as this, so one header cannot park a delivery for weeks.
MAX_RETRY_AFTER = timedelta(hours=24)
MIN_RETRY_AFTER = timedelta(seconds=1)


@dataclass(frozen=True)
class Decision:
    succeeded: bool = False
    next_attempt_at: datetime | None = None  # None with succeeded False: give up (failed)
    disable_reason: str | None = None  # the endpoint must be disabled

    @property
    def failed(self) -> bool:
        return not self.succeeded and self.next_attempt_at is None


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        # Compared as a number first: a timedelta of 10**20 seconds raises (OverflowError), and the batch with it.
        seconds = int(value)
        wait = MAX_RETRY_AFTER if seconds > MAX_RETRY_AFTER.total_seconds() else timedelta(seconds=seconds)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = when - now
    return min(max(wait, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def decide(
    *,
    status_code: int | None,
    failures_before: int,
    now: datetime,
    retry_after: str | None = None,
    failing_since: datetime | None = None,
    disable_after: timedelta = timedelta(days=5),
    schedule: Sequence[timedelta] = SCHEDULE,
) -> Decision:
    """The outcome of one attempt. ``failures_before`` counts this delivery's earlier failed attempts."""
    if status_code is not None and 200 <= status_code < 300:
        return Decision(succeeded=True)
    if status_code == 410:
        return Decision(disable_reason="the receiver answered 410 Gone")
    if failing_since is not None and now - failing_since >= disable_after:
        days = disable_after.total_seconds() / 86400
        return Decision(disable_reason=f"every delivery failed for {days:g} days")
    if failures_before >= len(schedule):
        return Decision()
    wait = schedule[failures_before]
    if status_code in (429, 503):
        asked = parse_retry_after(retry_after, now)
        if asked is not None:
            wait = asked
    return Decision(next_attempt_at=now + wait)
