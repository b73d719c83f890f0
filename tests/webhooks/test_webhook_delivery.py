"""End to end: events become signed webhooks at a real receiver, verified by the standardwebhooks library."""

from __future__ import annotations

import json

from tests.conftest import start_hub
from tests.supply.conftest import CREATE_LOCATION, UPSERT_SKU, YOGURT_GTIN, Supply, yogurt_line
from tests.webhooks.helpers import create_endpoint, deliveries, raise_mismatch, settled


async def test_alert_arrives_signed_and_verified_by_standard_webhooks(live_hub, receiver):
    # given
    await live_hub.tenant("acme", "retailer")
    endpoint_id, secret = await create_endpoint(live_hub, "acme", receiver.at("/erp"), ["mismatch.detected"])
    # when
    alert = await raise_mismatch(live_hub, "acme", [])
    # then
    [request] = await receiver.wait_for(1)
    body = request.verify(secret)
    assert body["type"] == "mismatch.detected"
    assert body["data"]["alert"]["id"] == str(alert.id)
    assert body["data"]["alert"]["evidence"] == {"expected": "B240315", "scanned": "B240314"}
    assert set(body) == {"type", "timestamp", "data"}
    assert request.headers["webhook-signature"].startswith("v1,")
    assert json.loads(request.body) == body
    [logged] = await settled(live_hub, "acme", endpoint_id)
    assert logged["webhookId"] == request.webhook_id == body["data"]["eventId"]
    assert logged["state"] == "succeeded"
    assert [a["statusCode"] for a in logged["attempts"]] == [200]
    assert logged["attempts"][0]["responseExcerpt"] == "answer 200"
    assert json.loads(logged["body"]) == body


async def test_a_mismatched_receipt_reaches_both_parties_erps_and_no_one_else(live_hub, receiver):
    # given: Acme ships yogurt to Shopco; both run ERPs, and so does Rival, a stranger to this dispatch
    hub = live_hub
    await hub.tenant("acme", "supplier")
    await hub.tenant("shopco", "retailer")
    await hub.tenant("rival", "retailer")
    sku = {"code": "YOG-1", "name": "Yogurt 500 g", "gtin": YOGURT_GTIN, "shelfLifeDays": 30}
    await hub.ok(UPSERT_SKU, {"input": sku}, tenant="acme")
    for tenant, code, kind in (("acme", "WH-1", "warehouse"), ("shopco", "DC-1", "dc")):
        await hub.ok(CREATE_LOCATION, {"input": {"code": code, "name": code, "kind": kind}}, tenant=tenant)
    _, shopco_secret = await create_endpoint(hub, "shopco", receiver.at("/shopco"), ["mismatch.detected"])
    _, acme_secret = await create_endpoint(hub, "acme", receiver.at("/acme"), ["mismatch.detected"])
    await create_endpoint(hub, "rival", receiver.at("/rival"), ["mismatch.detected"])
    supply = Supply(hub)
    await supply.partner("shopco", "acme", ["dispatches"])  # Shopco accepts Acme's dispatches, shares no alerts
    dispatch = await supply.dispatch([yogurt_line(100, "B240315")])
    # when: Shopco scans the neighbouring lot
    receipt = await supply.receive(
        dispatch["id"], [{"sku": YOGURT_GTIN, "lotCode": "B240314", "quantity": 100}], final=True
    )
    # then: a mismatch is heard by the dispatch's parties by being parties (no alerts share needed), nobody else
    assert receipt["outcome"] == "mismatched"
    for path, secret in (("/shopco", shopco_secret), ("/acme", acme_secret)):
        [request] = await receiver.wait_for(1, path)
        body = request.verify(secret)
        assert body["type"] == "mismatch.detected"
        assert body["data"]["alert"]["id"] == receipt["alertId"]
        assert body["data"]["alert"]["kind"] == "mismatch"
    assert receiver.on("/rival") == []
    assert await deliveries(hub, "rival") == []


async def test_the_event_bus_wakes_the_dispatcher_without_waiting_for_its_poll(settings, receiver):
    # given: a hub whose dispatcher would otherwise look at the log only once a minute
    async for hub in start_hub(settings.with_(webhook_poll_seconds=60)):
        await hub.tenant("acme", "retailer")
        await create_endpoint(hub, "acme", receiver.at("/erp"), ["mismatch.detected"])
        # when
        await raise_mismatch(hub, "acme", [])
        # then: it arrives long before the next poll would have found it
        [request] = await receiver.wait_for(1, timeout=10)
        assert json.loads(request.body)["type"] == "mismatch.detected"
