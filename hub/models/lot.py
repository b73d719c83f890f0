"""Production lots (batches) of a SKU, owned by the producer."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class LotStatus(str, Enum):
    released = "released"
    on_hold = "on_hold"
    quarantined = "quarantined"
    expired = "expired"
    recalled = "recalled"


class Lot(Document):
    tenant_id: str  # the producer (the SKU's owner)
    sku_id: PydanticObjectId
    lot_code: str
    produced_on: date | None = None
    expires_on: date | None = None
    effective_expires_on: date | None = None  # after temperature excursions
    status: LotStatus = LotStatus.released
    hold_reason: str | None = None
    # Tenants that may see this lot besides its producer: parties of dispatches that carried it.
    visible_to: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "expires_on",
        why="the SKU owner's lots, split by expiry date within a tenant",
        before_sharding="the unique (sku_id, lot_code) becomes (tenant_id, sku_id, lot_code): a lot belongs "
                        "to its SKU's owner",
    )

    class Settings:
        name = "lots"
        indexes = [
            pymongo.IndexModel([("sku_id", 1), ("lot_code", 1)], unique=True),
            pymongo.IndexModel([("tenant_id", 1), ("expires_on", 1)]),
            pymongo.IndexModel([("visible_to", 1)]),
            pymongo.IndexModel([("tenant_id", 1), ("status", 1)]),  # inventory health: an owner's held lots
        ]
