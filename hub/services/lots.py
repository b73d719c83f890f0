"""Production lots: registered by the producer, or created/matched when a dispatch names them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hub.dates import from_bson, to_bson, utcnow
from hub.db import StaleRead
from hub.errors import BadInput, NotFound
from hub.events.log import build_event, emit_many
from hub.models.lot import Lot
from hub.models.sku import Sku
from hub.services.text import CODE_MAX, clean_text
from tenants.access import Access
from tenants.roles import Group


def check_dates(produced_on: date | None, expires_on: date | None) -> None:
    if produced_on and expires_on and expires_on < produced_on:
        raise BadInput("a lot cannot expire before it was produced", field="expiresOn")


async def ensure_lot(
    sku: Sku,
    lot_code: str,
    produced_on: date | None,
    expires_on: date | None,
    visible_to: list[str] = (),  # type: ignore[assignment]
    session: AsyncClientSession | None = None,
) -> Lot:
    """Create the lot, or match the existing one; dates fill in only where unknown (first writer wins)."""
    lot_code = clean_text(lot_code, "lotCode", CODE_MAX, "lot code")
    check_dates(produced_on, expires_on)
    if expires_on is None and produced_on is not None and sku.shelf_life_days:
        expires_on = produced_on + timedelta(days=sku.shelf_life_days)
    now = utcnow()
    on_insert: dict = {
        "tenant_id": sku.tenant_id,
        "sku_id": sku.id,
        "lot_code": lot_code,
        "produced_on": to_bson(produced_on),
        "expires_on": to_bson(expires_on),
        "effective_expires_on": to_bson(expires_on),
        "status": "released",
        "created_at": now,
    }
    raw = await Lot.get_pymongo_collection().find_one_and_update(
        {"sku_id": sku.id, "lot_code": lot_code},
        {
            "$setOnInsert": on_insert,
            "$set": {"updated_at": now},
            "$addToSet": {"visible_to": {"$each": sorted(set(visible_to) - {sku.tenant_id})}},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return Lot.model_validate(raw)


async def create_lots(wanted: list[tuple[Sku, str, date | None]],
                      session: AsyncClientSession | None = None) -> list[Lot]:
    """``ensure_lot`` for many lots the caller's transaction found missing (SKU, clean code, expiry), answered in
    that order: inserted in one write. A lot another writer created meanwhile fails the insert on the unique key:
    the transaction starts over (``StaleRead``) and then finds it."""
    now = utcnow()
    docs: list[dict[str, Any]] = [
        {"_id": ObjectId(), "tenant_id": sku.tenant_id, "sku_id": sku.id, "lot_code": code, "produced_on": None,
         "expires_on": to_bson(expires_on), "effective_expires_on": to_bson(expires_on), "status": "released",
         "created_at": now, "updated_at": now, "visible_to": []}
        for sku, code, expires_on in wanted
    ]
    try:
        await Lot.get_pymongo_collection().insert_many(docs, ordered=False, session=session)
    except (BulkWriteError, DuplicateKeyError) as exc:
        raise StaleRead("a lot was created concurrently") from exc
    return [Lot.model_validate(doc) for doc in docs]


async def register_lot(
    access: Access, sku_id: str, lot_code: str, produced_on: date | None, expires_on: date | None
) -> Lot:
    """The producer records a lot of its own SKU."""
    access.require(Group.operations)
    sku = await access.get(Sku, sku_id, access.skus("write"), "sku")
    return await ensure_lot(sku, lot_code, produced_on, expires_on)



async def use_lot(
    access: Access,
    sku: Sku,
    lot_code: str,
    produced_on: date | None = None,
    expires_on: date | None = None,
    share_with: Sequence[str] = (),
    session: AsyncClientSession | None = None,
) -> Lot:
    """The lot a write of the caller names (a dispatch line, a movement, a receipt line).

    The SKU's owner creates or matches its lots (``ensure_lot``). Anyone else may only name a lot it can already
    see (one a dispatch brought it): its dates are the owner's, and ``share_with`` (the parties of a dispatch the
    caller ships it in) come to see it too. Any other lot answers NOT_FOUND whether it exists or not, so a partner
    that may read the SKU can neither create the owner's lots nor reveal them by guessing their codes.
    """
    if access.may_create_lots(sku.tenant_id):
        return await ensure_lot(sku, lot_code, produced_on, expires_on, list(share_with), session=session)
    lot_code = clean_text(lot_code, "lotCode", CODE_MAX, "lot code")
    update: dict[str, Any] = {"$set": {"updated_at": utcnow()}}
    newcomers = sorted(set(share_with) - {sku.tenant_id})
    if newcomers:
        update["$addToSet"] = {"visible_to": {"$each": newcomers}}
    raw = await Lot.get_pymongo_collection().find_one_and_update(
        {"sku_id": sku.id, "lot_code": lot_code, **access.lots("use")}, update,
        return_document=ReturnDocument.AFTER, session=session,
    )
    if raw is None:
        raise NotFound(f"lot {lot_code[:40]!r} of {sku.code} not found", field="lotCode")
    return Lot.model_validate(raw)


# -- lot events -------------------------------------------------------------------------------------------------------

WATCHED = {"status": "status", "expires_on": "expiresOn", "effective_expires_on": "effectiveExpiresOn"}


def _day(value: Any) -> str | None:
    day = from_bson(value)
    return day.isoformat() if day is not None else None


def lot_payload(lot: dict[str, Any], before: dict[str, Any], reason: str | None) -> dict[str, Any]:
    """A lot (raw document) as ``lot.*`` events carry it, with the watched fields that changed as they were."""
    previous = {
        label: (before.get(name) if name == "status" else _day(before.get(name)))
        for name, label in WATCHED.items()
        if before.get(name) != lot.get(name)
    }
    return {
        "lot": {
            "id": str(lot["_id"]), "ownerId": lot["tenant_id"], "skuId": str(lot["sku_id"]),
            "lotCode": lot["lot_code"], "status": lot.get("status", "released"), "holdReason": lot.get("hold_reason"),
            "producedOn": _day(lot.get("produced_on")), "expiresOn": _day(lot.get("expires_on")),
            "effectiveExpiresOn": _day(lot.get("effective_expires_on")), "updatedAt": lot["updated_at"].isoformat(),
        },
        "previous": previous,
        "reason": reason,
    }


async def lot_events(
    session: AsyncClientSession | None, event_type: str, before: Sequence[dict[str, Any]], reason: str | None
) -> None:
    """``lot.held``/``lot.released``/``lot.redated`` for lots changed in this transaction, given as they were
    (raw documents; those that did not change are skipped), heard by the lot's owner and the parties of dispatches
    that carried it (the lot's readers)."""
    if not before:
        return
    now = {doc["_id"]: doc async for doc in Lot.get_pymongo_collection().find(
        {"_id": {"$in": [doc["_id"] for doc in before]}}, session=session)}
    events = [
        build_event(event_type, lot["tenant_id"], lot.get("visible_to", []), lot_payload(lot, old, reason))
        for old in before
        if (lot := now.get(old["_id"])) is not None and any(old.get(name) != lot.get(name) for name in WATCHED)
    ]
    await emit_many(session, events)
