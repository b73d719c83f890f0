"""``obsolescence_risk`` and its root cause, for any stock, dated or not.

Flagged when the days of supply (on-hand ÷ forecast demand per day) exceed a threshold (per SKU policy, else the
tenant default), or when nothing was sold or issued for ``idle_days`` while stock sat there.

The root cause is attributed from the ledger, each candidate with its evidence, strongest first:

- **discontinued**: the SKU is marked discontinued in the holder's planning policy;
- **over_receipt**: the receipts that built today's stock (newest first, until they add up to the on-hand) each
  brought more than ``cover_days`` of the demand the baseline saw on the day they arrived;
- **forecast_miss**: demand fell after those receipts (the rate since the first of them is ``drop_pct`` below the
  rate before it): the order was right when placed, the market moved;
- **quality**: lots in the stock are held, were exposed to excursions or arrived with a receipt mismatch.

The alert names the supplier of each receipt and the receipts themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hub.detect.velocity import Cause  # a root cause has the same shape as a candidate cause


@dataclass(frozen=True)
class ObsolescenceRules:
    max_days_of_supply: float = 180.0
    idle_days: int = 90
    cover_days: float = 60.0  # a receipt bringing more than this much demand is an over-receipt
    drop_pct: float = 40.0


@dataclass(frozen=True)
class ReceiptFact:
    """A receipt (or direct receipt movement) that added to the position."""

    received_on: str  # ISO date
    quantity: int
    rate_at_receipt: float | None  # baseline units/day on that day; None: no history then
    receipt_id: str | None = None
    dispatch_ref: str | None = None
    supplier: str | None = None  # the dispatch's shipper; None for a receipt booked without a dispatch

    def figures(self) -> dict[str, Any]:
        cover = self.quantity / self.rate_at_receipt if self.rate_at_receipt else None
        return {
            "receivedOn": self.received_on,
            "quantity": self.quantity,
            "ratePerDayAtReceipt": None if self.rate_at_receipt is None else round(self.rate_at_receipt, 3),
            "daysOfDemandReceived": None if cover is None else round(cover, 1),
            "receiptId": self.receipt_id,
            "dispatchRef": self.dispatch_ref,
            "supplier": self.supplier,
        }


@dataclass(frozen=True)
class ObsolescenceFinding:
    reason: str  # "days_of_supply" | "no_consumption"
    days_of_supply: float | None  # None: no demand at all
    idle_days: int | None
    severity: str

    def figures(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "daysOfSupply": None if self.days_of_supply is None else round(self.days_of_supply, 1),
            "daysWithoutConsumption": self.idle_days,
        }


def assess(
    on_hand: int, rate_per_day: float, idle_days: int | None, rules: ObsolescenceRules
) -> ObsolescenceFinding | None:
    """``idle_days``: days since the last sale or issue here (None when there never was one in the history)."""
    if on_hand <= 0:
        return None
    dos = on_hand / rate_per_day if rate_per_day > 0 else None
    if idle_days is not None and idle_days >= rules.idle_days:
        return ObsolescenceFinding("no_consumption", dos, idle_days, "critical" if idle_days >= 2 * rules.idle_days
                                   else "warning")
    if dos is None or dos > rules.max_days_of_supply:
        if dos is None and (idle_days is None or idle_days < rules.idle_days):
            return None  # no demand seen yet and not idle long enough: new stock, not dead stock
        severity = "critical" if dos is not None and dos > 2 * rules.max_days_of_supply else "warning"
        return ObsolescenceFinding("days_of_supply", dos, idle_days, severity)
    return None


def surplus_receipts(receipts: list[ReceiptFact], on_hand: int) -> list[ReceiptFact]:
    """The receipts that built today's stock: newest first until they add up to the on-hand (first in, first out)."""
    chosen: list[ReceiptFact] = []
    total = 0
    for receipt in sorted(receipts, key=lambda r: r.received_on, reverse=True):
        if total >= on_hand:
            break
        chosen.append(receipt)
        total += receipt.quantity
    return chosen


def root_causes(
    on_hand: int,
    receipts: list[ReceiptFact],
    rate_before: float | None,
    rate_since: float | None,
    rules: ObsolescenceRules,
    discontinued: bool = False,
    quality: dict[str, list[dict[str, Any]]] | None = None,
) -> list[Cause]:
    """Ranked root causes; empty when the ledger explains nothing (the alert then says so)."""
    causes: list[Cause] = []
    built = surplus_receipts(receipts, on_hand)
    if discontinued:
        causes.append(Cause("discontinued", 0.9, "The SKU is discontinued: remaining stock will not sell "
                                "through normal demand", {}))
    def rate_then(r: ReceiptFact) -> float | None:
        # 0.0 is a finding (in-stock days with no sale before it arrived: every unit was beyond demand), not "unknown"
        return r.rate_at_receipt if r.rate_at_receipt is not None else rate_before

    over = [r for r in built if (rate := rate_then(r)) is not None and r.quantity > rate * rules.cover_days]
    if over:
        excess = sum(r.quantity - math.floor((rate_then(r) or 0.0) * rules.cover_days) for r in over)
        suppliers = sorted({r.supplier or "not recorded" for r in over})
        causes.append(Cause(
            "over_receipt", 0.5 + 0.4 * min(excess / max(on_hand, 1), 1.0),
            f"Over-receipt: {len(over)} receipt(s) brought more than {rules.cover_days:.0f} days of the demand at "
            f"the time ({excess} units beyond it); supplier {', '.join(suppliers)}",
            {"receipts": [r.figures() for r in over], "excessUnits": excess, "suppliers": suppliers},
        ))
    if rate_before and rate_since is not None and rate_since < rate_before * (1 - rules.drop_pct / 100):
        drop = (1 - rate_since / rate_before) * 100
        causes.append(Cause(
            "forecast_miss", 0.45 + 0.3 * min(drop / 100, 1.0),
            f"Forecast miss: demand fell {drop:.0f} % after the stock was received",
            {"ratePerDayBefore": round(rate_before, 3), "ratePerDaySince": round(rate_since, 3)},
        ))
    quality = {k: v for k, v in (quality or {}).items() if v}
    if quality:
        causes.append(Cause("quality", 0.4 + 0.1 * len(quality), "Quality: " + ", ".join(
            f"{len(v)} {k.replace('_', ' ')}" for k, v in sorted(quality.items())), quality))
    causes.sort(key=lambda c: c.score, reverse=True)
    return causes
