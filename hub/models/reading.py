"""Sensor readings, stored with the bucket pattern: a few documents per sensor per hour, written once each.

A reading is ``{"t": instant, "c": °C, "rh": % or None}``. Each ingestion call that brings new readings for an hour
inserts one more bucket for it instead of rewriting the hour's bucket: on SecantusDB an update costs several times
an insert, and rewriting an hour's growing readings array costs more as the hour fills (MongoDB's time-series
collections avoid in-place growth the same way). An hour holds at most ``BUCKETS_PER_HOUR`` buckets, numbered from
0: ``_id`` ``<sensor id>:<YYYYMMDDHH>`` for the first, ``<sensor id>:<YYYYMMDDHH>:<n>`` for the others, so ingestion
looks an hour's buckets up by ``_id`` alone; the call that would add one more merges them into the first instead.
Readings are unique by ``t`` within the hour across its buckets (the same reading sent twice is stored once), sorted
inside each bucket, and each bucket carries count/min/max/sum of its own readings so coarse series add them up
without unpacking readings.
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


BUCKETS_PER_HOUR = 4  # at most this many buckets per sensor and hour (each lookup asks for all of them)


def bucket_id(sensor_id: Any, hour: datetime, number: int = 0) -> str:
    """The ``number``-th bucket of a sensor's hour (the first keeps the plain ``<sensor id>:<YYYYMMDDHH>``)."""
    return f"{sensor_id}:{hour:%Y%m%d%H}" if number == 0 else f"{sensor_id}:{hour:%Y%m%d%H}:{number}"


def bucket_ids(sensor_id: Any, hour: datetime) -> list[str]:
    """Every ``_id`` a bucket of this sensor and hour can have (the hour formatted once: ingestion asks for
    thousands)."""
    first = bucket_id(sensor_id, hour)
    return [first, *(f"{first}:{number}" for number in range(1, BUCKETS_PER_HOUR))]


class ReadingBucket(Document):
    id: str  # type: ignore[assignment]  # bucket_id(sensor_id, hour, number)
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
        why="buckets of the sensor's owner, up to four per sensor per hour (on one shard: their _ids stay unique)",
    )

    class Settings:
        name = "readings"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("sensor_id", 1), ("hour", 1)])]
