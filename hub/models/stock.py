"""Stock positions: on-hand per (tenant, location, SKU, lot), kept in step with movements in one transaction."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class StockPosition(Document):
    tenant_id: str  # the stock holder
    location_id: PydanticObjectId
    sku_id: PydanticObjectId
    sku_owner_id: str  # VMI: a partner granted ``stock`` sees positions of the SKUs it owns
    lot_id: PydanticObjectId | None = None  # None: stock not tracked by lot
    lot_code: str | None = None
    on_hand: int = 0  # integer base units
    expires_on: date | None = None
    effective_expires_on: date | None = None  # after temperature excursions (copied from the lot)
    last_movement_id: PydanticObjectId | None = None
    last_movement_at: datetime | None = None
    arrived_at: datetime | None = None  # the first stock-adding movement here: where inventory health ages from
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "location_id", "sku_id",
        why="written with the holder's movements; the unique position key starts with it",
    )

    class Settings:
        name = "stock_positions"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("location_id", 1), ("sku_id", 1), ("lot_id", 1)], unique=True),
            pymongo.IndexModel([("sku_owner_id", 1), ("tenant_id", 1), ("sku_id", 1)]),  # VMI; one SKU's stock
            pymongo.IndexModel([("tenant_id", 1), ("expires_on", 1)]),
            pymongo.IndexModel([("lot_id", 1)]),
        ]
