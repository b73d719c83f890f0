"""The brief's story end to end: a spike on shelf C-3 becomes one excursion, one alert, and an earlier expiry."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from hub.models.event import Event
from hub.models.reading import BUCKETS_PER_HOUR, ReadingBucket
from tests.conftest import start_hub
from tests.events.conftest import listen  # noqa: F401 - fixture
from tests.sensors.conftest import (
    CREATE_LOCATION,
    LOTS,
    REGISTER_SENSOR,
    build_cold_chain,
    minutes_ago,
    readings,
)

ALERTS_LIVE = """
subscription { alerts { type alert { id kind severity title evidence subjects { kind id label } } } }
"""
EXCURSIONS = """
query {
  excursions(first: 10) {
    nodes {
      id status cause peakC limitC degreeMinutes durationMinutes alertId
      exposedLots { lotCode shelfLifeLossPct expiresBefore expiresAfter }
    }
  }
}
"""
CREATE_DISPATCH = "mutation($input: CreateDispatchInput!) { createDispatch(input: $input) { id } }"
ALERTS = "query { alerts(first: 50) { nodes { id kind severity title recommendation subjects { kind label } } } }"


async def test_a_twenty_minute_spike_on_shelf_c3_is_one_excursion_one_alert_and_an_earlier_expiry(cold, hub, listen):
    # given: the brand owner listens live for alerts
    listener = await listen("freshco", ALERTS_LIVE)
    # when: 18 °C, then 28 °C for 20 minutes, then 18 °C (a reading a minute)
    report = await cold.ingest_temps([18.0] * 10 + [28.0] * 20 + [18.0] * 10, minutes_ago(45))

    # then: one excursion, opened and closed in this batch
    assert report["accepted"] == 40 and report["rejected"] == []
    assert len(report["excursions"]) == 1
    assert report["excursions"][0]["opened"] and report["excursions"][0]["closed"]
    [excursion] = (await hub.ok(EXCURSIONS, tenant="shopmart"))["excursions"]["nodes"]
    assert excursion["status"] == "closed" and excursion["peakC"] == 28.0 and excursion["limitC"] == 20.0
    assert 150 < excursion["degreeMinutes"] < 170
    [exposed] = excursion["exposedLots"]
    assert exposed["lotCode"] == "L-C3"
    assert 15 <= exposed["shelfLifeLossPct"] <= 30
    assert date.fromisoformat(exposed["expiresAfter"]) < date.fromisoformat(exposed["expiresBefore"])

    # the lot's effective expiry moved earlier; its recorded expiry did not
    lot = await cold.lot_expiry()
    assert lot["expiresOn"] == cold.lot_expires.isoformat()
    assert lot["effectiveExpiresOn"] == exposed["expiresAfter"]

    # exactly one sensor_spike alert, naming the lot, recommending priority dispatch or inspection
    spikes = [a for a in (await hub.ok(ALERTS, tenant="freshco"))["alerts"]["nodes"] if a["kind"] == "sensor_spike"]
    assert len(spikes) == 1
    assert spikes[0]["id"] == excursion["alertId"]
    assert {"kind": "lot", "label": "L-C3"} in spikes[0]["subjects"]
    assert "priority" in spikes[0]["recommendation"] and "L-C3" in spikes[0]["recommendation"]

    # the brand owner heard it live
    heard = await listener.next(10)
    assert heard["alerts"]["type"] == "sensor_spike.detected"
    assert heard["alerts"]["alert"]["id"] == excursion["alertId"]
    assert heard["alerts"]["alert"]["evidence"]["lots"][0]["lotCode"] == "L-C3"
    assert len(heard["alerts"]["alert"]["evidence"]["readings"]) >= 20
    events = await Event.find({"type": "sensor_spike.detected"}).to_list()
    assert len(events) == 1 and "freshco" in events[0].audience


async def test_one_wild_reading_raises_nothing(cold, hub):
    report = await cold.ingest_temps([18.0] * 10 + [30.0] + [18.0] * 10, minutes_ago(30))

    assert report["accepted"] == 21 and report["excursions"] == []
    assert (await hub.ok(EXCURSIONS, tenant="shopmart"))["excursions"]["nodes"] == []
    assert await Event.find({"type": "sensor_spike.detected"}).count() == 0
    lot = await cold.lot_expiry()
    assert lot["effectiveExpiresOn"] == lot["expiresOn"]


async def test_a_spike_sent_in_small_batches_across_an_hour_boundary_is_one_excursion_with_one_alert(cold, hub):
    temps = [18.0] * 10 + [28.0] * 20 + [18.0] * 10
    start = minutes_ago(150).replace(minute=45)  # the spike runs from :55 to :15, across two hour buckets
    changes = []
    for offset in range(0, len(temps), 6):  # a gateway flushing every 6 minutes
        report = await cold.ingest_temps(temps[offset : offset + 6], start + timedelta(minutes=offset))
        changes.extend(report["excursions"])

    assert len({c["excursionId"] for c in changes}) == 1
    assert [c for c in changes if c["opened"]] and [c for c in changes if c["closed"]]
    spikes = [a for a in (await hub.ok(ALERTS, tenant="shopmart"))["alerts"]["nodes"] if a["kind"] == "sensor_spike"]
    assert len(spikes) == 1
    [excursion] = (await hub.ok(EXCURSIONS, tenant="shopmart"))["excursions"]["nodes"]
    assert 150 < excursion["degreeMinutes"] < 170
    buckets = await ReadingBucket.find({}).to_list()
    per_hour = Counter(b.hour for b in buckets)
    assert len(per_hour) == 2 and max(per_hour.values()) <= BUCKETS_PER_HOUR  # seven calls: an hour was merged
    assert sum(b.reading_count for b in buckets) == len({r["t"] for b in buckets for r in b.readings}) == 40


async def test_an_excursion_continues_across_a_hub_restart(settings):
    temps = [18.0] * 10 + [28.0] * 20 + [18.0] * 10
    start = minutes_ago(45)
    # given: the spike begins while the hub runs
    async for running in start_hub(settings):
        cold = await build_cold_chain(running)
        first = await cold.ingest_temps(temps[:20], start)

    # when: the hub restarts (nothing survives but the database) and receives the rest
    async for restarted in start_hub(settings):
        cold.hub = restarted
        second = await cold.ingest_temps(temps[20:], start + timedelta(minutes=20))
        [excursion] = (await restarted.ok(EXCURSIONS, tenant="shopmart"))["excursions"]["nodes"]

    # then: one excursion, opened before the restart and closed after it, its dose counted across both
    assert [c["opened"] for c in first["excursions"]] == [True]
    assert [c["closed"] for c in second["excursions"]] == [True]
    assert first["excursions"][0]["excursionId"] == second["excursions"][0]["excursionId"] == excursion["id"]
    assert 150 < excursion["degreeMinutes"] < 170


async def test_a_logger_travelling_with_a_dispatch_re_dates_the_dispatched_lot(cold, hub):
    # given: FreshCo ships lot T-1 to Shopmart with a temperature logger in the truck
    dc = await hub.ok(CREATE_LOCATION, {"input": {"code": "DC-1", "name": "DC", "kind": "dc"}}, tenant="freshco")
    line = {"sku": "SALAD-1", "lotCode": "T-1", "quantity": 40, "expiresOn": cold.lot_expires.isoformat()}
    dispatch = await hub.ok(CREATE_DISPATCH, {"input": {"ref": "ASN-9", "consigneeId": "shopmart", "lines": [line]}},
                            tenant="freshco")
    logger = {"deviceId": "truck-logger", "locationId": dc["createLocation"]["id"],
              "dispatchId": dispatch["createDispatch"]["id"]}
    sensor = (await hub.ok(REGISTER_SENSOR, {"input": logger}, tenant="freshco"))["registerSensor"]["sensor"]["id"]

    # when: the truck warms up for 20 minutes
    warm = readings([18.0] * 10 + [28.0] * 20 + [18.0] * 10, minutes_ago(45))
    report = await cold.ingest([{"sensorId": sensor, "readings": warm}], tenant="freshco")

    # then
    assert len(report["excursions"]) == 1
    [excursion] = (await hub.ok(EXCURSIONS, tenant="freshco"))["excursions"]["nodes"]
    assert [lot["lotCode"] for lot in excursion["exposedLots"]] == ["T-1"]
    lots = (await hub.ok(LOTS, tenant="freshco"))["lots"]["nodes"]
    [t1] = [lot for lot in lots if lot["lotCode"] == "T-1"]
    assert t1["effectiveExpiresOn"] < t1["expiresOn"]


async def test_a_spike_that_spoils_a_lot_flags_it_expired_at_once(cold, hub):
    # when: 35 °C for 90 minutes, far more than the salads' remaining shelf life can take
    await cold.ingest_temps([18.0] * 5 + [35.0] * 90 + [18.0] * 5, minutes_ago(110))

    # then: the lot is past its effective expiry, and the expiry-risk alert says so without waiting for a sweep
    lot = await cold.lot_expiry()
    assert lot["effectiveExpiresOn"] < datetime.now(UTC).date().isoformat()
    risks = [a for a in (await hub.ok(ALERTS, tenant="shopmart"))["alerts"]["nodes"] if a["kind"] == "expiry_risk"]
    assert [(a["severity"], {"kind": "lot", "label": "L-C3"} in a["subjects"]) for a in risks] == [("critical", True)]
