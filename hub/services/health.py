"""Inventory health: what the stock a caller may see is worth, how old it is, how much of it is at risk, how it moves.

Valuation is by lot where the holder's receipt lines gave the lot a cost (the units-weighted cost of those lines,
kept in ``lot_costs`` with the ledger), else standard cost: the SKU's ``unit_cost`` in its currency. Units with
neither are counted but not valued. Age is days since the position's first stock-adding movement (``arrived_at``,
kept on the position with the ledger). Value at risk counts each position once, in the first of held (lot on hold,
quarantined or recalled), expiry (lot expired or an open ``expiry_risk`` alert on it) and obsolescence (an open
``obsolescence_risk`` alert on its SKU at that location), so the total is never more than the stock's value.

Consumption, turnover and the on-hand of earlier days come from the daily demand series (hub/services/demand.py),
so no figure rescans the ledger. A trend compares with 30 days earlier: from that day's snapshot (taken daily by
the hub) when every holder in scope has one, else rebuilt from the series, without value at risk.

Each query reads every position and demand series in scope, so its cost grows with the tenant: a report gets
``report_timeout_seconds`` of database time per request rather than a page read's ``request_timeout_seconds``
(schema/reports.py). Answering a tenant of 50,000 positions within a page read's 4 s on SecantusDB, which serves a
few thousand documents a second, would need a roll-up kept with the ledger (a few documents per tenant and location);
that is not built.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from hub import audit
from hub.dates import utcnow
from hub.errors import BadInput
from hub.leases import tenant_ids
from hub.models.alert import Alert, AlertStatus
from hub.models.health import HealthSettings, HealthSnapshot, LotCost
from hub.models.lot import Lot, LotStatus
from hub.models.movement import ADDING, Movement
from hub.models.planning import DemandSeries
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from tenants.access import DISPATCH_PARTIES, Access
from tenants.models import Scope as SharedScope
from tenants.roles import Group

if TYPE_CHECKING:
    from hub.state import HubState

log = logging.getLogger(__name__)

DEFAULT_BANDS = (30, 60, 90, 180)  # upper bounds in days: 0-30, 31-60, 61-90, 91-180, >180
HELD = {LotStatus.on_hold.value, LotStatus.quarantined.value, LotStatus.recalled.value}
AT_RISK = HELD | {LotStatus.expired.value}
RISK_ALERTS = {"expiry_risk", "obsolescence_risk"}
FEW_SKUS = 20  # positions of up to this many SKUs are judged from their SKUs' lots, not the owner's held lots
SUPPLY_WINDOW_DAYS = 30
TREND_DAYS = 30
SNAPSHOT_DAYS_KEPT = 400
SNAPSHOT_EVERY_SECONDS = 3600  # a missed day is taken within the hour once a hub is up
Amounts = dict[str, float]


@dataclass
class Band:
    from_days: int
    to_days: int | None  # None: open-ended
    units: int = 0
    value: Amounts = field(default_factory=lambda: defaultdict(float))


@dataclass
class Trend:
    """The figures of ``as_of`` (30 days before the asked day), for comparison."""

    as_of: date
    source: str  # "snapshot" or "series"
    on_hand_units: int = 0
    value: Amounts = field(default_factory=lambda: defaultdict(float))
    value_at_risk: Amounts | None = None  # only a snapshot knows what was at risk then
    consumed_units: int = 0
    days_of_supply: float | None = None
    turnover: float | None = None


@dataclass
class Health:
    on_hand_units: int = 0
    unvalued_units: int = 0  # units of SKUs without a cost
    unvalued_at_risk: int = 0  # of those, units at risk: the value at risk leaves out what it cannot price
    value: Amounts = field(default_factory=lambda: defaultdict(float))
    held: Amounts = field(default_factory=lambda: defaultdict(float))
    expiry_risk: Amounts = field(default_factory=lambda: defaultdict(float))
    obsolescence_risk: Amounts = field(default_factory=lambda: defaultdict(float))
    bands: list[Band] = field(default_factory=list)
    consumed_units: int = 0  # sales and issues over the supply window
    days_of_supply: float | None = None  # on hand / average daily consumption; None without consumption
    turnover: float | None = None  # annualised: consumption / average on-hand over the window x 365 / 30
    trend: Trend | None = None
    decisions: dict[str, tuple[int, Amounts]] = field(default_factory=dict)  # per decision: alerts and value


@dataclass
class Valued:
    """One position, valued and judged."""

    raw: dict[str, Any]
    units: int
    amounts: dict[str, float]  # value per currency (a lot bought in two has both); empty: no cost known
    age: int
    risk: str | None  # "held", "expiry", "obsolescence" or None
    standard: dict[str, float]  # at the SKU's standard cost alone: how anyone but the holder values it


def check_bands(bands: list[int]) -> tuple[int, ...]:
    if not bands or len(bands) > 12 or any(b <= 0 for b in bands) or sorted(set(bands)) != list(bands):
        raise BadInput("aging bands are 1-12 increasing positive day counts, e.g. [30, 60, 90, 180]", field="bands")
    return tuple(bands)


async def tenant_bands(tenant_id: str) -> tuple[int, ...]:
    """The tenant's aging bands, or the default ones."""
    found = await HealthSettings.get_pymongo_collection().find_one({"tenant_id": tenant_id}, {"aging_bands": 1})
    return tuple(found["aging_bands"]) if found and found.get("aging_bands") else DEFAULT_BANDS


async def set_tenant_bands(access: Access, bands: list[int] | None) -> tuple[int, ...]:
    """Admins choose the tenant's aging bands (None: back to the default); audited with before and after."""
    access.require(Group.administration)
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


async def record_lot_costs(session: AsyncClientSession | None, movements: list[dict[str, Any]]) -> None:
    """Add costed receipt lines to their lot's cost (called in the ledger's transaction)."""
    sums: dict[tuple[str, ObjectId, str], list[Any]] = {}
    for m in movements:
        if m.get("unit_cost") is None or m.get("lot_id") is None:
            continue
        entry = sums.setdefault((m["tenant_id"], m["lot_id"], m["currency"]), [m["sku_id"], 0.0, 0])
        entry[1] += m["quantity"] * m["unit_cost"]
        entry[2] += m["quantity"]
    if sums:
        await LotCost.get_pymongo_collection().bulk_write([
            UpdateOne({"tenant_id": tenant, "lot_id": lot, "currency": currency},
                      {"$inc": {"cost": cost, "units": units}, "$setOnInsert": {"sku_id": sku}}, upsert=True)
            for (tenant, lot, currency), (sku, cost, units) in sorted(sums.items(), key=str)
        ], ordered=False, session=session)


PER_SKU_QUERIES = 200  # up to this many SKUs (category) or (holder, SKU) pairs (lot costs) are read one by one


@dataclass(frozen=True)
class Branch:
    """One holder whose stock the caller sees: its own (``owner`` None), or a partner's, of the caller's SKUs."""

    holder: str
    owner: str | None


@dataclass(frozen=True)
class Scope:
    """What the caller may see, narrowed by its filter, for positions, demand series and snapshots (all keyed by
    holder, location and SKU).

    Each read is a flat equality on a prefix of one of the collection's indexes, one per holder (and per SKU for a
    SKU or a small category); whatever else the filter asks (the partner rule's SKU owner, the location, the SKUs,
    stock on hand) is checked here. On SecantusDB only such a filter is answered from the index: an ``$and``, an
    ``$or``, or one more field (``on_hand > 0``) reads every document of the collection, a long ``$in`` grows with
    the square of its length, and one store's health took 16 s over a 50,000-position tenant instead of 0.2 s."""

    branches: tuple[Branch, ...]
    location_id: ObjectId | None = None
    skus: dict[ObjectId, str] | None = None  # the SKU or the category's SKUs asked for, with their owners

    def admits(self, doc: dict[str, Any]) -> bool:
        return any(doc["tenant_id"] == b.holder and (b.owner is None or doc["sku_owner_id"] == b.owner)
                   for b in self.branches) \
            and (self.location_id is None or doc["location_id"] == self.location_id) \
            and (self.skus is None or doc["sku_id"] in self.skus)

    def queries(self, collection: str, day: str | None = None) -> list[dict[str, Any]]:
        queries: list[dict[str, Any]] = []
        for branch in self.branches:
            base: dict[str, Any] = {"tenant_id": branch.holder, **({"day": day} if day else {})}
            if self.location_id is not None:
                base["location_id"] = self.location_id
            if self.skus is not None and len(self.skus) <= PER_SKU_QUERIES:
                for sku, owner in sorted(self.skus.items(), key=str):
                    if branch.owner is not None and owner != branch.owner:
                        continue
                    if self.location_id is not None or collection == "demand_series":
                        queries.append({**base, "sku_id": sku})
                    elif collection == "stock_positions":
                        queries.append({"sku_owner_id": owner, "tenant_id": branch.holder, "sku_id": sku})
                    elif base not in queries:
                        queries.append(base)  # snapshots: the holder's day, SKUs picked here
            elif branch.owner is not None and self.location_id is None and collection != "health_snapshots":
                queries.append({"sku_owner_id": branch.owner, "tenant_id": branch.holder})
            else:
                queries.append(base)
        return queries

    async def find(self, collection: Any, *, day: str | None = None, positive: bool = False,
                   projection: dict[str, int] | None = None) -> list[dict[str, Any]]:
        """The documents in scope (``positive``: with stock on hand); reads run a few at a time."""
        docs: dict[Any, dict[str, Any]] = {}
        queries = self.queries(collection.name, day)
        for start in range(0, len(queries), 8):
            for found in await asyncio.gather(*(collection.find(query, projection).to_list(None)
                                                for query in queries[start:start + 8])):
                docs.update((doc["_id"], doc) for doc in found
                            if self.admits(doc) and (not positive or doc.get("on_hand", 0) > 0))
        return list(docs.values())


async def scope_of(access: Access, *, location_id: ObjectId | None = None, sku_id: ObjectId | None = None,
                   holder_id: str | None = None, category: str | None = None) -> Scope:
    rule = access.stock("read")
    branches = []
    for clause in rule.get("$or", [rule]):  # tenants/access.py: own stock, and partners' stock of own SKUs
        holders = clause["tenant_id"]
        for holder in holders["$in"] if isinstance(holders, dict) else [holders]:
            if holder_id is None or holder == holder_id:
                branches.append(Branch(holder, clause.get("sku_owner_id")))
    skus = None
    if sku_id is not None or category is not None:
        query: dict[str, Any] = {"_id": sku_id} if sku_id is not None else {}
        query.update({"category": category} if category is not None else {})
        found = Sku.get_pymongo_collection().find(query, {"tenant_id": 1})
        skus = {s["_id"]: s["tenant_id"] async for s in found}
    return Scope(tuple(branches), location_id, skus)


async def _arrivals(positions: list[dict[str, Any]]) -> None:
    """Fill ``arrived_at`` on positions written before it was kept (from the ledger, once, then stored)."""
    missing = [p for p in positions if p.get("arrived_at") is None]
    if not missing:
        return
    for p in missing:
        first = await Movement.get_pymongo_collection().find_one(
            {"tenant_id": p["tenant_id"], "location_id": p["location_id"], "sku_id": p["sku_id"],
             "lot_id": p.get("lot_id"), "kind": {"$in": [k.value for k in ADDING]}, "quantity": {"$gt": 0}},
            {"occurred_at": 1}, sort=[("occurred_at", 1)],
        )
        if first is not None:
            p["arrived_at"] = first["occurred_at"]
    found = [UpdateOne({"_id": p["_id"]}, {"$min": {"arrived_at": p["arrived_at"]}})
             for p in missing if p.get("arrived_at") is not None]
    if found:
        await StockPosition.get_pymongo_collection().bulk_write(found, ordered=False)


async def _all(cursors: list[Any]) -> list[dict[str, Any]]:
    return [doc for batch in await asyncio.gather(*(c.to_list(None) for c in cursors)) for doc in batch]


async def value_positions(positions: list[dict[str, Any]], today: date, own: str | None,
                          emptied: dict[tuple[str, Any, Any], date] | None = None) -> list[Valued]:
    """Value, age and judge the risk of each position (each counted once, held before expiry before obsolescence).

    ``own``: the tenant the figures are for. Its own positions are valued at what it paid (its lot costs); anyone
    else's at their SKU's standard cost: what a holder paid for its stock (perhaps to another supplier) is the
    holder's business, not that of the brand reading its goods there. ``None``: every position at standard cost.
    ``emptied``: per (holder, location, SKU), the last day that ended with nothing there: what is on hand now
    arrived after it, however long ago the first stock did."""
    if not positions:
        return []
    await _arrivals(positions)
    # Flat equality reads on index prefixes, the rest checked here (a long $in, an $and or a field beyond the index
    # reads the whole collection on SecantusDB): the owners' SKUs; the lots of a few SKUs by SKU, else the owners'
    # held and expired lots; the lot costs of up to PER_SKU_QUERIES (holder, SKU) pairs by pair, else the holders';
    # the holders' open alerts.
    owners = sorted({p["sku_owner_id"] for p in positions})
    holders = sorted({p["tenant_id"] for p in positions})
    skus_held = sorted({p["sku_id"] for p in positions}, key=str)
    lots_collection, costs_collection = Lot.get_pymongo_collection(), LotCost.get_pymongo_collection()
    cost_fields = {"tenant_id": 1, "lot_id": 1, "cost": 1, "units": 1, "currency": 1}
    if len(skus_held) <= FEW_SKUS:
        lot_reads = [lots_collection.find({"sku_id": sku}, {"status": 1}) for sku in skus_held]
    else:
        lot_reads = [lots_collection.find({"tenant_id": owner, "status": status}, {"status": 1})
                     for owner in owners for status in sorted(AT_RISK)]
    if len(skus_held) * len(holders) <= PER_SKU_QUERIES:
        cost_reads = [costs_collection.find({"tenant_id": h, "sku_id": sku}, cost_fields)
                      for h in holders for sku in skus_held]
    else:
        cost_reads = [costs_collection.find({"tenant_id": h}, cost_fields) for h in holders]
    sku_reads = [Sku.get_pymongo_collection().find({"tenant_id": owner}, {"unit_cost": 1, "currency": 1})
                 for owner in owners]
    alert_reads = [Alert.get_pymongo_collection().find({"tenant_id": h, "status": status}, {"kind": 1, "dedupe_key": 1})
                   for h in holders for status in (AlertStatus.open.value, AlertStatus.acknowledged.value)]
    sku_docs, lot_docs, cost_docs, alert_docs = await asyncio.gather(  # all in flight together
        _all(sku_reads), _all(lot_reads), _all(cost_reads), _all(alert_reads))
    skus = {s["_id"]: s for s in sku_docs if s.get("unit_cost") is not None}
    lots = {lot["_id"]: lot for lot in lot_docs if lot.get("status") in AT_RISK}
    lot_costs: dict[tuple[str, Any], list[tuple[float, int, str]]] = {}  # per lot: (unit cost, units, currency)
    for c in cost_docs:
        if c["units"] > 0:
            lot_costs.setdefault((c["tenant_id"], c["lot_id"]), []).append(
                (c["cost"] / c["units"], c["units"], c["currency"]))
    alert_docs = [a for a in alert_docs if a.get("kind") in RISK_ALERTS]
    open_risks = {a["dedupe_key"] for a in alert_docs}
    valued = []
    for p in positions:
        units = int(p["on_hand"])
        sku = skus.get(p["sku_id"], {})
        standard: dict[str, float] = {}
        if sku.get("unit_cost") is not None and sku.get("currency"):
            standard[sku["currency"]] = units * sku["unit_cost"]
        amounts: dict[str, float] = {}
        bought = lot_costs.get((p["tenant_id"], p.get("lot_id"))) if p["tenant_id"] == own else None
        if bought:  # the units on hand carry each currency's share of the units received
            received = sum(n for _, n, _ in bought)
            for cost, n, currency in bought:
                amounts[currency] = amounts.get(currency, 0.0) + units * n / received * cost
        else:
            amounts = dict(standard)
        first = p.get("arrived_at")
        age = max(0, (today - first.date()).days) if first is not None else 0
        empty = (emptied or {}).get((p["tenant_id"], p["location_id"], p["sku_id"]))
        if empty is not None:
            age = max(0, min(age, (today - empty).days - 1))
        status = lots.get(p.get("lot_id"), {}).get("status")
        expires = p.get("effective_expires_on") or p.get("expires_on")
        expired = status == LotStatus.expired.value or (expires is not None and expires.date() < today)
        risk = None
        if status in HELD:
            risk = "held"
        elif expired or f"expiry_risk:{p.get('lot_id') or p['sku_id']}:{p['location_id']}" in open_risks:
            risk = "expiry"
        elif f"obsolescence_risk:{p['tenant_id']}:{p['location_id']}:{p['sku_id']}" in open_risks:
            risk = "obsolescence"
        valued.append(Valued(p, units, amounts, age, risk, standard))
    return valued


def _last_empty(series: dict[str, Any]) -> date | None:
    """The last day a series ended with nothing on hand (the day before its first when it never did since)."""
    running = series.get("on_hand", 0)  # the closing on-hand after the newest day
    for day in sorted(series.get("days", {}), reverse=True):
        running -= series["days"][day].get("n", 0)  # now: the closing on-hand of the day before ``day``
        if running <= 0:
            return date.fromisoformat(day) - timedelta(days=1)
    return None


def _series_figures(series: list[dict[str, Any]], end: date) -> tuple[int, int, int]:
    """(on-hand at the end of ``end``, on-hand 30 days before, units consumed in the 30 days up to ``end``)."""
    last, first = end.isoformat(), (end - timedelta(days=SUPPLY_WINDOW_DAYS)).isoformat()
    on_hand = before = consumed = 0
    for s in series:
        later = earlier = 0
        for day, figures in s.get("days", {}).items():
            if day > first:  # ISO days order as strings: no date parsing in this loop over every day of every series
                change = figures.get("n", 0)
                earlier += change
                if day > last:
                    later += change
                else:
                    consumed += figures.get("s", 0)
        on_hand += int(s.get("on_hand", 0) - later)
        before += int(s.get("on_hand", 0) - earlier)
    return on_hand, before, int(consumed)


def _turnover(consumed: int, on_hand: int, before: int) -> float | None:
    average = (on_hand + before) / 2
    return round(consumed / average * 365 / SUPPLY_WINDOW_DAYS, 2) if average > 0 else None


def _days_of_supply(on_hand: int, consumed: int) -> float | None:
    return round(on_hand / (consumed / SUPPLY_WINDOW_DAYS), 1) if consumed > 0 else None


async def inventory_health(
    access: Access,
    today: date,
    *,
    location_id: ObjectId | None = None,
    sku_id: ObjectId | None = None,
    holder_id: str | None = None,
    category: str | None = None,
    bands: tuple[int, ...] = DEFAULT_BANDS,
) -> Health:
    scope = await scope_of(access, location_id=location_id, sku_id=sku_id, holder_id=holder_id, category=category)
    # The two large reads (every position and every demand series in scope) are in flight together.
    positions, series = await asyncio.gather(
        scope.find(StockPosition.get_pymongo_collection(), positive=True),
        scope.find(DemandSeries.get_pymongo_collection(), projection={
            "tenant_id": 1, "sku_owner_id": 1, "location_id": 1, "sku_id": 1, "on_hand": 1, "days": 1}),
    )
    health = Health(bands=[Band(lo, hi) for lo, hi in zip((0, *(b + 1 for b in bands)), (*bands, None))])
    totals: dict[tuple[str, Any, Any], tuple[Amounts, list[int]]] = {}
    at_risk = {"held": health.held, "expiry": health.expiry_risk, "obsolescence": health.obsolescence_risk}
    emptied = {(s["tenant_id"], s["location_id"], s["sku_id"]): day for s in series
               if (day := _last_empty(s)) is not None}
    for v in await value_positions(positions, today, access.tenant_id, emptied):
        health.on_hand_units += v.units
        band = next(b for b in health.bands if b.to_days is None or v.age <= b.to_days)
        band.units += v.units
        if not v.amounts:
            health.unvalued_units += v.units
            health.unvalued_at_risk += v.units if v.risk is not None else 0
            continue
        risk = at_risk.get(v.risk) if v.risk is not None else None
        amounts, units = totals.setdefault((v.raw["tenant_id"], v.raw["location_id"], v.raw["sku_id"]),
                                           (defaultdict(float), [0]))
        units[0] += v.units
        for currency, amount in v.amounts.items():
            health.value[currency] += amount
            band.value[currency] += amount
            amounts[currency] += amount
            if risk is not None:
                risk[currency] += amount
    unit_values = {key: {c: a / units[0] for c, a in amounts.items()} for key, (amounts, units) in totals.items()
                   if units[0]}
    series_now, series_before, health.consumed_units = _series_figures(series, today)
    health.days_of_supply = _days_of_supply(health.on_hand_units, health.consumed_units)
    health.turnover = _turnover(health.consumed_units, series_now, series_before)
    health.trend = await _trend(scope, series, today - timedelta(days=TREND_DAYS), unit_values, access.tenant_id)
    health.decisions = await decided(access, today - timedelta(days=SUPPLY_WINDOW_DAYS - 1), today)
    return health


async def _trend(scope: Scope, series: list[dict[str, Any]], then: date,
                 unit_values: dict[tuple[str, Any, Any], dict[str, float]], viewer: str) -> Trend:
    each = [_series_figures([s], then) for s in series]  # one pass over the days, not one per use
    on_hand, before, consumed = (sum(figures[n] for figures in each) for n in range(3))
    snapshots = await scope.find(HealthSnapshot.get_pymongo_collection(), day=then.isoformat())
    holders = {s["tenant_id"] for s, figures in zip(series, each) if figures[0]} | {s["tenant_id"] for s in snapshots}
    taken = {d["tenant_id"] async for d in HealthSettings.get_pymongo_collection().find(
        {"tenant_id": {"$in": sorted(holders)}, "snapshot_days": then.isoformat()}, {"tenant_id": 1})}
    # A partner's snapshot is read at standard cost (see value_positions); one taken before it kept that is not read.
    own, partners = ("value", "at_risk"), ("standard_value", "standard_at_risk")
    fields = {s["tenant_id"]: own if s["tenant_id"] == viewer else partners for s in snapshots}
    if holders <= taken and all(fields[s["tenant_id"]][0] in s for s in snapshots):
        trend = Trend(as_of=then, source="snapshot", value_at_risk=defaultdict(float))
        for snap in snapshots:
            value, at_risk = fields[snap["tenant_id"]]
            trend.on_hand_units += snap["units"]
            for currency, amount in snap[value].items():
                trend.value[currency] += amount
            for currency, amount in snap[at_risk].items():
                trend.value_at_risk[currency] += amount  # type: ignore[index]
    else:
        trend = Trend(as_of=then, source="series", on_hand_units=on_hand)
        standard = {s["_id"]: {s["currency"]: s["unit_cost"]} async for s in Sku.get_pymongo_collection().find(
            {"tenant_id": {"$in": sorted({s["sku_owner_id"] for s in series})}, "unit_cost": {"$ne": None}},
            {"unit_cost": 1, "currency": 1}) if s.get("currency")}
        for s, (units, _, _) in zip(series, each):
            key = (s["tenant_id"], s["location_id"], s["sku_id"])
            for currency, cost in (unit_values.get(key) or standard.get(s["sku_id"], {})).items():
                if units > 0:
                    trend.value[currency] += units * cost
    trend.consumed_units = consumed
    trend.days_of_supply = _days_of_supply(trend.on_hand_units, consumed)
    trend.turnover = _turnover(consumed, on_hand, before)
    return trend


async def snapshot(tenant_id: str, day: date) -> int:
    """Store the holder's stock per location and SKU as of ``day`` (re-running replaces it); answers documents."""
    # The holder alone (an index prefix; on SecantusDB one more field in the filter reads every position there is)
    positions = [p for p in await StockPosition.get_pymongo_collection().find({"tenant_id": tenant_id}).to_list(None)
                 if p["on_hand"] > 0]
    grouped: dict[tuple[Any, Any], dict[str, Any]] = {}
    for v in await value_positions(positions, day, tenant_id):
        p = v.raw
        doc = grouped.setdefault((p["location_id"], p["sku_id"]), {
            "tenant_id": tenant_id, "sku_owner_id": p["sku_owner_id"], "location_id": p["location_id"],
            "sku_id": p["sku_id"], "day": day.isoformat(), "units": 0, "value": {}, "at_risk": {},
            "standard_value": {}, "standard_at_risk": {}})  # the holder's view, and its partners' (standard cost)
        doc["units"] += v.units
        for value, at_risk, amounts in (("value", "at_risk", v.amounts),
                                        ("standard_value", "standard_at_risk", v.standard)):
            for currency, amount in amounts.items():
                doc[value][currency] = doc[value].get(currency, 0.0) + amount
                if v.risk is not None:
                    doc[at_risk][currency] = doc[at_risk].get(currency, 0.0) + amount
    snapshots = HealthSnapshot.get_pymongo_collection()
    await snapshots.delete_many({"tenant_id": tenant_id, "day": day.isoformat()})
    if grouped:
        await snapshots.insert_many(list(grouped.values()), ordered=False)
    oldest = (day - timedelta(days=SNAPSHOT_DAYS_KEPT)).isoformat()
    await snapshots.delete_many({"tenant_id": tenant_id, "day": {"$lt": oldest}})
    # The day is marked taken last: a snapshot cut short is simply taken again.
    await HealthSettings.get_pymongo_collection().update_one(
        {"tenant_id": tenant_id},
        {"$push": {"snapshot_days": {"$each": [day.isoformat()], "$slice": -SNAPSHOT_DAYS_KEPT}},
         "$set": {"updated_at": utcnow()}},
        upsert=True,
    )
    return len(grouped)


async def snapshot_due(tenants: list[str] | None, day: date) -> int:
    """Take ``day``'s snapshot for each tenant (None: all) that has none yet; answers how many were taken."""
    query: dict[str, Any] = {} if tenants is None else {"_id": {"$in": tenants}}
    tenants_collection = HealthSettings.get_pymongo_collection().database["tenants"]
    ids = [str(t["_id"]) async for t in tenants_collection.find(query, {"_id": 1})]
    done = {d["tenant_id"] async for d in HealthSettings.get_pymongo_collection().find(
        {"tenant_id": {"$in": ids}, "snapshot_days": day.isoformat()}, {"tenant_id": 1})}
    taken = 0
    for tenant in ids:
        if tenant not in done:
            await snapshot(tenant, day)
            taken += 1
    return taken


async def stake_of(alert: Alert) -> dict[str, float]:
    """The value of the stock an alert is about (its lots, else its SKUs), at its locations when it names any,
    held by its owner or audience."""
    def ids(kind: str) -> list[ObjectId]:
        return [ObjectId(s.id) for s in alert.subjects if s.kind == kind and ObjectId.is_valid(s.id)]

    lots, skus, locations = ids("lot"), ids("sku"), ids("location")
    if not lots and not skus:
        return {}
    query: dict[str, Any] = {"tenant_id": {"$in": sorted({alert.tenant_id, *alert.audience})}, "on_hand": {"$gt": 0}}
    query.update({"lot_id": {"$in": lots}} if lots else {"sku_id": {"$in": skus}})
    if locations:
        query["location_id"] = {"$in": locations}
    positions = await StockPosition.get_pymongo_collection().find(query).to_list(1000)
    stake: Amounts = defaultdict(float)
    # Valued at what the owner paid only if nobody else reads it: the value is shown to the alert's whole audience.
    own = alert.tenant_id if set(alert.audience) <= {alert.tenant_id} else None
    for v in await value_positions(positions, utcnow().date(), own):
        for currency, amount in v.amounts.items():
            stake[currency] += round(amount, 2)
    return dict(stake)


async def decided(access: Access, since: date, until: date) -> dict[str, tuple[int, Amounts]]:
    """Alerts the caller sees that a person decided in [since, until]: per decision, how many and the value."""
    figures: dict[str, tuple[int, Amounts]] = {}
    # The (audience, status) prefix of an index, the rest of the sharing rule and the window checked here: on
    # SecantusDB the rule's $or and the ranges beside it read every tenant's alerts.
    owners = {access.tenant_id, *access.sharing(SharedScope.alerts)}
    begin, end = start_of(since), start_of(until + timedelta(days=1))
    async for raw in Alert.get_pymongo_collection().find(
        {"audience": access.tenant_id, "status": AlertStatus.resolved.value},
        {"decision": 1, "decision_value": 1, "resolved_at": 1, "tenant_id": 1, "audience_rule": 1},
    ):
        visible = raw["tenant_id"] in owners or raw.get("audience_rule") == DISPATCH_PARTIES
        if not visible or raw.get("decision") is None or not (begin <= (raw.get("resolved_at") or end) < end):
            continue
        count, value = figures.setdefault(raw["decision"], (0, defaultdict(float)))
        for currency, amount in (raw.get("decision_value") or {}).items():
            value[currency] += amount
        figures[raw["decision"]] = (count + 1, value)
    return figures


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def start_snapshots(hub: HubState) -> None:
    """Startup hook: every hour, take today's snapshot for the tenants whose periodic work this process leases."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_EVERY_SECONDS)
            try:
                taken = await snapshot_due(await tenant_ids(hub.database, hub.partitions), utcnow().date())
                if taken:
                    log.info("health snapshots: %d tenants", taken)
            except Exception:
                log.exception("health snapshots failed; retrying within the hour")

    hub.spawn("health-snapshots", loop)
