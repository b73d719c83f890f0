"""Webhook throughput and latency: signed, logged deliveries to a local receiver, next to raw httpx POSTs to it.

    python bench/webhooks.py [--deliveries 2000] [--endpoints 1] [--latency-samples 100] [--subjects N]

Uses LOTPULSE_MONGODB_URI when set, else starts an embedded SecantusDB in a temporary directory. A hub runs in this
process with its default settings (event bus, sequencer), plus the webhook dispatcher and worker a hub process runs
(leased endpoint partitions, woken by the bus), so every step from an event's commit to its arrival is the one a hub
process takes. The throughput phase starts the webhook loops on a backlog the hub has already numbered. The floor is raw
httpx POSTs to the same receiver (uvicorn on 127.0.0.1) at the same concurrency (the per-endpoint limit times the
endpoints), measured before and after the hub phase in the same run; the gap is what durability costs: numbering
the event, creating the delivery, claiming it, signing, and recording every attempt.

Deliveries about one subject (the events' ordering key) go one after another; by default each event has its own
subject, ``--subjects N`` spreads the backlog over N subjects per endpoint to show what ordering costs.

Every MongoDB command of the process is counted with pymongo's command monitoring, so the writes a delivery costs
are printed next to the rates: amortised over a backlog, and for events that arrive one at a time. So is the CPU time
(on a CPU, not waiting for one) each process spent per delivery and per floor request: on a shared machine the rates
move with the others' load, the CPU a delivery costs much less.
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
from collections import Counter
from pathlib import Path

# The repository instead of bench/ itself, whose graphql.py would shadow the graphql package the hub imports.
sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn
from pymongo import monitoring
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.harness import on_cpu, percentile
from hub.app import create_app
from hub.auth import Principal
from hub.config import Settings
from hub.db import Database, Deadlines, EmbeddedServer, free_port
from hub.events.log import build_event, emit_many
from hub.models.event import Event
from tenants import service as tenants
from tenants.access import Access
from webhooks import service
from webhooks.models import DeliveryState, WebhookDelivery
from webhooks.runtime import build, deliver, dispatch

WRITES = {"insert", "update", "delete", "findAndModify", "bulkWrite"}
READS = {"find", "getMore", "distinct", "aggregate", "count"}


class Commands(monitoring.CommandListener):
    """Counts (command, collection) while ``counting``; the benchmark's own polling is marked and left out."""

    def __init__(self) -> None:
        self.counting = False
        self.seen: Counter[tuple[str, str]] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.counting and event.command.get("comment") != "bench":
            target = event.command.get(event.command_name)
            self.seen[(event.command_name, target if isinstance(target, str) else "")] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def start(self) -> None:
        self.seen.clear()
        self.counting = True

    def stop(self) -> Counter[tuple[str, str]]:
        self.counting = False
        return Counter(self.seen)


def tally(seen: Counter[tuple[str, str]], names: set[str], webhooks_only: bool) -> int:
    return sum(n for (name, coll), n in seen.items() if name in names and (coll.startswith("webhook") or not
                                                                           webhooks_only))


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: dict[str, float] = {}

    async def handle(self, request: Request) -> Response:
        await request.body()
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


async def raw_posts(url: str, count: int, concurrency: int, cpu: list[float]) -> float:
    """Requests per second; appends the CPU seconds this process spent per request to ``cpu``."""
    before = on_cpu(os.getpid())
    rate = await _raw_posts(url, count, concurrency)
    cpu.append((on_cpu(os.getpid()) - before) / count)
    return rate


async def _raw_posts(url: str, count: int, concurrency: int) -> float:
    body = b'{"type":"stock.changed","timestamp":"2026-11-23T00:00:00Z","data":{}}'
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=15) as http:

        async def one() -> None:
            async with limit:
                (await http.post(url, content=body, headers={"content-type": "application/json"})).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)


async def start_hub(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise SystemExit("the hub did not start")
        await asyncio.sleep(0.01)
    return server, task


async def succeeded() -> int:
    return await WebhookDelivery.get_pymongo_collection().count_documents(
        {"state": DeliveryState.succeeded.value}, comment="bench"
    )


async def main(args: argparse.Namespace) -> None:
    commands = Commands()
    monitoring.register(commands)  # before any client exists: every client of the process reports to it
    tmp = Path(tempfile.mkdtemp(prefix="lotpulse-bench-"))
    server: EmbeddedServer | None = None
    uri = os.environ.get("LOTPULSE_MONGODB_URI")
    if not uri:
        server = EmbeddedServer(tmp / "db", log_path=tmp / "secantusd.log")
        server.start()
        uri = server.uri
    name = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    database = await Database.connect(uri, name, deadlines=Deadlines(operation=None, transaction=None))
    receiver = Receiver()
    http_server = await receiver.start()
    port = free_port()
    settings = Settings(mongodb_uri=uri, database=name, port=port, public_url=f"http://127.0.0.1:{port}",
                        data_dir=tmp, signing_key_file=tmp / "keys.json", webhook_allow_private=True,
                        log_level="WARNING", webhook_worker=False)
    concurrency = settings.webhook_endpoint_concurrency * args.endpoints
    hub, hub_task = await start_hub(settings)
    try:
        url = f"http://127.0.0.1:{receiver.port}"
        floor_cpu: list[float] = []
        raw_before = await raw_posts(f"{url}/raw", args.deliveries, concurrency, floor_cpu)

        tenant_ids = [f"bench-{n}" for n in range(args.endpoints)]
        for tenant in tenant_ids:
            await tenants.create_tenant(tenant, tenant, "retailer")
            admin = Access(Principal(tenant_id=tenant, subject="bench", issuer="bench", roles=frozenset({"admin"})))
            await service.create_endpoint(admin, settings, f"{url}/{tenant}", [])
        per_tenant = args.deliveries // args.endpoints
        # Deliveries about one subject go one at a time, in order (webhooks/worker.py).
        subjects = args.subjects or per_tenant
        events = [
            build_event("stock.changed", tenant, [], {"stockChanged": {"n": n}}, subject=f"bench:{n % subjects}")
            for tenant in tenant_ids
            for n in range(per_tenant)
        ]
        total = len(events)

        # Throughput: a backlog of events committed at once and numbered by the hub, then dispatched and delivered
        # by the webhook loops a hub process runs (started only now, so the numbering is not in the figure).
        started = time.perf_counter()
        await emit_many(None, events)
        while await Event.get_pymongo_collection().count_documents({"pending": True}, comment="bench"):
            await asyncio.sleep(0.05)
        numbered = time.perf_counter() - started
        hub_state = hub.config.app.state.hub  # type: ignore[attr-defined]
        dispatcher, worker = build(settings, database=hub_state.database)
        hub_state.bus.listeners.append(dispatcher.wake)
        commands.start()
        pids = {"bench process": os.getpid(), **({"database": server.process.pid} if server and server.process else {})}
        cpu_before = {name: on_cpu(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        loops = [asyncio.create_task(dispatch(dispatcher, worker)), asyncio.create_task(deliver(worker))]
        while len(receiver.arrivals) < total:
            await asyncio.sleep(0.01)
        delivered_at = time.perf_counter()
        while await succeeded() < total:
            await asyncio.sleep(0.02)
        logged_at = time.perf_counter()
        cpu_spent = {name: (on_cpu(pid) - cpu_before[name]) / total for name, pid in pids.items()}
        backlog = commands.stop()
        raw_after = await raw_posts(f"{url}/raw", args.deliveries, concurrency, floor_cpu)

        # Latency: one event at a time, from its commit to its arrival at the receiver.
        latencies = []
        commands.start()
        for n in range(args.latency_samples):
            event = build_event("stock.changed", tenant_ids[0], [], {"stockChanged": {"probe": n}})
            await emit_many(None, [event])
            committed = time.perf_counter()
            while str(event.id) not in receiver.arrivals:
                await asyncio.sleep(0.001)
            latencies.append((receiver.arrivals[str(event.id)] - committed) * 1000)
        while await succeeded() < total + args.latency_samples:
            await asyncio.sleep(0.02)
        trickle = commands.stop()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

        floor = (raw_before + raw_after) / 2
        arriving = total / (delivered_at - started)
        logged = total / (logged_at - started)
        print(f"database: {'SecantusDB (embedded)' if server else uri.split('@')[-1]}; endpoints: {args.endpoints}; "
              f"per-endpoint concurrency: {settings.webhook_endpoint_concurrency}; load average: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; subjects per endpoint: {subjects}")
        print(f"raw httpx POST to the receiver (floor):  {floor:8.0f} requests/s  (before {raw_before:.0f}, after "
              f"{raw_after:.0f}; {args.deliveries} requests each)")
        print(f"webhook deliveries arriving (signed):    {arriving:8.0f} deliveries/s  {arriving / floor:.2f}x the "
              f"floor ({total} events committed at once, numbered in {numbered:.1f} s before the loops started)")
        print(f"webhook deliveries arrived and logged:   {logged:8.0f} deliveries/s  {logged / floor:.2f}x the floor")
        print("CPU per delivery over the backlog:       " + ", ".join(f"{name} {ms * 1000:.2f} ms" for name, ms in
                                                                  cpu_spent.items())
              + f"; the floor's process {statistics.mean(floor_cpu) * 1000:.2f} ms per request")
        for label, seen, count in (("backlog", backlog, total), ("one at a time", trickle, args.latency_samples)):
            webhook_writes = tally(seen, WRITES, webhooks_only=True)
            print(f"writes per delivery, {label + ':':15}  {webhook_writes / count:.3f} to webhook collections "
                  f"({webhook_writes} for {count}), {tally(seen, WRITES, webhooks_only=False) / count:.3f} in all "
                  f"(event numbering and the hub's other jobs included); reads "
                  f"{tally(seen, READS, webhooks_only=True) / count:.3f} / {tally(seen, READS, False) / count:.3f}")
        if args.verbose:
            for label, seen in (("backlog", backlog), ("one at a time", trickle)):
                print(f"  {label}: " + ", ".join(f"{name} {coll}: {n}" for (name, coll), n in seen.most_common()))
        if latencies:
            print(f"event commit -> arrival latency:         p50 {statistics.median(latencies):.0f} ms, "
                  f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms "
                  f"({len(latencies)} events one at a time)")
    finally:
        hub.should_exit = True
        await hub_task
        http_server.should_exit = True
        await database.client.drop_database(name)
        await database.close()
        if server:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--endpoints", type=int, default=1)
    parser.add_argument("--latency-samples", type=int, default=100)
    parser.add_argument("--subjects", type=int, default=0, help="ordering keys per endpoint (0: one per event)")
    parser.add_argument("--verbose", action="store_true", help="every counted command by collection")
    asyncio.run(main(parser.parse_args()))
