"""The same readings judged the same however the gateway batches them, over real HTTP.

The cold chain of ``conftest``: FreshCo's salads (limit 20 °C) on Shopmart's shelf C-3.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from hub.dates import utcnow
from hub.detect.spikes import Reading, SpikeConfig, judge
from hub.models.event import Event
from hub.services import heartbeat
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


async def test_a_late_reading_whose_window_begins_just_before_an_excursion_does_not_move_its_start(cold, hub):
    start = minutes_ago(180)
    story = readings([18.0] * 12 + [22.0] * 5 + [18.0] * 12, start, every_minutes=5)  # hot from +60 to +80 minutes
    await cold.ingest([{"sensorId": cold.sensor, "readings": story[:19] + story[20:]}])
    [spike] = await spikes(hub)
    assert spike["evidence"]["startedAt"] == (start + timedelta(minutes=60)).isoformat()

    # when: the one reading left out arrives; the span it is judged in begins at the reading before the first hot one
    await cold.ingest([{"sensorId": cold.sensor, "readings": story[19:20]}])

    # then: that in-range reading is judged with its neighbours, as in the whole series: nothing changed
    [after] = await spikes(hub)
    assert after["evidence"] == spike["evidence"]


async def test_two_excursions_in_one_batch_compound_as_when_they_arrive_apart(cold, hub):
    hot = [18.0] * 4 + [28.0] * 4 + [18.0] * 4
    story = readings(hot + [18.0] * 8 + hot, minutes_ago(200), every_minutes=5)

    await cold.ingest([{"sensorId": cold.sensor, "readings": story}])

    first, second = sorted(await spikes(hub), key=lambda alert: alert["evidence"]["startedAt"])
    [lot_first], [lot_second] = first["evidence"]["lots"], second["evidence"]["lots"]
    assert lot_first["expiresAfter"] < lot_first["expiresBefore"]
    assert lot_second["expiresBefore"] == lot_first["expiresAfter"]  # the second starts from what the first left
    assert lot_second["expiresAfter"] < lot_second["expiresBefore"]
    assert (await cold.lot_expiry())["effectiveExpiresOn"] == lot_second["expiresAfter"]


async def test_readings_arriving_shuffled_end_with_the_alert_the_whole_series_gives(cold, hub):
    start = minutes_ago(200)
    story = readings([18.0] * 12 + [21.0] * 5 + [18.0] * 12, start, every_minutes=5)
    shuffled = story[:]
    random.Random(5).shuffle(shuffled)

    for n in range(0, len(shuffled), 4):  # a gateway flushing a jumbled buffer, four readings at a time
        await cold.ingest([{"sensorId": cold.sensor, "readings": shuffled[n:n + 4]}])

    series = [Reading(datetime.fromisoformat(r["at"]), r["temperatureC"]) for r in story]
    [whole] = judge(series, SpikeConfig(limit_c=20.0, thresholds=(20.0,))).episodes
    [spike] = await spikes(hub)
    evidence = spike["evidence"]
    assert (evidence["startedAt"], evidence["endedAt"]) == (whole.started_at.isoformat(), whole.ended_at.isoformat())
    assert (evidence["cause"], evidence["peakC"]) == (whole.cause, whole.peak_c)
    assert evidence["durationMinutes"] == round(whole.duration_minutes, 1)
    assert evidence["degreeMinutes"] == round(whole.degree_minutes_above(20.0), 1)


async def test_goods_that_arrived_after_an_excursion_ended_are_not_exposed_when_a_late_batch_reveals_it(cold, hub):
    start = minutes_ago(200)
    story = readings([18.0] * 4 + [28.0] * 6 + [18.0] * 30, start, every_minutes=5)  # hot from +20 to +45 minutes
    await cold.ingest([{"sensorId": cold.sensor, "readings": story[:4] + story[12:]}])  # the hot part buffered
    # given: lot L-NEW put on the shelf now, long after the excursion ended
    await cold.ship("freshco", "SALAD-1", "L-NEW", cold.lot_expires)
    receipt = {"sku": "SALAD-1", "kind": "receipt", "quantity": 3, "idempotencyKey": "rcv-new", "lotCode": "L-NEW",
               "expiresOn": cold.lot_expires.isoformat()}
    await hub.ok(RECORD_MOVEMENTS, {"movements": [receipt], "locationId": cold.shelf}, tenant="shopmart")

    # when: the buffered readings arrive
    await cold.ingest([{"sensorId": cold.sensor, "readings": story[4:12]}])

    # then: only the lot that was there is exposed and re-dated
    [spike] = await spikes(hub)
    assert [lot["lotCode"] for lot in spike["evidence"]["lots"]] == ["L-C3"]
    lots = {lot["lotCode"]: lot for lot in (await hub.ok(LOTS, tenant="freshco"))["lots"]["nodes"]}
    assert lots["L-NEW"]["effectiveExpiresOn"] == lots["L-NEW"]["expiresOn"]
    assert lots["L-C3"]["effectiveExpiresOn"] < lots["L-C3"]["expiresOn"]


async def test_a_late_reading_from_before_a_silence_does_not_say_the_silent_sensor_is_back(cold, hub):
    story = readings([18.0] * 5, minutes_ago(60), every_minutes=5)  # up to 40 minutes ago, then nothing
    await cold.ingest([{"sensorId": cold.sensor, "readings": story[:2] + story[3:]}])
    assert (await heartbeat.check(hub.state.database, hub.settings, utcnow())).raised == 1

    # when: a gateway delivers the one reading it had held back, from before the silence
    await cold.ingest([{"sensorId": cold.sensor, "readings": story[2:3]}])

    # then: the sensor is still silent: its alert stays open and nobody is told it is back, or told twice it is not
    [offline] = [a for a in (await hub.ok(ALERTS, tenant="shopmart"))["alerts"]["nodes"]
                 if a["kind"] == "sensor_offline"]
    assert offline["status"] == "open"
    assert await Event.find({"type": "sensor.online"}).count() == 0
    assert (await heartbeat.check(hub.state.database, hub.settings, utcnow())).raised == 0

    # and a reading taken now does
    await cold.ingest([{"sensorId": cold.sensor, "readings": readings([18.0], minutes_ago(0))}])
    [back] = [a for a in (await hub.ok(ALERTS, tenant="shopmart"))["alerts"]["nodes"] if a["kind"] == "sensor_offline"]
    assert back["status"] == "resolved" and await Event.find({"type": "sensor.online"}).count() == 1


async def test_readings_older_than_the_rejudge_bound_are_stored_but_not_judged(cold, hub):
    # a whole excursion, 26 hours old (LOTPULSE_SPIKE_REJUDGE_HOURS is 24)
    story = readings([18.0] * 4 + [28.0] * 6 + [18.0] * 4, minutes_ago(26 * 60), every_minutes=5)

    report = await cold.ingest([{"sensorId": cold.sensor, "readings": story}])

    assert (report["accepted"], report["late"], report["excursions"]) == (14, 14, [])
    assert await spikes(hub) == []


async def test_two_sensors_on_one_shelf_seeing_one_excursion_cost_its_goods_shelf_life_once(cold, hub):
    second = (await hub.ok(REGISTER_SENSOR, {"input": {"deviceId": "pallet-c3-b", "locationId": cold.shelf}},
                           tenant="shopmart"))["registerSensor"]["sensor"]["id"]
    start = minutes_ago(120)
    await cold.ingest([{"sensorId": cold.sensor, "readings": readings([18.0] * 4 + [28.0] * 6 + [18.0] * 4, start,
                                                                      every_minutes=5)}])
    # the second logger saw the same heat a little worse
    await cold.ingest([{"sensorId": second, "readings": readings([18.0] * 4 + [29.0] * 6 + [18.0] * 4, start,
                                                                 every_minutes=5)}])

    alerts = await spikes(hub)
    assert len(alerts) == 2  # each logger reports what it saw
    lots = [alert["evidence"]["lots"][0] for alert in alerts]
    assert {lot["expiresBefore"] for lot in lots} == {cold.lot_expires.isoformat()}  # neither compounds the other
    assert (await cold.lot_expiry())["effectiveExpiresOn"] == min(lot["expiresAfter"] for lot in lots)


async def test_a_sensor_moved_during_an_excursion_ends_it_where_it_was(cold, hub):
    c4 = (await hub.ok(CREATE_LOCATION, {"input": {"code": "C-4", "name": "Shelf C-4", "kind": "zone"}},
                       tenant="shopmart"))["createLocation"]["id"]
    start = minutes_ago(60)
    await cold.ingest([{"sensorId": cold.sensor, "readings": readings([18.0] * 4 + [28.0] * 6, start,
                                                                      every_minutes=5)}])
    [ongoing] = await spikes(hub)
    assert ongoing["evidence"]["endedAt"] is None

    # when: the logger is taken to shelf C-4 while it is still hot, and reports in range from there
    await hub.ok(REGISTER_SENSOR, {"input": {"deviceId": "pallet-c3", "locationId": c4}}, tenant="shopmart")
    await cold.ingest([{"sensorId": cold.sensor, "readings": readings([18.0] * 3, minutes_ago(3))}])

    # then: the excursion on C-3 ended with the last reading taken there, and its alert says so (not "ongoing")
    [ended] = await spikes(hub)
    assert ended["id"] == ongoing["id"] and ended["evidence"]["locationCode"] == "C-3"
    assert ended["evidence"]["endedAt"] == (start + timedelta(minutes=45)).isoformat()
    assert ended["evidence"]["durationMinutes"] == ongoing["evidence"]["durationMinutes"]
