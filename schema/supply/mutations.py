"""Mutations of the supply flow: dispatch notices, their lifecycle, receipts and movement batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import strawberry
from strawberry.types import Info

from hub.errors import BadInput
from hub.models.alert import Decision
from hub.models.dispatch import DispatchStatus
from hub.models.movement import MovementKind
from hub.scans import Line, with_scan
from hub.services import dispatches as dispatch_service
from hub.services import movements as movement_service
from hub.services import receipts as receipt_service
from hub.services.pallets import UnitLine, validate_sscc
from schema.permissions import allowed
from schema.scalars import DecisionEnum  # noqa: F401 - registers the enum
from schema.supply.queries import dispatch_nodes
from schema.supply.types import (
    CreateDispatchInput,
    DispatchType,
    MovementInput,
    PositionChange,
    ReceiptType,
    RecordMovementsPayload,
    RecordReceiptInput,
)
from tenants.roles import Group


@dataclass(frozen=True)
class Goods:
    """A dispatch or receipt line once its scan is applied: SKU, lot and quantity all known."""

    sku: str
    lot_code: str
    quantity: int
    expires_on: date | None
    produced_on: date | None
    sscc: str | None = None


def _goods(line: Line, field: str) -> Goods:
    if line.lot_code is None:
        raise BadInput(f"{field}: no lot code (give lotCode, or a scan with AI 10)", field=field)
    if line.quantity is None:
        raise BadInput(f"{field}: no quantity (give quantity, or a scan with AI 30 or 37)", field=field)
    return Goods(line.sku or "", line.lot_code, line.quantity, line.expires_on, line.produced_on, line.sscc)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=allowed(Group.operations),
        description="Announce a shipment (advance ship notice)",
    )
    async def create_dispatch(self, info: Info, input: CreateDispatchInput) -> DispatchType:
        access = await info.context.access()
        lines: list[dispatch_service.DispatchLineInput | UnitLine] = []
        for n, typed in enumerate(input.lines):
            field = f"lines.{n}"
            line = await with_scan(access, Line(typed.sku, typed.lot_code, typed.quantity, typed.expires_on,
                                                typed.produced_on, typed.sscc), typed.scan, field, units=True)
            if line.sku is None and line.sscc is not None:
                if typed.in_sscc is not None:
                    raise BadInput(f"{field}.inSscc: a pallet given by its SSCC alone is not stacked",
                                   field=f"{field}.inSscc")
                lines.append(UnitLine(line.sscc, f"{field}.scan" if typed.scan is not None else f"{field}.sscc"))
                continue
            goods = _goods(line, field)
            lines.append(dispatch_service.DispatchLineInput(goods.sku, goods.lot_code, goods.quantity,
                                                            goods.produced_on, goods.expires_on, goods.sscc,
                                                            typed.in_sscc))
        data = dispatch_service.DispatchInput(
            ref=input.ref,
            consignee_id=str(input.consignee_id),
            lines=lines,
            to_location=input.to_location,
            from_location_id=str(input.from_location_id) if input.from_location_id else None,
            carrier_id=str(input.carrier_id) if input.carrier_id else None,
            shipped_on=input.shipped_on,
            expected_on=input.expected_on,
        )
        dispatch = await dispatch_service.create_dispatch(access, info.context.hub.database, data)
        return (await dispatch_nodes([dispatch], access.tenant_id))[0]

    @strawberry.mutation(
        permission_classes=allowed(Group.operations),
        description="Mark in transit (shipper or carrier), confirm a draft (shipper: dispatched) or cancel",
    )
    async def update_dispatch_status(
        self, info: Info, id: strawberry.ID, status: DispatchStatus, note: str | None = None
    ) -> DispatchType:
        access = await info.context.access()
        dispatch = await dispatch_service.update_status(access, info.context.hub.database, str(id), status, note)
        return (await dispatch_nodes([dispatch], access.tenant_id))[0]

    @strawberry.mutation(permission_classes=allowed(Group.operations))
    async def cancel_dispatch(self, info: Info, id: strawberry.ID, note: str | None = None) -> DispatchType:
        access = await info.context.access()
        dispatch = await dispatch_service.update_status(
            access, info.context.hub.database, str(id), DispatchStatus.cancelled, note
        )
        return (await dispatch_nodes([dispatch], access.tenant_id))[0]

    @strawberry.mutation(
        permission_classes=allowed(Group.operations),
        description="Record what arrived; answers the reconciliation",
    )
    async def record_receipt(self, info: Info, input: RecordReceiptInput) -> ReceiptType:
        access = await info.context.access()
        hub = info.context.hub
        received: list[receipt_service.ReceiptLineInput | UnitLine] = []
        for n, typed in enumerate(input.lines):
            field = f"lines.{n}"
            line = await with_scan(access, Line(typed.sku, typed.lot_code, typed.quantity, typed.expires_on,
                                                sscc=typed.sscc), typed.scan, field, units=True)
            if line.sku is None and line.sscc is not None:
                if typed.unit_cost is not None or typed.currency is not None:
                    raise BadInput(f"{field}: a whole pallet takes no unit cost (give its lines)", field=field)
                where = f"{field}.scan" if typed.scan is not None else f"{field}.sscc"
                received.append(UnitLine(line.sscc, where))
                continue
            goods = _goods(line, field)
            received.append(receipt_service.ReceiptLineInput(
                goods.sku, goods.lot_code, goods.quantity, goods.expires_on, typed.unit_cost, typed.currency,
                sscc=validate_sscc(goods.sscc, f"{field}.sscc") if goods.sscc else None,
            ))
        data = receipt_service.ReceiptInput(
            dispatch_id=str(input.dispatch_id),
            lines=received,
            location_id=str(input.location_id) if input.location_id else None,
            final=input.final,
            ref=input.ref,
        )
        receipt = await receipt_service.record_receipt(access, hub.database, hub.settings, data)
        return ReceiptType.from_model(receipt, access.tenant_id)

    @strawberry.mutation(
        permission_classes=allowed(Group.decisions),
        description="Settle a mismatched receipt: release its held lots; its alert records the decision",
    )
    async def resolve_receipt(
        self,
        info: Info,
        id: strawberry.ID,
        note: str | None = None,
        decision: Decision = Decision.accept_risk,
    ) -> ReceiptType:
        access = await info.context.access()
        receipt = await receipt_service.resolve_receipt(access, info.context.hub.database, str(id), note, decision)
        return ReceiptType.from_model(receipt, access.tenant_id)

    @strawberry.mutation(
        permission_classes=allowed(Group.operations),
        description="Apply a batch of movements exactly once per key",
    )
    async def record_movements(
        self, info: Info, movements: list[MovementInput], location_id: strawberry.ID | None = None
    ) -> RecordMovementsPayload:
        access = await info.context.access()
        hub = info.context.hub
        if len(movements) > hub.settings.max_batch:
            raise BadInput(f"at most {hub.settings.max_batch} movements per batch", field="movements")
        items = []
        for n, m in enumerate(movements):
            location = m.location_id or location_id
            if location is None:
                raise BadInput(f"movement {n}: no location (set it on the movement or the batch)", index=n)
            line = await with_scan(access, Line(m.sku, m.lot_code, m.quantity, m.expires_on), m.scan,
                                   f"movements.{n}")
            items.append(movement_service.MovementInput(
                location_id=str(location), sku=line.sku or "", kind=MovementKind(m.kind.value),  # type: ignore[attr-defined]  # see MovementKindEnum
                quantity=m.quantity,
                idempotency_key=m.idempotency_key, lot_code=line.lot_code, expires_on=line.expires_on,
                occurred_at=m.occurred_at, reference=m.reference, unit_price=m.unit_price, promotion=m.promotion,
                reason=m.reason,
            ))
        result = await movement_service.record_movements(
            access, hub.database, items, hub.settings.max_batch, hub.settings.audit_count_threshold
        )
        return RecordMovementsPayload(
            accepted=result.accepted,
            duplicates=result.duplicates,
            positions=[
                PositionChange(
                    location_id=strawberry.ID(str(p["location_id"])), sku_id=strawberry.ID(str(p["sku_id"])),
                    lot_id=strawberry.ID(str(p["lot_id"])) if p["lot_id"] else None, lot_code=p["lot_code"],
                    on_hand=p["on_hand"], delta=p["delta"],
                )
                for p in result.positions
            ],
        )
