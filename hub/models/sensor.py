"""Sensors: a device of one tenant at one of its locations, optionally travelling with lots, a dispatch or pallets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo.asynchronous.collection import AsyncCollection

from hub.dates import utcnow
from hub.db import by_ids
from hub.sharding import Declaration, Unsharded, key


class Sensor(Document):
    tenant_id: str  # the owner of the device and of the location it reports from
    device_id: str  # unique per tenant: what the device calls itself
    name: str | None = None
    location_id: PydanticObjectId
    lot_ids: list[PydanticObjectId] = Field(default_factory=list)  # lots it travels with (a pallet logger)
    dispatch_id: PydanticObjectId | None = None  # or the dispatch it travels with
    ssccs: list[str] = Field(default_factory=list)  # or the pallets/cases it is attached to: it watches only them
    # Brands whose goods the sensor watches (refreshed on every ingest): partners granted ``sensors`` by the owner
    # see it only while this names them.
    goods_owners: list[str] = Field(default_factory=list)
    interval_minutes: float | None = None  # registered reporting interval; else inferred from its readings
    max_silence_minutes: float | None = None  # allowed silence before sensor_offline; else the global setting
    # When it was put where it is (location, dispatch, pallets): readings from before then were taken elsewhere, so
    # they are never judged against the goods it watches now. None: never moved since registered.
    attached_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "device_id",
        why="the owner's devices; the unique (tenant_id, device_id) starts with it",
    )

    class Settings:
        name = "sensors"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("device_id", 1)], unique=True),
            pymongo.IndexModel([("location_id", 1)]),
            pymongo.IndexModel([("goods_owners", 1), ("tenant_id", 1)]),
        ]


# What changes with every reading lives apart from the sensor, in a collection without secondary indexes: measured on
# SecantusDB, updating 200 documents that carry the sensors' three indexes costs 2.5x more than updating plain ones,
# and ingestion writes this state for every sensor on every call (replacing it whole, as read in its transaction: on
# SecantusDB that costs half an update with operators). One document per sensor, ``_id`` = the sensor id.
STATE_COLLECTION = "sensor_states"
STATE_SHARDING = Unsharded(
    "one document per sensor by its id, kept without secondary indexes because ingestion writes it on every call; "
    "sharded, it would gain tenant_id and an index (tenant_id, _id)"
)


class SensorState(BaseModel):
    last_reading_at: datetime | None = None
    last_temperature_c: float | None = None
    readings_count: int = 0
    detector: dict[str, Any] = Field(default_factory=dict)  # where the next judgement starts (spikes.state_doc)
    offline_alert: bool = False  # a sensor_offline alert is open for it (resolved when readings resume)

    @property
    def in_excursion(self) -> bool:
        return self.detector.get("pending_since") is not None


def states() -> AsyncCollection:
    return Sensor.get_pymongo_collection().database[STATE_COLLECTION]


async def states_of(sensor_ids: list[Any], session: Any = None) -> dict[Any, SensorState]:
    return {doc["_id"]: SensorState.model_validate(doc) for doc in await by_ids(states(), sensor_ids, session)}
