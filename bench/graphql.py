"""Requests per second and latency (p50/p99) of GraphQL over HTTP: a trivial authenticated query and a 50-SKU page;
then what operability costs on the trivial query.

    python bench/graphql.py [--seconds 10] [--concurrency 8] [--rounds 5]

Starts a SecantusDB process (or uses LOTPULSE_MONGODB_URI) and a hub process (``python -m hub.cli serve``), seeds
one tenant with 200 SKUs, then keeps ``--concurrency`` requests in flight over keep-alive connections for
``--seconds`` per query. Every request carries a bearer token, so each one pays for token validation, parsing (cached),
validation (cached), limits and execution. The load generator shares the machine with the hub and the database.

The overhead part runs three more hubs on the same database and measures them in alternating rounds (so load
from elsewhere on the machine hits each alike): *bare* (LOTPULSE_METRICS, LOTPULSE_RATE_LIMITS off, log level WARNING),
*observed* (metrics, JSON access log line per request, rate limits on with limits too high to refuse), and *traced*
(observed plus OpenTelemetry, exporting to a local OTLP sink). It prints each one's median rate over the rounds
and the overhead against *bare* (target: observed at most 10 % slower).
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, running_hub, wait_ready  # noqa: E402
from hub.db import EmbeddedServer  # noqa: E402
from hub.models.sku import Sku  # noqa: E402
from tenants import service as tenant_service  # noqa: E402

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
        print(f"{'database alone: the 51-SKU find':32} {'':8}               p50 {statistics.median(reads) * 1000:6.1f} ms   "
              f"p99 {percentile(reads, 0.99) * 1000:6.1f} ms   (sequential)")


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that accepts and drops spans."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
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
    # limits high enough never to refuse: the buckets are still drawn from (and leased from MongoDB)
    "LOTPULSE_RATE_LIMIT_REQUESTS_PER_SECOND": "1000000", "LOTPULSE_RATE_LIMIT_REQUESTS_BURST": "1000000",
}


async def overhead(args: argparse.Namespace) -> None:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
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
        for _ in range(args.rounds):
            for name, hub in hubs.items():
                rate, measured = await measure(f"{hub.url}/graphql", hub.token(f"bench-{name}", "viewer"),
                                               "{ __typename }", args.seconds, args.concurrency)
                rates[name].append(rate)
                latencies[name].extend(measured)
        sink.shutdown()
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
    arguments = parser.parse_args()
    # One database for every hub of the run.
    server = None
    if not os.environ.get("LOTPULSE_MONGODB_URI"):
        server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="lotpulse-bench-db-")) / "db", sync_on_commit=False)
        server.start()
        os.environ["LOTPULSE_MONGODB_URI"] = server.uri
    try:
        if not arguments.overhead_only:
            asyncio.run(main(arguments))
        asyncio.run(overhead(arguments))
    finally:
        if server is not None:
            server.stop()
