"""The SKU master: idempotent upsert on the owner's SKU code, and partner aliases."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from hub.dates import utcnow
from hub.db import IN_SLICE, run_transaction
from hub.errors import BadInput, Conflict, NotFound
from hub.events.log import emit
from hub.gs1 import normalise_gtin
from hub.models.sku import Alias, Sku, Storage
from hub.services.text import CODE_MAX, NAME_MAX, UNIT_MAX, clean_text
from tenants.access import Access, grantees
from tenants.models import Scope
from tenants.roles import Group


@dataclass
class SkuInput:
    code: str
    name: str
    gtin: str | None = None
    unit: str = "each"
    pack_size: int = 1
    shelf_life_days: int | None = None
    storage: Storage = field(default_factory=Storage)
    min_remaining_shelf_life_days: int | None = None
    excursion_sensitivity: float = 0.0
    excursion_min_minutes: int = 15
    unit_cost: float | None = None
    currency: str | None = None
    category: str | None = None


def validate(data: SkuInput) -> SkuInput:
    data.code = clean_text(data.code, "code", CODE_MAX, "SKU code")
    data.name = clean_text(data.name, "name", NAME_MAX, "SKU name")
    data.unit = clean_text(data.unit, "unit", UNIT_MAX, "unit")
    if data.category is not None:
        data.category = clean_text(data.category, "category", NAME_MAX, "category")
    if not 1 <= data.pack_size <= 1_000_000:
        raise BadInput("pack size must be between 1 and 1000000", field="packSize")
    if data.shelf_life_days is not None and not 0 < data.shelf_life_days <= 36500:
        raise BadInput("shelf life must be between 1 and 36500 days", field="shelfLifeDays")
    if data.min_remaining_shelf_life_days is not None:
        if not 0 <= data.min_remaining_shelf_life_days <= 36500:
            raise BadInput("minimum remaining shelf life must be 0-36500 days", field="minRemainingShelfLifeDays")
        if data.shelf_life_days is not None and data.min_remaining_shelf_life_days > data.shelf_life_days:
            raise BadInput("minimum remaining shelf life exceeds the shelf life", field="minRemainingShelfLifeDays")
    if not 0.0 <= data.excursion_sensitivity <= 1.0:  # also false for NaN
        raise BadInput("excursion sensitivity must be between 0 and 1", field="excursionSensitivity")
    if not 1 <= data.excursion_min_minutes <= 1440:
        raise BadInput("excursion minimum duration must be 1-1440 minutes", field="excursionMinMinutes")
    if data.unit_cost is not None and not 0.0 <= data.unit_cost < 1e9:  # also false for NaN
        raise BadInput("unit cost must be a non-negative number", field="unitCost")
    if data.currency is not None:
        data.currency = data.currency.strip().upper()
        if len(data.currency) != 3 or not data.currency.isalpha():
            raise BadInput("currency must be an ISO 4217 code such as EUR", field="currency")
    if (data.unit_cost is None) != (data.currency is None):
        raise BadInput("unit cost and currency go together", field="currency")
    storage = data.storage
    for value, name in ((storage.temp_min_c, "tempMinC"), (storage.temp_max_c, "tempMaxC")):
        if value is not None and not -90.0 <= value <= 90.0:  # also false for NaN
            raise BadInput("storage temperature must be between -90 and 90 °C", field=name)
    if storage.temp_min_c is not None and storage.temp_max_c is not None and storage.temp_min_c > storage.temp_max_c:
        raise BadInput("storage minimum temperature is above the maximum", field="storage")
    if storage.humidity_max_pct is not None and not 0.0 <= storage.humidity_max_pct <= 100.0:
        raise BadInput("storage humidity must be 0-100 %", field="humidityMaxPct")
    if data.gtin:
        data.gtin = normalise_gtin(data.gtin)
    return data


async def upsert_sku(access: Access, data: SkuInput) -> tuple[Sku, bool]:
    """Create or update the caller's SKU with this code; answers (sku, created)."""
    access.require(Group.master_data)
    data = validate(data)
    now = utcnow()
    fields = {
        "name": data.name,
        "gtin": data.gtin,
        "unit": data.unit,
        "pack_size": data.pack_size,
        "shelf_life_days": data.shelf_life_days,
        "storage": data.storage.model_dump(),
        "min_remaining_shelf_life_days": data.min_remaining_shelf_life_days,
        "excursion_sensitivity": data.excursion_sensitivity,
        "excursion_min_minutes": data.excursion_min_minutes,
        "unit_cost": data.unit_cost,
        "currency": data.currency,
        "category": data.category,
        "updated_at": now,
    }
    if data.gtin and await Sku.find_one({"gtin": data.gtin, "tenant_id": {"$ne": access.tenant_id}}):
        raise Conflict("this GTIN is registered to another brand owner", field="gtin")
    collection = Sku.get_pymongo_collection()
    key = {"tenant_id": access.tenant_id, "code": data.code}
    audience = await grantees(access.tenant_id, Scope.sku_master)

    async def work(session: AsyncClientSession) -> tuple[Sku, bool]:
        before = await collection.find_one_and_update(
            key, {"$set": fields, "$setOnInsert": {**key, "aliases": [], "created_at": now}}, upsert=True,
            return_document=ReturnDocument.BEFORE, session=session,
        )
        sku = await Sku.find_one(key, session=session)
        if sku is None:
            raise NotFound("sku not found")
        if before is None or any(before.get(name) != value for name, value in fields.items() if name != "updated_at"):
            await emit(session, "sku.created" if before is None else "sku.updated", access.tenant_id, audience,
                       sku_payload(sku))
        return sku, before is None

    client = collection.database.client
    try:
        return await run_transaction(client, work)
    except DuplicateKeyError:
        # Either a concurrent first upsert of this code won (this one now updates its document), or the GTIN
        # (unique index) already names another SKU.
        try:
            return await run_transaction(client, work)
        except DuplicateKeyError:
            raise Conflict("this GTIN already names another SKU", field="gtin") from None


def sku_payload(sku: Sku) -> dict[str, Any]:
    """The SKU as ``sku.*`` events carry it (hub/events/payloads.py)."""
    return {"sku": {
        "id": str(sku.id), "ownerId": sku.tenant_id, "code": sku.code, "gtin": sku.gtin, "name": sku.name,
        "unit": sku.unit, "packSize": sku.pack_size, "shelfLifeDays": sku.shelf_life_days, "category": sku.category,
        "updatedAt": sku.updated_at.isoformat(),
    }}


async def set_alias(access: Access, sku_id: str, code: str | None) -> Sku:
    """A partner records its own item code for a SKU it can see (``None`` removes it)."""
    access.require(Group.master_data)
    sku = await access.get(Sku, sku_id, access.skus("read"), "sku")
    if code is not None:
        code = clean_text(code, "code", CODE_MAX, "alias")
        clash = await Sku.find_one(
            {"aliases": {"$elemMatch": {"tenant_id": access.tenant_id, "code": code}}, "_id": {"$ne": sku.id}}
        )
        if clash is not None:
            raise Conflict(f"alias {code!r} already names another SKU", field="code")
    await Sku.get_pymongo_collection().update_one(
        {"_id": sku.id}, {"$pull": {"aliases": {"tenant_id": access.tenant_id}}}
    )
    if code is not None:
        alias = Alias(tenant_id=access.tenant_id, code=code).model_dump()
        await Sku.get_pymongo_collection().update_one({"_id": sku.id}, {"$push": {"aliases": alias}})
    refreshed = await Sku.get(sku.id)
    if refreshed is None:
        raise NotFound("sku not found")
    return refreshed




async def _own_skus(access: Access, wanted: set[str]) -> dict[str, Sku] | None:
    """The usual case in one query: every reference is the id or the code of one of the caller's own SKUs and no
    alias of the caller's is spelt like it. The precedence above then gives these answers whatever partners share,
    so neither the lots nor the partners' SKUs need reading. None: not the usual case, take the full path."""
    me = access.tenant_id
    codes = sorted(wanted)
    ids = sorted(ObjectId(ref) for ref in wanted if ObjectId.is_valid(ref))
    # One query per alternative and per IN_SLICE values rather than one $or: on SecantusDB an $in costs time that
    # grows with the square of its length (2,000 codes: 6 s; 300: 0.2 s), and an $or is answered by a full scan.
    by_key: dict[Any, Sku] = {}
    for start in range(0, max(len(codes), len(ids)), IN_SLICE):
        part, id_part = codes[start:start + IN_SLICE], ids[start:start + IN_SLICE]
        alternatives: list[dict] = [
            {"tenant_id": me, "code": {"$in": part}},
            # The alias index's own fields, flat: SecantusDB answers an $elemMatch by scanning every SKU. A flat
            # filter may also match a SKU whose alias of the caller and another of its aliases carry these values;
            # the exact check below tells them apart.
            {"aliases.tenant_id": me, "aliases.code": {"$in": part}},
        ] if part else []
        if id_part:
            alternatives.append({"_id": {"$in": id_part}})
        for alternative in alternatives:
            by_key.update({s.id: s for s in await Sku.find(alternative).to_list()})
    found = list(by_key.values())
    if any(a.tenant_id == me and a.code in wanted for s in found for a in s.aliases):
        return None
    by_id = {str(s.id): s for s in found if s.tenant_id == me}
    by_code = {s.code: s for s in found if s.tenant_id == me}
    resolved: dict[str, Sku] = {}
    for ref in wanted:
        match = by_id.get(ref) if ObjectId.is_valid(ref) else by_code.get(ref)
        if match is None:
            return None
        resolved[ref] = match
    return resolved


def _gtin(ref: str) -> str | None:
    return ref.zfill(14) if ref.isdigit() and len(ref) in (8, 12, 13, 14) else None


async def resolve_skus(access: Access, refs: Iterable[str], context: Iterable[ObjectId] = ()) -> dict[str, Sku]:
    """Resolve SKU references (as clients and scanners send them) among the SKUs the caller may use.

    The one precedence, for every write that names a SKU (dispatches, movements, receipts):

    1. the SKU's id;
    2. the caller's own alias for a SKU;
    3. a SKU code: first the ``context``'s SKUs (a receipt: the dispatch's), then the caller's own, then those of
       owners sharing with it; a code that still names SKUs of several owners is ambiguous and not resolved;
    4. a GTIN (8, 12, 13 or 14 digits; unique across the hub).

    Usable are the SKUs the caller may read plus those of lots it was shipped (``Access.usable_skus``). Using a SKU
    never grants its owner's lots (``hub.services.lots.use_lot``). Unresolved references are absent from the answer.
    """
    wanted = {ref.strip() for ref in refs}
    wanted = {ref for ref in wanted if ref and len(ref) <= CODE_MAX}
    if not wanted:
        return {}
    preferred = list(context)
    if not preferred:
        own = await _own_skus(access, wanted)
        if own is not None:
            return own
    visible = await access.usable_skus()
    if preferred:
        visible = {"$or": [visible, {"_id": {"$in": preferred}}]}
    ids = {ref: ObjectId(ref) for ref in wanted if ObjectId.is_valid(ref)}
    gtins = {ref: gtin for ref in wanted if (gtin := _gtin(ref)) is not None}
    codes = sorted(wanted)
    alternatives: list[dict] = [
        {"code": {"$in": codes}},
        {"aliases": {"$elemMatch": {"tenant_id": access.tenant_id, "code": {"$in": codes}}}},
    ]
    if ids:
        alternatives.append({"_id": {"$in": list(ids.values())}})
    if gtins:
        alternatives.append({"gtin": {"$in": sorted(set(gtins.values()))}})
    found = await Sku.find({"$and": [visible, {"$or": alternatives}]}).to_list()
    me = access.tenant_id
    resolved: dict[str, Sku] = {}
    for ref in wanted:
        match = next((s for s in found if ref in ids and s.id == ids[ref]), None)
        match = match or next((s for s in found if any(a.tenant_id == me and a.code == ref for a in s.aliases)), None)
        if match is None:
            by_code = [s for s in found if s.code == ref]
            tiers = ([s for s in by_code if s.id in preferred], [s for s in by_code if s.tenant_id == me], by_code)
            match = next((tier[0] for tier in tiers if len({s.tenant_id for s in tier}) == 1), None)
        if match is None and ref in gtins:
            match = next((s for s in found if s.gtin == gtins[ref]), None)
        if match is not None:
            resolved[ref] = match
    return resolved



async def resolve_sku(access: Access, ref: str) -> Sku:
    """One SKU reference, with the precedence of ``resolve_skus``; NOT_FOUND when it names no single usable SKU."""
    match = (await resolve_skus(access, [ref])).get(ref.strip())
    if match is None:
        raise NotFound(f"sku {ref.strip()[:40]!r} not found (or ambiguous: use its id, GTIN or your alias)")
    return match
