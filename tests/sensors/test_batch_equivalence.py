"""The same readings judged the same however the gateway batches them, over real HTTP.

The cold chain of ``conftest``: FreshCo's salads (limit 20 °C) on Shopmart's shelf C-3.
"""

from __future__ import annotations

from datetime import timedelta

from hub.models.event import Event
from tests.sensors.conftest import CREATE_LOCATION, LOTS, RECORD_MOVEMENTS, REGISTER_SENSOR, minutes_ago, readings

ALERTS = "query { alerts(first: 50) { nodes { id kind status evidence } } }"
REGISTER_SENSOR_NAMED = "mutation($input: RegisterSensorInput!) { registerSensor(input: $input) { sensor { name } } }"
RESOLVE = "mutation($id: ID!) { resolveAlert(id: $id, decision: accept_risk, note: \"inspected\") { id status } }"


async def spikes(hub, tenant: str = "shopmart") -> list[dict]:
    return [n for n in (await hub.ok(ALERTS, tenant=tenant))["alerts"]["nodes"] if n["kind"] == "sensor_spike"]


async def test_readings_sent_one_by_one_keep_the_excursion_found_whole_and_do_not_reopen_its_alert(cold, hub):
    start = minutes_ago(150)
    temps = [18.0] * 4 + [28.0] * 6 + [18.0] * 12  # a fast rise (18 -> 28 °C), 30 minutes hot, then back
    story = readings(temps, start, every_minutes=5)
    for reading in story[:14]:  # a gateway forwarding each reading as it comes
        await cold.ingest([{"sensorId": cold.sensor, "readings": [reading]}])
    [spike] = await spikes(hub)
    assert spike["evidence"]["cause"] == "rise" and spike["evidence"]["endedAt"] is not None
    evidence = spike["evidence"]
    # the operator inspects the goods and resolves the alert
    await hub.ok(RESOLVE, {"id": spike["id"]}, tenant="shopmart")
    events = await Event.find({"payload.alert.id": spike["id"]}).count()

    # when: the in-range readings after it keep coming, one by one
    for reading in story[14:]:
        await cold.ingest([{"sensorId": cold.sensor, "readings": [reading]}])

    # then: the excursion is as it was when it ended, and nobody hears of it again
    [after] = await spikes(hub)
    assert after["status"] == "resolved"
    assert after["evidence"] == evidence
    assert evidence["startedAt"] == (start + timedelta(minutes=15)).isoformat()  # the last 18 °C before the rise
    assert evidence["readings"][0][0] <= evidence["startedAt"]
    assert await Event.find({"payload.alert.id": spike["id"]}).count() == events


async def test_a_sensor_moved_after_an_excursion_exposes_only_the_goods_where_it_was(cold, hub):
    # given: lot L-C4 on shelf C-4, where the sensor goes after an excursion on C-3
    c4 = (await hub.ok(CREATE_LOCATION, {"input": {"code": "C-4", "name": "Shelf C-4", "kind": "zone"}},
                       tenant="shopmart"))["createLocation"]["id"]
    await cold.ship("freshco", "SALAD-1", "L-C4", cold.lot_expires)
    receipt = {"sku": "SALAD-1", "kind": "receipt", "quantity": 3, "idempotencyKey": "rcv-c4", "lotCode": "L-C4",
               "expiresOn": cold.lot_expires.isoformat()}
    await hub.ok(RECORD_MOVEMENTS, {"movements": [receipt], "locationId": c4}, tenant="shopmart")
    start = minutes_ago(100)
    story = readings([18.0] * 4 + [28.0] * 6 + [18.0] * 2, start, every_minutes=5)
    await cold.ingest([{"sensorId": cold.sensor, "readings": story}])
    [spike] = await spikes(hub)

    # when: the sensor is moved to C-4 and reports from there, and a reading from before the move arrives late
    await hub.ok(REGISTER_SENSOR, {"input": {"deviceId": "pallet-c3", "locationId": c4}}, tenant="shopmart")
    after = readings([18.0] * 4, start + timedelta(minutes=60), every_minutes=5)
    await cold.ingest([{"sensorId": cold.sensor, "readings": after}])
    late = await cold.ingest([{"sensorId": cold.sensor, "readings": readings([28.0], start + timedelta(minutes=52))}])

    # then: the excursion stays at C-3 with its lot; L-C4 never saw it and keeps its date
    [moved] = await spikes(hub)
    assert moved["evidence"] == spike["evidence"] and moved["evidence"]["locationCode"] == "C-3"
    assert [lot["lotCode"] for lot in moved["evidence"]["lots"]] == ["L-C3"]
    assert late["late"] == 1 and late["excursions"] == []
    lots = {lot["lotCode"]: lot for lot in (await hub.ok(LOTS, tenant="freshco"))["lots"]["nodes"]}
    assert lots["L-C4"]["effectiveExpiresOn"] == lots["L-C4"]["expiresOn"]
    assert lots["L-C3"]["effectiveExpiresOn"] < lots["L-C3"]["expiresOn"]


async def test_a_registered_sensor_keeps_the_name_it_was_given(cold, hub):
    probe = {"deviceId": "probe-9", "locationId": cold.shelf, "name": "Door probe", "intervalMinutes": 5}

    registered = await hub.ok(REGISTER_SENSOR_NAMED, {"input": probe}, tenant="shopmart")

    assert registered["registerSensor"]["sensor"]["name"] == "Door probe"
