"""Queries over dispatches, receipts and stock positions, each scoped by tenants/access.py."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry
from strawberry.types import Info

from hub.dates import to_bson
from hub.models.dispatch import Dispatch
from hub.models.lot import Lot
from hub.models.movement import Movement
from hub.models.receipt import Receipt
from hub.models.stock import StockPosition
from hub.services.pallets import visible_pallet
from schema.catalog.queries import sku_nodes
from schema.pagination import Connection, paginate
from schema.permissions import READ
from schema.supply.types import (
    DispatchFilter,
    DispatchType,
    MovementFilter,
    MovementType,
    PalletType,
    ReceiptType,
    StockFilter,
    StockPositionType,
)
from tenants.access import object_id

ROLE_FIELD = {"shipper": "tenant_id", "consignee": "consignee_id", "carrier": "carrier_id"}


async def dispatch_nodes(page: Sequence[Dispatch], viewer: str) -> list[DispatchType]:
    skus = await sku_nodes({line.sku_id for d in page for line in d.lines}, viewer)
    return [DispatchType.from_model(d, skus, viewer) for d in page]


async def stock_nodes(page: Sequence[StockPosition], viewer: str) -> list[StockPositionType]:
    skus = await sku_nodes({p.sku_id for p in page}, viewer)
    lots = {lot.id: lot async for lot in Lot.find({"_id": {"$in": sorted({p.lot_id for p in page if p.lot_id})}})}
    nodes = []
    for p in page:
        lot = lots.get(p.lot_id) if p.lot_id else None
        nodes.append(StockPositionType.from_model(p, skus.get(p.sku_id), lot.status if lot else None,
                                                  lot.effective_expires_on if lot else None))
    return nodes


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ)
    async def dispatches(
        self, info: Info, filter: DispatchFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[DispatchType]:
        access = await info.context.access()
        clauses: list[dict] = [access.dispatches("read")]
        if filter:
            if filter.status:
                clauses.append({"status": {"$in": [s.value for s in filter.status]}})
            if filter.role is not None:
                clauses.append({ROLE_FIELD[filter.role.value]: access.tenant_id})
            if filter.ref is not None:
                clauses.append({"ref": filter.ref})
            if filter.partner_id is not None:
                clauses.append({"parties": str(filter.partner_id)})
        viewer = access.tenant_id

        async def nodes(page: Sequence[Dispatch]) -> list[DispatchType]:
            return await dispatch_nodes(page, viewer)

        return await paginate(Dispatch, {"$and": clauses}, first, after, info.context.hub.settings.max_page_size,
                              nodes, descending=True, batch=True)

    @strawberry.field(permission_classes=READ)
    async def dispatch(self, info: Info, id: strawberry.ID) -> DispatchType:
        access = await info.context.access()
        dispatch = await access.get(Dispatch, str(id), access.dispatches("read"), "dispatch")
        return (await dispatch_nodes([dispatch], access.tenant_id))[0]

    @strawberry.field(permission_classes=READ, description="Receipts of a dispatch, oldest first")
    async def receipts(
        self, info: Info, dispatch_id: strawberry.ID, first: int = 50, after: str | None = None
    ) -> Connection[ReceiptType]:
        access = await info.context.access()
        dispatch = await access.get(Dispatch, str(dispatch_id), access.dispatches("read"), "dispatch")
        viewer = access.tenant_id
        return await paginate(Receipt, {"dispatch_id": dispatch.id, **access.receipts("read")}, first, after,
                              info.context.hub.settings.max_page_size, lambda r: ReceiptType.from_model(r, viewer))

    @strawberry.field(permission_classes=READ, description="A pallet or case by SSCC: what your dispatches list on "
                      "it and what your EPCIS aggregation events said it holds")
    async def pallet(self, info: Info, sscc: str) -> PalletType:
        access = await info.context.access()
        return PalletType.from_view(await visible_pallet(access, sscc))

    @strawberry.field(permission_classes=READ)
    async def receipt(self, info: Info, id: strawberry.ID) -> ReceiptType:
        access = await info.context.access()
        receipt = await access.get(Receipt, str(id), access.receipts("read"), "receipt")
        return ReceiptType.from_model(receipt, access.tenant_id)

    @strawberry.field(permission_classes=READ)
    async def stock_positions(
        self, info: Info, filter: StockFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[StockPositionType]:
        access = await info.context.access()
        clauses: list[dict] = [access.stock("read")]
        if not (filter and filter.include_empty):
            clauses.append({"on_hand": {"$ne": 0}})
        if filter:
            if filter.sku_id is not None:
                clauses.append({"sku_id": object_id(str(filter.sku_id), "sku")})
            if filter.location_id is not None:
                clauses.append({"location_id": object_id(str(filter.location_id), "location")})
            if filter.lot_id is not None:
                clauses.append({"lot_id": object_id(str(filter.lot_id), "lot")})
            if filter.lot_code is not None:
                clauses.append({"lot_code": filter.lot_code})
            if filter.holder_id is not None:
                clauses.append({"tenant_id": str(filter.holder_id)})
            if filter.expiring_before is not None:
                # Effective expiry: a temperature excursion brings it forward.
                clauses.append({"effective_expires_on": {"$lt": to_bson(filter.expiring_before)}})
        viewer = access.tenant_id

        async def nodes(page: Sequence[StockPosition]) -> list[StockPositionType]:
            return await stock_nodes(page, viewer)

        return await paginate(StockPosition, {"$and": clauses}, first, after,
                              info.context.hub.settings.max_page_size, nodes, batch=True)

    @strawberry.field(permission_classes=READ, description="The movement ledger, newest first (who, what, why)")
    async def movements(
        self, info: Info, filter: MovementFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[MovementType]:
        access = await info.context.access()
        clauses: list[dict] = [access.stock("read")]  # the rule of the positions the ledger adds up to
        if filter:
            if filter.location_id is not None:
                clauses.append({"location_id": object_id(str(filter.location_id), "location")})
            if filter.sku_id is not None:
                clauses.append({"sku_id": object_id(str(filter.sku_id), "sku")})
            if filter.lot_id is not None:
                clauses.append({"lot_id": object_id(str(filter.lot_id), "lot")})
            if filter.kinds is not None:
                kinds = [kind.value for kind in filter.kinds]  # type: ignore[attr-defined]  # see MovementKindEnum
                clauses.append({"kind": {"$in": kinds}})
            if filter.since is not None:
                clauses.append({"occurred_at": {"$gte": filter.since}})
            if filter.until is not None:
                clauses.append({"occurred_at": {"$lt": filter.until}})
            if filter.reference is not None:
                clauses.append({"reference": filter.reference})
            if filter.holder_id is not None:
                clauses.append({"tenant_id": str(filter.holder_id)})
        viewer = access.tenant_id
        return await paginate(
            Movement, {"$and": clauses}, first, after, info.context.hub.settings.max_page_size,
            lambda movement: MovementType.from_model(movement, viewer), descending=True,
        )
