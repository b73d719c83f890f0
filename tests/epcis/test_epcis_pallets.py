"""A pallet packed through EPCIS ships by its SSCC alone: its aggregation events say what goes on the dispatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub import epc
from hub.models.dispatch import Dispatch
from tests.epcis.conftest import Chain, document, with_check
from tests.sensors.conftest import minutes_ago, readings

CREATE_DISPATCH = """
mutation($input: CreateDispatchInput!) {
  createDispatch(input: $input) { id lines { lotCode quantity sscc inSscc } }
}
"""
PALLET = """
query($sscc: String!) { pallet(sscc: $sscc) { sscc contents { epc quantity effectiveExpiresOn } lines { lotCode } } }
"""
UPSERT_SKU = "mutation($input: SkuInput!) { upsertSku(input: $input) { sku { id } } }"
CREATE_LOCATION = "mutation($input: CreateLocationInput!) { createLocation(input: $input) { id } }"
RECORD_MOVEMENTS = """
mutation($movements: [MovementInput!]!, $locationId: ID) {
  recordMovements(movements: $movements, locationId: $locationId) { accepted }
}
"""
REGISTER_SENSOR = "mutation($input: RegisterSensorInput!) { registerSensor(input: $input) { sensor { id } } }"
INGEST = "mutation($input: [SensorReadingsInput!]!) { ingestReadings(input: $input) { accepted } }"
EXCURSIONS = """
query {
  excursions(first: 10) {
    nodes { exposureBasis exposedLots { units cases totalUnits totalCases ssccs expiresAfter } }
  }
}
"""
ALERTS = "query { alerts(first: 50) { nodes { kind recommendation } } }"
LOTS = "query { lots(first: 50) { nodes { lotCode effectiveExpiresOn } } }"
SPIKE = [18.0] * 10 + [28.0] * 20 + [18.0] * 10


def _packing(parent: str, children: list[str], quantities: list[dict]) -> dict:
    return {"type": "AggregationEvent", "action": "ADD", "bizStep": "packing", "eventTime": "2030-03-16T08:00:00Z",
            "eventTimeZoneOffset": "+00:00", "parentID": parent, "childEPCs": children,
            "childQuantityList": quantities}


async def test_a_pallet_packed_through_epcis_ships_by_its_sscc_with_its_contents(chain: Chain) -> None:
    pallet_urn, case_urn = f"urn:epc:id:sscc:{chain.prefix}.0000000017", f"urn:epc:id:sscc:{chain.prefix}.0000000024"
    pallet, case = epc.parse(pallet_urn).value, epc.parse(case_urn).value  # type: ignore[union-attr]
    await chain.captured(document(_packing(case_urn, [], [{"epcClass": chain.lgtin("B240315"), "quantity": 36}]),
                                  _packing(pallet_urn, [case_urn],
                                           [{"epcClass": chain.lgtin("B240315"), "quantity": 1164}])))
    seen = (await chain.hub.ok(PALLET, {"sscc": pallet}, tenant=chain.acme))["pallet"]
    assert sorted((c["epc"], c["quantity"]) for c in seen["contents"]) == sorted([
        (f"https://id.gs1.org/00/{case}", None), (f"https://id.gs1.org/01/{chain.gtin}/10/B240315", 1164.0)])

    shipped = await chain.hub.ok(CREATE_DISPATCH, {"input": {"ref": "ASN-EPCIS-P", "consigneeId": chain.shopco,
                                                             "lines": [{"scan": f"(00){pallet}"}]}}, tenant=chain.acme)
    assert sorted((l["lotCode"], l["quantity"], l["sscc"], l["inSscc"])
                  for l in shipped["createDispatch"]["lines"]) == sorted([
        ("B240315", 1164, pallet, None), ("B240315", 36, case, pallet)])
    # the consignee sees the pallet through the dispatch, not the shipper's packing records; a stranger sees nothing
    theirs = (await chain.hub.ok(PALLET, {"sscc": pallet}, tenant=chain.shopco))["pallet"]
    assert (len(theirs["lines"]), theirs["contents"]) == (2, [])
    body = await chain.hub.gql(PALLET, {"sscc": pallet}, tenant=chain.rival)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_pallet_nobody_packed_is_refused_by_name_and_nothing_is_stored(chain: Chain) -> None:
    unknown = epc.parse(f"urn:epc:id:sscc:{chain.prefix}.0000000031").value  # type: ignore[union-attr]
    before = await Dispatch.count()
    body = await chain.hub.gql(CREATE_DISPATCH, {"input": {"ref": "ASN-EPCIS-X", "consigneeId": chain.shopco,
                                                           "lines": [{"sscc": unknown}]}}, tenant=chain.acme)
    error = body["errors"][0]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", "lines.0.sscc")
    assert "AggregationEvent" in error["message"]
    assert await Dispatch.count() == before


async def test_shipping_and_receiving_events_naming_a_pallet_ship_and_receive_its_contents(chain: Chain) -> None:
    pallet_urn = f"urn:epc:id:sscc:{chain.prefix}.0000000048"
    pallet = epc.parse(pallet_urn).value  # type: ignore[union-attr]
    await chain.captured(document(_packing(pallet_urn, [], [{"epcClass": chain.lgtin("B240315"), "quantity": 60}])))
    asn = {"type": "desadv", "bizTransaction": f"urn:epcglobal:cbv:bt:{chain.gln('00001')}:ASN-SSCC"}
    shipping = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit",
                "eventTime": "2030-03-16T09:30:00Z", "eventTimeZoneOffset": "+00:00", "epcList": [pallet_urn],
                "bizLocation": {"id": chain.sgln("00011")}, "bizTransactionList": [asn],
                "destinationList": [{"type": "owning_party", "destination": chain.pgln("00002")},
                                    {"type": "location", "destination": chain.sgln("00012")}]}
    shipped = await chain.captured(document(shipping))
    assert [m["kind"] for m in shipped["outcomes"][0]["mapped"]] == ["dispatch"], shipped["outcomes"]
    [line] = (await chain.hub.ok(PALLET, {"sscc": pallet}, tenant=chain.shopco))["pallet"]["lines"]
    assert line["lotCode"] == "B240315"

    receiving = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "receiving",
                 "disposition": "sellable_not_accessible", "eventTime": "2030-03-17T07:00:00Z",
                 "eventTimeZoneOffset": "+00:00", "epcList": [pallet_urn], "bizLocation": {"id": chain.sgln("00012")},
                 "bizTransactionList": [asn]}
    received = await chain.captured(document(receiving), tenant=chain.shopco)
    assert [m["kind"] for m in received["outcomes"][0]["mapped"]] == ["receipt", "dispatch"], received["outcomes"]
    dispatch = await Dispatch.find_one({"ref": "ASN-SSCC", "tenant_id": chain.acme})
    assert dispatch is not None
    assert (dispatch.status.value, [(l.sscc, l.quantity, l.received) for l in dispatch.lines]) == (
        "received", [(pallet, 60, 60)])


async def test_a_logger_on_a_pallet_packed_in_the_warehouse_exposes_and_re_dates_only_its_cases(chain: Chain) -> None:
    hub = chain.hub
    gtin = with_check("0" + chain.prefix + "44444")
    sku = {"code": "SAL-C", "name": "Salad case", "gtin": gtin, "shelfLifeDays": 10, "packSize": 12,
           "storage": {"tempMaxC": 20.0}, "excursionSensitivity": 1.0, "excursionMinMinutes": 15}
    await hub.ok(UPSERT_SKU, {"input": sku}, tenant=chain.acme)
    expires = (datetime.now(UTC).date() + timedelta(days=10)).isoformat()
    stock = [{"sku": "SAL-C", "kind": "receipt", "quantity": 1200, "idempotencyKey": "wh-1", "lotCode": "B240315",
              "expiresOn": expires}]
    await hub.ok(RECORD_MOVEMENTS, {"movements": stock, "locationId": chain.acme_wh}, tenant=chain.acme)
    # three of the hundred cases in the warehouse are packed on a pallet with a logger
    pallet_urn = f"urn:epc:id:sscc:{chain.prefix}.0000000055"
    pallet = epc.parse(pallet_urn).value  # type: ignore[union-attr]
    lgtin = f"urn:epc:class:lgtin:{gtin[1:8]}.{gtin[0]}{gtin[8:13]}.B240315"
    packing = {**_packing(pallet_urn, [], [{"epcClass": lgtin, "quantity": 36}]),
               "bizLocation": {"id": chain.sgln("00011")}}
    await chain.captured(document(packing))
    logger = {"deviceId": "wh-pallet-logger", "locationId": chain.acme_wh, "ssccs": [pallet]}
    sensor = (await hub.ok(REGISTER_SENSOR, {"input": logger}, tenant=chain.acme))["registerSensor"]["sensor"]["id"]

    await hub.ok(INGEST, {"input": [{"sensorId": sensor, "readings": readings(SPIKE, minutes_ago(45))}]},
                 tenant=chain.acme, roles=("integration",))

    [excursion] = (await hub.ok(EXCURSIONS, tenant=chain.acme))["excursions"]["nodes"]
    assert excursion["exposureBasis"] == "PALLET"
    [exposed] = excursion["exposedLots"]
    assert (exposed["units"], exposed["cases"], exposed["totalUnits"], exposed["totalCases"], exposed["ssccs"]) == (
        36, 3, 1200, 100, [pallet])
    [alert] = [a for a in (await hub.ok(ALERTS, tenant=chain.acme))["alerts"]["nodes"] if a["kind"] == "sensor_spike"]
    assert alert["recommendation"].startswith(
        f"3 of 100 cases (36 of 1200 units) of lot B240315 exposed on SSCC {pallet}")
    # only the packed cases lost shelf life: the record of the pallet says so, the lot and its stock do not
    [content] = (await hub.ok(PALLET, {"sscc": pallet}, tenant=chain.acme))["pallet"]["contents"]
    assert content["effectiveExpiresOn"] == exposed["expiresAfter"] < expires
    lot = next(n for n in (await hub.ok(LOTS, tenant=chain.acme))["lots"]["nodes"] if n["lotCode"] == "B240315")
    assert lot["effectiveExpiresOn"] == expires
    # shipped by its SSCC alone, the pallet's lines keep the shortened date
    shipped = await hub.ok(CREATE_DISPATCH.replace("inSscc", "inSscc effectiveExpiresOn"),
                           {"input": {"ref": "ASN-WH-P", "consigneeId": chain.shopco, "lines": [{"sscc": pallet}]}},
                           tenant=chain.acme)
    assert [(l["quantity"], l["effectiveExpiresOn"]) for l in shipped["createDispatch"]["lines"]] == [
        (36, exposed["expiresAfter"])]
    # another tenant cannot put its logger on that pallet
    rival_store = {"code": "R-1", "name": "R", "kind": "store"}
    store = (await hub.ok(CREATE_LOCATION, {"input": rival_store}, tenant=chain.rival))["createLocation"]["id"]
    body = await hub.gql(REGISTER_SENSOR, {"input": {"deviceId": "x", "locationId": store, "ssccs": [pallet]}},
                         tenant=chain.rival)
    assert (body["errors"][0]["extensions"]["code"], body["errors"][0]["extensions"]["field"]) == (
        "NOT_FOUND", "ssccs.0")
