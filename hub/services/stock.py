"""Stock positions: who hears of their changes, and rebuilding them from the movement ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pymongo import DeleteOne, InsertOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError

from hub.dates import utcnow
from hub.events.log import build_event, emit_many
from hub.models.event import Event
from hub.models.lot import Lot
from hub.models.movement import Movement
from hub.models.stock import StockPosition
from tenants.access import grantees
from tenants.models import Scope

EVENT_CHUNK = 500  # positions per stock.changed event: keeps webhook bodies and subscription frames small


def position_payload(position: dict[str, Any]) -> dict[str, Any]:
    expires = position.get("expires_on")
    return {
        "tenantId": position["tenant_id"],
        "locationId": str(position["location_id"]),
        "skuId": str(position["sku_id"]),
        "skuOwnerId": position["sku_owner_id"],
        "lotId": str(position["lot_id"]) if position.get("lot_id") else None,
        "lotCode": position.get("lot_code"),
        "onHand": position["on_hand"],
        "delta": position.get("delta"),
        "expiresOn": expires.isoformat() if isinstance(expires, date) else None,
    }


def stock_changed(holder: str, positions: list[dict[str, Any]], partners: frozenset[str]) -> list[Event]:
    """``stock.changed`` for the holder, and for each SKU owner among ``partners`` (those the holder shares stock
    with), only its SKUs."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for position in positions:
        owner = position["sku_owner_id"]
        groups.setdefault(owner if owner in partners else holder, []).append(position_payload(position))
    events = []
    for audience_owner, items in groups.items():
        audience = [holder] if audience_owner == holder else [holder, audience_owner]
        for start in range(0, len(items), EVENT_CHUNK):
            chunk = items[start:start + EVENT_CHUNK]
            events.append(build_event("stock.changed", holder, audience, {"positions": chunk}))
    return events


def _movement_summary(holder: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, int] = {}
    skus: dict[Any, dict[str, Any]] = {}
    for doc in docs:
        by_kind[doc["kind"]] = by_kind.get(doc["kind"], 0) + 1
        sku = skus.setdefault(doc["sku_id"], {"skuId": str(doc["sku_id"]), "skuOwnerId": doc["sku_owner_id"],
                                              "movements": 0, "quantity": 0})
        sku["movements"] += 1
        sku["quantity"] += doc["quantity"]
    return {"batch": {
        "holderId": holder, "movements": len(docs), "byKind": by_kind, "skus": list(skus.values()),
        "locationIds": sorted({str(doc["location_id"]) for doc in docs}),
        "firstOccurredAt": min(doc["occurred_at"] for doc in docs).isoformat(),
        "lastOccurredAt": max(doc["occurred_at"] for doc in docs).isoformat(),
    }}


def movements_recorded(holder: str, docs: list[dict[str, Any]], partners: frozenset[str]) -> list[Event]:
    """One ``movements.recorded`` per batch, counted per kind and SKU, for the holder; and for each SKU owner among
    ``partners``, one counting only its SKUs' movements (as ``stock.changed`` splits positions)."""
    theirs: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        if doc["sku_owner_id"] in partners:
            theirs.setdefault(doc["sku_owner_id"], []).append(doc)
    mine = [doc for doc in docs if doc["sku_owner_id"] not in partners]
    events = [build_event("movements.recorded", holder, [holder], _movement_summary(holder, mine))] if mine else []
    events += [build_event("movements.recorded", holder, [owner], _movement_summary(holder, owned))
               for owner, owned in theirs.items()]
    return events


async def batch_events(session: AsyncClientSession, holder: str, positions: list[dict[str, Any]],
                       docs: list[dict[str, Any]]) -> None:
    """A batch's ``stock.changed`` and ``movements.recorded`` events, written in one insert (VMI partners: the SKU
    owners the holder shares stock with hear of positions and movements of their own SKUs)."""
    if not positions and not docs:
        return
    partners = await grantees(holder, Scope.stock)
    events = stock_changed(holder, positions, partners) if positions else []
    if docs:
        events += movements_recorded(holder, docs, partners)
    await emit_many(session, events)


async def _with_lot_dates(inserts: list[dict[str, Any]]) -> None:
    """Positions recreated by a rebuild carry their lot's dates, as positions written by movements do."""
    with_lot = [doc for doc in inserts if doc.get("lot_id")]
    if not with_lot:
        return
    lots = {lot["_id"]: lot async for lot in Lot.get_pymongo_collection().find(
        {"_id": {"$in": [doc["lot_id"] for doc in with_lot]}}, {"expires_on": 1, "effective_expires_on": 1})}
    for doc in with_lot:
        lot = lots.get(doc["lot_id"], {})
        doc["expires_on"] = lot.get("expires_on")
        doc["effective_expires_on"] = lot.get("effective_expires_on")


@dataclass
class Drift:
    tenant_id: str
    location_id: str
    sku_id: str
    lot_id: str | None
    recorded: int | None  # the position as stored (None: missing)
    derived: int  # the sum of its movements


@dataclass
class RebuildReport:
    positions: int = 0
    movements: int = 0
    drift: list[Drift] = field(default_factory=list)
    repaired: bool = False


async def rebuild(tenant_id: str | None = None, repair: bool = True) -> RebuildReport:
    """Recompute every position from the ledger, report where the stored one differs, and (``repair``) fix it.

    Run after a restore, or as a consistency check: on a healthy hub the report has no drift. The ledger and the
    positions are read one after the other, so only a quiet hub gives an exact report; repairs never overwrite a
    position that changed in between.
    """
    match: dict[str, Any] = {"tenant_id": tenant_id} if tenant_id else {}
    pipeline: list[dict[str, Any]] = [
        {"$match": match},
        {"$sort": {"occurred_at": 1, "_id": 1}},
        {"$group": {
            "_id": {"t": "$tenant_id", "l": "$location_id", "s": "$sku_id", "lot": "$lot_id"},
            "on_hand": {"$sum": "$quantity"}, "count": {"$sum": 1}, "owner": {"$first": "$sku_owner_id"},
            "lot_code": {"$first": "$lot_code"}, "last_id": {"$last": "$_id"}, "last_at": {"$last": "$occurred_at"},
        }},
    ]
    report = RebuildReport()
    derived: dict[tuple, dict[str, Any]] = {}
    async for group in await Movement.get_pymongo_collection().aggregate(pipeline):
        key = (group["_id"]["t"], group["_id"]["l"], group["_id"]["s"], group["_id"].get("lot"))
        derived[key] = group
        report.movements += group["count"]
    positions = StockPosition.get_pymongo_collection()
    stored = {(p["tenant_id"], p["location_id"], p["sku_id"], p.get("lot_id")): p async for p in positions.find(match)}
    report.positions = len(derived)
    writes: list[Any] = []
    inserts: list[dict[str, Any]] = []
    now = utcnow()
    for key in sorted(set(derived) | set(stored), key=str):
        want, have = derived.get(key), stored.get(key)
        want_qty = want["on_hand"] if want else 0
        have_qty = have["on_hand"] if have else None
        if have_qty == want_qty or (want is None and have_qty == 0):
            continue
        lot = str(key[3]) if key[3] else None
        report.drift.append(Drift(key[0], str(key[1]), str(key[2]), lot, have_qty, want_qty))
        if want is None:
            writes.append(DeleteOne({"_id": have["_id"], "on_hand": have_qty}))  # type: ignore[index]
        elif have is None:
            inserts.append({
                "tenant_id": key[0], "location_id": key[1], "sku_id": key[2], "lot_id": key[3],
                "sku_owner_id": want["owner"], "lot_code": want["lot_code"], "on_hand": want_qty,
                "last_movement_id": want["last_id"], "last_movement_at": want["last_at"], "updated_at": now,
            })
        else:
            # Guarded on what we read: a position a live hub changed meanwhile is left alone (run again to judge it).
            writes.append(UpdateOne({"_id": have["_id"], "on_hand": have_qty},
                                    {"$set": {"on_hand": want_qty, "updated_at": now}}))
    await _with_lot_dates(inserts)
    writes += [InsertOne(doc) for doc in inserts]
    if repair and writes:
        try:
            await positions.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:  # a position created meanwhile by a live hub: it is the newer truth
            if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
                raise
        report.repaired = True
    return report
