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
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.auth import mint_local_token  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.db import Database, EmbeddedServer, free_port  # noqa: E402
from hub.keys import KeyRing  # noqa: E402
from hub.models.sku import Sku  # noqa: E402
from tenants import service as tenant_service  # noqa: E402

QUERIES = {
    "trivial query ({ __typename })": "{ __typename }",
    "skus(first: 50) page": "{ skus(first: 50) { edges { cursor node { id code name gtin shelfLifeDays } } "
    "pageInfo { hasNextPage endCursor } } }",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if process.poll() is not None:
                raise SystemExit("hub exited during startup")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("hub did not become ready")


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
    tmp = Path(tempfile.mkdtemp(prefix="lotpulse-bench-"))
    server = None
    uri = os.environ.get("LOTPULSE_MONGODB_URI")
    if not uri:
        server = EmbeddedServer(tmp / "db", log_path=tmp / "secantusd.log")
        server.start()
        uri = server.uri
    port, name = free_port(), f"bench_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "LOTPULSE_MONGODB_URI": uri, "LOTPULSE_DATABASE": name, "LOTPULSE_PORT": str(port),
           "LOTPULSE_SIGNING_KEY_FILE": str(tmp / "keys.json"), "LOTPULSE_DATA_DIR": str(tmp),
           "LOTPULSE_LOG_LEVEL": "WARNING", "LOTPULSE_WEBHOOK_WORKER": "false"}
    settings = Settings.from_env(env)
    token = mint_local_token(settings, KeyRing(tmp / "keys.json"), "bench", ["viewer"], 3600)
    database = await Database.connect(uri, name)
    hub = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env,
                           stdout=open(tmp / "hub.log", "ab"), stderr=subprocess.STDOUT)
    try:
        await tenant_service.create_tenant("bench", "Bench", "supplier")
        await Sku.insert_many([
            Sku(tenant_id="bench", code=f"B-{i:04d}", name=f"Bench item {i}", shelf_life_days=30) for i in range(200)
        ])
        await wait_ready(port, hub)
        url = f"http://127.0.0.1:{port}/graphql"
        print(f"{args.concurrency} requests in flight, {args.seconds:g} s per query, hub + SecantusDB + client on "
              f"{os.cpu_count()} CPUs")
        for label, query in QUERIES.items():
            rate, latencies = await measure(url, token, query, args.seconds, args.concurrency)
            print(f"{label:32} {rate:8,.0f} requests/s   p50 {statistics.median(latencies) * 1000:6.1f} ms   "
                  f"p99 {pct(latencies, 0.99) * 1000:6.1f} ms   ({len(latencies):,} requests)")
        # The same page straight from the database, one at a time: the share the storage engine takes.
        collection, reads = Sku.get_pymongo_collection(), []
        for _ in range(50):
            started = time.perf_counter()
            await collection.find({"tenant_id": {"$in": ["bench"]}}).sort("_id", 1).limit(51).to_list()
            reads.append(time.perf_counter() - started)
        print(f"{'database alone: the 51-SKU find':32} {'':8}               p50 {statistics.median(reads) * 1000:6.1f} ms   "
              f"p99 {pct(reads, 0.99) * 1000:6.1f} ms   (sequential)")
    finally:
        hub.terminate()
        hub.wait(10)
        await database.client.drop_database(name)
        await database.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
