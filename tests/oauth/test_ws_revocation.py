"""An open WebSocket dies with its token: revoking the token or deleting its client closes the socket with 4403."""

from __future__ import annotations

import asyncio
import json
import uuid

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from hub.db import free_port
from tests.conftest import start_hub
from tests.oauth.conftest import create_client, erp

PROTOCOL = ["graphql-transport-ws"]
DELETE_CLIENT = "mutation($id: String!) { deleteOAuthClient(clientId: $id) }"


async def _open_socket(hub, access_token: str):
    ws = await connect(hub.ws_url, subprotocols=PROTOCOL)
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {access_token}"}}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
    return ws


async def _close_code(ws, timeout: float) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def test_revoking_or_deleting_closes_open_sockets(settings):
    # given a hub that re-checks revocation every second, and an ERP with two sockets open on two tokens
    port = free_port()
    fast = settings.with_(port=port, public_url=f"http://127.0.0.1:{port}", oauth_revocation_cache_seconds=1.0)
    async for hub in start_hub(fast):
        acme = await hub.tenant(f"acme-{uuid.uuid4().hex[:6]}", "supplier")
        client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
        async with erp(hub, client_id, secret) as client:
            first = await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials")
            second = await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials")
            revoked_socket = await _open_socket(hub, first["access_token"])
            other_socket = await _open_socket(hub, second["access_token"])
            # when the first token is revoked
            await client.revoke_token(f"{hub.url}/oauth/revoke", token=first["access_token"])
        # then its socket closes with 4403, the other stays open
        assert await _close_code(revoked_socket, 5) == 4403
        await other_socket.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(other_socket.recv(), 5))["type"] == "pong"
        # when the client is deleted, its remaining socket closes too
        await hub.ok(DELETE_CLIENT, {"id": client_id}, tenant=acme)
        assert await _close_code(other_socket, 5) == 4403
