"""End to end: events become signed webhooks at a real receiver, verified by the standardwebhooks library."""

from __future__ import annotations

import json

from tests.webhooks.helpers import create_endpoint, deliveries, raise_mismatch


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
    [logged] = await deliveries(live_hub, "acme", endpoint_id)
    assert logged["webhookId"] == request.webhook_id == body["data"]["eventId"]
    assert logged["state"] == "succeeded"
    assert [a["statusCode"] for a in logged["attempts"]] == [200]
    assert logged["attempts"][0]["responseExcerpt"] == "answer 200"
