"""Inventory health: what the stock a caller may see is worth, how old it is, how much of it is at risk.

Valuation is by lot where the holder's receipt lines gave the lot a cost (the units-weighted cost of those lines),
else standard cost: the SKU's ``unit_cost`` in its currency. Units with neither are counted but not valued. Age is
days since the position's first stock-adding movement (for a lot: since it arrived at that location). Value at risk
counts each position once, in the first of held (lot on hold, quarantined or recalled), expiry (lot expired or an
open ``expiry_risk`` alert on it) and obsolescence (an open ``obsolescence_risk`` alert on its SKU at that
location), so the total is never more than the stock's value.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from bson import ObjectId

from hub import audit
from hub.dates import utcnow
from hub.errors import BadInput
from hub.models.alert import Alert, AlertStatus
from hub.models.health import HealthSettings
from hub.models.lot import Lot, LotStatus
from hub.models.movement import Movement, MovementKind
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from tenants.access import Access

DEFAULT_BANDS = (30, 60, 90, 180)  # upper bounds in days: 0-30, 31-60, 61-90, 91-180, >180
HELD = {LotStatus.on_hold.value, LotStatus.quarantined.value, LotStatus.recalled.value}
ADDING = [MovementKind.receipt.value, MovementKind.transfer_in.value, MovementKind.return_.value,
          MovementKind.adjustment.value, MovementKind.count.value]
CONSUMING = [MovementKind.sale.value, MovementKind.issue.value]
SUPPLY_WINDOW_DAYS = 30


@dataclass
class Band:
    from_days: int
    to_days: int | None  # None: open-ended
    units: int = 0
    value: dict[str, float] = field(default_factory=lambda: defaultdict(float))


@dataclass
class Health:
    on_hand_units: int = 0
    unvalued_units: int = 0  # units of SKUs without a cost
    value: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    held: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    expiry_risk: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    obsolescence_risk: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    bands: list[Band] = field(default_factory=list)
    consumed_units: int = 0  # sales and issues over the supply window
    days_of_supply: float | None = None  # on hand / average daily consumption; None without consumption


def check_bands(bands: list[int]) -> tuple[int, ...]:
    if not bands or len(bands) > 12 or any(b <= 0 for b in bands) or sorted(set(bands)) != list(bands):
        raise BadInput("aging bands are 1-12 increasing positive day counts, e.g. [30, 60, 90, 180]", field="bands")
    return tuple(bands)


async def tenant_bands(tenant_id: str) -> tuple[int, ...]:
    """The tenant's aging bands, or the default ones."""
    found = await HealthSettings.get_pymongo_collection().find_one({"tenant_id": tenant_id}, {"aging_bands": 1})
    return tuple(found["aging_bands"]) if found else DEFAULT_BANDS


async def set_tenant_bands(access: Access, bands: list[int] | None) -> tuple[int, ...]:
    """Admins choose the tenant's aging bands (None: back to the default); audited with before and after."""
    access.require_admin()
    chosen = check_bands(bands) if bands is not None else DEFAULT_BANDS
    before = await tenant_bands(access.tenant_id)
    await HealthSettings.get_pymongo_collection().update_one(
        {"tenant_id": access.tenant_id},
        {"$set": {"aging_bands": list(chosen), "updated_at": utcnow()}},
        upsert=True,
    )
    await audit.record(
        "health.aging_bands_set", tenant_id=access.tenant_id, principal=access.principal,
        details={"before": {"agingBands": list(before)}, "after": {"agingBands": list(chosen)}},
    )
    return chosen


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def inventory_health(
    access: Access,
    today: date,
    *,
    location_id: ObjectId | None = None,
    sku_id: ObjectId | None = None,
    holder_id: str | None = None,
    bands: tuple[int, ...] = DEFAULT_BANDS,
) -> Health:
    clauses: list[dict[str, Any]] = [access.stock("read"), {"on_hand": {"$gt": 0}}]
    if location_id is not None:
        clauses.append({"location_id": location_id})
    if sku_id is not None:
        clauses.append({"sku_id": sku_id})
    if holder_id is not None:
        clauses.append({"tenant_id": holder_id})
    positions = await StockPosition.get_pymongo_collection().find({"$and": clauses}).to_list(None)
    health = Health(bands=[Band(lo, hi) for lo, hi in zip((0, *(b + 1 for b in bands)), (*bands, None))])
    if not positions:
        return health
    sku_ids = sorted({p["sku_id"] for p in positions})
    skus = {s["_id"]: s async for s in Sku.get_pymongo_collection().find(
        {"_id": {"$in": sku_ids}}, {"unit_cost": 1, "currency": 1})}
    lot_ids = sorted({p["lot_id"] for p in positions if p.get("lot_id")})
    lots = {lot["_id"]: lot async for lot in Lot.get_pymongo_collection().find(
        {"_id": {"$in": lot_ids}}, {"status": 1})}
    holders = sorted({p["tenant_id"] for p in positions})
    locations = sorted({p["location_id"] for p in positions})
    scope = {"tenant_id": {"$in": holders}, "location_id": {"$in": locations}, "sku_id": {"$in": sku_ids}}
    arrived = {
        (d["_id"]["t"], d["_id"]["l"], d["_id"]["s"], d["_id"]["lot"]): d["first"]
        async for d in await Movement.get_pymongo_collection().aggregate([
            {"$match": {**scope, "kind": {"$in": ADDING}, "quantity": {"$gt": 0}}},
            {"$group": {"_id": {"t": "$tenant_id", "l": "$location_id", "s": "$sku_id", "lot": "$lot_id"},
                        "first": {"$min": "$occurred_at"}}},
        ])
    }
    # Lot costs: what the holder paid for the lot on its receipt lines (weighted by units received).
    lot_costs = {
        (d["_id"]["t"], d["_id"]["s"], d["_id"]["lot"]): (d["cost"] / d["units"], d["_id"]["c"])
        async for d in await Movement.get_pymongo_collection().aggregate([
            {"$match": {"tenant_id": {"$in": holders}, "sku_id": {"$in": sku_ids}, "lot_id": {"$in": lot_ids},
                        "kind": MovementKind.receipt.value, "unit_cost": {"$ne": None}}},
            {"$group": {"_id": {"t": "$tenant_id", "s": "$sku_id", "lot": "$lot_id", "c": "$currency"},
                        "cost": {"$sum": {"$multiply": ["$quantity", "$unit_cost"]}}, "units": {"$sum": "$quantity"}}},
        ])
        if d["units"] > 0
    }
    since = _start(today - timedelta(days=SUPPLY_WINDOW_DAYS))
    async for d in await Movement.get_pymongo_collection().aggregate([
        {"$match": {**scope, "kind": {"$in": CONSUMING}, "occurred_at": {"$gte": since}}},
        {"$group": {"_id": None, "units": {"$sum": "$quantity"}}},
    ]):
        health.consumed_units = -int(d["units"])
    open_risks = {a["dedupe_key"] async for a in Alert.get_pymongo_collection().find(
        {"kind": {"$in": ["expiry_risk", "obsolescence_risk"]}, "tenant_id": {"$in": holders},
         "status": {"$ne": AlertStatus.resolved.value}}, {"dedupe_key": 1})}
    for p in positions:
        units = int(p["on_hand"])
        health.on_hand_units += units
        sku = skus.get(p["sku_id"], {})
        cost, currency = lot_costs.get(
            (p["tenant_id"], p["sku_id"], p.get("lot_id")), (sku.get("unit_cost"), sku.get("currency"))
        )
        value = units * cost if cost is not None and currency else None
        if value is None:
            health.unvalued_units += units
        else:
            health.value[currency] += value
        first = arrived.get((p["tenant_id"], p["location_id"], p["sku_id"], p.get("lot_id")))
        age = max(0, (today - first.date()).days) if first is not None else 0
        band = next(b for b in health.bands if b.to_days is None or age <= b.to_days)
        band.units += units
        if value is not None:
            band.value[currency] += value
            status = lots.get(p.get("lot_id"), {}).get("status")
            expiry_key = f"expiry_risk:{p.get('lot_id') or p['sku_id']}:{p['location_id']}"
            expires = p.get("effective_expires_on") or p.get("expires_on")
            expired = status == LotStatus.expired.value or (expires is not None and expires.date() < today)
            if status in HELD:
                health.held[currency] += value
            elif expired or expiry_key in open_risks:
                health.expiry_risk[currency] += value
            elif f"obsolescence_risk:{p['tenant_id']}:{p['location_id']}:{p['sku_id']}" in open_risks:
                health.obsolescence_risk[currency] += value
    if health.consumed_units > 0:
        health.days_of_supply = round(health.on_hand_units / (health.consumed_units / SUPPLY_WINDOW_DAYS), 1)
    return health
