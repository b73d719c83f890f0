"""A subscriber that stops reading is cut off by the hub with RATE_LIMITED and a resumable cursor.

Against a real hub process and a client on a plain socket that subscribes and then never reads (with a small receive
buffer, so the kernel's buffering does not hide the stall for megabytes). Before, such a subscriber's task stayed
blocked writing to its socket until the WebSocket keepalive dropped it (1011), and it never heard RATE_LIMITED.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from hub.auth import mint_local_token
from hub.config import Settings
from hub.dates import utcnow
from hub.db import Database, free_port
from hub.events.bus import LiveEvent
from hub.events.log import build_event, emit_many
from hub.keys import KeyFile
from schema.ws import SLOW_CONSUMER
from tenants import service as tenant_service

TENANT = "slow"
QUEUE_SIZE = 20
STOCK_CHANGED = "subscription($after: ID) { stockChanged(after: $after) { cursor positions { lotCode onHand } } }"


def positions(n: int) -> list[dict[str, Any]]:
    """A stock change of 300 positions (~20 KB as a message): a socket's kernel buffers (up to 4 MiB) fill after a
    couple of hundred."""
    return [{"tenantId": TENANT, "locationId": "loc-1", "skuId": f"sku-{k}", "skuOwnerId": TENANT, "lotId": None,
             "lotCode": f"L{n}-{k}", "onHand": n, "delta": 1, "expiresOn": None} for k in range(300)]


class StalledClient:
    """graphql-transport-ws over a plain non-blocking socket, read only when the test says so."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: it sets the window
        self.sock.setblocking(False)
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/graphql"),
                                       subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None)
        self.loop = asyncio.get_running_loop()

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await self.loop.sock_sendall(self.sock, data)

    async def _frames(self, timeout: float) -> list[Any]:
        data = await asyncio.wait_for(self.loop.sock_recv(self.sock, 65536), timeout)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        await self._flush()  # answers pings and the close frame, as a client library would
        return [event for event in self.protocol.events_received() if hasattr(event, "opcode")]

    async def open(self, token: str) -> None:
        await self.loop.sock_connect(self.sock, ("127.0.0.1", self.port))
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        while self.protocol.handshake_exc is None and not self.protocol.events_received():
            self.protocol.receive_data(await asyncio.wait_for(self.loop.sock_recv(self.sock, 65536), 10))
        await self.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        frames = await self._frames(10)
        assert json.loads(frames[0].data)["type"] == "connection_ack"

    async def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        await self._flush()

    async def read_until_error(self) -> tuple[list[dict[str, Any]], int | None]:
        """What the hub left for this client, in order, up to its ``error`` message, and the close code that came
        with it (None: the socket stayed open)."""
        messages: list[dict[str, Any]] = []
        while not any(message["type"] == "error" for message in messages) and self.protocol.close_rcvd is None:
            frames = await self._frames(20)
            messages.extend(json.loads(frame.data) for frame in frames if frame.opcode == Opcode.TEXT)
        if self.protocol.close_rcvd is None:
            with contextlib.suppress(TimeoutError):
                await self._frames(0.5)
        return messages, self.protocol.close_rcvd.code if self.protocol.close_rcvd else None

    def close(self) -> None:
        self.sock.close()


@pytest.mark.slow
async def test_a_subscriber_that_never_reads_is_cut_off_with_rate_limited_and_resumes_exactly(mongo_uri, key_file,
                                                                                               tmp_path):
    # given: a hub process with a small subscriber queue
    port, name = free_port(), f"slow_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "LOTPULSE_MONGODB_URI": mongo_uri, "LOTPULSE_DATABASE": name, "LOTPULSE_PORT": str(port),
           "LOTPULSE_SIGNING_KEY_FILE": str(key_file), "LOTPULSE_DATA_DIR": str(tmp_path),
           "LOTPULSE_LOG_LEVEL": "WARNING", "LOTPULSE_WEBHOOK_WORKER": "false", "LOTPULSE_RUNTIME_DIR": str(tmp_path),
           "LOTPULSE_SUBSCRIBER_QUEUE_SIZE": str(QUEUE_SIZE), "LOTPULSE_METRICS_TOKEN": "slow-test"}
    database = await Database.connect(mongo_uri, name)
    await tenant_service.create_tenant(TENANT, "Slow", "retailer")
    hub = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env,
                           stdout=open(tmp_path / "hub.log", "ab"), stderr=subprocess.STDOUT)
    client = StalledClient(port)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(1200):
                assert hub.poll() is None, (tmp_path / "hub.log").read_text()[-2000:]
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        token = mint_local_token(Settings.from_env(env), KeyFile(key_file), TENANT, ["viewer"], 3600)
        gauge = f'lotpulse_live_subscriptions{{tenant="{TENANT}"}} '

        async def live_subscriptions() -> int:
            """The hub's own count (in its memory: no database round trip that could lag behind the cut)."""
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics",
                                       headers={"authorization": "Bearer slow-test"})).text
            return next((int(float(row.split()[-1])) for row in text.splitlines() if row.startswith(gauge)), 0)

        await client.open(token)
        await client.send({"id": "s1", "type": "subscribe", "payload": {"query": STOCK_CHANGED}})
        for _ in range(600):
            if await live_subscriptions() == 1:
                break
            await asyncio.sleep(0.05)
        assert await live_subscriptions() == 1

        # when: stock keeps changing and the client never reads
        published: list[str] = []
        for batch in range(100):
            if await live_subscriptions() == 0:
                break
            events = [build_event("stock.changed", TENANT, [], {"positions": positions(batch * 10 + n)})
                      for n in range(10)]
            await emit_many(None, events)
            published.extend(str(event.id) for event in events)
            await asyncio.sleep(0.1)
        # then: the hub let go of the subscription (its queue and its slot) while the client still was not reading
        for _ in range(600):
            if await live_subscriptions() == 0:
                break
            await asyncio.sleep(0.05)
        assert await live_subscriptions() == 0, f"still subscribed after {len(published)} events"
        assert len(published) < 1000

        # and what the client finds once it reads: the messages written before the cut, then RATE_LIMITED with
        # the cursor of the last of them, then (when the socket was stuck, as it usually is by then) the close code
        # of a slow consumer
        messages, code = await client.read_until_error()
        delivered = [m["payload"]["data"]["stockChanged"]["cursor"] for m in messages if m["type"] == "next"]
        errors = [m for m in messages if m["type"] == "error"]
        assert len(errors) == 1 and errors[0]["id"] == "s1", messages[-3:]
        extensions = errors[0]["payload"][0]["extensions"]
        assert extensions["code"] == "RATE_LIMITED"
        assert delivered and extensions["cursor"] == delivered[-1]
        assert messages[-1] is errors[0]
        assert code in (SLOW_CONSUMER, None)
        assert delivered == published[: len(delivered)]  # in order, nothing skipped before the cut
        missed = published[len(delivered):]
        assert missed  # the cut happened with events still to come

        # and resubscribing from the cursor gets exactly what was missed
        async with connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "s2", "type": "subscribe",
                                      "payload": {"query": STOCK_CHANGED, "variables": {"after": delivered[-1]}}}))
            resumed = []
            for _ in missed:
                message = json.loads(await asyncio.wait_for(ws.recv(), 20))
                assert message["type"] == "next", message
                resumed.append(message["payload"]["data"]["stockChanged"]["cursor"])
            assert resumed == missed
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
    finally:
        client.close()
        hub.terminate()
        try:
            hub.wait(30)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
        await database.client.drop_database(name)
        await database.close()


async def test_a_full_queue_ends_only_that_subscription_and_it_resumes_from_its_cursor(hub):
    """While the socket still takes writes, a subscriber whose queue fills gets RATE_LIMITED with its cursor; the
    other subscription on the same socket goes on, and the same operation id resumes exactly from the cursor."""
    await hub.tenant(TENANT, "retailer")
    bus = hub.state.bus
    token = hub.token(TENANT, "viewer")

    async def publish(n: int) -> str:
        event = build_event("stock.changed", TENANT, [], {"positions": positions(n)[:1]})
        await emit_many(None, [event])
        return str(event.id)

    async def next_cursors(ws: Any, count: int) -> dict[str, list[str]]:
        by_operation: dict[str, list[str]] = {}
        for _ in range(count):
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "next", message
            by_operation.setdefault(message["id"], []).append(message["payload"]["data"]["stockChanged"]["cursor"])
        return by_operation

    async with connect(hub.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        for operation_id in ("a", "b"):
            await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": STOCK_CHANGED}}))
        for _ in range(500):
            if bus.count(TENANT) == 2:
                break
            await asyncio.sleep(0.01)
        first = await publish(1)
        assert await next_cursors(ws, 2) == {"a": [first], "b": [first]}

        # when: subscription "a" falls a full queue behind (its queue is filled as the bus would, faster than it
        # can write: nothing in this process runs between these offers). Its reader counts as busy (replaying, say):
        # the bus queues for it instead of writing from its own turn.
        behind = next(s for s in bus.by_tenant[TENANT] if s.queue.maxsize and not s.overflowed)
        behind.parked = False
        stand_in = LiveEvent(id="0" * 24, seq=10**9, type="stock.changed", tenant_id=TENANT, audience=(TENANT,),
                             payload={"positions": positions(0)[:1]}, occurred_at=utcnow())
        for _ in range(behind.queue.maxsize + 1):
            behind.offer(stand_in)
        assert behind.overflowed
        # then: it hears RATE_LIMITED with the cursor of the last event written to it, and nothing after
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error["type"] == "error", error
        cut = error["id"]
        assert error["payload"][0]["extensions"] == {"code": "RATE_LIMITED", "cursor": first}
        for _ in range(500):
            if bus.count(TENANT) == 1:
                break
            await asyncio.sleep(0.01)
        assert bus.count(TENANT) == 1  # its queue and its slot are released
        other = "b" if cut == "a" else "a"

        # and the other subscription on the socket carries on, while the cut one misses two events
        missed = [await publish(2), await publish(3)]
        assert await next_cursors(ws, 2) == {other: missed}

        # and the same id, resubscribed with the cursor, gets exactly what it missed
        await ws.send(json.dumps({"id": cut, "type": "subscribe",
                                  "payload": {"query": STOCK_CHANGED, "variables": {"after": first}}}))
        assert await next_cursors(ws, 2) == {cut: missed}
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)
