"""A retailer's sensor watches the goods of several brands: each brand hears of the excursion, and of its own goods.

Shopmart shares ``sensors`` and ``alerts`` with two unrelated brands whose lots sit on the same shelf. The spike
alert and the excursion belong to Shopmart and name every lot it holds there; each brand is told about its own lots
only, on every surface: queries, the live stream, webhooks, EPCIS and the alert report. Neither brand learns the
other's lot codes, SKU codes, quantities, nor that the other is Shopmart's supplier.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from websockets.asyncio.client import connect

from hub.events import archive
from hub.services import exposure_views
from tests.conftest import Hub, hub_settings, start_hub
from tests.sensors.conftest import (
    CREATE_DISPATCH,
    CREATE_LOCATION,
    INGEST,
    RECORD_MOVEMENTS,
    REGISTER_SENSOR,
    UPSERT_SKU,
    minutes_ago,
    readings,
)

INVITE = "mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id } }"
ENDPOINT = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { endpoint { id } } }"
DELIVERIES = "{ webhookDeliveries(first: 50) { nodes { eventType body } } }"
ALERTS = "{ alerts(first: 10) { nodes { kind ownerId subjects { kind id label } evidence recommendation } } }"
EXCURSIONS = "{ excursions(first: 10) { nodes { ownerId exposedLots { lotCode skuCode ownerId units } } } }"
SUBSCRIBE = """subscription($after: ID) { alerts(after: $after) { type alert { kind subjects { kind label }
  evidence recommendation } } }"""
PERFORMANCE = "{ alertPerformance(filter: {by: PARTNER}) { groups { kind partnerId } } }"
SPIKE = [18.0] * 10 + [28.0] * 20 + [18.0] * 10


@pytest.fixture(scope="module")
async def hub(key_file, mongo_uri) -> AsyncIterator[Hub]:
    # Webhook endpoints on loopback (a closed port: the deliveries are stored with the body they would carry).
    async for running in start_hub(hub_settings(key_file, mongo_uri, webhook_allow_private=True)):
        yield running


@dataclass
class Shelf:
    shop: str
    brands: dict[str, str]  # tenant -> its lot code on the shelf
    cursors: dict[str, str | None]


async def shared_shelf(hub: Hub, suffix: str) -> Shelf:
    shop = f"shop-{suffix}"
    brands = {f"fresh-{suffix}": f"FRESH-{suffix}", f"crisp-{suffix}": f"CRISP-{suffix}"}
    await hub.tenant(shop, "retailer")
    expires = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    shelf = await hub.ok(CREATE_LOCATION, {"input": {"code": "C-3", "name": "Shelf", "kind": "zone"}}, tenant=shop)
    for brand, lot in brands.items():
        await hub.tenant(brand, "supplier")
        invited = await hub.ok(INVITE, {"input": {"partnerId": shop, "weShare": ["sku_master", "dispatches"],
                                                  "theyShare": ["sensors", "alerts", "stock", "dispatches"]}},
                               tenant=brand)
        await hub.ok(ACCEPT, {"id": invited["invitePartner"]["id"]}, tenant=shop)
        sku = {"code": f"SKU-{lot}", "name": lot, "shelfLifeDays": 10, "storage": {"tempMaxC": 20.0},
               "excursionSensitivity": 1.0, "excursionMinMinutes": 15}
        await hub.ok(UPSERT_SKU, {"input": sku}, tenant=brand)
        line = {"sku": f"SKU-{lot}", "lotCode": lot, "quantity": 3, "expiresOn": expires}
        await hub.ok(CREATE_DISPATCH, {"input": {"ref": f"ASN-{lot}", "consigneeId": shop, "toLocation": "C-3",
                                                 "lines": [line]}}, tenant=brand)
        booked = {"sku": f"SKU-{lot}", "kind": "receipt", "quantity": 3, "idempotencyKey": lot, "lotCode": lot,
                  "expiresOn": expires, "occurredAt": minutes_ago(24 * 60).isoformat()}  # on the shelf before
        await hub.ok(RECORD_MOVEMENTS, {"movements": [booked], "locationId": shelf["createLocation"]["id"]},
                     tenant=shop)
        await hub.ok(ENDPOINT, {"i": {"url": "http://127.0.0.1:9/hook", "eventTypes": ["sensor_spike.detected"]}},
                     tenant=brand)
    cursors = {brand: (await hub.ok("{ eventCursor }", tenant=brand))["eventCursor"] for brand in brands}
    probe = {"deviceId": "probe-c3", "locationId": shelf["createLocation"]["id"]}
    sensor = (await hub.ok(REGISTER_SENSOR, {"input": probe}, tenant=shop))["registerSensor"]["sensor"]["id"]
    batch = [{"sensorId": sensor, "readings": readings(SPIKE, minutes_ago(45))}]
    await hub.ok(INGEST, {"input": batch}, tenant=shop, roles=("integration",))
    return Shelf(shop, brands, cursors)


@pytest.fixture(scope="module")
async def shelf(hub: Hub) -> Shelf:
    return await shared_shelf(hub, "tp")


def others(shelf: Shelf, brand: str) -> list[str]:
    """What only the other brand (and the shop) may know: its lot code, SKU code and tenant id."""
    return [text for other, lot in shelf.brands.items() if other != brand for text in (lot, other)]


async def test_the_shop_sees_every_lot_its_sensor_exposed(hub, shelf):
    alerts = (await hub.ok(ALERTS, tenant=shelf.shop))["alerts"]["nodes"]
    excursions = (await hub.ok(EXCURSIONS, tenant=shelf.shop))["excursions"]["nodes"]

    [spike] = [a for a in alerts if a["kind"] == "sensor_spike"]
    assert sorted(lot["lotCode"] for lot in spike["evidence"]["lots"]) == sorted(shelf.brands.values())
    assert sorted(lot["lotCode"] for lot in excursions[0]["exposedLots"]) == sorted(shelf.brands.values())
    assert all(lot in spike["recommendation"] for lot in shelf.brands.values())


async def test_each_brand_is_told_of_the_excursion_and_of_its_own_lots_only(hub, shelf):
    for brand, lot in shelf.brands.items():
        alerts = (await hub.ok(ALERTS, tenant=brand))["alerts"]["nodes"]
        excursions = (await hub.ok(EXCURSIONS, tenant=brand))["excursions"]["nodes"]

        [spike] = [a for a in alerts if a["kind"] == "sensor_spike"]
        assert [item["lotCode"] for item in spike["evidence"]["lots"]] == [lot]
        assert spike["evidence"]["exposedUnits"] == 3
        assert [s["label"] for s in spike["subjects"] if s["kind"] == "lot"] == [lot]
        assert f"of lot {lot} exposed at C-3" in spike["recommendation"]
        assert [item["lotCode"] for item in excursions[0]["exposedLots"]] == [lot]
        answers = json.dumps([alerts, excursions])
        assert not [text for text in others(shelf, brand) if text in answers]


async def test_the_live_stream_tells_each_brand_of_its_own_lots_only(hub, shelf):
    for brand, lot in shelf.brands.items():
        async with connect(hub.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init",
                                      "payload": {"authorization": f"Bearer {hub.token(brand)}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": SUBSCRIBE, "variables": {"after": shelf.cursors[brand]}}}))
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 20))
                assert message["type"] == "next", message
                if message["payload"]["data"]["alerts"]["type"] == "sensor_spike.detected":
                    break
        alert = message["payload"]["data"]["alerts"]["alert"]
        assert [item["lotCode"] for item in alert["evidence"]["lots"]] == [lot]
        assert not [text for text in others(shelf, brand) if text in json.dumps(message)]


async def test_each_brands_webhook_carries_its_own_lots_only(hub, shelf):
    for brand, lot in shelf.brands.items():
        deadline = asyncio.get_running_loop().time() + 20
        while not (nodes := (await hub.ok(DELIVERIES, tenant=brand))["webhookDeliveries"]["nodes"]):
            assert asyncio.get_running_loop().time() < deadline, "no delivery was made"
            await asyncio.sleep(0.05)
        body = json.loads(nodes[0]["body"])
        assert [item["lotCode"] for item in body["data"]["alert"]["evidence"]["lots"]] == [lot]
        assert not [text for text in others(shelf, brand) if text in nodes[0]["body"]]


async def test_epcis_tells_each_brand_of_its_own_lots_only(hub, shelf):
    for brand, lot in shelf.brands.items():
        response = await hub.http.get("/epcis/events", params={"EQ_bizStep": "sensor_reporting"},
                                      headers={"authorization": f"Bearer {hub.token(brand)}"})
        [event] = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert [item["epcClass"].rpartition(":")[2] for item in event["quantityList"]] == [lot]
        assert not [text for text in others(shelf, brand) if text in response.text]


async def test_the_alert_report_does_not_name_the_other_brand(hub, shelf):
    for brand in shelf.brands:
        groups = (await hub.ok(PERFORMANCE, tenant=brand))["alertPerformance"]["groups"]
        assert {g["partnerId"] for g in groups if g["kind"] == "sensor_spike"} == {shelf.shop}


async def test_what_one_brand_did_with_the_alert_is_not_shown_to_the_other(hub, shelf):
    (fresh, _), (crisp, crisp_lot) = shelf.brands.items()
    [spike] = [a for a in (await hub.ok(ALERTS.replace("kind ", "id kind "), tenant=crisp))["alerts"]["nodes"]
               if a["kind"] == "sensor_spike"]
    await hub.ok("mutation($id: ID!, $note: String) { acknowledgeAlert(id: $id, note: $note) { status } }",
                 {"id": spike["id"], "note": f"pulling {crisp_lot} from the shelf"}, tenant=crisp)
    shown = "{ alerts(first: 10) { nodes { kind status acknowledgedBy note } } }"

    [as_fresh] = [a for a in (await hub.ok(shown, tenant=fresh))["alerts"]["nodes"] if a["kind"] == "sensor_spike"]
    [as_shop] = [a for a in (await hub.ok(shown, tenant=shelf.shop))["alerts"]["nodes"] if a["kind"] == "sensor_spike"]

    assert as_fresh == {"kind": "sensor_spike", "status": "acknowledged", "acknowledgedBy": None, "note": None}
    assert as_shop["acknowledgedBy"].startswith(f"{crisp}:") and crisp_lot in as_shop["note"]


def test_a_silent_sensor_alert_names_each_brand_its_own_lots_only():
    # The heartbeat's alert (raised after 30 silent minutes) has the spike's audience and lists the lots the same way.
    alert = {"kind": "sensor_offline", "ownerId": "shop", "audienceRule": "sharing", "recommendation": "Check it",
             "subjects": [{"kind": "sensor", "id": "s1"}, {"kind": "lot", "id": "l1", "label": "FRESH-1"},
                          {"kind": "lot", "id": "l2", "label": "CRISP-1"}],
             "evidence": {"lots": [{"lotId": "l1", "ownerId": "fresh", "lotCode": "FRESH-1", "units": 3},
                                   {"lotId": "l2", "ownerId": "crisp", "lotCode": "CRISP-1", "units": 4}]}}

    fresh, shop = exposure_views.alert_for(alert, "fresh"), exposure_views.alert_for(alert, "shop")

    assert [lot["lotCode"] for lot in fresh["evidence"]["lots"]] == ["FRESH-1"]
    assert [s["id"] for s in fresh["subjects"]] == ["s1", "l1"] and "CRISP" not in json.dumps(fresh)
    assert shop == alert


async def test_a_brand_cannot_find_the_alert_by_another_brands_lot(hub, shelf):
    by_subject = "query($id: ID) { alerts(filter: {subjectId: $id}) { nodes { kind } } }"
    shop_view = (await hub.ok(ALERTS, tenant=shelf.shop))["alerts"]["nodes"]
    lot_ids = {s["label"]: s["id"] for a in shop_view for s in a["subjects"] if s["kind"] == "lot"}
    for brand, lot in shelf.brands.items():
        [other] = [code for code in shelf.brands.values() if code != lot]

        own = (await hub.ok(by_subject, {"id": lot_ids[lot]}, tenant=brand))["alerts"]["nodes"]
        theirs = (await hub.ok(by_subject, {"id": lot_ids[other]}, tenant=brand))["alerts"]["nodes"]

        assert "sensor_spike" in [a["kind"] for a in own] and theirs == []


async def test_a_brands_event_export_holds_what_it_could_have_heard(hub, shelf, tmp_path):
    for brand, lot in shelf.brands.items():
        out = tmp_path / f"{brand}.jsonl.gz"
        since = datetime.now(UTC) - timedelta(days=1)
        deadline = asyncio.get_running_loop().time() + 20
        while True:  # until the sequencer has numbered the spike's event (only numbered events are exported)
            await archive.export(hub.state.database, since, out, tenant_id=brand)
            text = gzip.decompress(out.read_bytes()).decode()
            if "sensor_spike.detected" in text:
                break
            assert asyncio.get_running_loop().time() < deadline, text
            await asyncio.sleep(0.05)

        assert lot in text and not [other for other in others(shelf, brand) if other in text]
