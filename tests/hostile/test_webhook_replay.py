"""replayWebhookDeliveries from any instant the DateTime scalar accepts. Its own module: it needs a hub that may
deliver to loopback (the function-scoped ``hub``), which must not close the client a module's shared hub uses."""

from __future__ import annotations

from tests.conftest import Hub

UPSERT_SKU = "mutation($i: SkuInput!) { upsertSku(input: $i) { sku { id } } }"


async def test_replaying_from_any_instant_of_the_calendar_is_answered(hub: Hub) -> None:
    await hub.tenant("replayer")
    await hub.ok(UPSERT_SKU, {"i": {"code": "S1", "name": "Soup"}}, tenant="replayer")  # an event to replay
    created = await hub.ok('mutation { createWebhookEndpoint(input: {url: "http://127.0.0.1:9/in"}) '
                           '{ endpoint { id } } }', tenant="replayer")
    endpoint = created["createWebhookEndpoint"]["endpoint"]["id"]
    replay = "mutation($e: ID!, $s: DateTime!) { replayWebhookDeliveries(endpointId: $e, since: $s) { queued } }"
    queued = []
    for since in ("1900-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2999-12-31T00:00:00Z"):
        data = await hub.ok(replay, {"e": endpoint, "s": since}, tenant="replayer")
        queued.append(data["replayWebhookDeliveries"]["queued"])
    assert queued[0] >= 1 and queued[2] == 0, queued  # before 1970: everything; the far future: nothing
