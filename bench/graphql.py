"""Requests per second and latency (p50/p99) of GraphQL over HTTP: a trivial authenticated query and a 50-SKU page.

    python bench/graphql.py [--seconds 10] [--concurrency 8]

Starts a SecantusDB process (or uses LOTPULSE_MONGODB_URI) and a hub process (``python -m hub.cli serve``), seeds
one tenant with 200 SKUs, then keeps ``--concurrency`` requests in flight over keep-alive connections for
``--seconds`` per query. Every request carries a bearer token, so each one pays for token validation, parsing (cached),
validation (cached), limits and execution. The load generator shares the machine with the hub and the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, running_hub, wait_ready  # noqa: E402
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
