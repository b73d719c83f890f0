"""Live subscriptions hold bounded memory: a real hub process, its RSS read from /proc, many deliveries.

Before the fix (schema/subscriptions.py: every live event gets its own subfield memo) each delivered
``stockChanged`` message left ~3 KB behind until the subscriber left (50 subscribers x 1,000 events: 92 -> 240
MiB), and the hub's RSS stayed there after they had gone. The thresholds sit far from both sides: the defect grows
~3,000 KiB per 1,000 deliveries; a fixed hub measured 40-200 KiB (allocator noise: arenas being filled), so the limit
of 1,024 KiB per 1,000 deliveries is 3x under the defect and 5x over the noise. After the subscribers left, the
fixed hub was ~10 MiB over its RSS before they came (their sockets' buffers and compressors, interpreter caches);
the defect would leave 60 MiB of 20,000 deliveries, so the limit is 32 MiB.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from hub.auth import mint_local_token
from hub.config import Settings
from hub.db import Database, free_port
from hub.events.log import build_event, emit_many
from hub.keys import KeyFile
from tenants import service as tenant_service

pytestmark = pytest.mark.slow
SUBSCRIBERS = 20
WARM_UP_EVENTS = 300
MEASURED_EVENTS = 1_000
GROWTH_PER_1000_DELIVERIES_KIB = 1024  # the defect: ~3,000; fixed: 0-200
AFTER_DISCONNECT_MARGIN_MIB = 32  # RSS once every subscriber left, over what it was before they came (the defect: 60+)
STOCK_CHANGED = "subscription { stockChanged { cursor occurredAt positions { holderId skuId onHand delta lotCode } } }"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def position(n: int) -> dict[str, Any]:
    return {"tenantId": "mem", "locationId": "loc-1", "skuId": "sku-1", "skuOwnerId": "mem", "lotId": None,
            "lotCode": f"L{n}", "onHand": n, "delta": 1, "expiresOn": None}


async def subscriber(url: str, token: str) -> tuple[ClientConnection, list[int]]:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": STOCK_CHANGED}}))
    return ws, [0]


async def test_delivering_thousands_of_messages_holds_memory_flat_and_leaving_releases_it(mongo_uri, key_file,
                                                                                         tmp_path):
    # given: a hub process of its own
    port, name = free_port(), f"mem_{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "LOTPULSE_MONGODB_URI": mongo_uri, "LOTPULSE_DATABASE": name, "LOTPULSE_PORT": str(port),
           "LOTPULSE_SIGNING_KEY_FILE": str(key_file), "LOTPULSE_DATA_DIR": str(tmp_path),
           "LOTPULSE_LOG_LEVEL": "WARNING", "LOTPULSE_WEBHOOK_WORKER": "false", "LOTPULSE_RUNTIME_DIR": str(tmp_path)}
    database = await Database.connect(mongo_uri, name)
    await tenant_service.create_tenant("mem", "Mem", "retailer")
    hub = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env,
                           stdout=open(tmp_path / "hub.log", "ab"), stderr=subprocess.STDOUT)
    sockets: list[ClientConnection] = []
    readers: list[asyncio.Task[None]] = []
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(1200):
                assert hub.poll() is None, (tmp_path / "hub.log").read_text()[-2000:]
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        token = mint_local_token(Settings.from_env(env), KeyFile(key_file), "mem", ["viewer"], 3600)
        before_subscribers = rss_kib(hub.pid)
        counts: list[list[int]] = []

        async def read(ws: ClientConnection, count: list[int]) -> None:
            async for raw in ws:
                if json.loads(raw)["type"] == "next":
                    count[0] += 1

        for _ in range(SUBSCRIBERS):
            ws, count = await subscriber(f"ws://127.0.0.1:{port}/graphql", token)
            sockets.append(ws)
            counts.append(count)
            readers.append(asyncio.create_task(read(ws, count)))
        sent = 0

        async def publish(events: int) -> None:
            nonlocal sent
            for start in range(0, events, 100):
                await emit_many(None, [build_event("stock.changed", "mem", ["mem"], {"positions": [position(n)]})
                                       for n in range(sent + start, sent + min(events, start + 100))])
            sent += events
            for _ in range(1800):
                if min(count[0] for count in counts) >= sent:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"deliveries lag: {[c[0] for c in counts]} of {sent}")

        await asyncio.sleep(1)  # every subscription is on the bus (the first event proves it below)
        # when: a warm-up, then 1,000 events to each of 20 subscribers
        await publish(WARM_UP_EVENTS)
        warm = rss_kib(hub.pid)
        await publish(MEASURED_EVENTS)
        grown = rss_kib(hub.pid) - warm
        # then: RSS stays flat
        per_1000 = grown * 1000 / (SUBSCRIBERS * MEASURED_EVENTS)
        assert per_1000 < GROWTH_PER_1000_DELIVERIES_KIB, f"{per_1000:.0f} KiB per 1,000 deliveries"
        # and when every subscriber leaves, the hub is back near where it was before they came
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
        await asyncio.sleep(3)
        after = rss_kib(hub.pid)
        assert after - before_subscribers < AFTER_DISCONNECT_MARGIN_MIB * 1024, (before_subscribers, warm, after)
        print(f"RSS KiB: {before_subscribers} before subscribers, {warm} after warm-up, +{grown} over "
              f"{SUBSCRIBERS * MEASURED_EVENTS} deliveries ({per_1000:.0f} KiB per 1,000), {after} after they left")
    finally:
        for task in readers:
            task.cancel()
        hub.terminate()
        try:
            hub.wait(30)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
        await database.client.drop_database(name)
        await database.close()
