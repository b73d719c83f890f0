"""The SKU master: owned by the brand, read by partners granted ``sku_master``."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import pymongo
from beanie import Document
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class Storage(BaseModel):
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    humidity_max_pct: float | None = None


class Alias(BaseModel):
    """A partner's own item code for this SKU (a retailer's article number)."""

    tenant_id: str
    code: str


class Sku(Document):
    tenant_id: str
    code: str
    gtin: str | None = None
    name: str
    unit: str = "each"
    pack_size: int = 1
    shelf_life_days: int | None = None
    storage: Storage = Field(default_factory=Storage)
    min_remaining_shelf_life_days: int | None = None
    # Scales the shelf life an excursion destroys: loss = sensitivity x degree-minutes x k (hub/detect/shelf_life.py).
    excursion_sensitivity: float = 0.0
    excursion_min_minutes: int = 15
    # Standard cost of one unit, what inventory health values stock at (hub/services/health.py).
    unit_cost: float | None = None
    currency: str | None = None  # ISO 4217, with unit_cost
    category: str | None = None  # the owner's product group: a filter of inventory health
    aliases: list[Alias] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "code",
        why="the owner's catalogue; the unique (tenant_id, code) starts with it",
        before_sharding="a GTIN is unique across owners: that rule moves to a small unsharded GTIN registry "
                        "written in the same transaction",
    )

    class Settings:
        name = "skus"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("code", 1)], unique=True),
            # A GTIN names one trade item worldwide: enforced by the database, not only by a check in code.
            pymongo.IndexModel(
                [("gtin", 1)], unique=True, partialFilterExpression={"gtin": {"$type": "string"}}
            ),
            pymongo.IndexModel([("aliases.tenant_id", 1), ("aliases.code", 1)]),
            pymongo.IndexModel([("category", 1), ("tenant_id", 1)]),
        ]
