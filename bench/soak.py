"""A mixed soak on one hub: N minutes of writers, readers, sensor ingest, 100 live subscribers and a webhook.

Starts a SecantusDB and one hub process (bench/harness.py; or uses ``LOTPULSE_MONGODB_URI``), seeds a tenant, then
runs at once for --minutes (default 10):

- movement writers posting ``recordMovements`` batches (each batch one ``stock.changed`` event);
- readers paging ``stockPositions`` and ``skus``;
- one sensor ingester posting ``ingestReadings`` batches (in-range readings: no alerts);
- 100 ``stockChanged`` subscribers (10 per WebSocket), counting what they receive;
- one webhook endpoint for ``stock.changed`` on a local receiver, counting distinct ``webhook-id`` values.

Every minute it prints requests, errors by code, p50/p99 latency, the hub's RSS, the CPU share of the hub and of the
database process (from /proc) and the machine's load average (the figures only mean something next to it: a machine
shared with other work slows every database operation alike). Load starts once every subscription is live (the hub's
/metrics gauge). At the end it checks
the issue's targets, each as a ratio measured in this run: no error; RSS growth over the second half < 10 %; the last
minute's throughput >= 80 % of the second minute's; every subscriber and the webhook received every event.

    python -m bench.soak [--minutes 10] [--writers 4] [--readers 2] [--subscribers 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Run as a script, bench/ comes first on sys.path and bench/webhooks.py would shadow the webhooks package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect

from bench.harness import percentile, running_hub, wait_ready
from hub.db import free_port
from tenants import service as tenant_service

TENANT = "soak"
RECORD = "mutation($m: [MovementInput!]!, $l: ID) { recordMovements(movements: $m, locationId: $l) { accepted } }"
POSITIONS = "query { stockPositions(first: 50) { edges { node { onHand } } } }"
SKUS = "query { skus(first: 50) { edges { node { code } } } }"
INGEST = "mutation($input: [SensorReadingsInput!]!) { ingestReadings(input: $input) { accepted } }"
REGISTER = "mutation($i: RegisterSensorInput!) { registerSensor(input: $i) { sensor { id } } }"
CREATE_ENDPOINT = """
mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } } }
"""
SUBSCRIPTION = "subscription { stockChanged { cursor positions { onHand delta } } }"
SKU_COUNT = 20


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def live_subscriptions(http: httpx.AsyncClient, token: str) -> int:
    """How many subscriptions the hub holds live for the soak's tenant (its /metrics gauge)."""
    response = await http.get("/metrics", headers={"authorization": f"Bearer {token}"})
    for line in response.text.splitlines():
        if line.startswith("lotpulse_live_subscriptions{") and f'tenant="{TENANT}"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


class Receiver:
    """The webhook endpoint: counts distinct deliveries (a retry of one event repeats its webhook-id)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.ids: set[str] = set()
        self.server: uvicorn.Server | None = None

    async def handle(self, request: Request) -> Response:
        self.ids.add(request.headers["webhook-id"])
        return Response(status_code=204)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hook", self.handle, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)


class Stats:
    """Per-minute request outcomes."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.latencies: dict[int, list[float]] = defaultdict(list)
        self.errors: dict[int, Counter[str]] = defaultdict(Counter)
        self.total_errors: Counter[str] = Counter()
        self.by_operation: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def record(self, began: float, took: float, code: str | None, name: str) -> None:
        minute = int((began - self.started) // 60)
        self.latencies[minute].append(took)
        self.by_operation[minute][name].append(took)
        if code is not None:
            self.errors[minute][code] += 1
            self.total_errors[code] += 1


def operation(query: str) -> str:
    """The first field a query selects, so errors are counted per operation."""
    match = re.search(r"\{\s*(\w+)", query)
    return match.group(1) if match else "?"


async def call(http: httpx.AsyncClient, stats: Stats, query: str, variables: dict | None = None) -> dict | None:
    began = time.monotonic()
    name = operation(query)
    code: str | None = None
    data = None
    try:
        response = await http.post("/graphql", json={"query": query, "variables": variables or {}})
        body = response.json()
        if body.get("errors"):
            code = body["errors"][0].get("extensions", {}).get("code", f"HTTP_{response.status_code}")
            code = f"{code} on {name}"
        data = body.get("data")
    except (httpx.HTTPError, ValueError) as exc:
        code = type(exc).__name__
    stats.record(began, time.monotonic() - began, code, name)
    return data


async def subscribe(url: str, token: str, count: int, received: list[int]) -> ClientConnection:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)
    await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    first = len(received)
    received.extend([0] * count)
    for n in range(count):
        await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))

    async def read() -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "next":
                received[first + int(message["id"])] += 1
            elif message["type"] == "error":
                print("subscription error:", message, file=sys.stderr)

    asyncio.create_task(read())
    return ws


async def run(args: argparse.Namespace) -> int:
    receiver = Receiver()
    await receiver.start()
    metrics_token = secrets.token_hex(16)
    async with running_hub(LOTPULSE_WEBHOOK_WORKER="true", LOTPULSE_WEBHOOK_ALLOW_PRIVATE="1",
                           LOTPULSE_MAX_SUBSCRIPTIONS_PER_TENANT="1000", LOTPULSE_METRICS_TOKEN=metrics_token) as hub:
        await tenant_service.create_tenant(TENANT, "Soak", "retailer")
        await wait_ready(hub.port, hub.process)
        token = hub.token(TENANT, "admin")
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=hub.url, headers=headers, timeout=60) as http:
            seed = Stats(time.monotonic())
            location = (await call(http, seed, "mutation { createLocation(input: {code: \"DC\", name: \"DC\", "
                                               "kind: warehouse}) { id } }"))["createLocation"]["id"]
            for n in range(SKU_COUNT):
                await call(http, seed,
                           f'mutation {{ upsertSku(input: {{code: "S-{n}", name: "S{n}"}}) {{ sku {{ id }} }} }}')
            sensors = []
            for n in range(10):
                data = await call(http, seed, REGISTER, {"i": {"deviceId": f"probe-{n}", "locationId": location}})
                sensors.append(data["registerSensor"]["sensor"]["id"])
            await call(http, seed, CREATE_ENDPOINT, {"input": {"url": f"http://127.0.0.1:{receiver.port}/hook",
                                                               "eventTypes": ["stock.changed"]}})
            assert not seed.total_errors, seed.total_errors
            received: list[int] = []
            sockets = [await subscribe(hub.url.replace("http", "ws") + "/graphql", token, 10, received)
                       for _ in range(args.subscribers // 10)]
            live_by = time.monotonic() + 120
            while await live_subscriptions(http, metrics_token) < args.subscribers:  # all live before any event
                if time.monotonic() > live_by:
                    raise SystemExit("the subscriptions did not all become live within 120 s")
                await asyncio.sleep(0.2)

            started = time.monotonic()
            stats = Stats(started)
            deadline = started + args.minutes * 60
            batches = 0

            async def writer(w: int) -> None:
                nonlocal batches
                n = 0
                while time.monotonic() < deadline:
                    movements = [{"sku": f"S-{(w * 7 + n + j) % SKU_COUNT}", "kind": "receipt", "quantity": 1,
                                  "idempotencyKey": f"w{w}-{n}-{j}"} for j in range(5)]
                    if await call(http, stats, RECORD, {"m": movements, "l": location}) is not None:
                        batches += 1
                    n += 1

            async def reader() -> None:
                while time.monotonic() < deadline:
                    await call(http, stats, POSITIONS)
                    await call(http, stats, SKUS)

            async def ingester() -> None:
                at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
                while time.monotonic() < deadline:
                    payload = [{"sensorId": s, "samples": [[(at + timedelta(seconds=10 * i)).isoformat(), 4.0, 80.0]
                                                           for i in range(20)]} for s in sensors]
                    at += timedelta(seconds=200)
                    await call(http, stats, INGEST, {"input": payload})
                    await asyncio.sleep(0.5)

            pids = {"hub": hub.process.pid, **({"db": hub.server.process.pid}
                                               if hub.server is not None and hub.server.process else {})}

            async def report() -> dict[int, float]:
                rss: dict[int, float] = {}
                minute = 0
                cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                while time.monotonic() < deadline + 1:
                    await asyncio.sleep(max(0.0, started + (minute + 1) * 60 - time.monotonic()))
                    rss[minute] = rss_mib(hub.process.pid)
                    took = stats.latencies.get(minute, [0.0])
                    errors = dict(stats.errors.get(minute, {})) or "none"
                    now_cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                    busy = ", ".join(f"{name} {(now_cpu[name] - cpu[name]) / 60 * 100:3.0f} %" for name in pids)
                    cpu = now_cpu
                    print(f"minute {minute + 1:2d}: {len(stats.latencies.get(minute, [])):6d} requests, "
                          f"p50 {percentile(took, 0.5) * 1000:6.0f} ms, p99 {percentile(took, 0.99) * 1000:6.0f} ms, "
                          f"errors {errors}, RSS {rss[minute]:6.1f} MiB, subscribers' messages {sum(received)}, "
                          f"CPU {busy}, load {os.getloadavg()[0]:.1f}", flush=True)
                    print("           " + ", ".join(
                        f"{name} {len(times)} × p50 {percentile(times, 0.5) * 1000:.0f} ms"
                        for name, times in sorted(stats.by_operation.get(minute, {}).items())), flush=True)
                    minute += 1
                    if minute >= args.minutes:
                        return rss
                return rss

            reporting = asyncio.create_task(report())
            load = [writer(w) for w in range(args.writers)] + [reader() for _ in range(args.readers)] + [ingester()]
            await asyncio.gather(*load)
            rss = await reporting

            events = await hub.database.db["events"].count_documents({"type": "stock.changed", "tenant_id": TENANT})
            drain_until = time.monotonic() + 120
            while time.monotonic() < drain_until and (min(received) < events or len(receiver.ids) < events):
                await asyncio.sleep(0.5)
            for ws in sockets:
                await ws.close()
            return summary(args, stats, rss, received, receiver, events, batches)


def summary(args: argparse.Namespace, stats: Stats, rss: dict[int, float], received: list[int], receiver: Receiver,
            events: int, batches: int) -> int:
    minutes = sorted(stats.latencies)
    half = args.minutes // 2
    growth = rss[args.minutes - 1] / rss[max(0, half - 1)] - 1 if args.minutes >= 2 else 0.0
    second, last = len(stats.latencies.get(1, [])), len(stats.latencies.get(args.minutes - 1, []))
    throughput = last / second if second else float("nan")
    checks = {
        "errors": (sum(stats.total_errors.values()) == 0, f"{dict(stats.total_errors) or 0}"),
        "RSS growth over the second half < 10 %": (growth < 0.10, f"{growth * 100:+.1f} %"),
        "last minute >= 80 % of the second": (throughput >= 0.8, f"{throughput * 100:.0f} %"),
        "every subscriber got every event": (min(received) == events,
                                             f"{events} events; subscribers got {min(received)}..{max(received)}"),
        "the webhook got every event": (len(receiver.ids) == events, f"{len(receiver.ids)} of {events}"),
    }
    print(f"\n{args.minutes} minutes, {sum(len(stats.latencies[m]) for m in minutes)} requests, {batches} movement "
          f"batches, {args.subscribers} subscribers")
    for name, (ok, figure) in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {figure}")
    if receiver.server is not None:
        receiver.server.should_exit = True
    return 0 if all(ok for ok, _ in checks.values()) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--subscribers", type=int, default=100)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
