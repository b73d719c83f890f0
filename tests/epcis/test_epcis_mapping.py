"""Captured events become the hub's domain objects, and the hub's own records come back as EPCIS events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from hub.models.pallet import Pallet
from tests.epcis.conftest import Chain, document
from tests.epcis.test_epcis_capture import reference_valid

DISPATCHES = """
query { dispatches(first: 10) { nodes { id ref status hasMismatch consigneeId toLocationId
  lines { lotCode quantity received producedOn expiresOn } } } }
"""
LOTS = "query { lots(first: 10) { nodes { lotCode producedOn expiresOn status } } }"
ALERTS = "query { alerts(first: 10) { nodes { kind evidence } } }"
CREATE_DISPATCH = "mutation($input: CreateDispatchInput!) { createDispatch(input: $input) { id ref } }"
REGISTER_SENSOR = "mutation($input: RegisterSensorInput!) { registerSensor(input: $input) { sensor { id } } }"
SENSORS = "query { sensors(first: 10) { nodes { id readingsCount } } }"
UPSERT_SKU = "mutation($input: SkuInput!) { upsertSku(input: $input) { sku { id } } }"
RECORD_MOVEMENTS = """
mutation($movements: [MovementInput!]!, $locationId: ID) {
  recordMovements(movements: $movements, locationId: $locationId) { accepted }
}
"""


def commissioning(chain: Chain, lot: str, quantity: int) -> dict[str, Any]:
    return {"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning", "disposition": "active",
            "eventTime": "2030-03-15T08:00:00+01:00", "eventTimeZoneOffset": "+01:00",
            "quantityList": [{"epcClass": chain.lgtin(lot), "quantity": quantity}],
            "bizLocation": {"id": chain.sgln("00011")},
            "ilmd": {"cbvmda:lotNumber": lot, "cbvmda:productionDate": "2030-03-15",
                     "cbvmda:itemExpirationDate": "2030-04-14"}}


def shipping(chain: Chain, lot: str, quantity: int, asn: str = "ASN-77") -> dict[str, Any]:
    return {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit",
            "eventTime": "2030-03-16T09:30:00Z", "eventTimeZoneOffset": "+00:00",
            "quantityList": [{"epcClass": chain.lgtin(lot), "quantity": quantity}],
            "bizLocation": {"id": chain.sgln("00011")},
            "bizTransactionList": [{"type": "desadv",
                                    "bizTransaction": f"urn:epcglobal:cbv:bt:{chain.gln('00001')}:{asn}"}],
            "sourceList": [{"type": "owning_party", "source": chain.pgln("00001")}],
            "destinationList": [{"type": "owning_party", "destination": chain.pgln("00002")},
                                {"type": "location", "destination": chain.sgln("00012")}]}


def receiving(chain: Chain, lot: str, quantity: int, asn: str = "ASN-77") -> dict[str, Any]:
    return {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "receiving",
            "disposition": "sellable_not_accessible", "eventTime": "2030-03-17T07:00:00Z",
            "eventTimeZoneOffset": "+00:00", "quantityList": [{"epcClass": chain.lgtin(lot), "quantity": quantity}],
            "bizLocation": {"id": chain.sgln("00012")},
            "bizTransactionList": [{"type": "desadv",
                                    "bizTransaction": f"urn:epcglobal:cbv:bt:{chain.gln('00001')}:{asn}"}]}


async def test_shipping_and_receiving_events_become_a_dispatch_and_a_reconciled_receipt(chain: Chain) -> None:
    # given: Acme commissions lot B240315 (ILMD dates) and ships 60 to Shopco's DC
    job = await chain.captured(document(commissioning(chain, "B240315", 100), shipping(chain, "B240315", 60)))
    kinds = [[m["kind"] for m in outcome["mapped"]] for outcome in job["outcomes"]]
    assert kinds == [["lot"], ["dispatch"]], job["outcomes"]
    lots = (await chain.hub.ok(LOTS, tenant=chain.acme))["lots"]["nodes"]
    assert lots == [{"lotCode": "B240315", "producedOn": "2030-03-15", "expiresOn": "2030-04-14",
                     "status": "released"}]
    [dispatch] = (await chain.hub.ok(DISPATCHES, tenant=chain.shopco))["dispatches"]["nodes"]
    assert (dispatch["ref"], dispatch["consigneeId"], dispatch["toLocationId"]) == ("ASN-77", chain.shopco,
                                                                                    chain.shop_dc)
    assert dispatch["lines"] == [{"lotCode": "B240315", "quantity": 60, "received": 0, "producedOn": "2030-03-15",
                                  "expiresOn": "2030-04-14"}]
    # capturing the same document again changes nothing
    again = await chain.captured(document(commissioning(chain, "B240315", 100), shipping(chain, "B240315", 60)))
    assert again["duplicateEvents"] == 2
    assert len((await chain.hub.ok(DISPATCHES, tenant=chain.acme))["dispatches"]["nodes"]) == 1

    # when: Shopco receives 60 of B240314 (the near miss) against ASN-77
    received = await chain.captured(document(receiving(chain, "B240314", 60)), tenant=chain.shopco)
    assert [m["kind"] for m in received["outcomes"][0]["mapped"]] == ["receipt", "dispatch"], received

    # then: the same reconciliation as recordReceipt: a mismatch with the near miss, the dispatch flagged
    [dispatch] = (await chain.hub.ok(DISPATCHES, tenant=chain.shopco))["dispatches"]["nodes"]
    assert (dispatch["status"], dispatch["hasMismatch"]) == ("received_with_mismatch", True)
    alerts = (await chain.hub.ok(ALERTS, tenant=chain.acme))["alerts"]["nodes"]
    assert [a["kind"] for a in alerts] == ["mismatch"]
    assert "B240314" in str(alerts[0]["evidence"])

    # and: both parties query the shipment's events, a stranger none of them
    shipment = {"EQ_bizStep": "shipping,receiving", "MATCH_epcClass": f"urn:epc:idpat:sgtin:{chain.gtin[1:8]}."
                                                                      f"{chain.gtin[0]}{chain.gtin[8:13]}.*"}
    captured = {e["eventID"] for e in await chain.event_list(chain.acme, EQ_bizStep="shipping")}
    captured |= {e["eventID"] for e in await chain.event_list(chain.shopco, EQ_bizStep="receiving")
                 if e.get("bizTransactionList")}
    assert len(captured) == 2
    for tenant in (chain.acme, chain.shopco):
        events = [e for e in await chain.event_list(tenant, **shipment) if e.get("bizTransactionList")]
        # the captured events only: the dispatch and receipt they made are not exported a second time
        assert {e["eventID"] for e in events} == captured, (tenant, events)
    assert await chain.event_list(chain.rival, **shipment) == []


async def test_a_shipping_event_to_a_stranger_is_stored_but_makes_no_dispatch(chain: Chain) -> None:
    event = shipping(chain, "B1", 5)
    event["destinationList"] = [{"type": "owning_party", "destination": chain.pgln("00003")}]  # Rival: no consent
    job = await chain.captured(document(commissioning(chain, "B1", 5), event))
    assert "names no partner that takes your dispatches" in job["outcomes"][1]["note"]
    assert (await chain.hub.ok(DISPATCHES, tenant=chain.acme))["dispatches"]["nodes"] == []
    assert len(await chain.event_list(EQ_bizStep="shipping")) == 1


async def test_instances_take_the_lot_their_commissioning_event_gave_them(chain: Chain) -> None:
    serials = [chain.sgtin(f"700{n}") for n in range(3)]
    commission = {"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
                  "eventTime": "2030-03-15T08:00:00Z", "eventTimeZoneOffset": "+00:00", "epcList": serials,
                  "ilmd": {"cbvmda:lotNumber": "L-SER", "cbvmda:itemExpirationDate": "2030-05-01"}}
    ship = shipping(chain, "unused", 1, asn="ASN-SER")
    del ship["quantityList"]
    ship["epcList"] = serials[:2]
    job = await chain.captured(document(commission, ship))
    assert [m["kind"] for m in job["outcomes"][1]["mapped"]] == ["dispatch"], job["outcomes"]
    [dispatch] = (await chain.hub.ok(DISPATCHES, tenant=chain.acme))["dispatches"]["nodes"]
    assert [(line["lotCode"], line["quantity"]) for line in dispatch["lines"]] == [("L-SER", 2)]


async def test_sensor_reports_become_readings_and_the_excursion_comes_back_as_an_alarm(chain: Chain) -> None:
    # given: chilled yogurt of Acme's in its warehouse, watched by a logger named by a GIAI
    cold = {"code": "YOG-1", "name": "Yogurt", "gtin": chain.gtin, "shelfLifeDays": 30,
            "storage": {"tempMaxC": 8.0}, "excursionMinMinutes": 15}
    await chain.hub.ok(UPSERT_SKU, {"input": cold}, tenant=chain.acme)
    expires = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
    stock = {"sku": "YOG-1", "kind": "receipt", "quantity": 40, "idempotencyKey": "in-1", "lotCode": "B9",
             "expiresOn": expires}
    await chain.hub.ok(RECORD_MOVEMENTS, {"movements": [stock], "locationId": chain.acme_wh}, tenant=chain.acme)
    device = f"urn:epc:id:giai:{chain.prefix}.T1"
    sensor = (await chain.hub.ok(REGISTER_SENSOR, {"input": {"deviceId": device, "locationId": chain.acme_wh}},
                                 tenant=chain.acme))["registerSensor"]["sensor"]["id"]
    # when: the logger reports 40 minutes at 12 °C as an EPCIS sensor event
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=45)
    elements = [{"sensorMetadata": {"time": (start + timedelta(minutes=n)).isoformat(), "deviceID": device},
                 "sensorReport": [{"type": "Temperature", "value": 12.0, "uom": "CEL"},
                                  {"type": "RelativeHumidity", "value": 40.0, "uom": "A93"}]} for n in range(40)]
    event = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "sensor_reporting",
             "eventTime": (start + timedelta(minutes=40)).isoformat(), "eventTimeZoneOffset": "+00:00",
             "epcList": [chain.sgtin("LOGGED")], "readPoint": {"id": chain.sgln("00011")},
             "sensorElementList": elements}
    job = await chain.captured(document(event))
    assert job["outcomes"][0]["mapped"][0]["kind"] == "sensor", job["outcomes"]
    # then: the readings are the sensor's, the spike rules raised an excursion, exported as the standard's alarm
    nodes = (await chain.hub.ok(SENSORS, tenant=chain.acme))["sensors"]["nodes"]
    assert [n["readingsCount"] for n in nodes if n["id"] == sensor] == [40]
    exported = [e for e in await chain.event_list(EQ_bizStep="sensor_reporting") if "urn:lotpulse" in str(e)]
    assert len(exported) == 1, exported
    [element] = exported[0]["sensorElementList"]
    [report] = element["sensorReport"]
    assert (report["exception"], report["maxValue"], report["uom"]) == ("ALARM_CONDITION", 12.0, "CEL")
    assert element["sensorMetadata"]["startTime"]
    assert exported[0]["lotpulse:limitC"] == 8.0
    assert exported[0]["quantityList"] == [{"epcClass": f"https://id.gs1.org/01/{chain.gtin}/10/B9", "quantity": 40}]
    assert reference_valid(exported[0])
    assert await chain.event_list(chain.rival, EQ_bizStep="sensor_reporting") == []


async def test_the_hubs_own_dispatches_and_movements_are_queryable_as_epcis_events(chain: Chain) -> None:
    line = {"sku": "YOG-1", "lotCode": "B77", "quantity": 12, "expiresOn": "2030-06-01"}
    await chain.hub.ok(CREATE_DISPATCH, {"input": {"ref": "ASN-GQL", "consigneeId": chain.shopco,
                                                   "toLocation": "DC-1", "lines": [line]}}, tenant=chain.acme)
    stock = {"sku": "YOG-1", "kind": "receipt", "quantity": 5, "idempotencyKey": "m-1", "lotCode": "B77"}
    await chain.hub.ok(RECORD_MOVEMENTS, {"movements": [stock], "locationId": chain.acme_wh}, tenant=chain.acme)
    lgtin = chain.lgtin("B77")
    for tenant in (chain.acme, chain.shopco):
        [shipped] = await chain.event_list(tenant, EQ_bizStep="shipping", MATCH_epcClass=lgtin)
        assert shipped["bizTransactionList"] == [{"type": "desadv",
                                                  "bizTransaction": f"urn:lotpulse:dispatch:{chain.acme}:ASN-GQL"}]
        assert shipped["quantityList"] == [{"epcClass": f"https://id.gs1.org/01/{chain.gtin}/10/B77", "quantity": 12}]
        assert shipped["destinationList"][0]["destination"] == f"https://id.gs1.org/417/{chain.gln('00002')}"
        assert reference_valid(shipped)
    [booked] = await chain.event_list(EQ_bizStep="receiving", EQ_bizLocation=chain.sgln("00011"))
    assert booked["quantityList"][0]["quantity"] == 5
    assert await chain.event_list(chain.shopco, EQ_bizStep="receiving") == []  # Acme's ledger is its own
    assert await chain.event_list(chain.rival, MATCH_epcClass=lgtin) == []
    # the export's ids are stable: the same event is answered with the same id every time
    first = await chain.event_list(EQ_bizStep="shipping")
    assert [e["eventID"] for e in first] == [e["eventID"] for e in await chain.event_list(EQ_bizStep="shipping")]


async def test_aggregation_events_keep_the_pallet_contents(chain: Chain) -> None:
    sscc = f"urn:epc:id:sscc:{chain.prefix}.0000000017"
    pack = {"type": "AggregationEvent", "action": "ADD", "bizStep": "packing", "eventTime": "2030-03-16T08:00:00Z",
            "eventTimeZoneOffset": "+00:00", "parentID": sscc, "childEPCs": [chain.sgtin("1"), chain.sgtin("2")],
            "childQuantityList": [{"epcClass": chain.lgtin("B1"), "quantity": 10}]}
    unpack = {**pack, "action": "DELETE", "bizStep": "unpacking", "eventTime": "2030-03-17T08:00:00Z",
              "childEPCs": [chain.sgtin("1")], "childQuantityList": []}
    await chain.captured(document(pack))
    job = await chain.captured(document(unpack))
    pallet_id = job["outcomes"][0]["mapped"][0]["id"]
    pallet = await Pallet.get_pymongo_collection().find_one({"_id": ObjectId(pallet_id)})
    assert pallet is not None and pallet["tenant_id"] == chain.acme
    assert sorted((c["epc"], c.get("quantity")) for c in pallet["contents"]) == [
        (f"https://id.gs1.org/01/{chain.gtin}/10/B1", 10), (f"https://id.gs1.org/01/{chain.gtin}/21/2", None)]
