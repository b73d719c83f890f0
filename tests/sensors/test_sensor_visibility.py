"""Who sees sensors, readings and excursions: the owner, and partners granted ``sensors`` whose goods are there."""

from __future__ import annotations

from hub.models.event import Event
from hub.services import expiry
from tests.sensors.conftest import (
    CREATE_LOCATION,
    RECORD_MOVEMENTS,
    REGISTER_SENSOR,
    UPSERT_SKU,
    minutes_ago,
    readings,
)

SENSORS = "query { sensors(first: 10) { nodes { id deviceId ownerId } } }"
SERIES = """
query($id: ID!, $from: DateTime!) { sensorReadings(sensorId: $id, from: $from) { points { temperatureC } } }
"""
EXCURSIONS = "query { excursions(first: 10) { nodes { id exposedLots { lotCode } } } }"
REVOKE = "mutation($id: ID!) { revokePartnership(id: $id) { status } }"
PARTNERS = "query { partners { nodes { id } } }"
STORY = [18.0] * 10 + [28.0] * 20 + [18.0] * 10


async def test_the_brand_with_sensors_scope_sees_the_sensor_readings_and_excursions_holding_its_goods(cold, hub):
    start = minutes_ago(45)
    await cold.ingest_temps(STORY, start)

    sensors = (await hub.ok(SENSORS, tenant="freshco"))["sensors"]["nodes"]
    series = await hub.ok(SERIES, {"id": cold.sensor, "from": start.isoformat()}, tenant="freshco")
    excursions = (await hub.ok(EXCURSIONS, tenant="freshco"))["excursions"]["nodes"]

    assert [(s["deviceId"], s["ownerId"]) for s in sensors] == [("pallet-c3", "shopmart")]
    assert len(series["sensorReadings"]["points"]) == 40
    assert [e["exposedLots"][0]["lotCode"] for e in excursions] == ["L-C3"]


async def test_a_tenant_without_a_partnership_sees_nothing_and_learns_nothing(cold, hub):
    start = minutes_ago(45)
    await cold.ingest_temps(STORY, start)

    assert (await hub.ok(SENSORS, tenant="rival"))["sensors"]["nodes"] == []
    assert (await hub.ok(EXCURSIONS, tenant="rival"))["excursions"]["nodes"] == []
    body = await hub.gql(SERIES, {"id": cold.sensor, "from": start.isoformat()}, tenant="rival")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_partner_cannot_ingest_into_or_register_at_anothers_sensor_and_location(cold, hub):
    hot = [{"sensorId": cold.sensor, "readings": readings([99.0], minutes_ago(1))}]
    report = await cold.ingest(hot, tenant="freshco")
    registered = await hub.gql(
        REGISTER_SENSOR, {"input": {"deviceId": "sneaky", "locationId": cold.shelf}}, tenant="freshco"
    )

    assert report["accepted"] == 0 and report["rejected"][0]["reason"] == "unknown sensor"
    assert registered["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await hub.ok(SENSORS, tenant="shopmart"))["sensors"]["nodes"][0]["deviceId"] == "pallet-c3"


async def test_the_brand_does_not_see_a_sensor_where_none_of_its_goods_are(cold, hub):
    shelf = {"code": "C-9", "name": "Empty", "kind": "zone"}
    empty = await hub.ok(CREATE_LOCATION, {"input": shelf}, tenant="shopmart")
    await hub.ok(REGISTER_SENSOR, {"input": {"deviceId": "shelf-c9", "locationId": empty["createLocation"]["id"]}},
                 tenant="shopmart")
    await cold.ingest([{"deviceId": "shelf-c9", "readings": readings([5.0], minutes_ago(1))}])

    devices = [s["deviceId"] for s in (await hub.ok(SENSORS, tenant="freshco"))["sensors"]["nodes"]]

    assert devices == ["pallet-c3"]


async def test_revoking_the_partnership_cuts_the_brand_off_at_once(cold, hub):
    start = minutes_ago(45)
    await cold.ingest_temps(STORY, start)
    [partnership] = (await hub.ok(PARTNERS, tenant="shopmart"))["partners"]["nodes"]

    await hub.ok(REVOKE, {"id": partnership["id"]}, tenant="shopmart")

    assert (await hub.ok(SENSORS, tenant="freshco"))["sensors"]["nodes"] == []
    assert (await hub.ok(EXCURSIONS, tenant="freshco"))["excursions"]["nodes"] == []
    body = await hub.gql(SERIES, {"id": cold.sensor, "from": start.isoformat()}, tenant="freshco")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_brand_not_granted_sensors_is_neither_told_of_the_spike_nor_shown_the_sensor(cold, hub):
    # given: GreenLeaf's herbs share shelf C-3, but Shopmart shares no sensors with GreenLeaf
    await hub.tenant("greenleaf", "supplier")
    await cold.partner("greenleaf", "shopmart", ["sku_master"], ["alerts", "dispatches"])
    herbs = {"code": "HERB-1", "name": "Basil", "shelfLifeDays": 7, "storage": {"tempMaxC": 15.0},
             "excursionSensitivity": 0.8}
    await hub.ok(UPSERT_SKU, {"input": herbs}, tenant="greenleaf")
    await cold.ship("greenleaf", "HERB-1", "H-1", cold.lot_expires)
    receipt = {"sku": "HERB-1", "kind": "receipt", "quantity": 5, "idempotencyKey": "rcv-herbs", "lotCode": "H-1",
               "expiresOn": cold.lot_expires.isoformat()}
    await hub.ok(RECORD_MOVEMENTS, {"movements": [receipt], "locationId": cold.shelf}, tenant="shopmart")

    # when
    await cold.ingest_temps(STORY, minutes_ago(45))

    # then: both lots were exposed, only FreshCo hears of it and sees the sensor
    [excursion] = (await hub.ok(EXCURSIONS, tenant="shopmart"))["excursions"]["nodes"]
    assert sorted(lot["lotCode"] for lot in excursion["exposedLots"]) == ["H-1", "L-C3"]
    [event] = await Event.find({"type": "sensor_spike.detected"}).to_list()
    assert "freshco" in event.audience and "greenleaf" not in event.audience
    assert (await hub.ok(SENSORS, tenant="greenleaf"))["sensors"]["nodes"] == []
    assert (await hub.ok(EXCURSIONS, tenant="greenleaf"))["excursions"]["nodes"] == []


async def test_the_brand_stops_seeing_a_silent_sensor_once_its_goods_have_left(cold, hub):
    sold = {"sku": "SALAD-1", "kind": "sale", "quantity": -3, "idempotencyKey": "sold-out", "lotCode": "L-C3"}
    await hub.ok(RECORD_MOVEMENTS, {"movements": [sold], "locationId": cold.shelf}, tenant="shopmart")
    before = (await hub.ok(SENSORS, tenant="freshco"))["sensors"]["nodes"]

    report = await expiry.sweep(hub.state.database)

    assert len(before) == 1  # the sensor has not reported since: nothing has re-derived its goods yet
    assert report.sensors_refreshed == 1
    assert (await hub.ok(SENSORS, tenant="freshco"))["sensors"]["nodes"] == []
