"""A revocation holds on an open WebSocket too: queries and mutations sent over graphql-transport-ws after it.

One connection serves many operations (graphql-transport-ws runs queries and mutations as well as subscriptions);
what a partner may read or name is decided afresh for each operation, as it is for each HTTP request.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

INVITE = "mutation($i: InvitePartnerInput!) { invitePartner(input: $i) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id } }"
REVOKE = "mutation($id: ID!) { revokePartnership(id: $id) { status } }"
SKUS = "{ skus { nodes { code ownerId } } }"
DISPATCH = "mutation($i: CreateDispatchInput!) { createDispatch(input: $i) { id } }"


async def run(ws: ClientConnection, operation_id: str, query: str, variables: dict[str, Any] | None = None) -> dict:
    """One operation over the socket; answers its result (``next``), or its errors (``error``)."""
    await ws.send(json.dumps({"id": operation_id, "type": "subscribe",
                              "payload": {"query": query, "variables": variables or {}}}))
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if message.get("id") == operation_id and message["type"] in ("next", "error"):
            return message["payload"] if message["type"] == "next" else {"errors": message["payload"]}


async def test_a_revoked_partner_reads_and_names_nothing_more_over_an_open_socket(hub, acme, globex):
    # acme shares its SKU master with globex; globex consents to receive acme's dispatches
    invited = await hub.ok(INVITE, {"i": {"partnerId": globex, "weShare": ["sku_master"], "theyShare": ["dispatches"]}},
                           tenant=acme)
    partnership = invited["invitePartner"]["id"]
    await hub.ok(ACCEPT, {"id": partnership}, tenant=globex)
    await hub.ok("mutation { upsertSku(input: {code: \"SECRET-1\", name: \"s\"}) { created } }", tenant=acme)
    line = {"sku": "SECRET-1", "lotCode": "L1", "quantity": 1}
    async with connect(hub.ws_url, subprotocols=["graphql-transport-ws"]) as as_globex, \
            connect(hub.ws_url, subprotocols=["graphql-transport-ws"]) as as_acme:
        for ws, tenant in ((as_globex, globex), (as_acme, acme)):
            await ws.send(json.dumps({"type": "connection_init",
                                      "payload": {"authorization": f"Bearer {hub.token(tenant)}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
        before = await run(as_globex, "1", SKUS)
        shipped = await run(as_acme, "1", DISPATCH, {"i": {"ref": "A-1", "consigneeId": globex, "lines": [line]}})
        assert before["data"]["skus"]["nodes"] == [{"code": "SECRET-1", "ownerId": acme}]
        assert "errors" not in shipped, shipped

        await hub.ok(REVOKE, {"id": partnership}, tenant=globex)

        after = await run(as_globex, "2", SKUS)
        refused = await run(as_acme, "2", DISPATCH, {"i": {"ref": "A-2", "consigneeId": globex, "lines": [line]}})
    assert after["data"]["skus"]["nodes"] == []
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["NOT_FOUND"]
