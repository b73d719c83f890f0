"""A receipt's location is the receiver's business: a webhook to the other parties does not carry it.

GraphQL shows ``Receipt.locationId`` to the receiver only (and EPCIS exports follow it); the ``receipt.recorded``
webhook, sent to every party of the dispatch, must not carry it to the shipper either.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Hub, hub_settings, start_hub

INVITE = "mutation($i: InvitePartnerInput!) { invitePartner(input: $i) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id } }"
ENDPOINT = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { endpoint { id } } }"
DELIVERIES = "{ webhookDeliveries(first: 10) { nodes { eventType body } } }"


@pytest.fixture(scope="module")
async def hub(key_file, mongo_uri) -> AsyncIterator[Hub]:
    # Endpoints on loopback (a closed port): the deliveries are stored with the body they carry.
    async for running in start_hub(hub_settings(key_file, mongo_uri, webhook_allow_private=True)):
        yield running


async def delivered(hub: Hub, tenant: str) -> dict:
    deadline = asyncio.get_running_loop().time() + 20
    while not (nodes := (await hub.ok(DELIVERIES, tenant=tenant))["webhookDeliveries"]["nodes"]):
        assert asyncio.get_running_loop().time() < deadline, "no delivery was made"
        await asyncio.sleep(0.05)
    return json.loads(nodes[0]["body"])


async def test_the_receipt_webhook_names_the_receiving_location_to_the_receiver_only(hub):
    brand, shop = await hub.tenant("brand"), await hub.tenant("shop", "retailer")
    invited = await hub.ok(INVITE, {"i": {"partnerId": shop, "weShare": [], "theyShare": ["dispatches"]}},
                           tenant=brand)
    await hub.ok(ACCEPT, {"id": invited["invitePartner"]["id"]}, tenant=shop)
    await hub.ok("mutation { upsertSku(input: {code: \"S1\", name: \"s\"}) { created } }", tenant=brand)
    dock = (await hub.ok("mutation { createLocation(input: {code: \"DOCK\", name: \"d\", kind: dc}) { id } }",
                         tenant=shop))["createLocation"]["id"]
    for tenant in (brand, shop):
        await hub.ok(ENDPOINT, {"i": {"url": f"http://127.0.0.1:9/{tenant}", "eventTypes": ["receipt.recorded"]}},
                     tenant=tenant)
    line = {"sku": "S1", "lotCode": "L1", "quantity": 5}
    dispatch = await hub.ok("mutation($i: CreateDispatchInput!) { createDispatch(input: $i) { id } }",
                            {"i": {"ref": "ASN-1", "consigneeId": shop, "lines": [line]}}, tenant=brand)
    await hub.ok("mutation($i: RecordReceiptInput!) { recordReceipt(input: $i) { id } }",
                 {"i": {"dispatchId": dispatch["createDispatch"]["id"], "locationId": dock, "final": True,
                        "lines": [line]}}, tenant=shop)

    to_shop, to_brand = await delivered(hub, shop), await delivered(hub, brand)

    assert to_shop["data"]["receipt"]["locationId"] == dock
    assert to_brand["data"]["receipt"]["locationId"] is None and dock not in json.dumps(to_brand)
    assert to_brand["data"]["receipt"]["lines"] == to_shop["data"]["receipt"]["lines"]
