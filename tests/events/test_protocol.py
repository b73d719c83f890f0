"""graphql-transport-ws on the wire: authentication at connection_init, token expiry, and the protocol's close codes.

Frames are written by hand with the ``websockets`` client, so every malformed case reaches the hub as sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

PROTOCOL = ["graphql-transport-ws"]
SUBSCRIBE = {"query": "subscription { alerts { cursor type } }"}
PORTAL = "https://portal.example"


@pytest.fixture
def settings(settings):
    return settings.with_(max_subscriptions_per_connection=2, allowed_origins=(PORTAL,))


async def closed_with(ws: ClientConnection, timeout: float = 5.0) -> int:
    """Read until the hub closes the socket; answers the close code."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def send(ws: ClientConnection, message: Any) -> None:
    await ws.send(message if isinstance(message, str) else json.dumps(message))


async def acknowledged(hub, tenant: str = "acme", **kw: Any) -> ClientConnection:
    ws = await connect(hub.ws_url, subprotocols=PROTOCOL, **kw)
    await send(ws, {"type": "connection_init", "payload": {"authorization": f"Bearer {hub.token(tenant, 'viewer')}"}})
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
    return ws


@pytest.fixture
async def acme(hub):
    await hub.tenant("acme")


async def test_connection_without_a_valid_token_closes_with_4403(hub, acme):
    # one hub for every case: starting one per case costs seconds
    for payload in ({}, {"authorization": "Bearer not-a-jwt"}, {"authorization": 42}, {"authorization": "Basic YWJj"}):
        async with connect(hub.ws_url, subprotocols=PROTOCOL) as ws:
            await send(ws, {"type": "connection_init", "payload": payload})
            assert await closed_with(ws) == 4403, payload


async def test_an_expired_token_closes_with_4403(hub, acme):
    expired = hub.token("acme", "viewer", ttl=-120)  # beyond the validator's clock-skew leeway
    async with connect(hub.ws_url, subprotocols=PROTOCOL) as ws:
        await send(ws, {"type": "connection_init", "payload": {"authorization": f"Bearer {expired}"}})
        assert await closed_with(ws) == 4403


async def test_an_open_socket_is_closed_when_its_token_expires(hub, acme):
    short = hub.token("acme", "viewer", ttl=2)
    async with connect(hub.ws_url, subprotocols=PROTOCOL) as ws:
        await send(ws, {"type": "connection_init", "payload": {"authorization": f"Bearer {short}"}})
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await send(ws, {"id": "1", "type": "subscribe", "payload": SUBSCRIBE})
        assert await closed_with(ws, timeout=6) == 4403


async def test_subscribe_before_the_connection_is_acknowledged_closes_with_4401(hub, acme):
    async with connect(hub.ws_url, subprotocols=PROTOCOL) as ws:
        await send(ws, {"id": "1", "type": "subscribe", "payload": SUBSCRIBE})
        assert await closed_with(ws) == 4401


async def test_a_duplicate_operation_id_closes_with_4409(hub, acme):
    ws = await acknowledged(hub)
    await send(ws, {"id": "same", "type": "subscribe", "payload": SUBSCRIBE})
    await send(ws, {"id": "same", "type": "subscribe", "payload": SUBSCRIBE})
    assert await closed_with(ws) == 4409


async def test_a_duplicate_oversized_operation_id_still_closes_with_4409(hub, acme):
    ws = await acknowledged(hub)
    huge = "i" * 5000  # echoed into the close reason by the stock handler
    await send(ws, {"id": huge, "type": "subscribe", "payload": SUBSCRIBE})
    await send(ws, {"id": huge, "type": "subscribe", "payload": SUBSCRIBE})
    assert await closed_with(ws) == 4409


async def test_a_second_connection_init_closes_with_4429(hub, acme):
    ws = await acknowledged(hub)
    await send(ws, {"type": "connection_init", "payload": {}})
    assert await closed_with(ws) == 4429


MALFORMED = [
    "{not json",
    "[1, 2, 3]",
    '"subscribe"',
    {"type": "launch"},
    {"type": "subscribe", "id": "1"},
    {"type": "subscribe", "id": "1", "payload": "subscription { alerts { type } }"},
    {"type": "subscribe", "id": 7, "payload": SUBSCRIBE},
    {"type": "subscribe", "id": "1", "payload": {**SUBSCRIBE, "variables": [1]}},
    {"type": "subscribe", "id": "1", "payload": {"query": "subscription {"}},
    {"type": "x" * 5000},
]


async def test_a_malformed_message_closes_with_4400(hub, acme):
    for frame in MALFORMED:
        ws = await acknowledged(hub)
        await send(ws, frame)
        assert await closed_with(ws) == 4400, frame


async def test_a_binary_frame_closes_with_4400(hub, acme):
    ws = await acknowledged(hub)
    await ws.send(b"\x00\x01")
    assert await closed_with(ws) == 4400


async def test_ping_is_answered_with_pong(hub, acme):
    ws = await acknowledged(hub)
    await send(ws, {"type": "ping"})
    assert json.loads(await ws.recv()) == {"type": "pong"}
    await ws.close()


async def test_subscriptions_per_connection_are_limited(hub, acme):
    ws = await acknowledged(hub)
    for operation in ("1", "2", "3"):
        await send(ws, {"id": operation, "type": "subscribe", "payload": SUBSCRIBE})
    refusal = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert refusal["id"] == "3" and refusal["type"] == "error"
    assert "limit" in refusal["payload"][0]["message"]
    await ws.close()


async def test_a_browser_page_on_an_allowed_origin_may_connect(hub, acme):
    ws = await acknowledged(hub, origin=PORTAL)
    await ws.close()


async def test_a_browser_page_on_another_origin_is_refused(hub, acme):
    with pytest.raises(InvalidStatus) as refused:
        await connect(hub.ws_url, subprotocols=PROTOCOL, origin="https://evil.example")
    assert refused.value.response.status_code == 403


async def test_cors_preflight_allows_the_configured_portal_only(hub):
    headers = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    allowed = await hub.http.options("/graphql", headers={"origin": PORTAL, **headers})
    assert allowed.headers.get("access-control-allow-origin") == PORTAL
    refused = await hub.http.options("/graphql", headers={"origin": "https://evil.example", **headers})
    assert refused.headers.get("access-control-allow-origin") is None


async def test_a_token_that_trips_the_jwt_library_closes_with_4403_not_an_internal_error(hub, acme, monkeypatch):
    async def trips(authorization):
        raise TypeError("key type mismatch inside the JWT library")

    monkeypatch.setattr(hub.state.validator, "authenticate", trips)
    async with connect(hub.ws_url, subprotocols=PROTOCOL) as ws:
        await send(ws, {"type": "connection_init", "payload": {"authorization": "Bearer crafted"}})
        assert await closed_with(ws) == 4403
