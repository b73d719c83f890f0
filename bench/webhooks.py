"""Webhook throughput: signed, logged deliveries per second to a local receiver, next to raw httpx POSTs to it.

    python bench/webhooks.py [--deliveries 1000] [--endpoints 1] [--latency-samples 20]

Uses LOTPULSE_MONGODB_URI when set, else starts an embedded SecantusDB in a temporary directory. Both rates are
measured in the same run against the same receiver (uvicorn on 127.0.0.1) with the same concurrency, so the gap is
what durability costs: creating the delivery, leasing it, signing, and logging every attempt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.auth import Principal
from hub.config import Settings
from hub.db import Database, EmbeddedServer, free_port
from hub.events.log import build_event, emit_many
from tenants import service as tenants
from tenants.access import Access
from webhooks import service
from webhooks.models import DeliveryState, WebhookDelivery
from webhooks.runtime import build


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: dict[str, float] = {}
        self.count = 0

    async def handle(self, request: Request) -> Response:
        await request.body()
        self.count += 1
        webhook_id = request.headers.get("webhook-id")
        if webhook_id:
            self.arrivals.setdefault(webhook_id, time.perf_counter())
        return Response("ok")

    async def start(self) -> uvicorn.Server:
        app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        return server


async def raw_posts(url: str, count: int, concurrency: int) -> float:
    body = b'{"type":"stock.changed","timestamp":"2026-11-23T00:00:00Z","data":{}}'
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=15) as http:

        async def one() -> None:
            async with limit:
                (await http.post(url, content=body, headers={"content-type": "application/json"})).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def main(args: argparse.Namespace) -> None:
    server: EmbeddedServer | None = None
    uri = os.environ.get("LOTPULSE_MONGODB_URI")
    if not uri:
        server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="lotpulse-bench-")) / "db")
        server.start()
        uri = server.uri
    name = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    database = await Database.connect(uri, name)
    receiver = Receiver()
    http_server = await receiver.start()
    settings = Settings(webhook_allow_private=True, webhook_poll_seconds=0.1)
    try:
        url = f"http://127.0.0.1:{receiver.port}"
        raw = await raw_posts(f"{url}/raw", args.deliveries, settings.webhook_endpoint_concurrency * args.endpoints)

        tenant_ids = [f"bench-{n}" for n in range(args.endpoints)]
        for tenant in tenant_ids:
            await tenants.create_tenant(tenant, tenant, "retailer")
            admin = Access(Principal(tenant_id=tenant, subject="bench", issuer="bench", roles=frozenset({"admin"})))
            await service.create_endpoint(admin, settings, f"{url}/{tenant}", [])
        per_tenant = args.deliveries // args.endpoints
        events = [
            build_event("stock.changed", tenant, [], {"stockChanged": {"n": n}})
            for tenant in tenant_ids
            for n in range(per_tenant)
        ]
        await emit_many(None, events)
        total = len(events)

        # Throughput: a backlog of events, dispatched and delivered by the same loops a hub process runs.
        dispatcher, worker = build(settings)
        started = time.perf_counter()
        loops = [asyncio.create_task(dispatcher.run()), asyncio.create_task(worker.run())]
        while len(receiver.arrivals) < total:
            await asyncio.sleep(0.01)
        delivered_at = time.perf_counter()
        while await WebhookDelivery.find({"state": DeliveryState.succeeded.value}).count() < total:
            await asyncio.sleep(0.05)
        logged_at = time.perf_counter()

        # Latency: one event at a time, from its commit to its arrival at the receiver.
        latencies = []
        for n in range(args.latency_samples):
            event = build_event("stock.changed", tenant_ids[0], [], {"stockChanged": {"probe": n}})
            await emit_many(None, [event])
            committed = time.perf_counter()
            while str(event.id) not in receiver.arrivals:
                await asyncio.sleep(0.002)
            latencies.append((receiver.arrivals[str(event.id)] - committed) * 1000)
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

        # For scale: single-document reads and writes, the units every step above pays a few of.
        collection = WebhookDelivery.get_pymongo_collection()
        reads, writes = [], []
        for _ in range(50):
            started_rt = time.perf_counter()
            await collection.find_one({"event_id": events[0].id})
            reads.append((time.perf_counter() - started_rt) * 1000)
            started_rt = time.perf_counter()
            await collection.update_one({"event_id": events[0].id}, {"$inc": {"bench_touch": 1}})
            writes.append((time.perf_counter() - started_rt) * 1000)

        print(f"database: {'SecantusDB (embedded)' if server else uri.split('@')[-1]}; endpoints: {args.endpoints}; "
              f"per-endpoint concurrency: {settings.webhook_endpoint_concurrency}")
        print(f"raw httpx POST to the receiver:          {raw:8.0f} requests/s  ({args.deliveries} requests)")
        print(f"webhook deliveries arriving (signed):    {total / (delivered_at - started):8.0f} deliveries/s "
              f"({total} events -> {total} deliveries)")
        print(f"webhook deliveries arrived and logged:   {total / (logged_at - started):8.0f} deliveries/s")
        print(f"database read / write of one document:   p50 {statistics.median(reads):.1f} / "
              f"{statistics.median(writes):.1f} ms, p99 {pct(reads, 0.99):.1f} / {pct(writes, 0.99):.1f} ms")
        if latencies:
            print(f"event commit -> arrival latency:         p50 {statistics.median(latencies):.0f} ms, "
                  f"p99 {pct(latencies, 0.99):.0f} ms ({len(latencies)} samples, poll "
                  f"{settings.webhook_poll_seconds * 1000:.0f} ms)")
    finally:
        http_server.should_exit = True
        await database.client.drop_database(name)
        await database.close()
        if server:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=1)
    parser.add_argument("--latency-samples", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
