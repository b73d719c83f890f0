"""Mutations on the SKU master, locations and lots."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.errors import BadInput
from hub.models.sku import Storage
from hub.services import locations as location_service
from hub.services import lots as lot_service
from hub.services import skus as sku_service
from schema.catalog.queries import sku_nodes
from schema.catalog.types import (
    CreateLocationInput,
    LocationType,
    LotType,
    RegisterLotInput,
    SkuInput,
    SkuType,
    UpsertSkuPayload,
)
from schema.permissions import allowed
from tenants.roles import Group


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=allowed(Group.master_data))
    async def upsert_sku(self, info: Info, input: SkuInput) -> UpsertSkuPayload:
        access = await info.context.access()
        storage = input.storage
        data = sku_service.SkuInput(
            code=input.code,
            name=input.name,
            gtin=input.gtin,
            unit=input.unit,
            pack_size=input.pack_size,
            shelf_life_days=input.shelf_life_days,
            storage=Storage(
                temp_min_c=storage.temp_min_c, temp_max_c=storage.temp_max_c, humidity_max_pct=storage.humidity_max_pct
            )
            if storage
            else Storage(),
            min_remaining_shelf_life_days=input.min_remaining_shelf_life_days,
            excursion_sensitivity=input.excursion_sensitivity,
            excursion_min_minutes=input.excursion_min_minutes,
        )
        data.unit_cost, data.currency, data.category = input.unit_cost, input.currency, input.category
        sku, created = await sku_service.upsert_sku(access, data)
        return UpsertSkuPayload(sku=SkuType.from_model(sku, access.tenant_id), created=created)

    @strawberry.mutation(
        permission_classes=allowed(Group.master_data),
        description="Set (or clear, with null) your own code for a SKU",
    )
    async def set_sku_alias(self, info: Info, sku_id: strawberry.ID, code: str | None = strawberry.UNSET) -> SkuType:
        # GraphQL cannot require a nullable argument; null removes the alias, leaving it out is a mistake.
        if code is strawberry.UNSET:
            raise BadInput("say the alias 'code', or null to remove yours", field="code")
        access = await info.context.access()
        sku = await sku_service.set_alias(access, str(sku_id), code)
        return SkuType.from_model(sku, access.tenant_id)

    @strawberry.mutation(permission_classes=allowed(Group.master_data))
    async def create_location(self, info: Info, input: CreateLocationInput) -> LocationType:
        access = await info.context.access()
        location = await location_service.create_location(
            access,
            input.code,
            input.name,
            input.kind,
            input.gln,
            str(input.parent_id) if input.parent_id else None,
        )
        return LocationType.from_model(location)

    @strawberry.mutation(permission_classes=allowed(Group.operations))
    async def register_lot(self, info: Info, input: RegisterLotInput) -> LotType:
        access = await info.context.access()
        lot = await lot_service.register_lot(
            access, str(input.sku_id), input.lot_code, input.produced_on, input.expires_on
        )
        skus = await sku_nodes({lot.sku_id}, access.tenant_id)
        return LotType.from_model(lot, skus.get(lot.sku_id))
