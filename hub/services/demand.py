"""Daily demand series: written with the movements, read as day lists for the baseline, rebuilt from the ledger.

Sales and issues count as demand (returns do not reduce it); every kind moves the series' on-hand, so a day's
closing on-hand, and with it the stockout days the baseline leaves out, comes from the series alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.dates import utcnow
from hub.detect import demand as model
from hub.detect.demand import Day
from hub.models.movement import Movement
from hub.models.planning import DemandSeries

DEMAND_KINDS = ("sale", "issue")
HISTORY_DAYS = model.FIT_DAYS + 28  # fitting window plus room for the recent window and holdout


def _day(value: datetime) -> str:
    return value.date().isoformat()


def series_writes(movements: Iterable[dict[str, Any]]) -> list[UpdateOne]:
    """One upsert per (holder, location, SKU) adding the movements' daily sums (called in the ledger's transaction)."""
    grouped: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for m in movements:
        key = (m["tenant_id"], m["location_id"], m["sku_id"])
        entry = grouped.setdefault(key, {"owner": m["sku_owner_id"], "inc": {"on_hand": 0}, "days": set(),
                                         "sold": set()})
        day = _day(m["occurred_at"])
        inc = entry["inc"]
        inc["on_hand"] += m["quantity"]
        inc[f"days.{day}.n"] = inc.get(f"days.{day}.n", 0) + m["quantity"]
        entry["days"].add(day)
        if m["kind"] in DEMAND_KINDS:
            units = -m["quantity"]
            inc[f"days.{day}.s"] = inc.get(f"days.{day}.s", 0) + units
            entry["sold"].add(day)
            if m.get("unit_price") is not None:
                inc[f"days.{day}.pv"] = inc.get(f"days.{day}.pv", 0) + m["unit_price"] * units
                inc[f"days.{day}.pu"] = inc.get(f"days.{day}.pu", 0) + units
            if m.get("promotion"):
                inc[f"days.{day}.pr"] = inc.get(f"days.{day}.pr", 0) + units
    now = utcnow()
    writes = []
    for (tenant, location, sku), entry in grouped.items():
        update: dict[str, Any] = {
            "$inc": entry["inc"],
            "$min": {"first_day": min(entry["days"])},
            "$set": {"updated_at": now},
            "$setOnInsert": {"sku_owner_id": entry["owner"]},
        }
        if entry["sold"]:
            update["$max"] = {"last_sale_day": max(entry["sold"])}
        writes.append(UpdateOne({"tenant_id": tenant, "location_id": location, "sku_id": sku}, update, upsert=True))
    return writes


async def record(session: AsyncClientSession | None, movements: list[dict[str, Any]]) -> None:
    writes = series_writes(movements)
    if writes:
        await DemandSeries.get_pymongo_collection().bulk_write(writes, ordered=False, session=session)


@dataclass(frozen=True)
class SeriesView:
    """One series read as days (oldest first) up to, not including, ``until``."""

    raw: dict[str, Any]
    days: list[Day]
    closing: dict[date, int]  # on-hand at the end of each day
    prices: dict[date, tuple[float, float, float]]  # price × units, priced units, promotion units

    @property
    def key(self) -> tuple[str, Any, Any]:
        return (self.raw["tenant_id"], self.raw["location_id"], self.raw["sku_id"])


def calendar(until: date, span: int = HISTORY_DAYS) -> list[tuple[date, str]]:
    """The days of a view, oldest first, with their keys: built once per sweep, shared by every series."""
    start = until - timedelta(days=span)
    return [(start + timedelta(days=n), (start + timedelta(days=n)).isoformat()) for n in range(span)]


def view(raw: dict[str, Any], until: date, span: int = HISTORY_DAYS,
         days_of: list[tuple[date, str]] | None = None) -> SeriesView:
    """The series as days before ``until`` (at most ``span``, from its first day on), with closing on-hand."""
    entries: dict[str, dict[str, float]] = raw.get("days") or {}
    grid = days_of if days_of is not None else calendar(until, span)
    first = raw.get("first_day") or (min(entries) if entries else None)
    start_key = grid[0][1] if grid else until.isoformat()
    total = 0.0
    before = 0.0
    for key, value in entries.items():
        n = value.get("n", 0)
        total += n
        if key < start_key:
            before += n
    running = raw.get("on_hand", 0) - total + before  # the offset is non-zero only for a partly rebuilt series
    closing: dict[date, int] = {}
    days: list[Day] = []
    prices: dict[date, tuple[float, float, float]] = {}
    for day, key in grid:
        if first is None or key < first:
            continue
        entry = entries.get(key)
        if entry is None:
            closing[day] = int(running)
            days.append(Day(day, 0, stockout=running <= 0))
            continue
        running += entry.get("n", 0)
        closing[day] = int(running)
        days.append(Day(day, int(entry.get("s", 0)), stockout=running <= 0))
        if entry.get("pu") or entry.get("pr"):
            prices[day] = (float(entry.get("pv", 0)), float(entry.get("pu", 0)), float(entry.get("pr", 0)))
    return SeriesView(raw, days, closing, prices)


async def rebuild(tenant_id: str | None = None) -> int:
    """Recompute every demand series from the movement ledger (after a restore, or for history recorded before
    planning existed); answers how many series were written."""
    match: dict[str, Any] = {"tenant_id": tenant_id} if tenant_id else {}
    collection = DemandSeries.get_pymongo_collection()
    await collection.delete_many(match)
    batch: list[dict[str, Any]] = []
    projection = {"tenant_id": 1, "location_id": 1, "sku_id": 1, "sku_owner_id": 1, "kind": 1, "quantity": 1,
                  "occurred_at": 1, "unit_price": 1, "promotion": 1}
    async for movement in Movement.get_pymongo_collection().find(match, projection):
        batch.append(movement)
        if len(batch) >= 5000:
            await record(None, batch)
            batch = []
    await record(None, batch)
    return await collection.count_documents(match)
