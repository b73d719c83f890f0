"""GraphQL types for dispatches, receipts, movements and stock positions."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry

import schema.scalars  # noqa: F401 - binds the model enums to GraphQL
from hub.detect.mismatch import MismatchKind
from hub.models.dispatch import Dispatch, DispatchStatus
from hub.models.lot import LotStatus
from hub.models.movement import Movement, MovementKind
from hub.models.receipt import Receipt, ReceiptOutcome
from hub.models.stock import StockPosition
from hub.services.pallets import PalletView
from schema.catalog.types import SkuType
from schema.node import Node

# Spelled out (not bound to the model enum) so the GraphQL value is ``return``, not Python's ``return_``.
MovementKindEnum = strawberry.enum(  # type: ignore[call-overload]  # mypy reads no members into a functional Enum
    Enum("MovementKindValue", {kind.value: kind.value for kind in MovementKind}),
    name="MovementKind",
)


def _id(value: object) -> strawberry.ID | None:
    return strawberry.ID(str(value)) if value is not None else None


@strawberry.type(name="DispatchLine")
class DispatchLineType:
    sku_id: strawberry.ID
    sku: SkuType | None
    lot_id: strawberry.ID
    lot_code: str
    quantity: int
    received: int
    produced_on: date | None
    expires_on: date | None
    sscc: str | None = strawberry.field(description="The pallet or case (SSCC) these goods travel on")
    in_sscc: str | None = strawberry.field(description="The pallet (SSCC) that unit is stacked on")
    effective_expires_on: date | None = strawberry.field(
        description="Shortened by an excursion a logger on this line's pallet saw (these goods only, not the lot)")


@strawberry.type(name="DispatchStatusChange")
class StatusChangeType:
    status: DispatchStatus
    at: datetime
    by: strawberry.ID
    note: str | None


@strawberry.type(name="Dispatch")
class DispatchType(Node):
    id: strawberry.ID
    ref: str
    shipper_id: strawberry.ID
    consignee_id: strawberry.ID
    carrier_id: strawberry.ID | None
    requested_by: strawberry.ID | None = strawberry.field(
        description="Who proposed a draft when not the shipper (a VMI partner accepting a transfer recommendation)")
    from_location_id: strawberry.ID | None = strawberry.field(description="Shipper's location (shipper only)")
    to_location_id: strawberry.ID | None
    status: DispatchStatus
    shipped_on: date | None
    expected_on: date | None
    has_mismatch: bool
    receipt_count: int
    lines: list[DispatchLineType]
    history: list[StatusChangeType]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, dispatch: Dispatch, skus: dict, viewer: str) -> DispatchType:
        return cls(
            id=strawberry.ID(str(dispatch.id)),
            ref=dispatch.ref,
            shipper_id=strawberry.ID(dispatch.tenant_id),
            consignee_id=strawberry.ID(dispatch.consignee_id),
            carrier_id=_id(dispatch.carrier_id),
            requested_by=_id(dispatch.requested_by),
            # A tenant's location ids are its own business; the consignee's is on the notice for all parties.
            from_location_id=_id(dispatch.from_location_id) if viewer == dispatch.tenant_id else None,
            to_location_id=_id(dispatch.to_location_id),
            status=dispatch.status,
            shipped_on=dispatch.shipped_on,
            expected_on=dispatch.expected_on,
            has_mismatch=dispatch.has_mismatch,
            receipt_count=dispatch.receipt_count,
            lines=[
                DispatchLineType(
                    sku_id=strawberry.ID(str(line.sku_id)), sku=skus.get(line.sku_id),
                    lot_id=strawberry.ID(str(line.lot_id)),
                    lot_code=line.lot_code, quantity=line.quantity, received=line.received,
                    produced_on=line.produced_on, expires_on=line.expires_on, sscc=line.sscc,
                    in_sscc=line.in_sscc, effective_expires_on=line.effective_expires_on,
                )
                for line in dispatch.lines
            ],
            history=[StatusChangeType(status=h.status, at=h.at, by=strawberry.ID(h.by), note=h.note)
                     for h in dispatch.history],
            created_at=dispatch.created_at,
            updated_at=dispatch.updated_at,
        )


@strawberry.type(name="PalletLine")
class PalletLineType:
    """Goods a dispatch lists on the pallet (or on a case stacked on it)."""

    dispatch_id: strawberry.ID
    dispatch_ref: str
    line: int = strawberry.field(description="Index of the dispatch line")
    sscc: str | None
    in_sscc: str | None
    sku_id: strawberry.ID
    lot_code: str
    quantity: int
    received: int = strawberry.field(description="Received on the dispatch line so far (all its units)")
    expires_on: date | None
    effective_expires_on: date | None


@strawberry.type(name="PalletContent")
class PalletContentType:
    """A child your EPCIS aggregation events put on the pallet: an instance, or a quantity of a class."""

    epc: str
    gtin: str | None
    lot_code: str | None
    serial: str | None
    quantity: float | None
    uom: str | None
    effective_expires_on: date | None = strawberry.field(
        description="Shortened by an excursion a logger on this pallet saw (these goods only, not the lot)")


@strawberry.type(name="Pallet")
class PalletType:
    sscc: str
    lines: list[PalletLineType] = strawberry.field(description="On dispatches you are a party to")
    contents: list[PalletContentType] = strawberry.field(description="As your own aggregation events said")
    location_id: strawberry.ID | None = strawberry.field(description="Where your events last saw it")

    @classmethod
    def from_view(cls, view: PalletView) -> PalletType:
        aggregation = view.aggregation
        return cls(
            sscc=view.sscc,
            lines=[
                PalletLineType(
                    dispatch_id=strawberry.ID(str(dispatch.id)), dispatch_ref=dispatch.ref, line=n,
                    sscc=line.sscc, in_sscc=line.in_sscc, sku_id=strawberry.ID(str(line.sku_id)),
                    lot_code=line.lot_code, quantity=line.quantity, received=line.received,
                    expires_on=line.expires_on, effective_expires_on=line.effective_expires_on,
                )
                for dispatch, n in view.lines for line in [dispatch.lines[n]]
            ],
            contents=[
                PalletContentType(epc=c.epc, gtin=c.gtin, lot_code=c.lot_code, serial=c.serial, quantity=c.quantity,
                                  uom=c.uom, effective_expires_on=c.effective_expires_on)
                for c in (aggregation.contents if aggregation else [])
            ],
            location_id=_id(aggregation.location_id) if aggregation else None,
        )


@strawberry.type(name="Mismatch")
class MismatchType:
    kind: MismatchKind
    line: int | None = strawberry.field(description="Index of the receipt line (null for a missing dispatch line)")
    dispatch_line: int | None = strawberry.field(description="Index of the dispatch line it was judged against")
    expected: str | None
    found: str | None
    near_miss: bool = strawberry.field(description="Lot codes one edit apart or adjacent (B240315 / B240314)")
    sku_id: strawberry.ID | None
    lot_code: str | None


@strawberry.type(name="ReceiptLine")
class ReceiptLineType:
    sku_ref: str
    sku_id: strawberry.ID | None
    lot_code: str
    lot_id: strawberry.ID | None
    quantity: int
    expires_on: date | None
    dispatch_line: int | None
    sscc: str | None = strawberry.field(description="The pallet or case (SSCC) it came on")


@strawberry.type(name="Receipt")
class ReceiptType(Node):
    id: strawberry.ID
    dispatch_id: strawberry.ID
    receiver_id: strawberry.ID
    location_id: strawberry.ID | None = strawberry.field(description="Receiving location (receiver only)")
    ref: str | None
    final: bool
    outcome: ReceiptOutcome
    mismatches: list[MismatchType]
    lines: list[ReceiptLineType]
    alert_id: strawberry.ID | None
    held_lot_ids: list[strawberry.ID] = strawberry.field(description="Lots this receipt's mismatches put on hold")
    received_at: datetime
    resolved_at: datetime | None
    resolution_note: str | None

    @classmethod
    def from_model(cls, receipt: Receipt, viewer: str) -> ReceiptType:
        return cls(
            id=strawberry.ID(str(receipt.id)),
            dispatch_id=strawberry.ID(str(receipt.dispatch_id)),
            receiver_id=strawberry.ID(receipt.tenant_id),
            location_id=_id(receipt.location_id) if viewer == receipt.tenant_id else None,
            ref=receipt.ref,
            final=receipt.final,
            outcome=receipt.outcome,
            mismatches=[
                MismatchType(kind=MismatchKind(m.kind), line=m.line, dispatch_line=m.dispatch_line, expected=m.expected,
                             found=m.found, near_miss=m.near_miss, sku_id=_id(m.sku_id), lot_code=m.lot_code)
                for m in receipt.mismatches
            ],
            lines=[
                ReceiptLineType(sku_ref=l.sku_ref, sku_id=_id(l.sku_id), lot_code=l.lot_code, lot_id=_id(l.lot_id),
                                quantity=l.quantity, expires_on=l.expires_on, dispatch_line=l.dispatch_line,
                                sscc=l.sscc)
                for l in receipt.lines
            ],
            alert_id=_id(receipt.alert_id),
            held_lot_ids=[strawberry.ID(str(lot_id)) for lot_id in receipt.held_lot_ids],
            received_at=receipt.received_at,
            resolved_at=receipt.resolved_at,
            resolution_note=receipt.resolution_note,
        )


@strawberry.type(name="StockPosition")
class StockPositionType:
    id: strawberry.ID
    holder_id: strawberry.ID
    location_id: strawberry.ID
    sku_id: strawberry.ID
    sku: SkuType | None
    sku_owner_id: strawberry.ID
    lot_id: strawberry.ID | None
    lot_code: str | None
    lot_status: LotStatus | None
    on_hand: int
    expires_on: date | None
    effective_expires_on: date | None
    last_movement_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_model(cls, position: StockPosition, sku: SkuType | None, lot_status: LotStatus | None,
                   effective: date | None) -> StockPositionType:
        return cls(
            id=strawberry.ID(str(position.id)),
            holder_id=strawberry.ID(position.tenant_id),
            location_id=strawberry.ID(str(position.location_id)),
            sku_id=strawberry.ID(str(position.sku_id)),
            sku=sku,
            sku_owner_id=strawberry.ID(position.sku_owner_id),
            lot_id=_id(position.lot_id),
            lot_code=position.lot_code,
            lot_status=lot_status,
            on_hand=position.on_hand,
            expires_on=position.expires_on,
            effective_expires_on=effective or position.effective_expires_on,
            last_movement_at=position.last_movement_at,
            updated_at=position.updated_at,
        )


@strawberry.input
class DispatchLineInput:
    sku: str | None = strawberry.field(default=None, description="SKU id, code or GTIN (or give a scan)")
    lot_code: str | None = None
    quantity: int | None = None
    produced_on: date | None = None
    expires_on: date | None = None
    scan: str | None = strawberry.field(default=None, description="A GS1 scan of the goods (element string, "
                                        "(01)... HRI or Digital Link URI) instead of, or agreeing with, the fields")
    sscc: str | None = strawberry.field(default=None, description="SSCC of the pallet or case the goods travel "
                                        "on (or AI 00 in the scan)")
    in_sscc: str | None = strawberry.field(default=None, description="SSCC of the pallet that unit is stacked on")


@strawberry.input
class CreateDispatchInput:
    ref: str
    consignee_id: strawberry.ID
    lines: list[DispatchLineInput]
    to_location: str | None = strawberry.field(default=None, description="Consignee location id or code")
    from_location_id: strawberry.ID | None = None
    carrier_id: strawberry.ID | None = None
    shipped_on: date | None = None
    expected_on: date | None = None


@strawberry.input
class ReceiptLineInput:
    sku: str | None = strawberry.field(default=None, description="SKU id, code, your alias or GTIN (or give a scan)")
    lot_code: str | None = None
    quantity: int | None = None
    expires_on: date | None = None
    scan: str | None = strawberry.field(default=None, description="A GS1 scan of the goods (element string, "
                                        "(01)... HRI or Digital Link URI) instead of, or agreeing with, the fields; "
                                        "an SSCC (AI 00) alone receives that pallet's contents as the dispatch lists "
                                        "them")
    sscc: str | None = strawberry.field(default=None, description="SSCC of the pallet or case: alone, receives its "
                                        "notified contents; with the goods fields, the unit they came on")
    unit_cost: float | None = strawberry.field(default=None, description="What a unit cost you (values the lot)")
    currency: str | None = strawberry.field(default=None, description="ISO 4217 code, with unitCost")


@strawberry.input
class RecordReceiptInput:
    dispatch_id: strawberry.ID
    lines: list[ReceiptLineInput]
    location_id: strawberry.ID | None = None
    final: bool = strawberry.field(default=False, description="Nothing more will arrive: judge shortages now")
    ref: str | None = strawberry.field(default=None, description="Your reference; resending it changes nothing")


@strawberry.input
class MovementInput:
    sku: str | None = strawberry.field(default=None, description="SKU id, code, your alias or GTIN (or give a scan)")
    kind: MovementKindEnum  # type: ignore[valid-type]
    quantity: int = strawberry.field(description="Signed change in base units; for a count, the counted on-hand")
    idempotency_key: str
    location_id: strawberry.ID | None = strawberry.field(default=None, description="Default: the batch's")
    lot_code: str | None = None
    expires_on: date | None = None
    occurred_at: datetime | None = None
    reference: str | None = None
    unit_price: float | None = strawberry.field(default=None, description="Optional: the unit's selling price "
                                                "(planning names price changes as causes of sales drops)")
    promotion: bool | None = strawberry.field(default=None, description="Optional: sold on promotion")
    reason: str | None = strawberry.field(default=None, description="Optional: why (kept on the ledger)")
    scan: str | None = strawberry.field(default=None, description="A GS1 scan of the goods (element string, "
                                        "(01)... HRI or Digital Link URI) instead of, or agreeing with, the fields")


@strawberry.type
class PositionChange:
    location_id: strawberry.ID
    sku_id: strawberry.ID
    lot_id: strawberry.ID | None
    lot_code: str | None
    on_hand: int
    delta: int


@strawberry.type
class RecordMovementsPayload:
    accepted: int = strawberry.field(description="Movements applied by this call")
    duplicates: int = strawberry.field(description="Movements whose idempotency key was already recorded")
    positions: list[PositionChange]


@strawberry.enum
class DispatchRole(Enum):
    shipper = "shipper"
    consignee = "consignee"
    carrier = "carrier"


@strawberry.input
class DispatchFilter:
    status: list[DispatchStatus] | None = None
    role: DispatchRole | None = strawberry.field(default=None, description="Only dispatches where you are this party")
    ref: str | None = None
    partner_id: strawberry.ID | None = None


@strawberry.input
class StockFilter:
    sku_id: strawberry.ID | None = None
    location_id: strawberry.ID | None = None
    lot_id: strawberry.ID | None = None
    lot_code: str | None = None
    holder_id: strawberry.ID | None = None
    expiring_before: date | None = strawberry.field(default=None, description="Effective expiry before this date")
    include_empty: bool = False


@strawberry.type(name="Movement")
class MovementType:
    """One booked change of on-hand, as the ledger holds it (never updated)."""

    id: strawberry.ID
    holder_id: strawberry.ID
    location_id: strawberry.ID
    sku_id: strawberry.ID
    lot_id: strawberry.ID | None
    lot_code: str | None
    kind: MovementKindEnum  # type: ignore[valid-type]
    quantity: int = strawberry.field(description="The change applied (for a count: counted minus on-hand before)")
    counted: int | None
    reference: str | None
    occurred_at: datetime
    recorded_at: datetime
    actor: str | None = strawberry.field(description="Member subject, OAuth client id or 'system'; holder only")
    actor_kind: str | None = strawberry.field(description="member, client or system; holder only")
    client_id: str | None = strawberry.field(description="The OAuth client it came through; holder only")
    reason: str | None = strawberry.field(description="Why, when the booker said; holder only")

    @classmethod
    def from_model(cls, movement: Movement, viewer: str) -> MovementType:
        mine = movement.tenant_id == viewer  # a VMI partner sees the change, not who made it inside the holder
        return cls(
            id=strawberry.ID(str(movement.id)),
            holder_id=strawberry.ID(movement.tenant_id),
            location_id=strawberry.ID(str(movement.location_id)),
            sku_id=strawberry.ID(str(movement.sku_id)),
            lot_id=strawberry.ID(str(movement.lot_id)) if movement.lot_id else None,
            lot_code=movement.lot_code,
            kind=MovementKindEnum(movement.kind.value),
            quantity=movement.quantity,
            counted=movement.counted,
            reference=movement.reference,
            occurred_at=movement.occurred_at,
            recorded_at=movement.recorded_at,
            actor=movement.actor if mine else None,
            actor_kind=movement.actor_kind if mine else None,
            client_id=movement.client_id if mine else None,
            reason=movement.reason if mine else None,
        )


@strawberry.input
class MovementFilter:
    location_id: strawberry.ID | None = None
    sku_id: strawberry.ID | None = None
    lot_id: strawberry.ID | None = None
    kinds: list[MovementKindEnum] | None = None  # type: ignore[valid-type]
    since: datetime | None = strawberry.field(default=None, description="occurredAt at or after")
    until: datetime | None = strawberry.field(default=None, description="occurredAt before")
    reference: str | None = None
    holder_id: strawberry.ID | None = None
