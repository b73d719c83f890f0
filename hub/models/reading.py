"""Sensor readings, stored with the bucket pattern: one document per sensor per hour.

A reading is ``{"t": instant, "c": °C, "rh": % or None}``. The bucket's ``_id`` is ``<sensor id>:<YYYYMMDDHH>`` so
ingestion addresses buckets directly; readings are unique by ``t`` inside a bucket (the same reading sent twice is
stored once), kept sorted, and the bucket carries count/min/max/sum so coarse series never unpack readings.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from hub.sharding import Declaration, key


def bucket_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def bucket_id(sensor_id: Any, hour: datetime) -> str:
    return f"{sensor_id}:{hour:%Y%m%d%H}"


class ReadingBucket(Document):
    id: str  # type: ignore[assignment]  # bucket_id(sensor_id, hour)
    sensor_id: PydanticObjectId
    tenant_id: str
    hour: datetime
    readings: list[dict[str, Any]] = Field(default_factory=list)
    reading_count: int = Field(default=0, alias="count")  # ``count`` in MongoDB; Document.count is a method
    min_c: float | None = None
    max_c: float | None = None
    sum_c: float = 0.0

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "sensor_id", "hour",
        why="buckets of the sensor's owner, one per sensor per hour",
    )

    class Settings:
        name = "readings"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("sensor_id", 1), ("hour", 1)])]
