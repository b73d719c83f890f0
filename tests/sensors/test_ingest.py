"""Ingesting readings: hour buckets, idempotency, out-of-order, per-reading rejections, series and heartbeat."""

from __future__ import annotations

import asyncio
import json
import math
import time
from datetime import UTC, datetime, timedelta

import pytest

from hub.auth import Principal
from hub.errors import BadInput
from hub.models.reading import ReadingBucket
from hub.services import readings as reading_service
from tenants.access import Access
from tests.sensors.conftest import INGEST, REGISTER_SENSOR, minutes_ago, readings

SERIES = """
query($id: ID!, $from: DateTime!, $to: DateTime, $interval: Int, $first: Int! = 1000) {
  sensorReadings(sensorId: $id, from: $from, to: $to, intervalMinutes: $interval, first: $first) {
    points { at temperatureC humidityPct } aggregates { start count minC maxC avgC } truncated
  }
}
"""
SENSORS = """
query { sensors(first: 10) { nodes { id deviceId online lastTemperatureC lastReadingAt readingsCount inExcursion } } }
"""


async def test_the_same_readings_sent_twice_are_stored_once(cold, hub):
    start = minutes_ago(30)
    first = await cold.ingest_temps([18.0, 18.5, 19.0], start)

    again = await cold.ingest_temps([18.0, 18.5, 19.0], start)

    assert (first["accepted"], first["duplicates"]) == (3, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    series = (await hub.ok(SERIES, {"id": cold.sensor, "from": start.isoformat()}, tenant="shopmart"))
    assert [p["temperatureC"] for p in series["sensorReadings"]["points"]] == [18.0, 18.5, 19.0]
    [sensor] = (await hub.ok(SENSORS, tenant="shopmart"))["sensors"]["nodes"]
    assert sensor["readingsCount"] == 3


async def test_a_reading_repeated_inside_one_call_is_stored_once(cold):
    at = minutes_ago(5).isoformat()
    batch = {"sensorId": cold.sensor, "readings": [{"at": at, "temperatureC": 18.0}, {"at": at, "temperatureC": 18.0}]}

    report = await cold.ingest([batch])

    assert (report["accepted"], report["duplicates"]) == (1, 1)


async def test_readings_out_of_order_are_stored_in_time_order_across_hour_buckets(cold, hub):
    start = minutes_ago(150)
    later = await cold.ingest_temps([19.0] * 30, start + timedelta(minutes=90))

    earlier = await cold.ingest_temps([18.0] * 30, start)

    assert later["accepted"] == 30 and earlier["accepted"] == 30
    assert earlier["late"] == 0  # within the re-judged window: judged like timely readings
    data = await hub.ok(SERIES, {"id": cold.sensor, "from": start.isoformat()}, tenant="shopmart")
    times = [p["at"] for p in data["sensorReadings"]["points"]]
    assert len(times) == 60 and times == sorted(times)
    buckets = await ReadingBucket.find({"sensor_id": {"$exists": True}}).to_list()
    assert sum(b.reading_count for b in buckets) == 60
    assert all(b.readings == sorted(b.readings, key=lambda r: r["t"]) for b in buckets)
    assert len({b.hour for b in buckets}) == len(buckets) >= 2


async def test_impossible_readings_are_rejected_one_by_one_while_the_rest_are_kept(cold, hub):
    now = datetime.now(UTC).replace(microsecond=0)
    good = {"at": (now - timedelta(minutes=3)).isoformat(), "temperatureC": 4.0, "humidityPct": 80.0}
    batch = {"sensorId": cold.sensor, "readings": [
        good,
        {"at": (now - timedelta(minutes=2)).isoformat(), "temperatureC": -300.0},
        {"at": (now - timedelta(minutes=1)).isoformat(), "temperatureC": 4.0, "humidityPct": 120.0},
        {"at": (now + timedelta(hours=2)).isoformat(), "temperatureC": 4.0},
        {"at": "1970-01-01T00:00:00Z", "temperatureC": 4.0},
    ]}
    strangers = [
        {"sensorId": "000000000000000000000000", "readings": [good]},
        {"deviceId": "no-such-device", "readings": [good]},
    ]

    report = await cold.ingest([batch, *strangers])

    assert report["received"] == 7 and report["accepted"] == 1
    reasons = {(r["sensor"], r["index"]): r["reason"] for r in report["rejected"]}
    assert reasons == {
        (cold.sensor, 1): "temperature -300 °C is outside -100..100 °C",
        (cold.sensor, 2): "relative humidity 120 % is outside 0..100 %",
        (cold.sensor, 3): "time is in the future (check the device clock)",
        (cold.sensor, 4): "time is more than 90 days in the past (check the device clock)",
        ("000000000000000000000000", 0): "unknown sensor",
        ("no-such-device", 0): "unknown sensor",
    }
    window = {"id": cold.sensor, "from": (now - timedelta(hours=1)).isoformat()}
    series = await hub.ok(SERIES, window, tenant="shopmart")
    assert series["sensorReadings"]["points"] == [
        {"at": good["at"], "temperatureC": 4.0, "humidityPct": 80.0}
    ]


async def test_not_a_number_is_rejected_per_reading_by_the_service(cold, hub):
    access = Access(Principal("shopmart", "gateway", hub.url, frozenset({"integration"})))
    batch = reading_service.SensorReadingsIn(
        sensor_id=cold.sensor,
        readings=[
            reading_service.ReadingIn(minutes_ago(2), math.nan),
            reading_service.ReadingIn(minutes_ago(1), 5.0, math.inf),
            reading_service.ReadingIn(minutes_ago(0), 5.0),
        ],
    )

    report = await reading_service.ingest(access, hub.state.database, hub.settings, [batch])

    assert report.accepted == 1
    assert [r.reason for r in report.rejected] == [
        "temperature is not a number", "relative humidity inf % is outside 0..100 %"
    ]


async def test_a_call_above_the_batch_limit_is_refused_whole(cold, hub):
    access = Access(Principal("shopmart", "gateway", hub.url, frozenset({"integration"})))
    batch = reading_service.SensorReadingsIn(
        sensor_id=cold.sensor, readings=[reading_service.ReadingIn(minutes_ago(i), 5.0) for i in range(6)]
    )

    with pytest.raises(BadInput, match="at most 5 readings"):
        await reading_service.ingest(access, hub.state.database, hub.settings.with_(max_batch=5), [batch])


async def test_readings_may_name_the_sensor_by_its_device_id(cold):
    report = await cold.ingest([{"deviceId": "pallet-c3", "readings": readings([5.0, 5.5], minutes_ago(10))}])

    assert report["accepted"] == 2 and report["rejected"] == []


async def test_a_viewer_cannot_ingest(cold, hub):
    body = await hub.gql(
        "mutation($i: [SensorReadingsInput!]!) { ingestReadings(input: $i) { accepted } }",
        {"i": [{"sensorId": cold.sensor, "readings": readings([5.0], minutes_ago(1))}]},
        tenant="shopmart", roles=("viewer",),
    )

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_series_downsamples_to_min_max_avg_per_interval(cold, hub):
    start = minutes_ago(200).replace(minute=0)
    await cold.ingest_temps([float(i % 10) for i in range(120)], start)  # 0..9 °C sawtooth over two hours

    span = {"id": cold.sensor, "from": start.isoformat(), "to": (start + timedelta(hours=2)).isoformat()}
    by_10 = await hub.ok(SERIES, {**span, "interval": 10}, tenant="shopmart")
    by_hour = await hub.ok(SERIES, {**span, "interval": 60}, tenant="shopmart")

    tens = by_10["sensorReadings"]["aggregates"]
    assert len(tens) == 12 and by_10["sensorReadings"]["points"] == []
    assert all((a["count"], a["minC"], a["maxC"], a["avgC"]) == (10, 0.0, 9.0, 4.5) for a in tens)
    hours = by_hour["sensorReadings"]["aggregates"]  # answered from the buckets' own count/min/max/sum
    assert [(a["count"], a["minC"], a["maxC"], a["avgC"]) for a in hours] == [(60, 0.0, 9.0, 4.5)] * 2


async def test_a_long_raw_series_is_truncated_and_says_so(cold, hub):
    start = minutes_ago(60)
    await cold.ingest_temps([5.0] * 30, start)

    data = await hub.ok(SERIES, {"id": cold.sensor, "from": start.isoformat(), "first": 10}, tenant="shopmart")

    assert len(data["sensorReadings"]["points"]) == 10 and data["sensorReadings"]["truncated"]


async def test_the_sensor_shows_its_heartbeat(cold, hub):
    [silent] = (await hub.ok(SENSORS, tenant="shopmart"))["sensors"]["nodes"]
    await cold.ingest_temps([5.0, 6.5], minutes_ago(2))

    [alive] = (await hub.ok(SENSORS, tenant="shopmart"))["sensors"]["nodes"]

    assert silent["online"] is False and silent["lastReadingAt"] is None
    assert alive["online"] is True and alive["lastTemperatureC"] == 6.5 and not alive["inExcursion"]


async def test_registering_a_known_device_again_moves_it(cold, hub):
    other = await hub.ok(
        "mutation($input: CreateLocationInput!) { createLocation(input: $input) { id } }",
        {"input": {"code": "C-4", "name": "Shelf C-4", "kind": "zone"}}, tenant="shopmart",
    )
    location = other["createLocation"]["id"]

    moved = await hub.ok(
        REGISTER_SENSOR, {"input": {"deviceId": "pallet-c3", "locationId": location}}, tenant="shopmart"
    )

    assert moved["registerSensor"]["created"] is False
    assert moved["registerSensor"]["sensor"]["id"] == cold.sensor
    assert moved["registerSensor"]["sensor"]["locationId"] == location


async def test_compact_samples_are_stored_like_readings_and_malformed_ones_rejected_alone(cold, hub):
    start = minutes_ago(10)
    samples = [
        [start.isoformat(), 5.0, 80.0],
        [start.timestamp() + 60, 5.5],
        ["yesterday-ish", 5.0],
        [start.isoformat()],
        [start.isoformat(), "warm"],
        [start.isoformat(), 10**400],
        [10**400, 5.0],
        [float("1e300"), 5.0],
    ]

    report = await cold.ingest([{"sensorId": cold.sensor, "samples": samples}])

    assert (report["received"], report["accepted"]) == (8, 2)
    assert [(r["index"], r["reason"]) for r in report["rejected"]] == [
        (2, "time is not a valid ISO 8601 instant"),
        (3, "a sample is [time, temperatureC] or [time, temperatureC, humidityPct]"),
        (4, "temperature and humidity must be numbers"),
        (5, "temperature and humidity must be numbers within range"),
        (6, "time is not a valid epoch instant"),
        (7, "time is not a valid epoch instant"),
    ]
    series = await hub.ok(SERIES, {"id": cold.sensor, "from": start.isoformat()}, tenant="shopmart")
    assert [(p["temperatureC"], p["humidityPct"]) for p in series["sensorReadings"]["points"]] == [
        (5.0, 80.0), (5.5, None)
    ]


def scoped_token(hub, scope: str) -> str:
    """A gateway's OAuth-style token: integration role, narrowed to ``scope``."""
    now = int(time.time())
    claims = {
        "iss": hub.settings.issuer, "aud": hub.settings.audience, "sub": "gateway-7", "iat": now, "nbf": now,
        "exp": now + 600, "scope": scope,
        hub.settings.claim_namespace: {"tenant": "shopmart", "roles": ["integration"]},
    }
    return hub.keyring.sign(claims)


async def test_a_token_scoped_to_sensor_ingestion_may_ingest_but_not_register(cold, hub):
    device = scoped_token(hub, "sensors:ingest")
    reader = scoped_token(hub, "read")
    batch = [{"sensorId": cold.sensor, "readings": readings([5.0], minutes_ago(1))}]

    ingested = await hub.gql("mutation($i: [SensorReadingsInput!]!) { ingestReadings(input: $i) { accepted } }",
                             {"i": batch}, token=device)
    registered = await hub.gql(REGISTER_SENSOR, {"input": {"deviceId": "x", "locationId": cold.shelf}}, token=device)
    refused = await hub.gql("mutation($i: [SensorReadingsInput!]!) { ingestReadings(input: $i) { accepted } }",
                            {"i": batch}, token=reader)

    assert ingested["data"]["ingestReadings"]["accepted"] == 1
    assert registered["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_concurrent_calls_for_the_same_sensor_and_hour_lose_nothing_and_store_nothing_twice(cold, hub):
    start = minutes_ago(40)
    overlap = [readings([5.0] * 30, start), readings([5.0] * 30, start + timedelta(minutes=10))]  # 10 shared minutes

    reports = await asyncio.gather(*(
        cold.ingest([{"sensorId": cold.sensor, "readings": part}]) for part in overlap
    ))

    assert sum(r["accepted"] for r in reports) == 40
    assert sum(r["duplicates"] for r in reports) == 20
    data = await hub.ok(SERIES, {"id": cold.sensor, "from": start.isoformat()}, tenant="shopmart")
    assert len(data["sensorReadings"]["points"]) == 40
    [sensor] = (await hub.ok(SENSORS, tenant="shopmart"))["sensors"]["nodes"]
    assert sensor["readingsCount"] == 40


async def test_a_nan_sample_on_the_wire_is_rejected_alone(cold, hub):
    # JSON has no NaN, but gateways emit it and the hub parses it: it must cost one reading, not the call.
    at = minutes_ago(2).isoformat()
    samples = f'[["{at}", NaN], ["{minutes_ago(1).isoformat()}", 4.5]]'
    variables = f'{{"input": [{{"sensorId": "{cold.sensor}", "samples": {samples}}}]}}'
    body = f'{{"query": {json.dumps(INGEST)}, "variables": {variables}}}'

    response = await hub.http.post("/graphql", content=body, headers={
        "authorization": f"Bearer {hub.token('shopmart')}", "content-type": "application/json",
    })

    report = response.json()["data"]["ingestReadings"]
    assert report["accepted"] == 1
    assert [(r["index"], r["reason"]) for r in report["rejected"]] == [(0, "temperature is not a number")]


async def test_losing_the_race_to_create_a_bucket_retries_and_keeps_every_reading(cold, hub, monkeypatch):
    start = minutes_ago(120).replace(minute=10)  # all six readings fall in one hour bucket
    await cold.ingest_temps([5.0] * 3, start)  # the bucket now exists
    real = ReadingBucket.get_pymongo_collection()

    class CreatedMeanwhile:
        """The first look finds no bucket, as if another call created it a moment later."""

        looked = False

        def find(self, *args, **kwargs):
            if not CreatedMeanwhile.looked:
                CreatedMeanwhile.looked = True
                return real.find({"_id": None}, session=kwargs.get("session"))
            return real.find(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(ReadingBucket, "get_pymongo_collection", lambda: CreatedMeanwhile())

    report = await cold.ingest_temps([6.0] * 3, start + timedelta(minutes=3))

    assert CreatedMeanwhile.looked and report["accepted"] == 3
    data = await hub.ok(SERIES, {"id": cold.sensor, "from": start.isoformat()}, tenant="shopmart")
    assert [p["temperatureC"] for p in data["sensorReadings"]["points"]] == [5.0] * 3 + [6.0] * 3


async def test_samples_that_are_not_an_array_are_refused(cold, hub):
    body = await hub.gql(INGEST, {"input": [{"sensorId": cold.sensor, "samples": {"at": "now"}}]}, tenant="shopmart")

    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
