"""Append-only hour buckets: each call adds a bucket to the hours it brings readings to, read back as one series."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from hub.models.reading import BUCKETS_PER_HOUR, ReadingBucket
from tests.sensors.conftest import CREATE_LOCATION, REGISTER_SENSOR, minutes_ago
from tests.sensors.test_ingest import SENSORS, SERIES


def at_minutes(hour: datetime, minutes: list[int], c: float = 5.0) -> list[dict[str, Any]]:
    return [{"at": (hour + timedelta(minutes=m)).isoformat(), "temperatureC": c} for m in minutes]


async def buckets_of(sensor: str) -> list[ReadingBucket]:
    return await ReadingBucket.find({"sensor_id": PydanticObjectId(sensor)}).sort("_id").to_list()


async def test_each_call_adds_a_bucket_and_a_reading_sent_again_is_found_in_any_bucket_of_its_hour(cold, hub):
    hour = minutes_ago(180).replace(minute=0)
    for first in (0, 10, 20):
        await cold.ingest([{"sensorId": cold.sensor, "readings": at_minutes(hour, list(range(first, first + 5)))}])
    assert [b.reading_count for b in await buckets_of(cold.sensor)] == [5, 5, 5]

    # two readings of the first bucket, two of the third, two new ones
    report = await cold.ingest([{"sensorId": cold.sensor, "readings": at_minutes(hour, [3, 4, 22, 23, 40, 41])}])

    assert (report["accepted"], report["duplicates"]) == (2, 4)
    stored = await buckets_of(cold.sensor)
    assert [b.id for b in stored] == [f"{cold.sensor}:{hour:%Y%m%d%H}"] + [
        f"{cold.sensor}:{hour:%Y%m%d%H}:{n}" for n in (1, 2, 3)
    ]
    times = [r["t"] for b in stored for r in b.readings]
    assert len(times) == len(set(times)) == 17
    [sensor] = (await hub.ok(SENSORS, tenant="shopmart"))["sensors"]["nodes"]
    assert sensor["readingsCount"] == 17


async def test_the_series_merges_the_buckets_of_an_hour_in_time_order(cold, hub):
    hour = minutes_ago(180).replace(minute=0)
    for first, c in ((30, 7.0), (0, 1.0), (15, 4.0)):  # out of order inside the hour: three buckets
        await cold.ingest([{"sensorId": cold.sensor, "readings": at_minutes(hour, list(range(first, first + 10)), c)}])
    span = {"id": cold.sensor, "from": hour.isoformat(), "to": (hour + timedelta(hours=1)).isoformat()}

    raw = (await hub.ok(SERIES, span, tenant="shopmart"))["sensorReadings"]
    first_15 = (await hub.ok(SERIES, {**span, "first": 15}, tenant="shopmart"))["sensorReadings"]
    by_15 = (await hub.ok(SERIES, {**span, "interval": 15}, tenant="shopmart"))["sensorReadings"]
    by_hour = (await hub.ok(SERIES, {**span, "interval": 60}, tenant="shopmart"))["sensorReadings"]

    assert len(await buckets_of(cold.sensor)) == 3
    assert [p["at"] for p in raw["points"]] == sorted(p["at"] for p in raw["points"])
    assert [p["temperatureC"] for p in raw["points"]] == [1.0] * 10 + [4.0] * 10 + [7.0] * 10
    assert [p["temperatureC"] for p in first_15["points"]] == [1.0] * 10 + [4.0] * 5 and first_15["truncated"]
    assert [(a["count"], a["minC"], a["maxC"]) for a in by_15["aggregates"]] == [(10, 1.0, 1.0), (10, 4.0, 4.0),
                                                                                (10, 7.0, 7.0)]
    # whole hours are added up from each bucket's own count/min/max/sum
    assert [(a["count"], a["minC"], a["maxC"], a["avgC"]) for a in by_hour["aggregates"]] == [(30, 1.0, 7.0, 4.0)]


async def test_a_full_hour_is_merged_into_its_first_bucket_keeping_every_reading_once(cold, hub):
    hour = minutes_ago(180).replace(minute=0)
    calls = [list(range(5 * n, 5 * n + 3)) for n in range(BUCKETS_PER_HOUR + 1)]
    for minutes in calls:
        await cold.ingest([{"sensorId": cold.sensor, "readings": at_minutes(hour, minutes)}])

    [merged] = await buckets_of(cold.sensor)
    again = await cold.ingest([{"sensorId": cold.sensor, "readings": at_minutes(hour, [m for c in calls for m in c])}])

    assert merged.id == f"{cold.sensor}:{hour:%Y%m%d%H}"
    assert merged.reading_count == len(merged.readings) == 3 * len(calls)
    assert [r["t"] for r in merged.readings] == sorted({r["t"] for r in merged.readings})
    assert (again["accepted"], again["duplicates"]) == (0, 3 * len(calls))
    span = {"id": cold.sensor, "from": hour.isoformat()}
    assert len((await hub.ok(SERIES, span, tenant="shopmart"))["sensorReadings"]["points"]) == 3 * len(calls)


async def test_another_tenant_neither_reads_nor_adds_to_a_sensors_buckets(cold, hub):
    hour = minutes_ago(180).replace(minute=0)
    depot = await hub.ok(CREATE_LOCATION, {"input": {"code": "D-1", "name": "Depot", "kind": "zone"}}, tenant="rival")
    registered = await hub.ok(REGISTER_SENSOR, {"input": {"deviceId": "pallet-c3", "locationId":
                                                          depot["createLocation"]["id"]}}, tenant="rival")
    theirs = registered["registerSensor"]["sensor"]["id"]
    for first in (0, 10):
        await cold.ingest([{"sensorId": cold.sensor, "readings": at_minutes(hour, list(range(first, first + 5)))}])
    await cold.ingest([{"sensorId": theirs, "readings": at_minutes(hour, [0, 1], 9.0)}], tenant="rival")

    sneaked = await cold.ingest([{"sensorId": cold.sensor, "readings": at_minutes(hour, [30], 40.0)}], tenant="rival")
    refused = await hub.gql(SERIES, {"id": cold.sensor, "from": hour.isoformat()}, tenant="rival")
    own = await hub.ok(SERIES, {"id": theirs, "from": hour.isoformat()}, tenant="rival")
    shopmart = await hub.ok(SERIES, {"id": cold.sensor, "from": hour.isoformat()}, tenant="shopmart")

    assert sneaked["accepted"] == 0 and sneaked["rejected"][0]["reason"] == "unknown sensor"
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND" and refused["data"] is None
    assert [p["temperatureC"] for p in own["sensorReadings"]["points"]] == [9.0, 9.0]
    assert [p["temperatureC"] for p in shopmart["sensorReadings"]["points"]] == [5.0] * 10
    assert {b.tenant_id for b in await buckets_of(cold.sensor)} == {"shopmart"}
