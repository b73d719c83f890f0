"""Values a GraphQL client can send that the hub could not store or answer again: lone surrogates and non-finite
numbers inside JSON variables, dates and instants beyond the calendar the hub computes with, quantities whose
on-hand no read could answer. Each is refused with BAD_USER_INPUT, nothing is stored, and reads keep working."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import Hub
from tests.epcis.conftest import partner

UPSERT_SKU = "mutation($i: SkuInput!) { upsertSku(input: $i) { sku { id } } }"
CREATE_LOCATION = "mutation($i: CreateLocationInput!) { createLocation(input: $i) { id } }"
REGISTER_LOT = "mutation($i: RegisterLotInput!) { registerLot(input: $i) { id } }"
RECORD = "mutation($m: [MovementInput!]!, $l: ID) { recordMovements(movements: $m, locationId: $l) { accepted } }"
LOTS = "{ lots(first: 50) { nodes { lotCode } } }"
MOVEMENTS = "{ movements(first: 50) { edges { node { quantity } } } }"
STOCK = "{ stockPositions(first: 50) { edges { node { onHand } } } }"


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def send(hub: Hub, tenant: str, text: str) -> httpx.Response:
    """A request body as written (json.dumps keeps a lone surrogate as its escape, as a hostile client sends it)."""
    headers = {"authorization": f"Bearer {hub.token(tenant)}", "content-type": "application/json"}
    return await hub.http.post("/graphql", content=text.encode(), headers=headers)


async def stocked_tenant(hub: Hub, name: str) -> tuple[str, str]:
    """A tenant with SKU S1 (30 days' shelf life); answers (tenant, location id)."""
    await hub.tenant(name)
    await hub.ok(UPSERT_SKU, {"i": {"code": "S1", "name": "Soup", "shelfLifeDays": 30}}, tenant=name)
    data = await hub.ok(CREATE_LOCATION, {"i": {"code": "W1", "name": "W", "kind": "warehouse"}}, tenant=name)
    return name, data["createLocation"]["id"]


async def test_lone_surrogates_in_variables_are_refused_and_nothing_is_stored(module_hub: Hub, suffix: str) -> None:
    tenant = await module_hub.tenant(f"sur-{suffix}")
    lone = "\ud800"
    attempts = [
        ("mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret } }",
         {"i": {"url": "https://hooks.example.com/in", "description": lone}}),
        ("mutation($i: CreateOAuthClientInput!) { createOAuthClient(input: $i) { clientSecret } }",
         {"i": {"name": lone, "scopes": ["read"]}}),
        ("mutation($i: IdentityProviderInput!) { configureIdentityProvider(input: $i) { issuer } }",
         {"i": {"issuer": "https://login.example.com", "clientId": lone, "clientSecret": "s"}}),
        ("mutation($i: [SensorReadingsInput!]!) { ingestReadings(input: $i) { accepted } }",
         {"i": [{"deviceId": "d1", "samples": [[lone, 4.0]]}]}),
        ("query($f: SkuFilter) { skus(filter: $f) { edges { cursor } } }", {"f": {"nameContains": lone}}),
        ("query($f: AuditFilter) { auditLog(filter: $f) { edges { cursor } } }", {"f": {"actor": lone}}),
    ]
    for query, variables in attempts:
        response = await send(module_hub, tenant, json.dumps({"query": query, "variables": variables}))
        assert response.status_code == 400, response.text
        assert codes(response.json()) == ["BAD_USER_INPUT"], response.text
        assert "surrogate" in response.json()["errors"][0]["message"]
    stored = await module_hub.ok("{ webhookEndpoints { nodes { id } } oauthClients { nodes { clientId } } "
                                 "identityProvider { issuer } }", tenant=tenant)
    assert stored == {"webhookEndpoints": {"nodes": []}, "oauthClients": {"nodes": []}, "identityProvider": None}
    # a well-formed surrogate pair (an emoji written as escapes) is ordinary text
    body = json.dumps({"query": UPSERT_SKU, "variables": {"i": {"code": "E1", "name": "Soup \U0001f372"}}})
    assert "\\ud83c" in body
    assert "errors" not in (await send(module_hub, tenant, body)).json()


async def test_non_finite_and_oversized_numbers_in_json_variables_are_refused(module_hub: Hub, suffix: str) -> None:
    tenant = await module_hub.tenant(f"num-{suffix}")
    query = ("mutation($i: [SensorReadingsInput!]!) { ingestReadings(input: $i) { accepted rejected { reason } } }")
    typed = json.dumps({"query": query, "variables": {"i": [{"deviceId": "d1", "readings": [
        {"at": "2026-01-01T00:00:00Z", "temperatureC": "X"}]}]}})
    compact = json.dumps({"query": query, "variables": {"i": [{"deviceId": "d1", "samples": [[1, "X"]]}]}})
    for value in ("NaN", "Infinity", "-Infinity", "1e400", "123456789012345678901234567890"):
        response = await send(module_hub, tenant, typed.replace('"X"', value))
        assert response.status_code == 400, (value, response.text)
        assert codes(response.json()) == ["BAD_USER_INPUT"]
        # a gateway's compact sample is judged alone (the README's sensors section): that one sample is refused
        response = await send(module_hub, tenant, compact.replace('"X"', value))
        assert response.status_code == 200, (value, response.text)
        report = response.json()["data"]["ingestReadings"]
        assert report["accepted"] == 0 and len(report["rejected"]) == 1, (value, report)


async def test_instants_beyond_the_calendar_are_bad_input_and_store_nothing(module_hub: Hub, suffix: str) -> None:
    tenant, location = await stocked_tenant(module_hub, f"inst-{suffix}")
    for at in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00", "1066-10-14T09:00:00Z"):
        movement = {"sku": "S1", "kind": "receipt", "quantity": 5, "idempotencyKey": at, "occurredAt": at}
        body = await module_hub.gql(RECORD, {"m": [movement], "l": location}, tenant=tenant)
        assert codes(body) == ["BAD_USER_INPUT"], body
        assert "1900-01-01" in body["errors"][0]["message"]
        literal = '{ movements(filter: {since: "' + at + '"}) { edges { cursor } } }'
        for query in (literal, "query($t: DateTime) { auditLog(filter: {since: $t}) { edges { cursor } } }"):
            body = await module_hub.gql(query, {"t": at}, tenant=tenant)
            assert codes(body) == ["BAD_USER_INPUT"], body
    assert (await module_hub.ok(MOVEMENTS, tenant=tenant))["movements"]["edges"] == []


async def test_dates_beyond_the_calendar_are_bad_input_and_make_no_lot(module_hub: Hub, suffix: str) -> None:
    tenant, location = await stocked_tenant(module_hub, f"day-{suffix}")
    sku = (await module_hub.ok(UPSERT_SKU, {"i": {"code": "S1", "name": "Soup", "shelfLifeDays": 30}},
                               tenant=tenant))["upsertSku"]["sku"]["id"]
    for dates in ({"producedOn": "9999-12-31"}, {"expiresOn": "0001-01-01"}, {"producedOn": "1899-12-31"},
                  {"expiresOn": "3000-01-01"}):
        body = await module_hub.gql(REGISTER_LOT, {"i": {"skuId": sku, "lotCode": "L1", **dates}}, tenant=tenant)
        assert codes(body) == ["BAD_USER_INPUT"], body
        movement = {"sku": "S1", "kind": "receipt", "quantity": 5, "idempotencyKey": "k", "lotCode": "L2",
                    "expiresOn": dates.get("expiresOn", dates.get("producedOn"))}
        body = await module_hub.gql(RECORD, {"m": [movement], "l": location}, tenant=tenant)
        assert codes(body) == ["BAD_USER_INPUT"], body
    assert (await module_hub.ok(LOTS, tenant=tenant))["lots"]["nodes"] == []
    # the calendar's own ends are accepted
    body = await module_hub.gql(REGISTER_LOT, {"i": {"skuId": sku, "lotCode": "L3", "producedOn": "2999-12-01"}},
                                tenant=tenant)
    assert "errors" not in body, body


async def test_on_hand_never_grows_beyond_what_a_read_can_answer(module_hub: Hub, suffix: str) -> None:
    tenant, location = await stocked_tenant(module_hub, f"big-{suffix}")
    most = 2**31 - 1
    first = {"sku": "S1", "kind": "receipt", "quantity": most, "idempotencyKey": "a"}
    await module_hub.ok(RECORD, {"m": [first], "l": location}, tenant=tenant)
    more = {"sku": "S1", "kind": "receipt", "quantity": 1, "idempotencyKey": "b"}
    body = await module_hub.gql(RECORD, {"m": [more], "l": location}, tenant=tenant)
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert "above 2147483647" in body["errors"][0]["message"]
    stock = await module_hub.ok(STOCK, tenant=tenant)
    assert [edge["node"]["onHand"] for edge in stock["stockPositions"]["edges"]] == [most]
    assert len((await module_hub.ok(MOVEMENTS, tenant=tenant))["movements"]["edges"]) == 1


async def test_codes_partners_match_on_refuse_control_characters(module_hub: Hub, suffix: str) -> None:
    brand, shop = await module_hub.tenant(f"ref-{suffix}"), await module_hub.tenant(f"refs-{suffix}", "retailer")
    await partner(module_hub, brand, shop, ["sku_master", "dispatches"], ["dispatches"])
    await module_hub.ok(UPSERT_SKU, {"i": {"code": "S1", "name": "Soup"}}, tenant=brand)
    location = (await module_hub.ok(CREATE_LOCATION, {"i": {"code": "W1", "name": "W", "kind": "warehouse"}},
                                    tenant=brand))["createLocation"]["id"]
    await module_hub.ok(CREATE_LOCATION, {"i": {"code": "DC", "name": "DC", "kind": "dc"}}, tenant=shop)
    dispatch = {"ref": "ASN\x001", "consigneeId": shop, "toLocation": "DC",
                "lines": [{"sku": "S1", "lotCode": "L1", "quantity": 5}]}
    body = await module_hub.gql("mutation($i: CreateDispatchInput!) { createDispatch(input: $i) { id } }",
                                {"i": dispatch}, tenant=brand)
    assert codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "ref", body
    sensor = {"deviceId": "logger\u202e1", "locationId": location}
    body = await module_hub.gql("mutation($i: RegisterSensorInput!) { registerSensor(input: $i) { sensor { id } } }",
                                {"i": sensor}, tenant=brand)
    assert codes(body) == ["BAD_USER_INPUT"] and body["errors"][0]["extensions"]["field"] == "deviceId", body
    stored = await module_hub.ok("{ dispatches(first: 5) { nodes { id } } sensors(first: 5) { nodes { id } } }",
                                 tenant=brand)
    assert stored == {"dispatches": {"nodes": []}, "sensors": {"nodes": []}}


async def test_a_compact_sample_beyond_the_calendar_is_rejected_alone(module_hub: Hub, suffix: str) -> None:
    tenant, location = await stocked_tenant(module_hub, f"smp-{suffix}")
    register = 'mutation($l: ID) { registerSensor(input: {deviceId: "d1", locationId: $l}) { sensor { id } } }'
    await module_hub.ok(register, {"l": location}, tenant=tenant)
    ingest = ("mutation($i: [SensorReadingsInput!]!) "
              "{ ingestReadings(input: $i) { accepted rejected { index reason } } }")
    now = datetime.now(UTC).replace(microsecond=0)
    samples = [["0001-01-01T00:00:00+05:00", 4.0], ["9999-12-31T23:00:00-05:00", 4.0], [now.isoformat(), 4.5]]
    report = (await module_hub.ok(ingest, {"i": [{"deviceId": "d1", "samples": samples}]},
                                  tenant=tenant))["ingestReadings"]
    assert report["accepted"] == 1, report
    assert [r["index"] for r in report["rejected"]] == [0, 1]
    assert "1900-01-01" in report["rejected"][0]["reason"]
