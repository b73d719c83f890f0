"""A tenant's choices for its inventory health figures."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class HealthSettings(Document):
    tenant_id: str
    aging_bands: list[int] | None = None  # upper bounds in days, increasing; older than the last: the open band
    snapshot_days: list[str] = Field(default_factory=list)  # ISO dates whose health snapshot is complete
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id",
        why="one document per tenant",
    )

    class Settings:
        name = "health_settings"
        indexes = [pymongo.IndexModel([("tenant_id", 1)], unique=True)]


class LotCost(Document):
    """What a holder paid for a lot: the sums of its costed receipt lines, kept with the ledger's transaction.

    Valuation reads these few documents instead of scanning the ledger for costed receipts.
    """

    tenant_id: str  # the holder
    lot_id: PydanticObjectId
    sku_id: PydanticObjectId
    currency: str
    cost: float = 0.0  # sum of quantity x unit cost
    units: int = 0

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "lot_id",
        why="the holder's lot costs; the unique (tenant_id, lot_id, currency) starts with it",
    )

    class Settings:
        name = "lot_costs"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("lot_id", 1), ("currency", 1)], unique=True),
            pymongo.IndexModel([("tenant_id", 1), ("sku_id", 1)]),  # valuing one SKU's stock (inventory health)
        ]


class HealthSnapshot(Document):
    """A holder's stock at one location of one SKU at the end of a day: what a trend compares against.

    Written once a day by each hub for the tenants whose periodic work it leases; ``sku_owner_id`` lets the same
    sharing rule as the positions decide who may read it.
    """

    tenant_id: str
    sku_owner_id: str
    location_id: PydanticObjectId
    sku_id: PydanticObjectId
    day: str  # ISO date
    units: int
    value: dict[str, float] = Field(default_factory=dict)
    at_risk: dict[str, float] = Field(default_factory=dict)
    # The same at the SKUs' standard costs: what partners reading the holder's stock are shown (not what it paid).
    standard_value: dict[str, float] = Field(default_factory=dict)
    standard_at_risk: dict[str, float] = Field(default_factory=dict)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "day",
        why="a tenant's daily snapshots; the unique (tenant_id, day, location_id, sku_id) starts with it",
    )

    class Settings:
        name = "health_snapshots"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("day", 1), ("location_id", 1), ("sku_id", 1)],
                                      unique=True)]
