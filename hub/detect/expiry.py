"""Expiry risk of a lot in stock at one location (DESIGN.md §5, ``expiry_risk``).

Three findings, the worst wins:

- **expired**: the effective expiry (after excursions) has passed and stock remains → critical, take it off sale.
- **slow**: at the trailing sales/issue velocity of that SKU at that location (units sold or issued over the window,
  default 28 days, ÷ the window; transfers, counts, adjustments and returns are not sales), the stock needs more
  days to sell than it has left. Severity by margin: critical when it expires within ``CRITICAL_DAYS``, warning when
  at least ``WARNING_UNSOLD`` of it would still be on hand at expiry, info below that. No evidence, no verdict: with
  no sales or issues in the window the velocity is unknown rather than zero (a fresh receipt is not a slow mover);
  it is flagged only as dead stock when the position has been observed for at least the whole window and the stock
  expires within it.
- **short_shelf_life**: fewer days left than the consignee's minimum remaining shelf life: it can no longer be
  shipped to them (warning).

And for dispatches, ``arrival_shortfall``: a line arriving with less than the consignee's minimum remaining shelf life.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

VELOCITY_DAYS = 28
CRITICAL_DAYS = 7
WARNING_UNSOLD = 0.2
SEVERITY_ORDER = ("info", "warning", "critical")


@dataclass(frozen=True)
class LotStock:
    on_hand: int
    expires_on: date | None  # effective expiry (recorded expiry shortened by excursions)
    recorded_expires_on: date | None = None
    sold_in_window: int = 0  # units sold or issued at this location over the last VELOCITY_DAYS, all lots
    min_remaining_days: int | None = None  # consignee's acceptance threshold
    held_days: int = 0  # days since the first movement of this SKU at this position (its observed history)
    window_days: int = VELOCITY_DAYS  # the trailing window ``sold_in_window`` covers


@dataclass(frozen=True)
class ExpiryRisk:
    reason: str  # "expired" | "slow" | "short_shelf_life"
    severity: str  # "info" | "warning" | "critical"
    days_left: int
    velocity_per_day: float
    days_to_sell: float | None  # None: no sales or issues in the window
    unsold_at_expiry: int
    recommendation: str

    def figures(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "daysLeft": self.days_left,
            "velocityPerDay": round(self.velocity_per_day, 3),
            "daysToSell": None if self.days_to_sell is None else round(self.days_to_sell, 1),
            "unsoldAtExpiry": self.unsold_at_expiry,
        }


def assess(stock: LotStock, today: date) -> ExpiryRisk | None:
    """The expiry risk of this stock on ``today``, or None when it will sell in time."""
    if stock.on_hand <= 0 or stock.expires_on is None:
        return None
    days_left = (stock.expires_on - today).days
    velocity = max(stock.sold_in_window, 0) / stock.window_days
    days_to_sell = stock.on_hand / velocity if velocity > 0 else None

    def risk(reason: str, severity: str, unsold: int, recommendation: str) -> ExpiryRisk:
        return ExpiryRisk(reason, severity, days_left, velocity, days_to_sell, unsold, recommendation)

    if days_left < 0:
        return risk(
            "expired", "critical", stock.on_hand,
            f"Past its effective expiry by {-days_left} day(s) with {stock.on_hand} units on hand: take it off sale, "
            "quarantine and write off; do not ship.",
        )
    findings: list[ExpiryRisk] = []
    if days_to_sell is not None and days_to_sell > days_left:
        unsold = stock.on_hand - math.floor(velocity * days_left)
        share = unsold / stock.on_hand
        severity = "critical" if days_left <= CRITICAL_DAYS else "warning" if share >= WARNING_UNSOLD else "info"
        findings.append(risk(
            "slow", severity, unsold,
            f"At {velocity:.1f} units/day it needs {days_to_sell:.0f} days to sell but has {days_left} left: "
            f"mark down, or transfer ~{unsold} units to a faster-selling location, or dispatch with priority.",
        ))
    elif days_to_sell is None and days_left <= stock.window_days and stock.held_days >= stock.window_days:
        findings.append(risk(
            "slow", "critical" if days_left <= CRITICAL_DAYS else "warning", stock.on_hand,
            f"No sales or issues here in {stock.held_days} days and {days_left} day(s) left: "
            "transfer to a location that sells it, mark down, or dispatch with priority.",
        ))
    if stock.min_remaining_days is not None and days_left < stock.min_remaining_days:
        findings.append(risk(
            "short_shelf_life", "warning", stock.on_hand,
            f"{days_left} day(s) left, below the consignee's minimum of {stock.min_remaining_days}: it can no longer "
            "be shipped to them; sell locally, mark down or donate.",
        ))
    if not findings:
        return None
    return max(findings, key=lambda f: SEVERITY_ORDER.index(f.severity))


@dataclass(frozen=True)
class ArrivalShortfall:
    days_left_on_arrival: int
    min_remaining_days: int


def arrival_shortfall(
    expires_on: date | None, arrives_on: date, min_remaining_days: int | None
) -> ArrivalShortfall | None:
    """A dispatched lot that would reach the consignee with less than its minimum remaining shelf life."""
    if expires_on is None or min_remaining_days is None:
        return None
    left = (expires_on - arrives_on).days
    return ArrivalShortfall(left, min_remaining_days) if left < min_remaining_days else None
