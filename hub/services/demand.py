"""Daily demand series: written with the movements, read as day lists for the baseline, rebuilt from the ledger.

Sales and issues count as demand (returns do not reduce it); every kind moves the series' on-hand, so a day's
closing on-hand, and with it the stockout days the baseline leaves out, comes from the series alone.

A series keeps its days for ``KEEP_DAYS`` (longer than any reader looks back): the writer that adds to it removes
the older ones, at most once every ``PRUNE_EVERY_DAYS``. On SecantusDB an update costs in proportion to the
document's size (measured: 1.7 ms with 10 days, 2.9 ms with 112, 6.4 ms with a year, 11.2 ms with two), so without
this every movement would cost more each day a hub runs. ``first_day`` and ``on_hand`` stay whole (``view`` needs
only the days it shows), and ``rebuild`` brings back the full history from the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hub.dates import utcnow
from hub.db import IN_SLICE, StaleRead
from hub.detect import demand as model
from hub.detect.demand import Day
from hub.models.movement import Movement
from hub.models.planning import DemandSeries
from hub.services import by_id
from hub.services.hints import Hints

DEMAND_KINDS = ("sale", "issue")
HISTORY_DAYS = model.FIT_DAYS + 28  # fitting window plus room for the recent window and holdout
KEEP_DAYS = HISTORY_DAYS + 28  # days a series keeps: the longest window read (the baseline's), with room
PRUNE_EVERY_DAYS = 7  # a series is pruned once its oldest kept day is this far past the cutoff


def _day(value: datetime) -> str:
    return value.date().isoformat()


SeriesKey = tuple[str, Any, Any]  # (holder, location, SKU)
Written = tuple[ObjectId, str]  # a series' id and its oldest kept day (``kept_from``)


# The series this process last wrote, by (database, holder, location, SKU): a batch of movements skips looking them
# up. A series is deleted only by ``rebuild``; an update of an id that is gone matches nothing, which ``record``
# turns into ``StaleRead`` (the transaction starts over and reads the ids). ``kept_from`` only moves forward, so a
# remembered one is at worst older than the stored one: the prune it starts removes nothing more.
KnownSeries = Hints[tuple[str, str, Any, Any], Written]
known_series = KnownSeries()


def _pruned(kept_from: str, cutoff: date, touched: set[str]) -> tuple[dict[str, str], str] | None:
    """The days to remove from a series kept from ``kept_from`` and its new ``kept_from``, when it is due; days this
    write adds to stay (a late movement), and the next prune starts from the oldest of them."""
    start = date.fromisoformat(kept_from)
    if (cutoff - start).days < PRUNE_EVERY_DAYS:
        return None
    drop = {}
    day = start
    while day < cutoff:
        key = day.isoformat()
        if key not in touched:
            drop[f"days.{key}"] = ""
        day += timedelta(days=1)
    return drop, min([cutoff.isoformat(), *touched])


def series_writes(movements: Iterable[dict[str, Any]], existing: dict[SeriesKey, Written], today: date | None = None
                  ) -> tuple[list[dict[str, Any]], list[by_id.Row], dict[SeriesKey, Written]]:
    """Per (holder, location, SKU), the movements' daily sums: added to the series in ``existing`` (its id and
    oldest kept day; days older than ``KEEP_DAYS`` are removed in the same update when due), a new series inserted
    whole otherwise (on SecantusDB an upsert costs about three inserts; a series created meanwhile by another writer
    fails the insert on the unique key and the caller's transaction starts over). Answers the series to insert, the
    changes to the others (written in one statement: hub/services/by_id.py) and every series written."""
    grouped: dict[SeriesKey, dict[str, Any]] = {}
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
    cutoff = (today or now.date()) - timedelta(days=KEEP_DAYS)
    inserts: list[dict[str, Any]] = []
    updates: list[by_id.Row] = []
    written: dict[SeriesKey, Written] = {}
    for (tenant, location, sku), entry in grouped.items():
        found = existing.get((tenant, location, sku))
        if found is None:
            new_id = ObjectId()
            written[(tenant, location, sku)] = (new_id, min(entry["days"]))
            days: dict[str, dict[str, Any]] = {}
            for path, value in entry["inc"].items():
                if path.startswith("days."):
                    _, day, field = path.split(".")
                    days.setdefault(day, {})[field] = value
            inserts.append({
                "_id": new_id, "tenant_id": tenant, "location_id": location, "sku_id": sku,
                "sku_owner_id": entry["owner"],
                "on_hand": entry["inc"]["on_hand"], "days": days, "first_day": min(entry["days"]),
                "kept_from": min(entry["days"]),
                **({"last_sale_day": max(entry["sold"])} if entry["sold"] else {}), "updated_at": now,
            })
            continue
        series_id, kept_from = found
        row = by_id.Row(series_id, {"updated_at": now}, inc=entry["inc"], min={"first_day": min(entry["days"])},
                        max={"last_sale_day": max(entry["sold"])} if entry["sold"] else {})
        prune = _pruned(kept_from, cutoff, entry["days"])
        if prune is not None:
            drop, kept_from = prune
            row.unset = tuple(drop)
            row.set["kept_from"] = kept_from
        elif min(entry["days"]) < kept_from:  # a late movement before the kept days: the next prune starts there
            row.min["kept_from"] = kept_from = min(entry["days"])
        updates.append(row)
        written[(tenant, location, sku)] = (series_id, kept_from)
    return inserts, updates, written


async def _existing(session: AsyncClientSession | None, movements: list[dict[str, Any]]) -> dict[SeriesKey, Written]:
    """The series these movements add to (id, oldest kept day): one query per holder and location (the unique
    index's prefix, read within bounds), SKUs in chunks. A series written before days were pruned has no
    ``kept_from``: it keeps every day since its first."""
    wanted: dict[tuple[str, Any], set[Any]] = {}
    for m in movements:
        wanted.setdefault((m["tenant_id"], m["location_id"]), set()).add(m["sku_id"])
    collection = DemandSeries.get_pymongo_collection()
    found: dict[SeriesKey, Written] = {}
    for (tenant, location), skus in wanted.items():
        ordered = sorted(skus)
        for start in range(0, len(ordered), IN_SLICE):
            async for doc in collection.find(
                {"tenant_id": tenant, "location_id": location, "sku_id": {"$in": ordered[start:start + IN_SLICE]}},
                {"sku_id": 1, "first_day": 1, "kept_from": 1}, session=session,
            ):
                found[(tenant, location, doc["sku_id"])] = (doc["_id"], doc.get("kept_from") or doc["first_day"])
    return found


async def record(session: AsyncClientSession | None, movements: list[dict[str, Any]],
                 hints: KnownSeries | None = None) -> dict[SeriesKey, Written]:
    """Add the movements to their series; answers every series written (id, oldest kept day).

    ``hints``: take the series' ids from this process's last commits instead of looking them up (an id that is gone
    raises ``StaleRead``, after forgetting the batch's hints)."""
    if not movements:
        return {}
    collection = DemandSeries.get_pymongo_collection()
    database = collection.database.name
    keyed = {(database, m["tenant_id"], m["location_id"], m["sku_id"]) for m in movements}
    remembered = hints.get(keyed) if hints is not None else None
    hinted = remembered is not None
    if remembered is not None:
        existing = {key[1:]: value for key, value in remembered.items()}
    else:
        existing = await _existing(session, movements)
    inserts, updates, written = series_writes(movements, existing)
    if inserts:
        try:
            await collection.insert_many(inserts, ordered=False, session=session)
        except (BulkWriteError, DuplicateKeyError) as exc:
            raise StaleRead("a demand series was created concurrently") from exc
    outcome = await by_id.update_rows(collection, updates, session)
    if hinted and outcome.matched != len(updates):
        assert hints is not None
        hints.forget(keyed)
        raise StaleRead("a remembered demand series is gone")
    return written


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
        days.append(Day(day, int(entry.get("s", 0)), stockout=running <= 0, promotion=bool(entry.get("pr"))))
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
