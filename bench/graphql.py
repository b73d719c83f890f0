"""Requests per second and latency (p50/p99) of GraphQL over HTTP: a trivial authenticated query and a 50-SKU page;
then what operability costs on the trivial query.

    python -m bench.graphql [--seconds 10] [--concurrency 8] [--rounds 5] [--cpu-requests 2000]

Starts a SecantusDB process (or uses LOTPULSE_MONGODB_URI) and a hub process (``python -m hub.cli serve``), seeds
one tenant with 200 SKUs, then keeps ``--concurrency`` requests in flight over keep-alive connections for
``--seconds`` per query. Every request carries a bearer token, so each one pays for token validation, parsing (cached),
validation (cached), limits and execution. The load generator shares the machine with the hub and the database.

The overhead part runs three more hubs on the same database and measures them in alternating rounds (so load
from elsewhere on the machine hits each alike): *bare* (LOTPULSE_METRICS, LOTPULSE_RATE_LIMITS off, log level WARNING),
*observed* (metrics, JSON access log line per request, rate limits on with limits too high to refuse), and *traced*
(observed plus OpenTelemetry, exporting to a local OTLP sink). It prints each one's median rate over the rounds
and the overhead against *bare* (target: observed at most 10 % slower). On a shared machine those rates swing with
everyone else's load, so it then measures the same three as apps inside this process in CPU time per request,
which other processes' load does not disturb.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, running_hub, wait_ready
from hub.auth import mint_local_token
from hub.config import Settings
from hub.db import EmbeddedServer
from hub.models.sku import Sku
from hub.state import keyring_for
from tenants import service as tenant_service

QUERIES = {
    "trivial query ({ __typename })": "{ __typename }",
    "skus(first: 50) page": "{ skus(first: 50) { edges { cursor node { id code name gtin shelfLifeDays } } "
    "pageInfo { hasNextPage endCursor } } }",
}




async def measure(url: str, token: str, query: str, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    headers = {"authorization": f"Bearer {token}"}
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        check = (await http.post(url, json={"query": query}, headers=headers)).json()
        if "errors" in check:
            raise SystemExit(f"query failed: {check['errors']}")
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.post(url, json={"query": query}, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise SystemExit(f"HTTP {response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(latencies) / (time.perf_counter() - started), latencies


async def main(args: argparse.Namespace) -> None:
    async with running_hub() as hub:
        token = hub.token("bench", "viewer")
        await tenant_service.create_tenant("bench", "Bench", "supplier")
        await Sku.insert_many([
            Sku(tenant_id="bench", code=f"B-{i:04d}", name=f"Bench item {i}", shelf_life_days=30) for i in range(200)
        ])
        await wait_ready(hub.port, hub.process)
        url = f"{hub.url}/graphql"
        print(f"{args.concurrency} requests in flight, {args.seconds:g} s per query, hub + SecantusDB + client on "
              f"{os.cpu_count()} CPUs")
        for label, query in QUERIES.items():
            rate, latencies = await measure(url, token, query, args.seconds, args.concurrency)
            print(f"{label:32} {rate:8,.0f} requests/s   p50 {statistics.median(latencies) * 1000:6.1f} ms   "
                  f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms   ({len(latencies):,} requests)")
        # The same page straight from the database, one at a time: the share the storage engine takes.
        collection, reads = Sku.get_pymongo_collection(), []
        for _ in range(50):
            started = time.perf_counter()
            await collection.find({"tenant_id": {"$in": ["bench"]}}).sort("_id", 1).limit(51).to_list()
            reads.append(time.perf_counter() - started)
        print(
            f"{'database alone: the 51-SKU find':32} {'':8}               "
            f"p50 {statistics.median(reads) * 1000:6.1f} ms   "
            f"p99 {percentile(reads, 0.99) * 1000:6.1f} ms   (sequential)"
        )


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that accepts and drops spans."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


BARE = {"LOTPULSE_METRICS": "false", "LOTPULSE_RATE_LIMITS": "false", "LOTPULSE_LOG_LEVEL": "WARNING"}
OBSERVED = {
    "LOTPULSE_METRICS": "true", "LOTPULSE_METRICS_TOKEN": "bench", "LOTPULSE_LOG_LEVEL": "INFO",
    "LOTPULSE_LOG_FORMAT": "json", "LOTPULSE_RATE_LIMITS": "true",
    # A refill too fast to ever refuse, with the default burst: the process still leases a chunk of 25 tokens
    # from MongoDB every 25 requests, as it would for a busy tenant.
    "LOTPULSE_RATE_LIMIT_REQUESTS_PER_SECOND": "1000000",
}
QUIET = {"LOTPULSE_WEBHOOK_WORKER": "false", "LOTPULSE_SWEEP_INTERVAL_MINUTES": "0"}


async def cpu_per_request(app: Any, token: str, requests: int) -> float:
    """CPU seconds this process spends per ``{ __typename }`` request, calling the ASGI app directly: no network, no
    client, and no other process's load in the figure (the database's share of a lease draw is not CPU here)."""
    body = b'{"query": "{ __typename }"}'
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/graphql", "raw_path": b"/graphql", "query_string": b"", "root_path": "",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
        "headers": [(b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode()),
                    (b"content-length", str(len(body)).encode())],
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope), receive, send)
        # As a server would between requests: the hub's background tasks get their turn in every variant alike
        # (a request that never waits would otherwise leave them to whichever variant waits for the database).
        await asyncio.sleep(0)
    spent = time.process_time() - started
    if set(status) != {200}:
        raise SystemExit(f"unexpected statuses {set(status)}")
    return spent / requests


async def cpu_overhead(args: argparse.Namespace, sink_port: int) -> None:
    """The same three variants as apps in this process, measured in CPU time in alternating rounds."""
    from hub import logs
    from hub.app import create_app

    traced = {**OBSERVED, "LOTPULSE_TRACING": "true", "LOTPULSE_TRACING_ENDPOINT": f"http://127.0.0.1:{sink_port}/v1/traces"}
    variants = {"bare": BARE, "observed": OBSERVED, "traced": traced}  # traced last: its pymongo tracing is global
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")} | {
        "LOTPULSE_MONGODB_URI": os.environ["LOTPULSE_MONGODB_URI"], **QUIET,
        "LOTPULSE_SIGNING_KEY_FILE": str(Path(tempfile.mkdtemp(prefix="lotpulse-bench-")) / "keys.json"),
    }
    devnull = open(os.devnull, "w")
    async with contextlib.AsyncExitStack() as stack:
        apps: dict[str, tuple[Any, str, Settings]] = {}
        for name, env in variants.items():
            settings = Settings.from_env(base_env | env | {"LOTPULSE_DATABASE": f"bench_cpu_{uuid.uuid4().hex[:8]}"})
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            await tenant_service.create_tenant("bench", "Bench", "supplier")  # beanie: the database connected last
            token = mint_local_token(settings, keyring_for(settings), "bench", ["viewer"], 3600)
            apps[name] = (app, token, settings)
        per_request: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(args.rounds):
            for name, (app, token, settings) in apps.items():
                logs.configure(settings, devnull)  # the JSON access line is written (to /dev/null) when INFO
                await cpu_per_request(app, token, 100)  # warm caches (parser, validation, lease)
                per_request[name].append(await cpu_per_request(app, token, args.cpu_requests))
    # The hubs' own background loops (change streams, polls) land in whichever round they fall: the fastest round of
    # each is its cost with the least of that noise, the median shows how much noise there was.
    best, middle = ({name: pick(v) for name, v in per_request.items()} for pick in (min, statistics.median))
    print(
        f"\nCPU per {{ __typename }} request inside the hub (ASGI app called directly, {args.rounds} alternating "
        f"rounds "
        f"of {args.cpu_requests} requests; other processes' load does not count)"
    )
    for name in per_request:
        print(f"  {name:9} best {best[name] * 1e6:6.0f} µs  overhead {(best[name] / best['bare'] - 1) * 100:+5.1f} %   "
              f"median {middle[name] * 1e6:6.0f} µs  overhead {(middle[name] / middle['bare'] - 1) * 100:+5.1f} %")


async def overhead(args: argparse.Namespace, sink: ThreadingHTTPServer) -> None:
    traced = {**OBSERVED, "LOTPULSE_TRACING": "true",
              "LOTPULSE_TRACING_ENDPOINT": f"http://127.0.0.1:{sink.server_port}/v1/traces"}
    variants = {"bare": BARE, "observed": OBSERVED, "traced": traced}
    async with contextlib.AsyncExitStack() as stack:
        hubs = {}
        for name, env in variants.items():
            hubs[name] = await stack.enter_async_context(running_hub(**env))
            # beanie writes to the database connected last: seed each hub's tenant right after it connects
            await tenant_service.create_tenant(f"bench-{name}", "Bench", "supplier")
        for hub in hubs.values():
            await wait_ready(hub.port, hub.process)
        rates: dict[str, list[float]] = {name: [] for name in hubs}
        latencies: dict[str, list[float]] = {name: [] for name in hubs}
        cpu: dict[str, float] = {name: 0.0 for name in hubs}
        for _ in range(args.rounds):
            for name, hub in hubs.items():
                before = process_cpu(hub.process.pid)
                rate, measured = await measure(f"{hub.url}/graphql", hub.token(f"bench-{name}", "viewer"),
                                               "{ __typename }", args.seconds, args.concurrency)
                cpu[name] += process_cpu(hub.process.pid) - before
                rates[name].append(rate)
                latencies[name].extend(measured)
    per_request = {name: cpu[name] / len(latencies[name]) for name in hubs}
    print(f"\nhub process CPU per {{ __typename }} request over HTTP (uvicorn included; other processes' load does "
          f"not count), all {args.rounds} rounds together")
    for name in hubs:
        print(
            f"  {name:9} {per_request[name] * 1e6:6.0f} µs   "
            f"overhead {(per_request[name] / per_request['bare'] - 1) * 100:+5.1f} %"
            f"   ({len(latencies[name]):,} requests)"
        )
    base = statistics.median(rates["bare"])
    print(f"\noperability overhead on {{ __typename }}: median of {args.rounds} alternating rounds of "
          f"{args.seconds:g} s each")
    for name in hubs:
        rate = statistics.median(rates[name])
        print(f"  {name:9} {rate:8,.0f} requests/s   p50 {statistics.median(latencies[name]) * 1000:6.1f} ms   "
              f"{rate / base:5.2f}x bare   overhead {(base / rate - 1) * 100:+5.1f} %   "
              f"(rounds: {', '.join(f'{r:,.0f}' for r in rates[name])})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of the overhead comparison")
    parser.add_argument("--overhead-only", action="store_true", help="skip the two baseline queries")
    parser.add_argument("--cpu-requests", type=int, default=2000, help="requests per round of the CPU comparison")
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU comparison (implies --overhead-only)")
    arguments = parser.parse_args()
    # One database for every hub of the run.
    server = None
    if not os.environ.get("LOTPULSE_MONGODB_URI"):
        server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="lotpulse-bench-db-")) / "db", sync_on_commit=False)
        server.start()
        os.environ["LOTPULSE_MONGODB_URI"] = server.uri
    try:
        if not (arguments.overhead_only or arguments.cpu_only):
            asyncio.run(main(arguments))
        collector = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
        threading.Thread(target=collector.serve_forever, daemon=True).start()
        if not arguments.cpu_only:
            asyncio.run(overhead(arguments, collector))
        asyncio.run(cpu_overhead(arguments, collector.server_port))
        collector.shutdown()
    finally:
        if server is not None:
            server.stop()
