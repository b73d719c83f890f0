"""Excursions: one temperature episode of one sensor, from opening to back-in-range, and the lots it touched."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class ExcursionStatus(str, Enum):
    open = "open"
    closed = "closed"
    merged = "merged"  # late readings joined it to an earlier excursion (``merged_into``)


class ExposedLot(BaseModel):
    """A lot that sat with the sensor during the excursion and what it cost that lot."""

    lot_id: PydanticObjectId
    lot_code: str
    sku_id: PydanticObjectId
    sku_code: str
    owner_id: str  # the brand (SKU owner)
    limit_c: float | None
    degree_minutes: float
    loss_fraction: float
    expires_before: date | None  # effective expiry when the excursion began
    expires_after: date | None
    units: int = 0  # on hand at the location (or on the dispatch the sensor travels with) when last judged
    pack_size: int = 1
    # A logger on pallets: the lot's units on the dispatches carrying them (what ``units`` is a part of), and which
    # of the watched pallets/cases hold it.
    total_units: int | None = None
    ssccs: list[str] = Field(default_factory=list)

    @property
    def cases(self) -> int:
        return self.units // max(self.pack_size, 1)

    @property
    def total_cases(self) -> int | None:
        return None if self.total_units is None else self.total_units // max(self.pack_size, 1)


class Excursion(Document):
    tenant_id: str  # owner of the sensor and its location
    sensor_id: PydanticObjectId
    device_id: str
    location_id: PydanticObjectId
    status: ExcursionStatus = ExcursionStatus.open
    cause: str  # "duration" (above the limit long enough) or "rise" (a confirmed fast rise)
    started_at: datetime
    opened_at: datetime
    ended_at: datetime | None = None
    last_mark_at: datetime | None = None  # last reading above the limit or confirming the rise
    merged_into: PydanticObjectId | None = None
    limit_c: float | None
    peak_c: float
    peak_at: datetime
    degree_minutes: float  # above the strictest limit
    duration_minutes: float
    samples: list[list[Any]] = Field(default_factory=list)  # [instant, °C] pairs: the evidence
    exposed_lots: list[ExposedLot] = Field(default_factory=list)
    exposure_basis: str = "location"  # pallet, dispatch or location: see hub.services.sensors.Basis
    goods_owners: list[str] = Field(default_factory=list)  # brands of the exposed lots (visibility, audience)
    alert_id: PydanticObjectId | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id",
        why="the sensor owner's",
        before_sharding="the unique (sensor_id, started_at) becomes (tenant_id, sensor_id, started_at)",
    )

    class Settings:
        name = "excursions"
        indexes = [
            pymongo.IndexModel([("sensor_id", 1), ("started_at", 1)], unique=True),
            pymongo.IndexModel([("tenant_id", 1), ("_id", -1)]),
            pymongo.IndexModel([("goods_owners", 1), ("_id", -1)]),
        ]
