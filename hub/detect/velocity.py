"""``velocity_drop`` (the alert nurse) and ``velocity_spike``: recent sales against the demand baseline.

A drop is flagged when the last ``window_days`` complete days sold at least ``drop_pct`` below what the baseline
(fitted on the days *before* the window) expected, and the finding is significant:

- enough volume: the baseline expected at least ``min_expected`` units in the window (a slow item selling 3 instead
  of 5 a week is noise, not news), and
- beyond noise: under a Poisson model of daily sales with the expected mean, selling this few (or this many) would
  happen by chance with probability below ``P_VALUE``. With the defaults (20 units, −40 %) the relative threshold
  binds at low volume and the Poisson test only matters for small windows or thresholds.

A spike is the mirror image (``spike_pct`` above) *and* the stock in hand plus inbound covers fewer days at the new
pace than the lead time: a surge that stock can absorb is good news, not an alert.

Candidate causes are ranked from facts the service gathers from the hub's own data (``CauseFacts``); each comes with
its evidence. When none applies the answer says so: the cause is outside the hub's data (the market).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

P_VALUE = 0.01
EPSILON = 1e-9
MARKET = "market"


def poisson_cdf(k: int, mean: float) -> float:
    """P(X ≤ k) for X ~ Poisson(mean), summed in log space (stable for large means)."""
    if k < 0:
        return 0.0
    if mean <= 0:
        return 1.0
    log_term = -mean
    total = math.exp(log_term)
    for i in range(1, k + 1):
        log_term += math.log(mean) - math.log(i)
        total += math.exp(log_term)
        if total >= 1.0:
            return 1.0
    return min(total, 1.0)


def poisson_sf(k: int, mean: float) -> float:
    """P(X ≥ k)."""
    return 1.0 - poisson_cdf(k - 1, mean)


@dataclass(frozen=True)
class VelocityRules:
    window_days: int = 7
    drop_pct: float = 40.0
    spike_pct: float = 50.0
    min_expected: float = 20.0


@dataclass(frozen=True)
class VelocityFinding:
    kind: str  # "velocity_drop" | "velocity_spike"
    expected: float
    actual: int
    change_pct: float  # signed: -40.0 for a 40 % drop
    p_value: float
    severity: str
    cover_days: float | None = None  # spikes: (on hand + inbound) / recent pace

    def figures(self) -> dict[str, Any]:
        return {
            "expectedUnits": round(self.expected, 1),
            "actualUnits": self.actual,
            "changePct": round(self.change_pct, 1),
            "pValue": round(self.p_value, 6),
            **({"coverDays": round(self.cover_days, 1)} if self.cover_days is not None else {}),
        }


def assess(
    expected: float,
    actual: int,
    rules: VelocityRules,
    stock_units: int | None = None,
    lead_time_days: float | None = None,
) -> VelocityFinding | None:
    """Judge ``actual`` units over the window against the baseline's ``expected`` for the same days."""
    if expected < rules.min_expected or expected <= 0:
        return None
    change = (actual - expected) / expected * 100
    if change <= -rules.drop_pct + EPSILON:
        p = poisson_cdf(actual, expected)
        if p >= P_VALUE:
            return None
        severity = "critical" if change <= -2 * rules.drop_pct or actual == 0 else "warning"
        return VelocityFinding("velocity_drop", expected, actual, change, p, severity)
    if change >= rules.spike_pct - EPSILON and stock_units is not None and lead_time_days is not None:
        p = poisson_sf(actual, expected)
        if p >= P_VALUE:
            return None
        pace = actual / rules.window_days
        cover = stock_units / pace if pace > 0 else math.inf
        if cover >= lead_time_days:
            return None
        severity = "critical" if cover < lead_time_days / 2 else "warning"
        return VelocityFinding("velocity_spike", expected, actual, change, p, severity, cover)
    return None


@dataclass(frozen=True)
class Cause:
    code: str
    score: float
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return {"code": self.code, "score": round(self.score, 3), "summary": self.summary, "evidence": self.evidence}


@dataclass(frozen=True)
class CauseFacts:
    """What the hub's own data says about one (holder, location, SKU) over the window."""

    window_days: int
    daily_expected: float
    stockout_days: int = 0
    min_on_hand: int | None = None  # lowest end-of-day on-hand in the window
    on_hand: int = 0
    held_lots: list[dict[str, Any]] = field(default_factory=list)  # lotCode, status, reason, onHand
    excursions: list[dict[str, Any]] = field(default_factory=list)  # id, deviceId, peakC, startedAt
    near_expiry: list[dict[str, Any]] = field(default_factory=list)  # lotCode, daysLeft, onHand
    late_inbound: list[dict[str, Any]] = field(default_factory=list)  # dispatch ref, expectedOn, daysLate
    short_inbound: list[dict[str, Any]] = field(default_factory=list)  # dispatch ref, ordered, received
    receipt_mismatches: list[dict[str, Any]] = field(default_factory=list)  # receipt id, dispatch ref, kinds
    price_before: float | None = None  # average unit price over the baseline days (when the partner sends one)
    price_recent: float | None = None
    promo_share_before: float = 0.0  # share of units sold on promotion
    promo_share_recent: float = 0.0


def drop_causes(facts: CauseFacts) -> list[Cause]:
    """Candidate causes of a sales drop, most likely first; never empty (the market is the last resort)."""
    causes: list[Cause] = []
    if facts.stockout_days > 0:
        share = facts.stockout_days / facts.window_days
        causes.append(Cause("stockout", 0.6 + 0.4 * share,
                            f"Out of stock on {facts.stockout_days} of the last {facts.window_days} days",
                            {"stockoutDays": facts.stockout_days}))
    elif facts.min_on_hand is not None and facts.daily_expected > 0 and facts.min_on_hand < facts.daily_expected:
        causes.append(Cause("low_on_hand", 0.45,
                            f"On-hand fell to {facts.min_on_hand}, less than one day of expected sales",
                            {"minOnHand": facts.min_on_hand, "expectedPerDay": round(facts.daily_expected, 1)}))
    if facts.held_lots:
        held = sum(int(lot.get("onHand", 0)) for lot in facts.held_lots)
        share = held / max(facts.on_hand, 1)
        causes.append(Cause("lots_held", 0.35 + 0.4 * min(share, 1.0),
                            f"{held} units in {len(facts.held_lots)} lot(s) on hold, quarantined or recalled",
                            {"lots": facts.held_lots, "heldUnits": held}))
    late = facts.late_inbound
    short = facts.short_inbound
    if late or short:
        causes.append(Cause("inbound_late_or_short", 0.4 + (0.2 if facts.stockout_days else 0.0),
                            "Inbound dispatch late or short: " + ", ".join(
                                [f"{d['ref']} {d['daysLate']} day(s) late" for d in late]
                                + [f"{d['ref']} short by {d['ordered'] - d['received']}" for d in short]),
                            {"late": late, "short": short}))
    if facts.receipt_mismatches:
        causes.append(Cause("receipt_mismatch", 0.3, "Receipt mismatch here: booked stock may not be what is on "
                            "the shelf", {"receipts": facts.receipt_mismatches}))
    if facts.excursions:
        causes.append(Cause("sensor_excursion", 0.3, f"{len(facts.excursions)} temperature excursion(s) at this "
                            "location: goods may have been pulled or look poor", {"excursions": facts.excursions}))
    if facts.near_expiry:
        units = sum(int(lot.get("onHand", 0)) for lot in facts.near_expiry)
        causes.append(Cause("near_expiry", 0.25 + 0.3 * min(units / max(facts.on_hand, 1), 1.0),
                            f"{units} units close to expiry: shoppers pass over short-dated stock (markdown pressure)",
                            {"lots": facts.near_expiry}))
    if facts.price_before and facts.price_recent and facts.price_recent > facts.price_before * 1.02:
        rise = (facts.price_recent / facts.price_before - 1) * 100
        causes.append(Cause("price_change", min(0.2 + rise / 100, 0.7), f"Price up {rise:.0f} % against the "
                            "baseline weeks", {"priceBefore": round(facts.price_before, 4),
                                               "priceRecent": round(facts.price_recent, 4)}))
    if facts.promo_share_before >= 0.2 and facts.promo_share_recent < facts.promo_share_before / 2:
        causes.append(Cause("promotion_ended", 0.5, f"{facts.promo_share_before:.0%} of baseline sales were on "
                            f"promotion, {facts.promo_share_recent:.0%} recently",
                            {"promoShareBefore": round(facts.promo_share_before, 3),
                             "promoShareRecent": round(facts.promo_share_recent, 3)}))
    causes.sort(key=lambda c: c.score, reverse=True)
    return causes or [_market("slower")]


def spike_causes(facts: CauseFacts) -> list[Cause]:
    """Candidate causes of a surge: a price cut or a promotion the partner reported, else the market."""
    causes: list[Cause] = []
    if facts.price_before and facts.price_recent and facts.price_recent < facts.price_before * 0.98:
        cut = (1 - facts.price_recent / facts.price_before) * 100
        causes.append(Cause("price_change", min(0.2 + cut / 100, 0.7), f"Price down {cut:.0f} % against the "
                            "baseline weeks", {"priceBefore": round(facts.price_before, 4),
                                               "priceRecent": round(facts.price_recent, 4)}))
    if facts.promo_share_recent >= 0.2 and facts.promo_share_recent > facts.promo_share_before * 2:
        causes.append(Cause("promotion", 0.6, f"{facts.promo_share_recent:.0%} of recent sales on promotion",
                            {"promoShareBefore": round(facts.promo_share_before, 3),
                             "promoShareRecent": round(facts.promo_share_recent, 3)}))
    causes.sort(key=lambda c: c.score, reverse=True)
    return causes or [_market("faster")]


def _market(direction: str) -> Cause:
    return Cause(MARKET, 0.1, f"No cause found in the data for selling {direction}: check the market "
                 "(competitor launch, weather, promotion)")
