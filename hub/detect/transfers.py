"""Transfer recommendations and forecast-driven replenishment, for one SKU across the sites of a network.

A site *needs* stock when on-hand plus inbound does not cover the forecast over its lead time: it would run out
before a purchase could arrive. It then wants enough for lead time + review period + safety stock (the order-up-to
level). A site has *surplus* above ``target_days`` of supply, or stock that will expire unsold at its own pace
(units a first-expired-first-out sell-through would not reach in time); it always keeps its own order-up-to level.

Surplus moves to need, largest need first, from the site with the most surplus, lots first-expired-first-out
(skipping lots that would not survive ``transit_days``). Across holders (vendor-managed inventory) the same
matching runs on what each holder's own transfers leave, over the pairs the sharing rule allows. Each
recommendation states the units it saves from expiry (unsold-at-expiry across both sites before minus after) and the
stockout days it avoids at the destination over its lead time + review period.

Replenishment is the order-up-to quantity minus on-hand and inbound; safety stock is ``z · σ · √(lead + review)``
where σ is the daily spread of the baseline's holdout errors (Poisson √rate when no error could be measured).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True)
class LotAtSite:
    lot_id: str | None
    lot_code: str | None
    expires_on: date | None
    on_hand: int


@dataclass(frozen=True)
class Site:
    holder: str
    location_id: str
    location_code: str
    rate: float  # forecast units per day
    on_hand: int  # sellable on-hand
    inbound: int = 0
    lead_time_days: float = 7.0
    review_days: float = 7.0
    target_days: float = 60.0
    sigma: float | None = None  # daily forecast error
    lots: tuple[LotAtSite, ...] = ()


@dataclass(frozen=True)
class PlanningRules:
    service_z: float = 1.65  # ~95 % cycle service level
    transit_days: int = 1


def safety_stock(site: Site, rules: PlanningRules) -> float:
    sigma = site.sigma if site.sigma is not None else math.sqrt(max(site.rate, 0.0))
    return rules.service_z * sigma * math.sqrt(site.lead_time_days + site.review_days)


def order_up_to(site: Site, rules: PlanningRules) -> float:
    return site.rate * (site.lead_time_days + site.review_days) + safety_stock(site, rules)


def need(site: Site, rules: PlanningRules) -> int:
    """Units the site should receive now, or 0 if it will not run out within its lead time."""
    if site.rate <= 0 or site.on_hand + site.inbound >= site.rate * site.lead_time_days:
        return 0
    return max(0, math.ceil(order_up_to(site, rules) - site.on_hand - site.inbound))


def unsold_at_expiry(lots: list[LotAtSite], rate: float, today: date) -> int:
    """Units that a first-expired-first-out sell-through at ``rate`` per day would not reach before they expire."""
    unsold = 0
    sold_before = 0.0
    for lot in sorted(lots, key=lambda l: (l.expires_on or date.max, l.lot_code or "")):
        if lot.expires_on is None:
            sold_before += lot.on_hand
            continue
        capacity = max(rate * max((lot.expires_on - today).days, 0) - sold_before, 0.0)
        sold = min(lot.on_hand, math.floor(capacity))
        unsold += lot.on_hand - sold
        sold_before += sold
    return unsold


def surplus(site: Site, today: date, rules: PlanningRules) -> int:
    keep = math.ceil(order_up_to(site, rules)) if site.rate > 0 else 0
    by_days = site.on_hand - max(keep, math.ceil(site.rate * site.target_days))
    expiring = unsold_at_expiry(list(site.lots), site.rate, today)
    return max(0, by_days, min(expiring, site.on_hand - keep))


def stockout_days(on_hand: float, rate: float, horizon: float) -> float:
    return max(0.0, horizon - on_hand / rate) if rate > 0 else 0.0


@dataclass(frozen=True)
class TransferPlan:
    source: Site
    destination: Site
    quantity: int
    lots: list[LotAtSite] = field(default_factory=list)
    units_saved_from_expiry: int = 0
    stockout_days_avoided: float = 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "lots": [{"lotCode": l.lot_code, "quantity": l.on_hand,
                      "expiresOn": l.expires_on.isoformat() if l.expires_on else None} for l in self.lots],
            "unitsSavedFromExpiry": self.units_saved_from_expiry,
            "stockoutDaysAvoided": round(self.stockout_days_avoided, 1),
        }


def pick_lots(source: Site, quantity: int, today: date, rules: PlanningRules) -> list[LotAtSite]:
    """First-expired-first-out, skipping lots that would be past expiry on arrival."""
    arrival = today + timedelta(days=rules.transit_days)
    picked: list[LotAtSite] = []
    left = quantity
    for lot in sorted(source.lots, key=lambda l: (l.expires_on or date.max, l.lot_code or "")):
        if left <= 0:
            break
        if lot.on_hand <= 0 or (lot.expires_on is not None and lot.expires_on <= arrival):
            continue
        take = min(left, lot.on_hand)
        picked.append(replace(lot, on_hand=take))
        left -= take
    return picked


def without(lots: tuple[LotAtSite, ...], taken: list[LotAtSite]) -> list[LotAtSite]:
    moved = {(l.lot_id, l.lot_code): l.on_hand for l in taken}
    return [replace(l, on_hand=l.on_hand - moved.get((l.lot_id, l.lot_code), 0)) for l in lots]


def plan_transfers(sites: list[Site], today: date, rules: PlanningRules,
                   allowed: Callable[[Site, Site], bool] | None = None) -> list[TransferPlan]:
    """Match needs with surpluses of one SKU across ``sites`` (only pairs ``allowed(source, destination)``)."""
    needs = {s.location_id: need(s, rules) for s in sites}
    spare = {s.location_id: surplus(s, today, rules) for s in sites}
    by_id = {s.location_id: s for s in sites}
    plans: list[TransferPlan] = []
    for dest in sorted(sites, key=lambda s: (-needs[s.location_id], s.location_id)):
        wanted = needs[dest.location_id]
        if wanted <= 0:
            continue
        for source_id in sorted(spare, key=lambda k: (-spare[k], k)):
            if wanted <= 0:
                break
            if source_id == dest.location_id or spare[source_id] <= 0 or needs[source_id] > 0:
                continue
            source = by_id[source_id]
            if allowed is not None and not allowed(source, dest):
                continue
            lots = pick_lots(source, min(wanted, spare[source_id]), today, rules) if source.lots else []
            quantity = sum(l.on_hand for l in lots) if source.lots else min(wanted, spare[source_id])
            if quantity <= 0:
                continue
            arrival = today + timedelta(days=rules.transit_days)
            before = unsold_at_expiry(list(source.lots), source.rate, today) + unsold_at_expiry(
                list(dest.lots), dest.rate, today)
            after = unsold_at_expiry(without(source.lots, lots), source.rate, today) + unsold_at_expiry(
                [*dest.lots, *lots], dest.rate, arrival)
            horizon = dest.lead_time_days + dest.review_days
            avoided = stockout_days(dest.on_hand + dest.inbound, dest.rate, horizon) - stockout_days(
                dest.on_hand + dest.inbound + quantity, dest.rate, horizon)
            plans.append(TransferPlan(source, dest, quantity, lots, max(before - after, 0), avoided))
            spare[source_id] -= quantity
            wanted -= quantity
        needs[dest.location_id] = wanted
    return plans


@dataclass(frozen=True)
class Replenishment:
    site: Site
    quantity: int
    safety_stock: float
    order_up_to: float
    transfers: list[TransferPlan] = field(default_factory=list)

    @property
    def transfer_units(self) -> int:
        return sum(t.quantity for t in self.transfers)

    @property
    def purchase_units(self) -> int:
        return max(self.quantity - self.transfer_units, 0)


def replenishment(
    site: Site, rules: PlanningRules, transfers: list[TransferPlan] | None = None
) -> Replenishment | None:
    """What to order for ``site`` (forecast over lead time + review + safety, less on-hand and inbound)."""
    if site.rate <= 0:
        return None
    level = order_up_to(site, rules)
    quantity = math.ceil(level - site.on_hand - site.inbound)
    if quantity <= 0:
        return None
    mine = [t for t in transfers or [] if t.destination.location_id == site.location_id]
    return Replenishment(site, quantity, safety_stock(site, rules), level, mine)
