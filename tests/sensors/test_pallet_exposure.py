"""A logger on a pallet's cases: a spike exposes those cases only, says "3 of 100 cases", and re-dates only them."""

from __future__ import annotations

from hub.models.sensor import Sensor
from tests.epcis.test_epcis_capture import reference_valid
from tests.sensors.conftest import CREATE_LOCATION, LOTS, REGISTER_SENSOR, UPSERT_SKU, minutes_ago, readings

PALLET = "106141411234567897"
CASES = "106141411234567903"  # three cases stacked on PALLET, under their own label
BAD = "106141411234567890"
PACK = 12
CREATE_DISPATCH = "mutation($input: CreateDispatchInput!) { createDispatch(input: $input) { id } }"
DISPATCH = "query($id: ID!) { dispatch(id: $id) { lines { lotCode sscc expiresOn effectiveExpiresOn } } }"
EXCURSIONS = """
query {
  excursions(first: 10) {
    nodes {
      sensorId exposureBasis alertId
      exposedLots { lotCode units cases totalUnits totalCases ssccs expiresBefore expiresAfter }
    }
  }
}
"""
ALERTS = "query { alerts(first: 50) { nodes { id kind title recommendation evidence } } }"
SPIKE = [18.0] * 10 + [28.0] * 20 + [18.0] * 10


async def _pallet(cold, hub) -> tuple[str, str]:
    """FreshCo ships 100 cases of lot B240315 on one pallet, 3 of them under a case-level SSCC; answers the
    dispatch and FreshCo's dock."""
    sku = {"code": "SALAD-C", "name": "Salad case", "shelfLifeDays": 10, "packSize": PACK,
           "minRemainingShelfLifeDays": 9, "storage": {"tempMaxC": 20.0}, "excursionSensitivity": 1.0,
           "excursionMinMinutes": 15}
    await hub.ok(UPSERT_SKU, {"input": sku}, tenant="freshco")
    dock = await hub.ok(CREATE_LOCATION, {"input": {"code": "DOCK", "name": "Dock", "kind": "dc"}}, tenant="freshco")
    expires = cold.lot_expires.isoformat()
    lines = [{"sku": "SALAD-C", "lotCode": "B240315", "quantity": 3 * PACK, "expiresOn": expires, "sscc": CASES,
              "inSscc": PALLET},
             {"sku": "SALAD-C", "lotCode": "B240315", "quantity": 97 * PACK, "expiresOn": expires, "sscc": PALLET}]
    dispatch = await hub.ok(CREATE_DISPATCH, {"input": {"ref": "ASN-PAL", "consigneeId": "shopmart", "lines": lines,
                                                        "fromLocationId": dock["createLocation"]["id"]}},
                            tenant="freshco")
    return dispatch["createDispatch"]["id"], dock["createLocation"]["id"]


async def test_a_spike_on_three_cases_of_a_hundred_case_pallet_exposes_and_re_dates_only_them(cold, hub):
    dispatch, dock = await _pallet(cold, hub)
    logger = {"deviceId": "case-logger", "ssccs": [CASES]}  # it reports from the shipper's end: the dock
    registered = (await hub.ok(REGISTER_SENSOR, {"input": logger}, tenant="freshco"))["registerSensor"]["sensor"]
    sensor = registered["id"]
    assert registered["locationId"] == dock

    report = await cold.ingest([{"sensorId": sensor, "readings": readings(SPIKE, minutes_ago(45))}], tenant="freshco")

    assert len(report["excursions"]) == 1
    [excursion] = (await hub.ok(EXCURSIONS, tenant="freshco"))["excursions"]["nodes"]
    assert excursion["exposureBasis"] == "PALLET"
    [exposed] = excursion["exposedLots"]
    assert (exposed["lotCode"], exposed["units"], exposed["cases"], exposed["totalUnits"], exposed["totalCases"],
            exposed["ssccs"]) == ("B240315", 3 * PACK, 3, 100 * PACK, 100, [CASES])
    assert exposed["expiresAfter"] < exposed["expiresBefore"]
    # the alert says how many of how many, on which unit, and on which basis
    [alert] = [a for a in (await hub.ok(ALERTS, tenant="freshco"))["alerts"]["nodes"] if a["kind"] == "sensor_spike"]
    assert alert["id"] == excursion["alertId"]
    assert alert["recommendation"].startswith(
        f"3 of 100 cases (36 of 1200 units) of lot B240315 exposed on SSCC {CASES}: dispatch with priority")
    assert alert["evidence"]["exposureBasis"] == "PALLET"
    assert alert["evidence"]["lots"][0]["totalCases"] == 100
    # only the three cases lost shelf life: their dispatch line, not the pallet's other 97 cases, not the lot
    lines = (await hub.ok(DISPATCH, {"id": dispatch}, tenant="shopmart"))["dispatch"]["lines"]
    assert [(l["sscc"], l["effectiveExpiresOn"]) for l in lines] == [(CASES, exposed["expiresAfter"]),
                                                                     (PALLET, None)]
    lot = next(l for l in (await hub.ok(LOTS, tenant="freshco"))["lots"]["nodes"] if l["lotCode"] == "B240315")
    assert lot["effectiveExpiresOn"] == lot["expiresOn"] == cold.lot_expires.isoformat()
    # the salads on shelf C-3 (the room the other sensor watches) were not exposed either
    assert (await cold.lot_expiry())["effectiveExpiresOn"] == cold.lot_expires.isoformat()
    # those cases now arrive below the consignee's minimum remaining shelf life: the parties are told, for that line
    [short] = [a for a in (await hub.ok(ALERTS, tenant="shopmart"))["alerts"]["nodes"] if a["kind"] == "expiry_risk"]
    assert "ASN-PAL" in short["title"]
    assert [(line["line"], line["expiresOn"]) for line in short["evidence"]["lines"]] == [
        (0, exposed["expiresAfter"])]
    # exported as the EPCIS alarm, the exposed case-level SSCC as its EPC
    response = await hub.http.get("/epcis/events", params={"EQ_bizStep": "sensor_reporting"},
                                  headers={"authorization": f"Bearer {hub.token('freshco', 'integration')}"})
    assert response.status_code == 200, response.text
    [alarm] = response.json()["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert alarm["epcList"] == [f"https://id.gs1.org/00/{CASES}"]
    assert alarm["quantityList"][0]["quantity"] == 3 * PACK
    assert reference_valid(alarm)  # the official EPCIS 2.0 schema
    # the consignee hears it by being a party of the dispatch; a stranger sees nothing
    assert excursion["alertId"] in {a["id"] for a in (await hub.ok(ALERTS, tenant="shopmart"))["alerts"]["nodes"]}
    assert (await hub.ok(EXCURSIONS, tenant="rival"))["excursions"]["nodes"] == []


async def test_a_logger_on_the_whole_pallet_or_the_dispatch_exposes_all_of_it(cold, hub):
    dispatch, dock = await _pallet(cold, hub)
    for device, attach, basis in (("pallet-logger", {"ssccs": [PALLET]}, "PALLET"),
                                  ("truck-logger", {"dispatchId": dispatch}, "DISPATCH")):
        logger = {"deviceId": device, "locationId": dock, **attach}
        registered = await hub.ok(REGISTER_SENSOR, {"input": logger}, tenant="freshco")
        sensor = registered["registerSensor"]["sensor"]["id"]
        await cold.ingest([{"sensorId": sensor, "readings": readings(SPIKE, minutes_ago(45))}], tenant="freshco")
        nodes = (await hub.ok(EXCURSIONS, tenant="freshco"))["excursions"]["nodes"]
        [excursion] = [node for node in nodes if node["sensorId"] == sensor]
        assert excursion["exposureBasis"] == basis
        [exposed] = excursion["exposedLots"]
        assert (exposed["lotCode"], exposed["cases"]) == ("B240315", 100)
    # the pallet logger re-dated both lines; the dispatch logger, as before pallets, the whole lot
    lines = (await hub.ok(DISPATCH, {"id": dispatch}, tenant="freshco"))["dispatch"]["lines"]
    assert all(l["effectiveExpiresOn"] and l["effectiveExpiresOn"] < l["expiresOn"] for l in lines)
    lot = next(l for l in (await hub.ok(LOTS, tenant="freshco"))["lots"]["nodes"] if l["lotCode"] == "B240315")
    assert lot["effectiveExpiresOn"] < lot["expiresOn"]


async def test_only_a_party_attaches_a_sensor_to_a_pallet_and_a_bad_sscc_is_refused_by_name(cold, hub):
    _, dock = await _pallet(cold, hub)
    rival = await hub.ok(CREATE_LOCATION, {"input": {"code": "R-1", "name": "R", "kind": "store"}}, tenant="rival")
    before = await Sensor.count()
    for tenant, ssccs, code, says in (
        ("rival", [PALLET], "NOT_FOUND", "no dispatch"),  # another tenant's pallet: as if it did not exist
        ("freshco", [PALLET, BAD], "BAD_USER_INPUT", "check digit"),
        ("freshco", ["106141411234567927"], "NOT_FOUND", "no dispatch"),  # a valid SSCC nobody shipped
    ):
        location = dock if tenant == "freshco" else rival["createLocation"]["id"]
        body = await hub.gql(REGISTER_SENSOR, {"input": {"deviceId": f"{tenant}-logger", "locationId": location,
                                                         "ssccs": ssccs}}, tenant=tenant)
        error = body["errors"][0]
        assert error["extensions"]["code"] == code, (tenant, ssccs, error)
        assert error["extensions"]["field"] == f"ssccs.{len(ssccs) - 1}", error
        assert says in error["message"], error["message"]
    assert await Sensor.count() == before
    # the consignee, a party of the dispatch, may put its own logger on the pallet (saying where: the dispatch names
    # no destination of its)
    logger = {"deviceId": "shop-logger", "ssccs": [PALLET]}
    body = await hub.gql(REGISTER_SENSOR, {"input": logger}, tenant="shopmart")
    assert (body["errors"][0]["extensions"]["code"], body["errors"][0]["extensions"]["field"]) == (
        "BAD_USER_INPUT", "locationId")
    assert await Sensor.count() == before
    registered = await hub.ok(REGISTER_SENSOR, {"input": {**logger, "locationId": cold.shelf}}, tenant="shopmart")
    assert registered["registerSensor"]["created"]
