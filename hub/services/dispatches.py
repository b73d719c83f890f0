"""Dispatches (advance ship notices): creation by the shipper and validated status transitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from hub import epc
from hub.dates import utcnow
from hub.db import Database
from hub.errors import BadInput, Conflict, Forbidden, NotFound
from hub.events.log import emit
from hub.models.dispatch import TRANSITIONS, Dispatch, DispatchLine, DispatchStatus, StatusChange
from hub.models.location import Location
from hub.models.pallet import Pallet, PalletContent
from hub.models.sku import Sku
from hub.services import fefo
from hub.services.expiry import check_dispatch_shelf_life
from hub.services.lots import use_lot
from hub.services.pallets import UnitLine, dispatch_ssccs, validate_sscc
from hub.services.skus import resolve_skus
from hub.services.text import clean_text
from tenants.access import Access
from tenants.roles import Group

MAX_LINES = 1000


@dataclass
class DispatchLineInput:
    sku: str  # id, code or GTIN of a SKU the shipper can see
    lot_code: str
    quantity: int
    produced_on: date | None = None
    expires_on: date | None = None
    sscc: str | None = None  # the pallet or case the goods travel on
    in_sscc: str | None = None  # the pallet that unit is stacked on
    effective_expires_on: date | None = None  # a packed pallet's goods shortened by an excursion (packing record)


@dataclass
class DispatchInput:
    ref: str
    consignee_id: str
    lines: Sequence[DispatchLineInput | UnitLine]
    to_location: str | None = None  # the consignee's location: id or code
    from_location_id: str | None = None
    carrier_id: str | None = None
    shipped_on: date | None = None
    expected_on: date | None = None


def dispatch_payload(dispatch: Dispatch) -> dict[str, Any]:
    """The dispatch as events, subscriptions and webhooks carry it."""
    return {
        "dispatch": {
            "id": str(dispatch.id),
            "ref": dispatch.ref,
            "shipperId": dispatch.tenant_id,
            "consigneeId": dispatch.consignee_id,
            "carrierId": dispatch.carrier_id,
            "status": dispatch.status.value,
            "hasMismatch": dispatch.has_mismatch,
            "lines": [
                {"skuId": str(line.sku_id), "lotCode": line.lot_code, "quantity": line.quantity,
                 "received": line.received, "sscc": line.sscc, "inSscc": line.in_sscc}
                for line in dispatch.lines
            ],
            "updatedAt": dispatch.updated_at.isoformat(),
        }
    }


async def _consignee_location(access: Access, consignee_id: str, ref: str | None) -> Location | None:
    """The destination, by id or code, among the locations the consignee receives the caller's dispatches at."""
    if ref is None:
        return None
    ref = ref.strip()
    by: list[dict[str, Any]] = [{"code": ref}]
    if ObjectId.is_valid(ref):
        by.append({"_id": ObjectId(ref)})
    location = await Location.find_one({**access.receiving_locations(consignee_id), "$or": by})
    if location is None:
        raise NotFound("consignee location not found", field="toLocation")
    return location


async def create_dispatch(access: Access, database: Database, data: DispatchInput) -> Dispatch:
    access.require(Group.operations)
    ref = clean_text(data.ref, "ref", 100, "dispatch ref")  # partners' ERPs match on it: no control characters
    if not data.lines or len(data.lines) > MAX_LINES:
        raise BadInput(f"a dispatch needs 1-{MAX_LINES} lines", field="lines")
    if data.consignee_id == access.tenant_id:
        raise BadInput("a dispatch goes to another tenant", field="consigneeId")
    # Consent, not existence: a tenant that does not share ``dispatches`` with the shipper answers exactly like one
    # that does not exist, so nobody learns who is on the hub or fills another tenant's list unasked.
    if not access.may_dispatch_to(data.consignee_id):
        raise NotFound("consignee not found", field="consigneeId")
    if data.carrier_id not in (None, access.tenant_id) and not access.may_dispatch_to(data.carrier_id):
        raise NotFound("carrier not found", field="carrierId")
    parties = {access.tenant_id, data.consignee_id} | ({data.carrier_id} if data.carrier_id else set())
    if data.shipped_on and data.expected_on and data.expected_on < data.shipped_on:
        raise BadInput("expected arrival is before shipping", field="expectedOn")
    from_location = None
    if data.from_location_id is not None:
        from_location = await access.get(Location, data.from_location_id, access.locations("write"), "location")
    to_location = await _consignee_location(access, data.consignee_id, data.to_location)
    lines = await _aggregated(access, data.lines)
    if len(lines) > MAX_LINES:
        raise BadInput(f"a dispatch needs 1-{MAX_LINES} lines (counting the contents of pallets)", field="lines")
    for n, line in enumerate(lines):
        if line.quantity <= 0:
            raise BadInput(f"line {n}: quantity must be positive", field="lines", index=n)
    _check_units(lines)
    skus = await resolve_skus(access, [line.sku for line in lines])
    for n, line in enumerate(lines):
        if line.sku.strip() not in skus:
            raise NotFound(f"line {n}: sku {line.sku.strip()[:40]!r} not found", field="lines", index=n)

    async def work(session: AsyncClientSession) -> Dispatch:
        built = []
        for n, line in enumerate(lines):
            sku = skus[line.sku.strip()]
            # The lot is the producer's: the shipper names one it owns or was shipped; every party now sees it.
            try:
                lot = await use_lot(access, sku, line.lot_code, line.produced_on, line.expires_on, sorted(parties),
                                    session=session)
            except NotFound as exc:
                raise NotFound(f"line {n}: {exc.message}", field="lines", index=n) from None
            built.append(DispatchLine(
                sku_id=sku.id, lot_id=lot.id, lot_code=lot.lot_code, quantity=line.quantity,
                produced_on=line.produced_on or lot.produced_on, expires_on=line.expires_on or lot.expires_on,
                sscc=line.sscc, in_sscc=line.in_sscc, effective_expires_on=line.effective_expires_on,
            ))
        now = utcnow()
        dispatch = Dispatch(
            tenant_id=access.tenant_id, ref=ref, from_location_id=from_location.id if from_location else None,
            consignee_id=data.consignee_id, to_location_id=to_location.id if to_location else None,
            carrier_id=data.carrier_id, parties=sorted(parties), shipped_on=data.shipped_on,
            expected_on=data.expected_on, lines=built, ssccs=dispatch_ssccs(built),
            history=[StatusChange(status=DispatchStatus.dispatched, at=now, by=access.tenant_id)],
            created_at=now, updated_at=now,
        )
        await dispatch.insert(session=session)
        await emit(session, "dispatch.created", access.tenant_id, dispatch.parties, dispatch_payload(dispatch))
        await check_dispatch_shelf_life(session, dispatch)  # expiry_risk when lines arrive too short-dated
        await fefo.on_dispatch(session, dispatch)  # fefo_violation when newer lots leave before older ones
        return dispatch

    try:
        return await database.in_transaction(work)
    except DuplicateKeyError:
        raise Conflict(f"dispatch {ref!r} already exists", field="ref") from None


async def _aggregated(access: Access, lines: Sequence[DispatchLineInput | UnitLine]) -> list[DispatchLineInput]:
    """A pallet given by its SSCC alone ships what the shipper's own EPCIS aggregation events put on it: each lot
    quantity (LGTIN) a line on the pallet, each case-level SSCC on it a unit stacked on the pallet with its own."""
    expanded: list[DispatchLineInput] = []
    for line in lines:
        if isinstance(line, DispatchLineInput):
            expanded.append(line)
            continue
        sscc = validate_sscc(line.sscc, line.field)
        for child, parent, content in await _packed(access, sscc, line.field):
            expanded.append(DispatchLineInput(content.gtin or "", content.lot_code or "", int(content.quantity or 0),
                                              sscc=child, in_sscc=parent,
                                              effective_expires_on=content.effective_expires_on))
    return expanded


async def _packed(access: Access, sscc: str, field: str, parent: str | None = None
                  ) -> list[tuple[str, str | None, PalletContent]]:
    pallet = await Pallet.find_one({"tenant_id": access.tenant_id, "sscc": sscc})
    if pallet is None or not pallet.contents:
        raise BadInput(f"{field}: nothing is known to be on SSCC {sscc}: capture its packing (an EPCIS "
                       "AggregationEvent) or give the goods", field=field)
    found: list[tuple[str, str | None, PalletContent]] = []
    for content in pallet.contents:
        key = epc.parse(content.epc)
        if key is not None and key.kind == "sscc":
            if parent is not None:
                raise BadInput(f"{field}: SSCC {sscc} on {parent} carries units itself: one level of stacking "
                               "only", field=field)
            found += await _packed(access, key.value, field, sscc)
        elif content.gtin and content.lot_code and content.uom is None and content.quantity \
                and float(content.quantity).is_integer() and content.quantity > 0:
            found.append((sscc, parent, content))
        else:
            raise BadInput(f"{field}: {content.epc} on SSCC {sscc} is no whole count of a lot (give the goods)",
                           field=field)
    return found


def _check_units(lines: list[DispatchLineInput]) -> None:
    """SSCCs with right check digits, one level of stacking (a case on a pallet), and a pallet that is not itself
    stacked: a unit is either on a pallet or carries units, so receiving or watching it has one meaning."""
    for n, line in enumerate(lines):
        if line.sscc is not None:
            line.sscc = validate_sscc(line.sscc, f"lines.{n}.sscc")
        if line.in_sscc is not None:
            if line.sscc is None:
                raise BadInput(f"lines.{n}.inSscc: give the unit's own SSCC (sscc) too", field=f"lines.{n}.inSscc")
            line.in_sscc = validate_sscc(line.in_sscc, f"lines.{n}.inSscc")
            if line.in_sscc == line.sscc:
                raise BadInput(f"lines.{n}.inSscc: a unit is not stacked on itself", field=f"lines.{n}.inSscc")
    outer = {line.in_sscc for line in lines if line.in_sscc}
    stacked = {line.sscc: line.in_sscc for line in lines if line.in_sscc}
    for n, line in enumerate(lines):
        if line.in_sscc in stacked:
            raise BadInput(f"lines.{n}.inSscc: {line.in_sscc} is itself stacked on {stacked[line.in_sscc]}",
                           field=f"lines.{n}.inSscc")
        if line.sscc in stacked and stacked[line.sscc] != line.in_sscc:
            raise BadInput(f"lines.{n}.sscc: {line.sscc} is stacked on {stacked[line.sscc]} on another line",
                           field=f"lines.{n}.sscc")
        if line.sscc in outer and line.in_sscc is not None:
            raise BadInput(f"lines.{n}.sscc: {line.sscc} carries other units, it cannot be stacked itself",
                           field=f"lines.{n}.sscc")


@dataclass
class DraftLine:
    lot_code: str
    quantity: int


async def draft_dispatch(session: AsyncClientSession, requester: Access, sku: Sku, ref: str, shipper: str,
                         from_location_id: ObjectId, consignee: str, to_location_id: ObjectId,
                         lines: list[DraftLine]) -> Dispatch:
    """A dispatch the SKU's owner proposes between two partners that hold its goods (a transfer recommendation it
    accepted): the shipper confirms it (``dispatched``) or cancels it. The caller checked the sharing rule; the
    lots are the owner's, so every party comes to see them. Answers the existing draft for a ``ref`` already used."""
    earlier = await Dispatch.find_one({"tenant_id": shipper, "ref": ref}, session=session)
    if earlier is not None:
        if earlier.requested_by != requester.tenant_id:
            raise Conflict(f"{shipper} already has a dispatch {ref!r}")
        return earlier
    parties = sorted({shipper, consignee, requester.tenant_id})
    built = []
    for line in lines:
        lot = await use_lot(requester, sku, line.lot_code, share_with=parties, session=session)
        built.append(DispatchLine(sku_id=sku.id, lot_id=lot.id, lot_code=lot.lot_code, quantity=line.quantity,
                                  produced_on=lot.produced_on, expires_on=lot.expires_on))
    now = utcnow()
    dispatch = Dispatch(
        tenant_id=shipper, ref=ref, from_location_id=from_location_id, consignee_id=consignee,
        to_location_id=to_location_id, parties=parties, requested_by=requester.tenant_id,
        status=DispatchStatus.draft, lines=built, created_at=now, updated_at=now,
        history=[StatusChange(status=DispatchStatus.draft, at=now, by=requester.tenant_id,
                              note="proposed by a transfer recommendation")],
    )
    await dispatch.insert(session=session)
    await emit(session, "dispatch.created", shipper, dispatch.parties, dispatch_payload(dispatch))
    await check_dispatch_shelf_life(session, dispatch)
    return dispatch


async def transition(
    session: AsyncClientSession, dispatch: Dispatch, to: DispatchStatus, by: str, note: str | None = None,
    changes: dict[str, Any] | None = None,
) -> Dispatch:
    """Move the dispatch to ``to`` if the lifecycle allows it, compare-and-set on its version; emits its event."""
    if to != dispatch.status and to not in TRANSITIONS[dispatch.status]:
        raise Conflict(f"dispatch is {dispatch.status.value}, it cannot become {to.value}")
    now = utcnow()
    update: dict[str, Any] = {"$set": {"status": to.value, "updated_at": now, **(changes or {})},
                              "$inc": {"version": 1}}
    if to != dispatch.status:
        update["$push"] = {"history": StatusChange(status=to, at=now, by=by, note=note).model_dump(mode="python")}
    raw = await Dispatch.get_pymongo_collection().find_one_and_update(
        {"_id": dispatch.id, "version": dispatch.version}, update, return_document=ReturnDocument.AFTER,
        session=session,
    )
    if raw is None:
        raise Conflict("the dispatch changed meanwhile, reload it and try again")
    updated = Dispatch.model_validate(raw)
    received = to in (DispatchStatus.received, DispatchStatus.received_with_mismatch) and to != dispatch.status
    event = "dispatch.received" if received else "dispatch.updated"
    await emit(session, event, updated.tenant_id, updated.parties, dispatch_payload(updated))
    return updated


# Who may set which status by hand: the carrier reports transit, the shipper may also cancel; a draft is confirmed
# (``dispatched``) by its shipper, and withdrawn (cancelled) by its shipper or by the partner that requested it.
MANUAL = {DispatchStatus.in_transit: {"shipper", "carrier"}, DispatchStatus.cancelled: {"shipper"},
          DispatchStatus.dispatched: {"shipper"}}


async def update_status(access: Access, database: Database, dispatch_id: str, status: DispatchStatus,
                        note: str | None = None) -> Dispatch:
    access.require(Group.operations)
    dispatch = await access.get(Dispatch, dispatch_id, access.dispatches("read"), "dispatch")
    role = "shipper" if dispatch.tenant_id == access.tenant_id else (
        "carrier" if dispatch.carrier_id == access.tenant_id else
        "requester" if dispatch.requested_by == access.tenant_id else "consignee")
    if status not in MANUAL:
        raise Conflict(f"a dispatch becomes {status.value} by recording receipts")
    if status == DispatchStatus.dispatched and dispatch.status != DispatchStatus.draft:
        raise Conflict(f"dispatch is {dispatch.status.value}: only a draft is confirmed")
    allowed = MANUAL[status] | ({"requester"} if status == DispatchStatus.cancelled
                                and dispatch.status == DispatchStatus.draft else set())
    if role not in allowed:
        raise Forbidden(f"the {role} cannot mark a dispatch {status.value}")
    if status == DispatchStatus.cancelled and dispatch.receipt_count:
        raise Conflict("goods were already received against this dispatch")

    async def work(session: AsyncClientSession) -> Dispatch:
        return await transition(session, dispatch, status, access.tenant_id, note)

    return await database.in_transaction(work)
