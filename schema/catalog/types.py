"""GraphQL types for the SKU master, locations and lots."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry

import schema.scalars  # noqa: F401 - binds the model enums to GraphQL
from hub.models.location import Location, LocationKind
from hub.models.lot import Lot, LotStatus
from hub.models.sku import Sku
from schema.node import Node

_SKU_DEFAULTS = {name: Sku.model_fields[name].get_default(call_default_factory=True)
                 for name in ("unit", "pack_size", "excursion_sensitivity", "excursion_min_minutes")}


@strawberry.type(name="Storage")
class StorageType:
    temp_min_c: float | None
    temp_max_c: float | None
    humidity_max_pct: float | None


@strawberry.type(name="Sku")
class SkuType(Node):
    id: strawberry.ID
    owner_id: strawberry.ID
    code: str
    gtin: str | None
    name: str
    unit: str
    pack_size: int
    shelf_life_days: int | None
    storage: StorageType
    min_remaining_shelf_life_days: int | None
    excursion_sensitivity: float
    excursion_min_minutes: int
    unit_cost: float | None = strawberry.field(description="Standard cost of one unit, part of the shared master")
    currency: str | None
    category: str | None = strawberry.field(description="The owner's product group")
    editable: bool = strawberry.field(description="True when the caller owns this SKU")
    my_alias: str | None = strawberry.field(description="The caller's own item code for this SKU")
    aliases: list[str] = strawberry.field(description="Partner aliases as tenant:code (owner only)")
    updated_at: datetime

    @classmethod
    def from_model(cls, sku: Sku, viewer: str) -> SkuType:
        owner = sku.tenant_id == viewer
        return cls(
            id=strawberry.ID(str(sku.id)),
            owner_id=strawberry.ID(sku.tenant_id),
            code=sku.code,
            gtin=sku.gtin,
            name=sku.name,
            unit=sku.unit,
            pack_size=sku.pack_size,
            shelf_life_days=sku.shelf_life_days,
            storage=StorageType(
                temp_min_c=sku.storage.temp_min_c,
                temp_max_c=sku.storage.temp_max_c,
                humidity_max_pct=sku.storage.humidity_max_pct,
            ),
            min_remaining_shelf_life_days=sku.min_remaining_shelf_life_days,
            excursion_sensitivity=sku.excursion_sensitivity,
            excursion_min_minutes=sku.excursion_min_minutes,
            unit_cost=sku.unit_cost,
            currency=sku.currency,
            category=sku.category,
            editable=owner,
            my_alias=next((a.code for a in sku.aliases if a.tenant_id == viewer), None),
            # A retailer's item codes are its own business: other partners never see them.
            aliases=[f"{a.tenant_id}:{a.code}" for a in sku.aliases] if owner else [],
            updated_at=sku.updated_at,
        )

    @classmethod
    def from_raw(cls, doc: dict[str, Any], viewer: str) -> SkuType:
        """As ``from_model``, from the stored document (fields it lacks take the model's defaults): a page of SKUs
        without validating a ``Sku`` per row."""
        get = doc.get
        owner = doc["tenant_id"] == viewer
        storage = get("storage") or {}
        aliases = get("aliases") or []
        return cls(
            id=strawberry.ID(str(doc["_id"])),
            owner_id=strawberry.ID(doc["tenant_id"]),
            code=doc["code"],
            gtin=get("gtin"),
            name=doc["name"],
            unit=get("unit", _SKU_DEFAULTS["unit"]),
            pack_size=get("pack_size", _SKU_DEFAULTS["pack_size"]),
            shelf_life_days=get("shelf_life_days"),
            storage=StorageType(
                temp_min_c=storage.get("temp_min_c"),
                temp_max_c=storage.get("temp_max_c"),
                humidity_max_pct=storage.get("humidity_max_pct"),
            ),
            min_remaining_shelf_life_days=get("min_remaining_shelf_life_days"),
            excursion_sensitivity=get("excursion_sensitivity", _SKU_DEFAULTS["excursion_sensitivity"]),
            excursion_min_minutes=get("excursion_min_minutes", _SKU_DEFAULTS["excursion_min_minutes"]),
            unit_cost=get("unit_cost"),
            currency=get("currency"),
            category=get("category"),
            editable=owner,
            my_alias=next((a["code"] for a in aliases if a["tenant_id"] == viewer), None),
            aliases=[f"{a['tenant_id']}:{a['code']}" for a in aliases] if owner else [],
            updated_at=doc["updated_at"],
        )


@strawberry.input
class StorageInput:
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    humidity_max_pct: float | None = None


@strawberry.input
class SkuInput:
    code: str
    name: str
    gtin: str | None = None
    unit: str = "each"
    pack_size: int = 1
    shelf_life_days: int | None = None
    storage: StorageInput | None = None
    min_remaining_shelf_life_days: int | None = None
    excursion_sensitivity: float = 0.0
    excursion_min_minutes: int = 15
    unit_cost: float | None = strawberry.field(default=None, description="Standard cost of one unit (with currency)")
    currency: str | None = strawberry.field(default=None, description="ISO 4217 code of the unit cost")
    category: str | None = strawberry.field(default=None, description="Product group, e.g. \"dairy\"")


@strawberry.type
class UpsertSkuPayload:
    sku: SkuType
    created: bool


@strawberry.input
class SkuFilter:
    code: str | None = None
    code_prefix: str | None = None
    gtin: str | None = None
    name_contains: str | None = None
    owner_id: strawberry.ID | None = None


@strawberry.type(name="Location")
class LocationType(Node):
    id: strawberry.ID
    code: str
    name: str
    kind: LocationKind
    gln: str | None
    parent_id: strawberry.ID | None

    @classmethod
    def from_model(cls, location: Location) -> LocationType:
        return cls(
            id=strawberry.ID(str(location.id)),
            code=location.code,
            name=location.name,
            kind=location.kind,
            gln=location.gln,
            parent_id=strawberry.ID(str(location.parent_id)) if location.parent_id else None,
        )


@strawberry.input
class CreateLocationInput:
    code: str
    name: str
    kind: LocationKind
    gln: str | None = None
    parent_id: strawberry.ID | None = None


@strawberry.input
class LocationFilter:
    kind: LocationKind | None = None
    code_prefix: str | None = None


@strawberry.type(name="Lot")
class LotType(Node):
    id: strawberry.ID
    owner_id: strawberry.ID
    sku: SkuType | None
    lot_code: str
    produced_on: date | None
    expires_on: date | None
    effective_expires_on: date | None
    status: LotStatus
    hold_reason: str | None

    @classmethod
    def from_model(cls, lot: Lot, sku: SkuType | None) -> LotType:
        return cls(
            id=strawberry.ID(str(lot.id)),
            owner_id=strawberry.ID(lot.tenant_id),
            sku=sku,
            lot_code=lot.lot_code,
            produced_on=lot.produced_on,
            expires_on=lot.expires_on,
            effective_expires_on=lot.effective_expires_on,
            status=lot.status,
            hold_reason=lot.hold_reason,
        )


@strawberry.input
class RegisterLotInput:
    sku_id: strawberry.ID
    lot_code: str
    produced_on: date | None = None
    expires_on: date | None = None


@strawberry.input
class LotFilter:
    sku_id: strawberry.ID | None = None
    lot_code: str | None = None
    status: LotStatus | None = None
    expiring_before: date | None = None
