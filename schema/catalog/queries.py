"""Queries over the SKU master, locations and lots, each scoped by tenants/access.py."""

from __future__ import annotations

import re
from collections.abc import Sequence

import strawberry
from strawberry.types import Info

from hub.dates import to_bson
from hub.models.location import Location
from hub.models.lot import Lot
from hub.models.sku import Sku
from schema.catalog.types import LocationFilter, LocationType, LotFilter, LotType, SkuFilter, SkuType
from schema.pagination import Connection, paginate
from schema.permissions import READ
from tenants.access import object_id


def _prefix(value: str) -> dict:
    return {"$regex": "^" + re.escape(value)}


async def sku_nodes(ids: set, viewer: str) -> dict:
    """SKUs by id for a page of lots, stock or dispatch lines: one query, not one per row."""
    return {sku.id: SkuType.from_model(sku, viewer) async for sku in Sku.find({"_id": {"$in": sorted(ids)}})}


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ)
    async def skus(
        self, info: Info, filter: SkuFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[SkuType]:
        access = await info.context.access()
        query = dict(access.skus("read"))
        clauses: list[dict] = [query]
        if filter:
            if filter.code is not None:
                clauses.append({"code": filter.code})
            if filter.code_prefix:
                clauses.append({"code": _prefix(filter.code_prefix)})
            if filter.gtin is not None:
                clauses.append({"gtin": filter.gtin.zfill(14)})
            if filter.name_contains:
                clauses.append({"name": {"$regex": re.escape(filter.name_contains), "$options": "i"}})
            if filter.owner_id is not None:
                clauses.append({"tenant_id": str(filter.owner_id)})
        viewer = access.tenant_id
        return await paginate(
            Sku,
            {"$and": clauses} if len(clauses) > 1 else query,
            first,
            after,
            info.context.hub.settings.max_page_size,
            lambda doc: SkuType.from_raw(doc, viewer),
            raw=True,
        )

    @strawberry.field(permission_classes=READ)
    async def sku(self, info: Info, id: strawberry.ID) -> SkuType:
        access = await info.context.access()
        sku = await access.get(Sku, str(id), access.skus("read"), "sku")
        return SkuType.from_model(sku, access.tenant_id)

    @strawberry.field(permission_classes=READ)
    async def locations(
        self, info: Info, filter: LocationFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[LocationType]:
        access = await info.context.access()
        query = dict(access.locations("read"))
        if filter and filter.kind:
            query["kind"] = filter.kind.value
        if filter and filter.code_prefix:
            query["code"] = _prefix(filter.code_prefix)
        return await paginate(
            Location, query, first, after, info.context.hub.settings.max_page_size, LocationType.from_model
        )

    @strawberry.field(permission_classes=READ)
    async def lots(
        self, info: Info, filter: LotFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[LotType]:
        access = await info.context.access()
        clauses: list[dict] = [access.lots("read")]
        if filter:
            if filter.sku_id is not None:
                clauses.append({"sku_id": object_id(str(filter.sku_id), "sku")})
            if filter.lot_code is not None:
                clauses.append({"lot_code": filter.lot_code})
            if filter.status is not None:
                clauses.append({"status": filter.status.value})
            if filter.expiring_before is not None:
                clauses.append({"effective_expires_on": {"$lt": to_bson(filter.expiring_before)}})
        viewer = access.tenant_id

        async def nodes(page: Sequence[Lot]) -> list[LotType]:
            skus = await sku_nodes({lot.sku_id for lot in page}, viewer)
            return [LotType.from_model(lot, skus.get(lot.sku_id)) for lot in page]

        return await paginate(
            Lot, {"$and": clauses}, first, after, info.context.hub.settings.max_page_size, nodes, batch=True
        )
