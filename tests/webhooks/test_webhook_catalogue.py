"""The event catalogue served by the hub, and every event type delivered for real and checked against its schema.

Two stories play the hub's flows through GraphQL (and the sweeps a hub runs) with webhook endpoints listening: a
cold chain (SKU master, dispatch and receipt with a lot mismatch, stock, a temperature spike, a silent sensor, the
alert lifecycle) and transfer planning (recommendations accepted and dismissed). Every body delivered is verified
with its endpoint's secret and validated against the JSON Schema ``GET /webhooks/schemas/<type>.json`` serves; a
partner hears only what its sharing lets it see, and an outsider hears nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hub.config import Settings
from hub.dates import utcnow
from hub.events.catalogue import CATALOGUE
from hub.models.alert import AlertKind, Severity, SubjectRef
from hub.models.event import EVENT_TYPES
from hub.services import heartbeat
from hub.services.alerts import raise_alert
from hub.services.escalation import escalate_overdue
from tests.conftest import Hub, start_hub
from tests.events.conftest import ACKNOWLEDGE
from tests.planning.conftest import CANCEL_DISPATCH, Network, partner
from tests.planning.test_transfers import ACCEPT as ACCEPT_TRANSFER
from tests.planning.test_transfers import DISMISS, regional_shortage
from tests.sensors.conftest import (
    CREATE_LOCATION,
    INGEST,
    LOTS,
    RECORD_MOVEMENTS,
    REGISTER_SENSOR,
    UPSERT_SKU,
    minutes_ago,
    readings,
)
from tests.supply.conftest import CREATE_DISPATCH, RECORD_RECEIPT
from tests.supply.test_audit_trail import RESOLVE_RECEIPT
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import ACCEPT as ACCEPT_PARTNERSHIP
from tests.webhooks.helpers import DELIVERIES, INVITE, REVOKE, create_endpoint, deliveries

ESCALATION_POLICY = """
mutation($input: EscalationPolicyInput!) { upsertEscalationPolicy(input: $input) { alertKind } }
"""
PLANNING_TYPES = {"recommendation.created", "recommendation.accepted", "recommendation.dismissed"}
COLD_CHAIN_TYPES = set(EVENT_TYPES) - PLANNING_TYPES


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    """Webhook loops in the background, polling briskly."""
    async for running in start_hub(settings.with_(webhook_poll_seconds=0.05)):
        yield running


async def served_schemas(hub: Hub) -> dict[str, dict[str, Any]]:
    listing = (await hub.http.get("/webhooks/catalogue")).json()["eventTypes"]
    schemas = {}
    for item in listing:
        response = await hub.http.get(f"/webhooks/schemas/{item['type']}.json")
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/schema+json")
        schemas[item["type"]] = response.json()
    return schemas


async def heard(receiver: Receiver, secrets: dict[str, str], want: dict[str, set[str]],
                timeout: float = 120.0) -> dict[str, list[dict[str, Any]]]:
    """Verified bodies per tenant, once each tenant heard at least the types in ``want`` (and the log settled)."""
    deadline = time.monotonic() + timeout
    while True:
        bodies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for request in list(receiver.requests):
            tenant = request.path.strip("/")
            bodies[tenant].append(request.verify(secrets[tenant]))
        missing = {t: types - {b["type"] for b in bodies[t]} for t, types in want.items()}
        if not any(missing.values()):
            await asyncio.sleep(1.0)  # anything still in flight for the others (an outsider must stay empty)
            return {t: [request.verify(secrets[t]) for request in receiver.requests if request.path == f"/{t}"]
                    for t in secrets}
        assert time.monotonic() < deadline, f"never delivered: {missing}"
        await asyncio.sleep(0.1)


def validate(bodies: list[dict[str, Any]], schemas: dict[str, dict[str, Any]]) -> None:
    for body in bodies:
        jsonschema.validate(body, schemas[body["type"]], cls=jsonschema.Draft202012Validator)
        assert body["data"]["subject"] == CATALOGUE[body["type"]].key(body["data"]["ownerId"], body["data"])


async def test_the_catalogue_lists_every_type_with_its_scope_ordering_key_and_a_valid_schema(hub: Hub):
    listing = (await hub.http.get("/webhooks/catalogue")).json()["eventTypes"]
    assert [item["type"] for item in listing] == list(EVENT_TYPES)
    by_type = {item["type"]: item for item in listing}
    assert by_type["lot.held"]["orderingKey"] == "lot:<lot id>" and by_type["lot.held"]["scope"] is None
    assert by_type["sku.updated"]["scope"] == "sku_master" and by_type["stock.changed"]["scope"] == "stock"
    assert by_type["mismatch.detected"]["orderingKey"] == "alert:<alert id>"
    for item in listing:
        assert item["description"] and item["audience"] and item["schema"].endswith(f"/webhooks/schemas/"
                                                                                    f"{item['type']}.json")
    schemas = await served_schemas(hub)
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["type"] == {"const": name}
    missing = await hub.http.get("/webhooks/schemas/no.such.json")
    assert missing.status_code == 404 and "no.such" in missing.json()["message"]
    assert COLD_CHAIN_TYPES | PLANNING_TYPES == set(EVENT_TYPES)  # the two stories below deliver every type


async def test_the_catalogue_names_the_hubs_own_urls_whatever_host_a_client_sends(hub: Hub):
    # a public, cacheable answer: a shared cache must never keep one naming a host a client made up
    forged = {"host": "attacker.example"}
    listing = (await hub.http.get("/webhooks/catalogue", headers=forged)).json()["eventTypes"]
    assert {item["schema"] for item in listing} == {f"{hub.url}/webhooks/schemas/{name}.json" for name in EVENT_TYPES}
    schema = (await hub.http.get("/webhooks/schemas/lot.held.json", headers=forged)).json()
    assert schema["$id"] == f"{hub.url}/webhooks/schemas/lot.held.json"
    missing = (await hub.http.get("/webhooks/schemas/no.such.json", headers=forged)).json()
    assert missing["catalogue"] == f"{hub.url}/webhooks/catalogue"


async def test_a_cold_chain_delivers_every_event_type_as_its_schema_says_to_whom_sharing_allows(hub: Hub,
                                                                                               receiver: Receiver):
    # given: Freshco (brand) shares its SKU master with Shopmart (retailer), which shares sensors, alerts and stock
    # with Freshco; Rival is nobody's partner. Each listens on an endpoint to every event type.
    for tenant, kind in (("freshco", "supplier"), ("shopmart", "retailer"), ("rival", "retailer")):
        await hub.tenant(tenant, kind)
    invite = await hub.ok(INVITE, {"input": {"partnerId": "shopmart", "weShare": ["sku_master", "dispatches"],
                                             "theyShare": ["sensors", "alerts", "stock", "dispatches"]}},
                          tenant="freshco")
    await hub.ok(ACCEPT_PARTNERSHIP, {"id": invite["invitePartner"]["id"]}, tenant="shopmart")
    secrets = {}
    for tenant in ("freshco", "shopmart", "rival"):
        _, secrets[tenant] = await create_endpoint(hub, tenant, receiver.at(f"/{tenant}"))

    # when: the SKU is created and changed
    sku = {"code": "SALAD-1", "name": "Mixed salad 200 g", "shelfLifeDays": 10, "storage": {"tempMaxC": 20.0},
           "excursionSensitivity": 1.0, "excursionMinMinutes": 15}
    await hub.ok(UPSERT_SKU, {"input": sku}, tenant="freshco")
    await hub.ok(UPSERT_SKU, {"input": {**sku, "name": "Mixed salad 250 g"}}, tenant="freshco")
    # a lot is shipped to shelf C-3 and booked there; another dispatch is cancelled
    shelf = (await hub.ok(CREATE_LOCATION, {"input": {"code": "C-3", "name": "Shelf C-3", "kind": "zone"}},
                          tenant="shopmart"))["createLocation"]["id"]
    expires = (utcnow() + timedelta(days=10)).date().isoformat()
    line = {"sku": "SALAD-1", "lotCode": "L-C3", "quantity": 3, "expiresOn": expires}
    await hub.ok(CREATE_DISPATCH, {"input": {"ref": "SHIP-1", "consigneeId": "shopmart", "lines": [line]}},
                 tenant="freshco")
    cancelled = await hub.ok(CREATE_DISPATCH, {"input": {"ref": "SHIP-2", "consigneeId": "shopmart",
                                                         "lines": [line]}}, tenant="freshco")
    await hub.ok(CANCEL_DISPATCH, {"id": cancelled["createDispatch"]["id"]}, tenant="freshco")
    receipt = {"sku": "SALAD-1", "kind": "receipt", "quantity": 3, "idempotencyKey": "rcv-1", "lotCode": "L-C3",
               "expiresOn": expires, "occurredAt": minutes_ago(120).isoformat()}  # on the shelf before the spike
    await hub.ok(RECORD_MOVEMENTS, {"movements": [receipt], "locationId": shelf}, tenant="shopmart")
    # a dispatch arrives with the neighbouring lot code: the receipt holds the lot, then is resolved
    asn = await hub.ok(CREATE_DISPATCH, {"input": {"ref": "ASN-9", "consigneeId": "shopmart", "toLocation": "C-3",
                                                   "lines": [{**line, "lotCode": "B240315", "quantity": 10}]}},
                       tenant="freshco")
    received = await hub.ok(RECORD_RECEIPT, {"input": {
        "dispatchId": asn["createDispatch"]["id"], "final": True,
        "lines": [{"sku": "SALAD-1", "lotCode": "B240314", "quantity": 10, "expiresOn": expires}]}},
        tenant="shopmart")
    await hub.ok(RESOLVE_RECEIPT, {"id": received["recordReceipt"]["id"], "note": "label misprint",
                                   "decision": "accept_risk"}, tenant="shopmart")
    # a sensor on the shelf sees a 20-minute spike, falls silent, then reports again
    sensor = (await hub.ok(REGISTER_SENSOR, {"input": {"deviceId": "pallet-c3", "locationId": shelf}},
                           tenant="shopmart"))["registerSensor"]["sensor"]["id"]
    temps = readings([18.0] * 10 + [28.0] * 20 + [18.0] * 10, minutes_ago(45))
    await hub.ok(INGEST, {"input": [{"sensorId": sensor, "readings": temps}]}, tenant="shopmart",
                 roles=("integration",))
    assert (await heartbeat.check(hub.state.database, hub.settings, utcnow() + timedelta(minutes=60))).raised == 1
    await hub.ok(INGEST, {"input": [{"sensorId": sensor, "readings": readings([18.0], minutes_ago(0))}]},
                 tenant="shopmart", roles=("integration",))
    # the alert lifecycle: acknowledged, updated, escalated; and the detections of the sweeps
    lots = (await hub.ok(LOTS, tenant="freshco"))["lots"]["nodes"]
    lot = next(node for node in lots if node["lotCode"] == "L-C3")
    await hub.ok(ESCALATION_POLICY, {"input": {"alertKind": "expiry_risk", "steps": [
        {"afterMinutes": 10, "action": "notify_role", "role": "planner"}]}}, tenant="shopmart")

    async def detections(session: Any) -> list[Any]:
        raised = []
        for kind in (AlertKind.expiry_risk, AlertKind.velocity_drop, AlertKind.velocity_spike,
                     AlertKind.obsolescence_risk, AlertKind.fefo_violation):
            raised.append(await raise_alert(
                session, kind=kind, severity=Severity.warning, owner="shopmart", audience=["freshco"],
                title=f"{kind.value} on shelf C-3", dedupe_key=f"story:{kind.value}",
                subjects=[SubjectRef(kind="lot", id=lot["id"], label="L-C3")], evidence={"units": 3},
            ))
        return raised

    raised = await hub.state.database.in_transaction(detections)
    await hub.ok(ACKNOWLEDGE, {"id": str(raised[1].id), "note": "looking"}, tenant="shopmart")

    async def again(session: Any) -> None:
        await raise_alert(session, kind=AlertKind.expiry_risk, severity=Severity.critical, owner="shopmart",
                          audience=["freshco"], title="expiry_risk on shelf C-3", dedupe_key="story:expiry_risk",
                          subjects=[SubjectRef(kind="lot", id=lot["id"], label="L-C3")], evidence={"units": 2})

    await hub.state.database.in_transaction(again)
    assert await escalate_overdue(hub.state.database, timedelta(hours=4), utcnow() + timedelta(hours=1)) >= 1

    # then: every type but the escalation reached the brand, each body as its served schema says
    # (an escalation step that notifies a role is the owner's news alone)
    got = await heard(receiver, secrets, {"freshco": COLD_CHAIN_TYPES - {"alert.escalated"},
                                          "shopmart": {"alert.escalated"}})
    assert {b["type"] for bodies in got.values() for b in bodies} == COLD_CHAIN_TYPES
    schemas = await served_schemas(hub)
    for tenant in secrets:
        validate(got[tenant], schemas)
    # the outsider heard nothing; Shopmart heard the brand's SKU master (shared with it) and its own news
    assert got["rival"] == []
    shopmart = {body["type"] for body in got["shopmart"]}
    assert {"sku.created", "sku.updated", "lot.held", "lot.released", "lot.redated", "receipt.recorded",
            "sensor.offline", "sensor.online", "movements.recorded"} <= shopmart
    # the brand heard Shopmart's stock only for its own SKU, and lot news as the lots' owner
    freshco = {body["type"]: body["data"] for body in got["freshco"]}
    assert freshco["movements.recorded"]["batch"]["skus"][0]["skuOwnerId"] == "freshco"
    redated = {b["data"]["lot"]["id"]: b["data"] for b in got["freshco"] if b["type"] == "lot.redated"}
    assert redated[lot["id"]]["previous"]["effectiveExpiresOn"] == expires  # every lot on the shelf is re-dated
    assert redated[lot["id"]]["lot"]["effectiveExpiresOn"] < expires
    assert freshco["lot.held"]["lot"]["status"] == "on_hold"
    assert freshco["lot.held"]["previous"] == {"status": "released"}
    assert freshco["sensor.offline"]["sensor"]["silentMinutes"] >= 45


async def test_transfer_recommendations_reach_the_holder_and_the_brand_it_shares_stock_with(hub: Hub,
                                                                                           receiver: Receiver):
    # given: Shopco shares stock with Brand; Rival shares nothing with anyone; all listen
    for tenant, kind in (("brand", "supplier"), ("shopco", "retailer"), ("rival", "retailer")):
        await hub.tenant(tenant, kind)
    await partner(hub, "shopco", "brand", ["stock", "alerts", "dispatches"], ["sku_master", "dispatches"])
    secrets = {}
    for tenant in ("brand", "shopco", "rival"):
        _, secrets[tenant] = await create_endpoint(hub, tenant, receiver.at(f"/{tenant}"), sorted(PLANNING_TYPES))
    net = Network(hub)
    for code, kind in (("ST-1", "store"), ("ST-2", "store"), ("WH-1", "warehouse")):
        await net.location(code, kind)

    # when: a regional shortage is planned, and its recommendation accepted; a second one dismissed
    await regional_shortage(net)
    assert (await net.sweep()).recommendations == 1
    [first] = await net.recommendations()
    await hub.ok(ACCEPT_TRANSFER, {"id": first["id"]}, tenant="shopco")
    await net.history("ST-1", "SUN-50", [30] * 60, stock=30 * 60 + 20, lot="ST1-LOT", expires_in=300)
    await net.sweep()
    second = [r for r in await net.recommendations() if r["status"] == "open"]
    assert second, "a second shortage was not planned"
    await hub.ok(DISMISS, {"id": second[0]["id"], "reason": "a delivery is on its way"}, tenant="shopco")

    # then: the holder and the brand heard every recommendation event, each as its schema says; Rival nothing
    got = await heard(receiver, secrets, {"shopco": PLANNING_TYPES, "brand": PLANNING_TYPES})
    schemas = await served_schemas(hub)
    for tenant in secrets:
        validate(got[tenant], schemas)
    assert got["rival"] == []
    accepted = next(b["data"]["recommendation"] for b in got["brand"] if b["type"] == "recommendation.accepted")
    assert accepted["id"] == first["id"] and accepted["status"] == "accepted" and accepted["skuOwnerId"] == "brand"
    subjects = {b["data"]["subject"] for b in got["shopco"]}
    assert f"recommendation:{first['id']}" in subjects


async def test_sku_news_reaches_a_partner_only_while_it_shares_the_sku_master(hub: Hub, receiver: Receiver):
    # given: Acme shares its SKU master with Globex; Initech is Acme's partner for dispatches only
    for tenant, kind in (("acme", "supplier"), ("globex", "retailer"), ("initech", "retailer")):
        await hub.tenant(tenant, kind)
    globex = await hub.ok(INVITE, {"input": {"partnerId": "globex", "weShare": ["sku_master"]}}, tenant="acme")
    await hub.ok(ACCEPT_PARTNERSHIP, {"id": globex["invitePartner"]["id"]}, tenant="globex")
    initech = await hub.ok(INVITE, {"input": {"partnerId": "initech", "weShare": ["dispatches"]}}, tenant="acme")
    await hub.ok(ACCEPT_PARTNERSHIP, {"id": initech["invitePartner"]["id"]}, tenant="initech")
    secrets = {}
    for tenant in ("acme", "globex", "initech"):
        _, secrets[tenant] = await create_endpoint(hub, tenant, receiver.at(f"/{tenant}"), ["sku.created",
                                                                                            "sku.updated"])
    # when: a SKU is created, the sharing revoked, and the SKU changed
    await hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt"}}, tenant="acme")
    await heard(receiver, secrets, {"globex": {"sku.created"}})
    await hub.ok(REVOKE, {"id": globex["invitePartner"]["id"]}, tenant="acme")
    await hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt 500 g"}}, tenant="acme")
    await hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt 500 g"}}, tenant="acme")  # no change
    got = await heard(receiver, secrets, {"acme": {"sku.created", "sku.updated"}})
    # then: Globex heard the creation only; Initech (no sku_master share) nothing; Acme both, once each
    assert [b["type"] for b in got["globex"]] == ["sku.created"]
    assert got["initech"] == []
    assert [b["type"] for b in got["acme"]] == ["sku.created", "sku.updated"]
    assert got["acme"][1]["data"]["sku"]["name"] == "Yogurt 500 g"
    sku_id = got["acme"][0]["data"]["sku"]["id"]
    assert {(d["eventType"], d["subject"]) for d in await deliveries(hub, "acme")} == {
        ("sku.created", f"sku:{sku_id}"), ("sku.updated", f"sku:{sku_id}")}
    queue = await hub.ok(DELIVERIES, {"filter": {"subject": f"sku:{sku_id}"}}, tenant="acme")
    assert [d["node"]["eventType"] for d in queue["webhookDeliveries"]["edges"]] == ["sku.updated", "sku.created"]
    other = await hub.ok(DELIVERIES, {"filter": {"subject": "sku:elsewhere"}}, tenant="acme")
    assert other["webhookDeliveries"]["edges"] == []


def test_the_documentation_names_every_event_type():
    documented = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    assert [name for name in EVENT_TYPES if f"`{name}`" not in documented] == []
