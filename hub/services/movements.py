"""Recording movements: the immutable ledger and the stock positions derived from it, in one transaction.

A batch is validated and resolved (locations, SKUs, lots: a handful of queries however large the batch), then
applied in one transaction: movements whose idempotency key was already recorded are skipped, the rest are checked
against on-hand in batch order (below zero is refused unless the movement is a count), inserted with one
``insert_many`` and the positions written with one update statement (hub/services/by_id.py). A rejected batch stores
nothing; a replayed one changes nothing twice, also when two clients send it at the same time (the loser's
transaction conflicts, retries and then finds the keys recorded).

The usual batch (new keys, the caller's own SKUs, positions this process wrote last) costs one SKU query and, in the
transaction, one write per collection: positions, events (``stock.changed`` and ``movements.recorded`` in one
insert), movements, demand series, then the commit. Locations are known once seen (they never change hands), the keys
are left to the unique index (a clash starts the batch over with the keys read first), on-hand comes from this
process's last commit, guarded on the write (hub/services/known_positions.py), and so do the demand series' ids (an
id that is gone starts the batch over, reading them: ``demand.known_series``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hub import audit
from hub.dates import to_bson, utcnow
from hub.db import IN_SLICE, Database, StaleRead
from hub.errors import BadInput, Conflict, NotFound
from hub.models.lot import Lot, LotStatus
from hub.models.movement import ADDING, Movement, MovementKind
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from hub.services import by_id, demand, fefo, health, locations, position_locks
from hub.services.expiry import on_stock_changed
from hub.services.known_positions import KnownPositions, known
from hub.services.lots import create_lots, use_lot
from hub.services.skus import resolve_skus
from hub.services.stock import batch_events
from hub.services.text import CODE_MAX, clean_text
from tenants.access import Access, object_id
from tenants.roles import Group

MAX_KEY_LENGTH = 200
MAX_REASON_LENGTH = 500
MAX_QUANTITY = 2**31 - 1  # quantities and on-hand are answered as GraphQL Int (32 bits): beyond, no read could answer
POSITIVE = {MovementKind.receipt, MovementKind.transfer_in, MovementKind.return_}
NEGATIVE = {MovementKind.issue, MovementKind.sale, MovementKind.transfer_out}
PositionKey = tuple[ObjectId, ObjectId, ObjectId | None]  # (location, sku, lot)
CONSUMING = frozenset({MovementKind.sale, MovementKind.issue})
HELD = frozenset({LotStatus.on_hold, LotStatus.quarantined, LotStatus.recalled})


@dataclass
class MovementInput:
    location_id: str
    sku: str  # id, code, alias or GTIN
    kind: MovementKind
    quantity: int  # signed change; for a count, the counted on-hand
    idempotency_key: str
    lot_code: str | None = None
    expires_on: date | None = None  # for a lot the hub has not seen yet
    occurred_at: datetime | None = None
    reference: str | None = None
    unit_price: float | None = None  # optional: what the unit sold for (planning explains drops by price changes)
    promotion: bool | None = None  # optional: sold on promotion
    reason: str | None = None  # optional: why (an override, a count correction); kept on the ledger


@dataclass
class Prepared:
    """A validated movement with its references resolved."""

    index: int
    location_id: ObjectId
    sku: Sku
    lot: Lot | None
    kind: MovementKind
    quantity: int
    idempotency_key: str
    fingerprint: str
    occurred_at: datetime
    reference: str | None = None
    unit_price: float | None = None
    promotion: bool | None = None
    reason: str | None = None
    unit_cost: float | None = None  # with currency: what a received unit cost (receipt lines), for valuation
    currency: str | None = None

    @property
    def position_key(self) -> PositionKey:
        return (self.location_id, self.sku.id, self.lot.id if self.lot else None)  # type: ignore[return-value]


@dataclass
class BatchResult:
    accepted: int = 0
    duplicates: int = 0
    positions: list[dict[str, Any]] = field(default_factory=list)  # changed positions as stored
    corrections: list[dict[str, Any]] = field(default_factory=list)  # counts that changed on-hand, as booked
    written: dict[PositionKey, tuple[ObjectId, int]] = field(default_factory=dict)  # position id, on-hand after
    series: dict[demand.SeriesKey, demand.Written] = field(default_factory=dict)  # demand series written, by key


def fingerprint(item: MovementInput) -> str:
    body: list[Any] = [str(item.location_id), item.sku, item.kind.value, item.quantity, item.lot_code,
            item.occurred_at.isoformat() if item.occurred_at else None]
    if item.unit_price is not None or item.promotion is not None:  # keeps fingerprints of older clients stable
        body += [item.unit_price, item.promotion]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()[:32]


def validate(items: list[MovementInput], max_batch: int) -> None:
    if not items:
        raise BadInput("a batch needs at least one movement", field="movements")
    if len(items) > max_batch:
        raise BadInput(f"at most {max_batch} movements per batch", field="movements")
    seen: dict[str, str] = {}
    for n, item in enumerate(items):
        key = item.idempotency_key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise BadInput(f"movement {n}: idempotency key must be 1-{MAX_KEY_LENGTH} characters", index=n)
        if key in seen and seen[key] != fingerprint(item):
            raise BadInput(f"movement {n}: idempotency key {key!r} used twice with different content", index=n)
        seen[key] = fingerprint(item)
        if item.kind == MovementKind.count:
            if item.quantity < 0:
                raise BadInput(f"movement {n}: a count cannot be negative", index=n)
        elif item.quantity == 0:
            raise BadInput(f"movement {n}: quantity must not be zero", index=n)
        elif item.kind in POSITIVE and item.quantity < 0:
            raise BadInput(f"movement {n}: a {item.kind.value} adds stock, its quantity must be positive", index=n)
        elif item.kind in NEGATIVE and item.quantity > 0:
            raise BadInput(f"movement {n}: a {item.kind.value} removes stock, its quantity must be negative", index=n)
        if abs(item.quantity) > MAX_QUANTITY:
            raise BadInput(f"movement {n}: quantity out of range (at most {MAX_QUANTITY})", index=n)
        if item.unit_price is not None and not (0 <= item.unit_price < 10**9):  # NaN fails both comparisons
            raise BadInput(f"movement {n}: unit price must be a non-negative number", index=n)
        if item.reason is not None and len(item.reason) > MAX_REASON_LENGTH:
            raise BadInput(f"movement {n}: reason must be at most {MAX_REASON_LENGTH} characters", index=n)


async def prepare(access: Access, items: list[MovementInput], session: AsyncClientSession | None = None,
                  max_batch: int = 10_000) -> list[Prepared]:
    """Validate and resolve a batch; every reference must be the caller's location or a SKU it can see."""
    validate(items, max_batch)
    location_ids = {item.location_id: object_id(item.location_id, "location") for item in items}
    owned = await locations.owners.owned(access, set(location_ids.values()), session=session)
    skus = await resolve_skus(access, {item.sku for item in items})
    lot_refs = await known_lots(access, skus, items, session)
    now = utcnow()
    resolved: list[tuple[int, MovementInput, ObjectId, Sku, str | None]] = []
    new_lots: dict[tuple[Any, str], tuple[Sku, str, date | None]] = {}
    for n, item in enumerate(items):
        location = location_ids[item.location_id]
        if location not in owned:
            raise NotFound(f"movement {n}: location not found", index=n)
        sku = skus.get(item.sku.strip())
        if sku is None:
            raise NotFound(f"movement {n}: sku {item.sku[:40]!r} not found", index=n)
        code = item.lot_code.strip() if item.lot_code and item.lot_code.strip() else None
        if code is not None and (sku.id, code) not in lot_refs and (sku.id, code) not in new_lots:
            if access.may_create_lots(sku.tenant_id):  # a new lot of the caller's own SKU: created below, together
                new_lots[(sku.id, code)] = (sku, clean_text(code, "lotCode", CODE_MAX, "lot code"), item.expires_on)
            else:  # anyone else names only lots it was shipped
                try:
                    lot_refs[(sku.id, code)] = await use_lot(access, sku, code, None, item.expires_on, session=session)
                except NotFound as exc:
                    raise NotFound(f"movement {n}: {exc.message}", index=n) from None
        resolved.append((n, item, location, sku, code))
    if new_lots:
        lot_refs.update(zip(new_lots, await create_lots(list(new_lots.values()), session=session)))
    prepared: list[Prepared] = []
    for n, item, where, what, code in resolved:
        prepared.append(Prepared(
            index=n, location_id=where, sku=what, lot=lot_refs[(what.id, code)] if code else None,
            kind=item.kind, quantity=item.quantity,
            idempotency_key=item.idempotency_key.strip(), fingerprint=fingerprint(item),
            occurred_at=item.occurred_at or now, reference=item.reference,
            unit_price=item.unit_price, promotion=item.promotion, reason=(item.reason or "").strip() or None,
        ))
    return prepared


async def known_lots(access: Access, skus: dict[str, Sku], items: list[MovementInput],
                      session: AsyncClientSession | None) -> dict[tuple[Any, str], Lot]:
    """The lots the batch names that exist and the caller may use. Read by SKU (the lot index's prefix, SKUs in
    chunks) and matched here: a top-level ``$or`` of (SKU, code) pairs, or of the access rule, reads every lot on
    SecantusDB."""
    wanted: dict[ObjectId, set[str]] = {}
    for item in items:
        sku = skus.get(item.sku.strip())
        if sku is not None and item.lot_code and item.lot_code.strip():
            wanted.setdefault(sku.id, set()).add(item.lot_code.strip())  # type: ignore[arg-type]
    found: dict[tuple[Any, str], Lot] = {}
    ordered = sorted(wanted)
    for start in range(0, len(ordered), IN_SLICE):
        async for raw in Lot.get_pymongo_collection().find({"sku_id": {"$in": ordered[start:start + IN_SLICE]}},
                                                           session=session):
            # access.lots("use"): the producer's own lots and those a dispatch made visible to the caller
            usable = raw["tenant_id"] == access.tenant_id or access.tenant_id in (raw.get("visible_to") or ())
            if usable and raw["lot_code"] in wanted[raw["sku_id"]]:
                found[(raw["sku_id"], raw["lot_code"])] = Lot.model_validate(raw)
    return found


class KeysRecorded(StaleRead):
    """A batch written without checking its idempotency keys met one already recorded: start over, checking."""


async def apply(session: AsyncClientSession, tenant_id: str, batch: list[Prepared], *, check_keys: bool = True,
                hints: KnownPositions | None = None, series_hints: demand.KnownSeries | None = None) -> BatchResult:
    """Write the batch in the caller's transaction: skip recorded keys, check on-hand, insert, update positions.

    ``check_keys=False`` skips reading the batch's idempotency keys first (the usual batch has none recorded): the
    unique index refuses a recorded one, and ``KeysRecorded`` asks the caller to run the batch again with the check.
    ``hints``: take the positions' on-hand from this process's last commits instead of reading them (each write is
    guarded on it; see hub/services/known_positions.py); ``series_hints``: likewise the demand series' ids.
    """
    result = BatchResult()
    movements = Movement.get_pymongo_collection()
    positions = StockPosition.get_pymongo_collection()
    recorded: dict[str, str] = {}
    if check_keys:
        keys = sorted({p.idempotency_key for p in batch})
        recorded = {doc["idempotency_key"]: doc["fingerprint"] async for doc in movements.find(
            {"tenant_id": tenant_id, "idempotency_key": {"$in": keys}},
            {"idempotency_key": 1, "fingerprint": 1}, session=session)}
    fresh: list[Prepared] = []
    seen: set[str] = set()
    for item in batch:
        if item.idempotency_key in recorded:
            if recorded[item.idempotency_key] != item.fingerprint:
                raise Conflict(f"movement {item.index}: idempotency key {item.idempotency_key!r} was already "
                               "used for a different movement", index=item.index)
            result.duplicates += 1
        elif item.idempotency_key in seen:
            result.duplicates += 1  # the same movement twice in one batch
        else:
            seen.add(item.idempotency_key)
            fresh.append(item)
    if not fresh:
        return result
    database = positions.database.name
    hint_keys = {item.position_key: (database, tenant_id, *item.position_key) for item in fresh}
    hinted = hints.get(hint_keys.values()) if hints is not None else None
    if hints is None or hinted is None:
        return await _write(session, movements, positions, tenant_id, fresh,
                            await _load_positions(session, positions, tenant_id, fresh), result, series_hints)
    current = {key: {"_id": hinted[hk][0], "on_hand": hinted[hk][1]} for key, hk in hint_keys.items()}
    try:
        return await _write(session, movements, positions, tenant_id, fresh, current,
                            BatchResult(duplicates=result.duplicates), series_hints)
    except StaleRead:  # a remembered figure was changed by another writer: the transaction starts over, reading
        hints.forget(hint_keys.values())
        raise
    except BadInput:  # nothing written yet; a batch is never refused on remembered figures: judge the database's
        hints.forget(hint_keys.values())
    return await _write(session, movements, positions, tenant_id, fresh,
                        await _load_positions(session, positions, tenant_id, fresh), result, series_hints)


async def _write(session: AsyncClientSession, movements: Any, positions: Any, tenant_id: str, fresh: list[Prepared],
                 current: dict[PositionKey, dict[str, Any]], result: BatchResult,
                 series_hints: demand.KnownSeries | None) -> BatchResult:
    on_hand = {key: doc["on_hand"] for key, doc in current.items()}
    now = utcnow()
    actor, actor_kind, client_id = audit.acting()
    docs: list[dict[str, Any]] = []
    for item in fresh:
        if item.kind in CONSUMING and item.lot is not None and item.lot.status in HELD:
            # Held stock may be counted, adjusted or moved (back to the supplier, into quarantine), never sold.
            raise Conflict(
                f"movement {item.index}: lot {item.lot.lot_code} is {item.lot.status.value}"
                f" ({item.lot.hold_reason or 'no reason given'}); it cannot be sold or issued until released",
                index=item.index, idempotencyKey=item.idempotency_key,
            )
        key = item.position_key
        before = on_hand.get(key, 0)
        after = item.quantity if item.kind == MovementKind.count else before + item.quantity
        if after > MAX_QUANTITY:
            raise BadInput(
                f"movement {item.index}: would take on-hand of {item.sku.code}"
                f"{' lot ' + item.lot.lot_code if item.lot else ''} above {MAX_QUANTITY} (on hand {before})",
                index=item.index, idempotencyKey=item.idempotency_key,
            )
        if after < 0:
            raise BadInput(
                f"movement {item.index}: would take on-hand of {item.sku.code}"
                f"{' lot ' + item.lot.lot_code if item.lot else ''} to {after} (on hand {before})",
                index=item.index, idempotencyKey=item.idempotency_key,
            )
        on_hand[key] = after
        docs.append({
            "_id": ObjectId(), "tenant_id": tenant_id, "location_id": item.location_id, "sku_id": item.sku.id,
            "sku_owner_id": item.sku.tenant_id, "lot_id": item.lot.id if item.lot else None,
            "lot_code": item.lot.lot_code if item.lot else None, "kind": item.kind.value,
            "quantity": after - before, "counted": item.quantity if item.kind == MovementKind.count else None,
            "idempotency_key": item.idempotency_key, "fingerprint": item.fingerprint, "reference": item.reference,
            "occurred_at": item.occurred_at, "recorded_at": now,
            **({"unit_price": item.unit_price} if item.unit_price is not None else {}),
            **({"promotion": item.promotion} if item.promotion is not None else {}),
            "actor": actor, "actor_kind": actor_kind, "client_id": client_id, "reason": item.reason,
            **({"unit_cost": item.unit_cost, "currency": item.currency} if item.unit_cost is not None else {}),
        })
        if item.kind == MovementKind.count and after != before:
            result.corrections.append({"doc": docs[-1], "before": before, "after": after, "sku": item.sku.code})
    last = {}
    arrived: dict[PositionKey, datetime] = {}
    for item, doc in zip(fresh, docs):
        last[item.position_key] = (item, doc)
        if item.kind in ADDING and doc["quantity"] > 0:
            first = arrived.get(item.position_key)
            arrived[item.position_key] = doc["occurred_at"] if first is None else min(first, doc["occurred_at"])
    updates: list[by_id.Row] = []
    inserts: list[dict[str, Any]] = []
    for key, (item, doc) in last.items():
        fields = {
            "on_hand": on_hand[key], "last_movement_id": doc["_id"], "last_movement_at": doc["occurred_at"],
            "updated_at": now, "lot_code": doc["lot_code"],
            "expires_on": to_bson(item.lot.expires_on) if item.lot else None,
            "effective_expires_on": to_bson(item.lot.effective_expires_on) if item.lot else None,
        }
        if key in current:
            # Guarded on the value we read: a concurrent writer makes this change nothing and we start over.
            updates.append(by_id.Row(current[key]["_id"], fields, guard={"on_hand": current[key]["on_hand"]},
                                     min={"arrived_at": arrived[key]} if key in arrived else {}))
            result.written[key] = (current[key]["_id"], on_hand[key])
        else:
            # arrived_at is left out, not null, when nothing was added: $min would never replace a null
            created = ObjectId()
            inserts.append({"_id": created, "tenant_id": tenant_id, "location_id": key[0], "sku_id": key[1],
                            "sku_owner_id": item.sku.tenant_id, "lot_id": key[2], **fields,
                            **({"arrived_at": arrived[key]} if key in arrived else {})})
            result.written[key] = (created, on_hand[key])
    stored = []
    for key, (item, doc) in last.items():
        stored.append({
            "tenant_id": tenant_id, "location_id": key[0], "sku_id": key[1], "sku_owner_id": item.sku.tenant_id,
            "lot_id": key[2], "lot_code": doc["lot_code"], "on_hand": on_hand[key],
            "delta": on_hand[key] - (current[key]["on_hand"] if key in current else 0),
            "expires_on": item.lot.expires_on if item.lot else None,
        })
    # Positions first: a concurrent writer on one of them conflicts before this batch has written much. Every update
    # changes last_movement_id, so one that changed nothing failed its guard (or the position is gone).
    if updates and (await by_id.update_rows(positions, updates, session)).modified != len(updates):
        raise StaleRead("a position changed concurrently")
    if inserts:
        try:
            await positions.insert_many(inserts, ordered=True, session=session)
        except (BulkWriteError, DuplicateKeyError) as exc:
            raise StaleRead("a position was created concurrently") from exc
    await batch_events(session, tenant_id, stored, docs)
    try:
        await movements.insert_many(docs, ordered=True, session=session)
    except (BulkWriteError, DuplicateKeyError) as exc:
        raise KeysRecorded("an idempotency key of the batch is already recorded") from exc
    result.accepted = len(fresh)
    result.positions = stored
    # Planning: the daily demand series and first-expired-first-out, also in the same transaction.
    result.series = await demand.record(session, docs, series_hints)
    # Expiry risk is re-assessed in the same transaction (after the series: it reads the sales there); stock without
    # an expiry date carries none.
    await on_stock_changed(session, [p for p in stored if p["expires_on"] is not None])
    await health.record_lot_costs(session, docs)
    await fefo.on_movements(session, tenant_id, docs)
    return result


async def _load_positions(session: AsyncClientSession, positions: Any, tenant_id: str,
                          batch: list[Prepared]) -> dict[PositionKey, dict[str, Any]]:
    # One query per location (a batch usually names one): tenant and location equal, SKUs listed is the position
    # index's own prefix, which SecantusDB reads within bounds; a list of locations, or a hint, made it read every
    # position of every tenant (tests/test_indexes.py, bench/growth.py).
    by_location: dict[ObjectId, set[ObjectId]] = {}
    for p in batch:
        by_location.setdefault(p.location_id, set()).add(p.sku.id)  # type: ignore[arg-type]
    wanted = {p.position_key for p in batch}
    found: dict[PositionKey, dict[str, Any]] = {}
    for location, skus in sorted(by_location.items()):
        async for doc in positions.find(
            {"tenant_id": tenant_id, "location_id": location, "sku_id": {"$in": sorted(skus)}},
            {"location_id": 1, "sku_id": 1, "lot_id": 1, "on_hand": 1}, session=session,
        ):
            key = (doc["location_id"], doc["sku_id"], doc.get("lot_id"))
            if key in wanted:
                found[key] = doc
    return found


async def run_batch(database: Database, work: Any) -> Any:
    """Run ``work(session)`` in a transaction, starting over when a concurrent writer got there first."""
    try:
        return await database.in_transaction(work)
    except StaleRead:
        raise Conflict("too much concurrent activity on these positions, try again") from None


async def record_movements(access: Access, database: Database, items: list[MovementInput],
                           max_batch: int = 10_000, count_audit_threshold: int = 0) -> BatchResult:
    """Book a batch; counts that changed on-hand by more than ``count_audit_threshold`` units go to the audit log."""
    access.require(Group.operations)
    check_keys = False  # the usual batch is new: its keys are checked by the unique index, read only on a clash

    async def work(session: AsyncClientSession) -> BatchResult:
        nonlocal check_keys
        batch = await prepare(access, items, session=session, max_batch=max_batch)
        try:
            return await apply(session, access.tenant_id, batch, check_keys=check_keys, hints=known,
                               series_hints=demand.known_series)
        except KeysRecorded:
            check_keys = True
            raise

    # Batches of this process naming the same (location, SKU) take turns (hub/services/position_locks.py); the
    # next one in line finds this one's positions remembered.
    name = database.db.name
    names = {(name, access.tenant_id, item.location_id.strip(), item.sku.strip()) for item in items}
    async with position_locks.positions.hold(names):
        result = await run_batch(database, work)
        known.remember({(name, access.tenant_id, *key): entry for key, entry in result.written.items()})
        demand.known_series.remember({(name, *key): entry for key, entry in result.series.items()})
    entries = []
    for correction in result.corrections:  # after the commit: only what was booked is audited
        if abs(correction["after"] - correction["before"]) > count_audit_threshold:
            doc = correction["doc"]
            entries.append(audit.entry(
                "stock.count_corrected", tenant_id=access.tenant_id, principal=access.principal,
                target=str(doc["_id"]), reason=doc["reason"],
                details={"location": str(doc["location_id"]), "sku": correction["sku"], "lot": doc["lot_code"],
                         "before": {"onHand": correction["before"]}, "after": {"onHand": correction["after"]}},
            ))
    await audit.record_all(entries)
    return result
