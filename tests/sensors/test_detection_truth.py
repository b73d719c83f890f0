"""Detection on untidy data, over real HTTP: late and re-sent batches, silence, exposure, audiences, alerts kept true.

The cold chain of ``conftest``: FreshCo's salads (limit 20 °C) on Shopmart's shelf C-3, Shopmart sharing ``sensors``
and ``alerts`` with FreshCo; Rival has no partnership at all.
"""

from __future__ import annotations

from datetime import timedelta

from hub.dates import utcnow
from hub.models.alert import Alert
from hub.models.event import Event
from hub.services import heartbeat
from tests.sensors.conftest import (
    CREATE_LOCATION,
    RECORD_MOVEMENTS,
    REGISTER_SENSOR,
    UPSERT_SKU,
    minutes_ago,
    readings,
)

SPIKE_ALERTS = "query { alerts(first: 50) { nodes { id kind status recommendation evidence } } }"
INVITE = "mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id } }"


def five_minutely(temps: list[float], start, offset: int = 0) -> list[dict]:
    return readings(temps, start + timedelta(minutes=5 * offset), every_minutes=5)


async def alerts_of(hub, tenant: str, kind: str) -> list[dict]:
    nodes = (await hub.ok(SPIKE_ALERTS, tenant=tenant))["alerts"]["nodes"]
    return [n for n in nodes if n["kind"] == kind]


async def test_a_late_batch_that_holds_a_whole_excursion_raises_its_alert(cold, hub):
    start = minutes_ago(120)
    # given: the gateway uploads the hour around the excursion, but not the excursion itself
    before = await cold.ingest([{"sensorId": cold.sensor, "readings": five_minutely([18.0] * 4, start)}])
    after = await cold.ingest([{"sensorId": cold.sensor, "readings": five_minutely([18.0] * 8, start, 8)}])
    assert before["excursions"] == after["excursions"] == []

    # when: the buffered 20 minutes arrive last (four 5-minute samples above the limit)
    late = await cold.ingest([{"sensorId": cold.sensor, "readings": five_minutely([22.0] * 4, start, 4)}])

    # then: judged like timely data: one excursion, one alert, for the shelf's owner and the brand
    assert late["late"] == 0 and [(c["opened"], c["closed"]) for c in late["excursions"]] == [(True, True)]
    [spike] = await alerts_of(hub, "freshco", "sensor_spike")
    assert spike["evidence"]["durationMinutes"] == 20 and spike["evidence"]["startedAt"] == (
        start + timedelta(minutes=20)).isoformat()
    assert await alerts_of(hub, "rival", "sensor_spike") == []


async def test_a_late_batch_arriving_after_a_later_one_extends_the_same_excursion_and_updates_its_alert(cold, hub):
    start = minutes_ago(150)
    first = await cold.ingest([{"sensorId": cold.sensor, "readings": five_minutely([18.0] * 4 + [22.0] * 3, start)}])
    later = await cold.ingest([{"sensorId": cold.sensor, "readings": five_minutely([18.0] * 8, start, 10)}])
    [spike] = await alerts_of(hub, "shopmart", "sensor_spike")
    assert spike["evidence"]["durationMinutes"] == 15 and spike["evidence"]["endedAt"] is not None

    # when: the readings between them arrive last, still hot
    middle = await cold.ingest([{"sensorId": cold.sensor, "readings": five_minutely([22.0] * 3, start, 7)}])

    # then: the same excursion and the same alert, now 30 minutes long; the change was announced as an update
    ids = {c["excursionId"] for c in first["excursions"] + later["excursions"] + middle["excursions"]}
    assert len(ids) == 1
    [updated] = await alerts_of(hub, "shopmart", "sensor_spike")
    assert updated["id"] == spike["id"] and updated["evidence"]["durationMinutes"] == 30
    assert await Event.find({"type": "sensor_spike.detected"}).count() == 1
    events = await Event.find({"type": "alert.updated", "payload.alert.id": spike["id"]}).to_list()
    assert events and events[-1].payload["alert"]["evidence"]["durationMinutes"] == 30
    assert "freshco" in events[-1].audience and "rival" not in events[-1].audience


async def test_a_one_reading_dip_and_a_batch_boundary_inside_an_excursion_make_one_alert(cold, hub):
    start = minutes_ago(120)
    temps = [18.0] * 4 + [22.0] * 3 + [18.0] + [22.0] * 3 + [18.0] * 6
    for offset in range(0, len(temps), 3):  # a gateway flushing every 15 minutes
        await cold.ingest([{"sensorId": cold.sensor, "readings": five_minutely(temps[offset:offset + 3], start,
                                                                                offset)}])

    [spike] = await alerts_of(hub, "shopmart", "sensor_spike")
    assert spike["evidence"]["durationMinutes"] == 35
    assert await Alert.find({"kind": "sensor_spike"}).count() == 1


async def test_a_re_sent_batch_changes_nothing(cold, hub):
    batch = [{"sensorId": cold.sensor, "readings": five_minutely([18.0] * 4 + [22.0] * 4 + [18.0] * 4,
                                                                 minutes_ago(90))}]
    first = await cold.ingest(batch)
    events = await Event.find({}).count()

    again = await cold.ingest(batch)

    assert len(first["excursions"]) == 1
    assert again["accepted"] == 0 and again["duplicates"] == 12 and again["excursions"] == []
    assert await Event.find({}).count() == events
    assert len(await alerts_of(hub, "shopmart", "sensor_spike")) == 1


async def test_a_silent_sensor_raises_sensor_offline_to_the_spike_audience_and_recovers_when_readings_resume(
    cold, hub
):
    await cold.ingest_temps([18.0] * 5, minutes_ago(10))
    database, settings = hub.state.database, hub.settings

    # within the allowed silence: nothing; past it, with goods on the shelf: one alert, raised once
    assert (await heartbeat.check(database, settings, utcnow() + timedelta(minutes=20))).raised == 0
    assert (await heartbeat.check(database, settings, utcnow() + timedelta(minutes=60))).raised == 1
    assert (await heartbeat.check(database, settings, utcnow() + timedelta(minutes=90))).raised == 0
    [offline] = await alerts_of(hub, "freshco", "sensor_offline")
    assert offline["status"] == "open" and offline["evidence"]["deviceId"] == "pallet-c3"
    assert offline["evidence"]["lots"][0]["units"] == 3
    assert await alerts_of(hub, "rival", "sensor_offline") == []

    # the sensor speaks again: the alert resolves itself
    await cold.ingest_temps([18.0], minutes_ago(0))
    [recovered] = await alerts_of(hub, "shopmart", "sensor_offline")
    assert recovered["id"] == offline["id"] and recovered["status"] == "resolved"
    assert await Event.find({"type": "alert.resolved", "payload.alert.id": offline["id"]}).count() == 1


async def test_a_sensor_that_never_reported_or_watches_no_goods_raises_no_sensor_offline(cold, hub):
    database, settings = hub.state.database, hub.settings
    assert (await heartbeat.check(database, settings, utcnow() + timedelta(hours=5))).silent == 0  # never reported
    empty = await hub.ok(CREATE_LOCATION, {"input": {"code": "EMPTY", "name": "Empty", "kind": "zone"}},
                         tenant="shopmart")
    probe = {"deviceId": "empty-probe", "locationId": empty["createLocation"]["id"]}
    sensor = (await hub.ok(REGISTER_SENSOR, {"input": probe}, tenant="shopmart"))["registerSensor"]["sensor"]["id"]
    await cold.ingest([{"sensorId": sensor, "readings": readings([18.0], minutes_ago(1))}])

    report = await heartbeat.check(database, settings, utcnow() + timedelta(hours=5))

    assert (report.silent, report.raised) == (1, 0)  # silent, but no goods depend on it
    assert await Alert.find({"kind": "sensor_offline"}).count() == 0


async def test_a_spike_alert_says_how_many_cases_and_units_are_exposed(cold, hub):
    sku = {"code": "SALAD-1", "name": "Mixed salad 200 g", "shelfLifeDays": 10, "packSize": 12,
           "storage": {"tempMaxC": 20.0}, "excursionSensitivity": 1.0, "excursionMinMinutes": 15}
    await hub.ok(UPSERT_SKU, {"input": sku}, tenant="freshco")
    more = {"sku": "SALAD-1", "kind": "receipt", "quantity": 33, "idempotencyKey": "rcv-2", "lotCode": "L-C3"}
    await hub.ok(RECORD_MOVEMENTS, {"movements": [more], "locationId": cold.shelf}, tenant="shopmart")

    await cold.ingest_temps([18.0] * 10 + [28.0] * 20 + [18.0] * 10, minutes_ago(45))

    [spike] = await alerts_of(hub, "freshco", "sensor_spike")
    [lot] = spike["evidence"]["lots"]
    assert (lot["units"], lot["cases"], lot["packSize"]) == (36, 3, 12)
    assert spike["recommendation"].startswith("3 cases (36 units) of lot L-C3 exposed at C-3: dispatch")


async def test_a_brand_sharing_sensors_but_not_alerts_is_not_told_of_the_spike(cold, hub):
    # given: CrispCo's goods on the same shelf; Shopmart shares only `sensors` with CrispCo
    await hub.tenant("crispco", "supplier")
    invite = {"partnerId": "shopmart", "weShare": ["sku_master"], "theyShare": ["sensors", "dispatches"]}
    proposed = await hub.ok(INVITE, {"input": invite}, tenant="crispco")
    await hub.ok(ACCEPT, {"id": proposed["invitePartner"]["id"]}, tenant="shopmart")
    sku = {"code": "HERBS-1", "name": "Herbs", "shelfLifeDays": 10, "storage": {"tempMaxC": 20.0}}
    await hub.ok(UPSERT_SKU, {"input": sku}, tenant="crispco")
    await cold.ship("crispco", "HERBS-1", "H-1", cold.lot_expires, quantity=5)
    receipt = {"sku": "HERBS-1", "kind": "receipt", "quantity": 5, "idempotencyKey": "rcv-h",
               "lotCode": "H-1", "expiresOn": cold.lot_expires.isoformat(),
               "occurredAt": (utcnow() - timedelta(days=1)).isoformat()}  # on the shelf before the spike
    received = await hub.gql(RECORD_MOVEMENTS, {"movements": [receipt], "locationId": cold.shelf}, tenant="shopmart")
    assert "errors" not in received, received

    await cold.ingest_temps([18.0] * 10 + [28.0] * 20 + [18.0] * 10, minutes_ago(45))

    [spike] = await Alert.find({"kind": "sensor_spike"}).to_list()
    assert set(spike.audience) == {"shopmart", "freshco"}  # not CrispCo (no `alerts`), not Rival
    assert {lot["lotCode"] for lot in spike.evidence["lots"]} == {"L-C3", "H-1"}


async def test_sensors_back_from_an_outage_in_one_call_all_resolve_and_say_they_are_online(cold, hub):
    # given: two sensors on the shelf, both silent past their allowed silence (a gateway outage)
    second = (await hub.ok(REGISTER_SENSOR, {"input": {"deviceId": "pallet-c3-b", "locationId": cold.shelf}},
                           tenant="shopmart"))["registerSensor"]["sensor"]["id"]
    await cold.ingest([{"sensorId": sensor, "readings": readings([18.0] * 3, minutes_ago(10))}
                       for sensor in (cold.sensor, second)])
    assert (await heartbeat.check(hub.state.database, hub.settings, utcnow() + timedelta(minutes=60))).raised == 2
    offline = {a["evidence"]["deviceId"]: a for a in await alerts_of(hub, "shopmart", "sensor_offline")}
    assert set(offline) == {"pallet-c3", "pallet-c3-b"}

    # when: the gateway sends both sensors' readings in one call
    await cold.ingest([{"sensorId": sensor, "readings": readings([18.0], minutes_ago(0))}
                       for sensor in (cold.sensor, second)])

    # then: both alerts resolved, each announced once, and both sensors online to the owner and the goods' owner only
    for alert in await alerts_of(hub, "shopmart", "sensor_offline"):
        assert alert["status"] == "resolved"
        assert await Event.find({"type": "alert.resolved", "payload.alert.id": alert["id"]}).count() == 1
    online = await Event.find({"type": "sensor.online"}).to_list()
    assert sorted(event.payload["sensor"]["deviceId"] for event in online) == ["pallet-c3", "pallet-c3-b"]
    assert all(event.tenant_id == "shopmart" and "freshco" in event.audience and "rival" not in event.audience
               for event in online)
    assert await alerts_of(hub, "rival", "sensor_offline") == []
