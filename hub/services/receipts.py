"""Receipts: the receiver scans what arrived, the hub reconciles it with the dispatch on the spot.

One transaction writes the receipt, books the arrived quantities as ``receipt`` movements (and their positions),
holds the lots a mismatch names, raises one ``mismatch`` alert for the receipt and moves the dispatch along.
Concurrent receipts of one dispatch serialise on the dispatch's version: the later one starts over and judges its
lines on the running totals including the earlier one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from hub import audit, metrics
from hub.config import Settings
from hub.dates import utcnow
from hub.db import Database, StaleRead
from hub.detect.mismatch import ExpectedLine, Mismatch, MismatchKind, ScannedLine, recommendation, reconcile
from hub.errors import BadInput, Conflict, Forbidden, NotFound
from hub.events.log import emit
from hub.models.alert import AlertKind, Decision, Severity, SubjectRef
from hub.models.dispatch import OPEN_STATUSES, Dispatch, DispatchStatus
from hub.models.location import Location
from hub.models.lot import Lot, LotStatus
from hub.models.movement import MovementKind
from hub.models.receipt import MismatchRecord, Receipt, ReceiptLine, ReceiptOutcome
from hub.models.sku import Sku
from hub.services import audiences, movements
from hub.services.alerts import raise_alert, resolve_alert
from hub.services.dispatches import transition
from hub.services.lots import ensure_lot, lot_events, use_lot
from hub.services.pallets import UnitLine, unit_lines, validate_sscc
from hub.services.skus import resolve_skus
from tenants.access import Access
from tenants.roles import Group

MAX_LINES = 1000
SEVERE = {MismatchKind.unexpected_sku, MismatchKind.shelf_life, MismatchKind.expiry}


@dataclass
class ReceiptLineInput:
    sku: str  # as scanned: id, code, the receiver's alias, or GTIN
    lot_code: str
    quantity: int
    expires_on: date | None = None
    unit_cost: float | None = None  # what the receiver paid a unit: values this lot in its inventory health
    currency: str | None = None
    sscc: str | None = None  # the logistic unit the goods came on


@dataclass
class ReceiptInput:
    dispatch_id: str
    lines: Sequence[ReceiptLineInput | UnitLine]
    location_id: str | None = None  # default: the dispatch's destination
    final: bool = False  # nothing more will arrive: judge shortages and missing lines now
    ref: str | None = None


async def resolve_scanned(access: Access, dispatch: Dispatch, refs: set[str]) -> dict[str, Sku | None]:
    """The scanned references, the dispatch's SKUs first (``resolve_skus``); an unknown item is a finding."""
    found = await resolve_skus(access, refs, context=[line.sku_id for line in dispatch.lines])
    return {ref: found.get(ref) for ref in refs}


def expand_units(dispatch: Dispatch, lines: Sequence[ReceiptLineInput | UnitLine]) -> list[ReceiptLineInput]:
    """Each scanned unit becomes the dispatch's lines on it (SKU, lot, quantity, expiry as notified), so receiving a
    pallet is judged exactly like typing its contents; an SSCC the dispatch does not carry is refused."""
    expanded: list[ReceiptLineInput] = []
    for line in lines:
        if isinstance(line, ReceiptLineInput):
            expanded.append(line)
            continue
        sscc = validate_sscc(line.sscc, line.field)
        contents = unit_lines(dispatch, sscc)
        if not contents:
            raise BadInput(f"{line.field}: SSCC {sscc} is on no line of dispatch {dispatch.ref}: scan or type its "
                           "contents instead", field=line.field)
        expanded += [ReceiptLineInput(str(item.sku_id), item.lot_code, item.quantity, item.expires_on,
                                      sscc=item.sscc) for _, item in contents]
    return expanded


def typed_lines(data: ReceiptInput) -> list[ReceiptLineInput]:
    """The lines once every unit is expanded (``expand_units``)."""
    return [line for line in data.lines if isinstance(line, ReceiptLineInput)]


def validate(data: ReceiptInput) -> None:
    """Checks the typed lines; a scanned unit's lines come from the dispatch."""
    if not data.lines or len(data.lines) > MAX_LINES:
        raise BadInput(f"a receipt needs 1-{MAX_LINES} lines", field="lines")
    for n, line in enumerate(data.lines):
        if not isinstance(line, ReceiptLineInput):
            continue
        if line.quantity <= 0:
            raise BadInput(f"line {n}: quantity must be positive", field="lines", index=n)
        if not line.lot_code.strip() or not line.sku.strip():
            raise BadInput(f"line {n}: SKU and lot code must not be empty", field="lines", index=n)
        if line.unit_cost is not None and not 0.0 <= line.unit_cost < 1e9:  # also false for NaN
            raise BadInput(f"line {n}: unit cost must be a non-negative number", field="lines", index=n)
        if line.currency is not None:
            line.currency = line.currency.strip().upper()
            if len(line.currency) != 3 or not line.currency.isalpha():
                raise BadInput(f"line {n}: currency must be an ISO 4217 code", field="lines", index=n)
        if (line.unit_cost is None) != (line.currency is None):
            raise BadInput(f"line {n}: unit cost and currency go together", field="lines", index=n)
    if data.ref is not None and not 0 < len(data.ref.strip()) <= 100:
        raise BadInput("receipt ref must be 1-100 characters", field="ref")


async def record_receipt(access: Access, database: Database, settings: Settings, data: ReceiptInput) -> Receipt:
    access.require(Group.operations)
    validate(data)
    dispatch = await access.get(Dispatch, data.dispatch_id, access.dispatches("read"), "dispatch")
    if access.tenant_id not in (dispatch.consignee_id, dispatch.carrier_id):
        raise Forbidden("only the consignee or the carrier records receipts")
    data.lines = list(expand_units(dispatch, data.lines))
    if len(data.lines) > MAX_LINES:
        raise BadInput(f"a receipt needs 1-{MAX_LINES} lines (counting the contents of scanned units)", field="lines")
    ref = data.ref.strip() if data.ref else None
    if data.location_id is not None:
        location = await access.get(Location, data.location_id, access.locations("write"), "location")
    elif dispatch.to_location_id is not None and access.tenant_id == dispatch.consignee_id:
        location = await access.get(Location, dispatch.to_location_id, access.locations("write"), "location")
    else:
        raise BadInput("say at which of your locations the goods arrived", field="locationId")
    skus = await resolve_scanned(access, dispatch, {line.sku.strip() for line in typed_lines(data)})

    async def work(session: AsyncClientSession) -> Receipt:
        if ref is not None:
            # Checked in the transaction: of two concurrent resends, the later one conflicts, retries, finds this.
            earlier = await Receipt.find_one({"dispatch_id": dispatch.id, "ref": ref, "tenant_id": access.tenant_id},
                                             session=session)
            if earlier is not None:
                return earlier  # a scanner resending the same receipt
        current = await Dispatch.find_one({"_id": dispatch.id}, session=session)
        if current is None:
            raise NotFound("dispatch not found")
        if current.status not in OPEN_STATUSES:
            raise Conflict(f"dispatch is {current.status.value}, it takes no more receipts")
        return await _book(session, access, settings, current, location, skus, data, ref)

    return await movements.run_batch(database, work)


async def _book(
    session: AsyncClientSession, access: Access, settings: Settings, dispatch: Dispatch, location: Location,
    skus: dict[str, Sku | None], data: ReceiptInput, ref: str | None,
) -> Receipt:
    sku_by_id = {s.id: s for s in skus.values() if s is not None}
    for known in await Sku.find({"_id": {"$in": [l.sku_id for l in dispatch.lines if l.sku_id not in sku_by_id]}},
                                session=session).to_list():
        sku_by_id[known.id] = known
    expected = [
        ExpectedLine(str(l.sku_id), l.lot_code, l.quantity, l.produced_on, l.expires_on,
                     sku_by_id[l.sku_id].shelf_life_days if l.sku_id in sku_by_id else None, l.sscc)
        for l in dispatch.lines
    ]
    earlier = [
        ScannedLine(line.sku_ref, str(line.sku_id) if line.sku_id else None, line.lot_code, line.quantity,
                    line.expires_on, line.sscc)
        async for receipt in Receipt.find({"dispatch_id": dispatch.id}, session=session)
        for line in receipt.lines
    ]
    typed = typed_lines(data)
    scanned = []
    for l in typed:
        sku = skus[l.sku.strip()]
        scanned.append(ScannedLine(l.sku.strip(), str(sku.id) if sku else None, l.lot_code.strip(), l.quantity,
                                   l.expires_on, l.sscc))
    with metrics.DETECTOR_DURATION.labels("mismatch").time():
        outcome = reconcile(expected, earlier, scanned, final=data.final,
                            quantity_tolerance_pct=settings.receipt_quantity_tolerance_pct,
                            shelf_life_tolerance_days=settings.expiry_tolerance_days)
    receipt_id = ObjectId()
    lots = {lot.id: lot for lot in await Lot.find({"_id": {"$in": [l.lot_id for l in dispatch.lines]}},
                                                  session=session).to_list()}
    lines: list[ReceiptLine] = []
    batch: list[movements.Prepared] = []
    now = utcnow()
    for n, (line, index) in enumerate(zip(scanned, outcome.pairing, strict=True)):
        sku = skus[line.sku_ref]
        lot: Lot | None = None
        if index is not None:
            lot = lots.get(dispatch.lines[index].lot_id)
        elif sku is not None:
            if sku.tenant_id in (dispatch.tenant_id, access.tenant_id):
                # The SKU's owner shipped (or receives) its own goods: the lot is its to create, for every party.
                lot = await ensure_lot(sku, line.lot_code, None, line.expires_on, dispatch.parties, session=session)
            else:
                # Someone else's goods: only a lot the receiver was shipped; otherwise booked without a lot (its code
                # stays on the receipt line and in the mismatch), so nothing of the owner's is created or revealed.
                try:
                    lot = await use_lot(access, sku, line.lot_code, session=session)
                except NotFound:
                    lot = None
            if lot is not None:
                lots[lot.id] = lot
        lines.append(ReceiptLine(sku_ref=line.sku_ref, sku_id=sku.id if sku else None, lot_code=line.lot_code,
                                 lot_id=lot.id if lot else None, quantity=line.quantity,
                                 expires_on=line.expires_on, dispatch_line=index, sscc=typed[n].sscc))
        if sku is not None:
            key = f"receipt:{receipt_id}:{n}"
            batch.append(movements.Prepared(
                index=n, location_id=location.id, sku=sku, lot=lot, kind=MovementKind.receipt,  # type: ignore[arg-type]
                quantity=line.quantity, idempotency_key=key, fingerprint=key, occurred_at=now,
                reference=f"receipt:{receipt_id}", unit_cost=typed[n].unit_cost, currency=typed[n].currency,
            ))
    held = _held_lots(outcome.mismatches, dispatch, lines)
    receipt = Receipt(
        id=receipt_id, tenant_id=access.tenant_id, dispatch_id=dispatch.id,
        parties=dispatch.parties,
        location_id=location.id, ref=ref, lines=lines, final=data.final,
        outcome=ReceiptOutcome.matched if outcome.matched else ReceiptOutcome.mismatched,
        mismatches=[_record(m) for m in outcome.mismatches], held_lot_ids=sorted(held), received_at=now,
    )
    if outcome.mismatches:
        alert = await _raise(session, dispatch, receipt, outcome.mismatches, held, sku_by_id)
        receipt.alert_id = alert.id
    await receipt.insert(session=session)
    await emit(session, "receipt.recorded", access.tenant_id, dispatch.parties, receipt_payload(receipt, dispatch))
    if batch:
        await movements.apply(session, access.tenant_id, batch)
    if held:
        holding = {"_id": {"$in": sorted(held)}, "status": LotStatus.released.value}
        before = await Lot.get_pymongo_collection().find(holding, session=session).to_list(None)
        reason = f"receipt {receipt_id} of dispatch {dispatch.ref} did not match its notice"
        await Lot.get_pymongo_collection().update_many(
            holding, {"$set": {"status": LotStatus.on_hold.value, "updated_at": now, "hold_reason": reason}},
            session=session,
        )
        await lot_events(session, "lot.held", before, reason)
    has_mismatch = dispatch.has_mismatch or not outcome.matched
    status = dispatch.status
    if data.final or outcome.complete:
        status = DispatchStatus.received_with_mismatch if has_mismatch else DispatchStatus.received
    changes: dict[str, Any] = {f"lines.{i}.received": total for i, total in enumerate(outcome.received)}
    changes.update({"has_mismatch": has_mismatch, "receipt_count": dispatch.receipt_count + 1})
    try:
        await transition(session, dispatch, status, access.tenant_id, f"receipt {receipt_id}", changes)
    except Conflict as exc:
        raise StaleRead(str(exc)) from exc
    return receipt


def receipt_payload(receipt: Receipt, dispatch: Dispatch) -> dict[str, Any]:
    """The receipt as ``receipt.recorded`` carries it (hub/events/payloads.py)."""
    return {"receipt": {
        "id": str(receipt.id), "dispatchId": str(dispatch.id), "dispatchRef": dispatch.ref,
        "receiverId": receipt.tenant_id, "locationId": str(receipt.location_id), "ref": receipt.ref,
        "final": receipt.final, "outcome": receipt.outcome.value, "mismatches": len(receipt.mismatches),
        "heldLotIds": [str(lot) for lot in receipt.held_lot_ids],
        "lines": [{"skuId": str(line.sku_id) if line.sku_id else None, "skuRef": line.sku_ref,
                   "lotId": str(line.lot_id) if line.lot_id else None, "lotCode": line.lot_code,
                   "quantity": line.quantity, "expiresOn": line.expires_on.isoformat() if line.expires_on else None,
                   "sscc": line.sscc}
                  for line in receipt.lines],
        "receivedAt": receipt.received_at.isoformat(),
    }}


def _held_lots(mismatches: list[Mismatch], dispatch: Dispatch, lines: list[ReceiptLine]) -> set[ObjectId]:
    held: set[ObjectId] = set()
    for m in mismatches:
        if not m.holds_lot:
            continue
        if m.dispatch_line is not None:
            held.add(dispatch.lines[m.dispatch_line].lot_id)
        elif m.line is not None and lines[m.line].lot_id is not None:
            held.add(lines[m.line].lot_id)  # type: ignore[arg-type]
    return held


def _record(m: Mismatch) -> MismatchRecord:
    return MismatchRecord(kind=m.kind.value, line=m.line, dispatch_line=m.dispatch_line, expected=m.expected,
                          found=m.found, near_miss=m.near_miss, sku_id=ObjectId(m.sku_id) if m.sku_id else None,
                          lot_code=m.lot_code)


async def _raise(session: AsyncClientSession, dispatch: Dispatch, receipt: Receipt, found: list[Mismatch],
                 held: set[ObjectId], skus: dict[Any, Sku]) -> Any:
    kinds = sorted({m.kind.value for m in found})
    severity = Severity.critical if any(m.kind in SEVERE for m in found) else Severity.warning
    subjects = [SubjectRef(kind="dispatch", id=str(dispatch.id), label=dispatch.ref),
                SubjectRef(kind="receipt", id=str(receipt.id), label=receipt.ref)]
    subjects += [SubjectRef(kind="lot", id=str(lot_id)) for lot_id in sorted(held)]
    evidence = {
        "dispatchId": str(dispatch.id), "dispatchRef": dispatch.ref, "receiptId": str(receipt.id),
        "mismatches": [
            {"kind": m.kind.value, "line": m.line, "dispatchLine": m.dispatch_line, "expected": m.expected,
             "found": m.found, "nearMiss": m.near_miss, "lotCode": m.lot_code,
             "skuCode": skus[ObjectId(m.sku_id)].code if m.sku_id and ObjectId(m.sku_id) in skus else None}
            for m in found
        ],
        "heldLots": [str(lot_id) for lot_id in sorted(held)],
    }
    return await raise_alert(
        session, kind=AlertKind.mismatch, severity=severity, owner=dispatch.consignee_id,
        audience=audiences.dispatch_parties(dispatch), audience_rule=audiences.DISPATCH,
        title=f"Receipt of dispatch {dispatch.ref} does not match its notice ({', '.join(kinds)})",
        dedupe_key=f"mismatch:receipt:{receipt.id}", subjects=subjects, evidence=evidence,
        recommendation=recommendation(found),
    )


async def resolve_receipt(
    access: Access,
    database: Database,
    receipt_id: str,
    note: str | None = None,
    decision: Decision = Decision.accept_risk,
) -> Receipt:
    """The receiver settles a mismatched receipt: its held lots go back to ``released`` and its alert is resolved.

    The alert records ``decision``: releasing the held stock accepts it as received unless the receiver says
    otherwise (e.g. ``return_to_supplier``). A lot stays on hold while another unresolved receipt still holds it.
    """
    access.require(Group.decisions)
    if decision is Decision.other and not (note or "").strip():
        raise BadInput("the decision 'other' needs a note saying what was decided", field="note")
    receipt = await access.get(Receipt, receipt_id, access.receipts("read"), "receipt")
    if receipt.tenant_id != access.tenant_id:
        raise Forbidden("only the receiver resolves its receipt")
    if receipt.outcome != ReceiptOutcome.mismatched:
        raise Conflict("this receipt matched its dispatch: there is nothing to resolve")

    async def work(session: AsyncClientSession) -> Receipt:
        now = utcnow()
        done = await Receipt.get_pymongo_collection().update_one(
            {"_id": receipt.id, "resolved_at": None},
            {"$set": {"resolved_at": now, "resolved_by": access.principal.subject, "resolution_note": note}},
            session=session,
        )
        if done.modified_count != 1:
            raise Conflict("this receipt is already resolved")
        still_held = await Receipt.get_pymongo_collection().distinct(
            "held_lot_ids",
            {"_id": {"$ne": receipt.id}, "held_lot_ids": {"$in": receipt.held_lot_ids}, "resolved_at": None},
            session=session,
        )
        release = sorted(set(receipt.held_lot_ids) - set(still_held))
        released[:] = (await Lot.get_pymongo_collection().find(
            {"_id": {"$in": release}, "status": LotStatus.on_hold.value}, session=session,
        ).to_list(None))  # what a retried transaction finds, not what an aborted try did
        if release:
            await Lot.get_pymongo_collection().update_many(
                {"_id": {"$in": release}, "status": LotStatus.on_hold.value},
                {"$set": {"status": LotStatus.released.value, "hold_reason": None, "updated_at": now}},
                session=session,
            )
            await lot_events(session, "lot.released", released,
                             f"receipt {receipt.id} resolved" + (f": {note}" if note else ""))
        resolved = await Receipt.find_one({"_id": receipt.id}, session=session)
        if resolved is None:
            raise NotFound("receipt not found")
        return resolved

    released: list[dict[str, Any]] = []
    resolved = await database.in_transaction(work)
    await audit.record(
        "receipt.resolved", tenant_id=access.tenant_id, principal=access.principal, target=str(receipt.id),
        reason=note, details={"before": {"resolved": False, "heldLots": len(receipt.held_lot_ids)},
                              "after": {"resolved": True, "releasedLots": len(released)}, "decision": decision.value},
    )
    for lot in released:
        await audit.record(
            "lot.released", tenant_id=access.tenant_id, principal=access.principal, target=str(lot["_id"]),
            reason=note, details={"lot": lot["lot_code"], "receipt": str(receipt.id),
                                  "before": {"status": LotStatus.on_hold.value, "holdReason": lot.get("hold_reason")},
                                  "after": {"status": LotStatus.released.value}},
        )
    if receipt.alert_id is not None:
        try:
            await resolve_alert(database, access, str(receipt.alert_id), decision, note)
        except (Conflict, NotFound):
            pass  # somebody resolved the alert already (or it is not the caller's to see): the holds are what count
    return resolved
