"""Movements per second through ``recordMovements`` over HTTP, next to raw ``bulk_write`` on the same database.

    python bench/movements.py [--batch-size 1000] [--batches 20] [--clients 2]

Starts a SecantusDB process (or uses LOTPULSE_MONGODB_URI) and a hub process (``python -m hub.cli serve``), then
streams batches of ``sale`` movements with fresh idempotency keys from ``--clients`` concurrent clients, one store
each. The raw figures write the same number of movement-shaped documents with ``bulk_write`` (InsertOne) in batches
of the same size straight to the database, into a bare collection and into one with the movements collection's
indexes: the ratio is what validation, idempotency, on-hand checks, positions and events cost on top of the storage
engine. With ``--lots`` every movement names a dated lot, so each batch also re-assesses expiry risk (the trailing
28-day sales of every position it touched).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
from bson import ObjectId
from pymongo import IndexModel, InsertOne

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, running_hub, wait_ready
from hub.db import Database
from tenants import service as tenant_service

LOT: dict[str, str] = {}  # with --lots: every movement names a lot with an expiry date
RECORD = """
mutation($m: [MovementInput!]!, $l: ID) { recordMovements(movements: $m, locationId: $l) { accepted } }
"""




async def http_rate(args: argparse.Namespace, port: int, token: str, locations: list[str]) -> tuple[float, list[float]]:
    url, headers = f"http://127.0.0.1:{port}/graphql", {"authorization": f"Bearer {token}"}
    latencies: list[float] = []
    run = uuid.uuid4().hex[:6]

    async def client(c: int) -> None:
        async with httpx.AsyncClient(timeout=300) as http:
            for b in range(c, args.batches, args.clients):
                movements = [
                    {"sku": f"B-{i % args.skus}", "kind": "sale", "quantity": -1, "idempotencyKey": f"{run}-{b}-{i}",
                     **LOT}
                    for i in range(args.batch_size)
                ]
                started = time.perf_counter()
                request = {"query": RECORD, "variables": {"m": movements, "l": locations[c]}}
                response = await http.post(url, json=request, headers=headers)
                latencies.append(time.perf_counter() - started)
                body = response.json()
                if "errors" in body:
                    raise SystemExit(f"batch {b} failed: {body['errors'][0]['message']}")

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(args.clients)))
    return args.batches * args.batch_size / (time.perf_counter() - started), latencies


async def raw_rate(database: Database, args: argparse.Namespace, location: ObjectId, indexed: bool) -> float:
    collection = database.db[f"bench_raw_{indexed}"]
    if indexed:  # the movements collection's own indexes: what the storage engine must maintain either way
        await collection.create_indexes([
            IndexModel([("tenant_id", 1), ("idempotency_key", 1)], unique=True),
            IndexModel([("tenant_id", 1), ("location_id", 1), ("sku_id", 1), ("kind", 1), ("occurred_at", 1)]),
        ])
    started = time.perf_counter()
    for b in range(args.batches):
        await collection.bulk_write([
            InsertOne({"tenant_id": "bench", "location_id": location, "sku_id": ObjectId(), "kind": "sale",
                       "quantity": -1, "idempotency_key": f"raw-{b}-{i}", "occurred_at": time.time()})
            for i in range(args.batch_size)
        ], ordered=False)
    rate = args.batches * args.batch_size / (time.perf_counter() - started)
    await collection.drop()
    return rate


async def main(args: argparse.Namespace) -> None:
    if args.lots:
        LOT["lotCode"] = "L1"
    async with running_hub() as hub:
        token, database, port = hub.token("bench", "integration"), hub.database, hub.port
        await tenant_service.create_tenant("bench", "Bench", "retailer")
        await wait_ready(port, hub.process)
        async with httpx.AsyncClient(timeout=300) as http:
            async def gql(query: str, variables: dict | None = None) -> dict:
                r = await http.post(f"http://127.0.0.1:{port}/graphql",
                                    json={"query": query, "variables": variables or {}},
                                    headers={"authorization": f"Bearer {token}"})
                body = r.json()
                if "errors" in body:
                    raise SystemExit(body["errors"])
                return body["data"]

            for s in range(args.skus):
                await gql(f'mutation {{ upsertSku(input: {{code: "B-{s}", name: "B {s}"}}) {{ sku {{ id }} }} }}')
            # One store per client (as each store's tills send their own batches); stock to sell set by a count.
            locations = []
            for c in range(args.clients):
                created = await gql(f'mutation {{ createLocation(input: {{code: "S{c}", name: "S{c}", kind: store}}) '
                                    '{ id } }')
                locations.append(created["createLocation"]["id"])
                await gql(RECORD, {"l": locations[-1], "m": [
                    {"sku": f"B-{s}", "kind": "count", "quantity": 10**9, "idempotencyKey": f"seed-{c}-{s}",
                     **({"expiresOn": "2031-01-01"} if LOT else {}), **LOT}
                    for s in range(args.skus)]})
        http_mps, latencies = await http_rate(args, port, token, locations)
        raw_mps = await raw_rate(database, args, ObjectId(locations[0]), indexed=False)
        raw_indexed_mps = await raw_rate(database, args, ObjectId(locations[0]), indexed=True)
        print(f"batch size {args.batch_size}, {args.batches} batches, {args.clients} clients, {args.skus} SKUs"
              + (", dated lots (expiry risk re-assessed per batch)" if args.lots else ", no lots"))
        print(
            f"recordMovements over HTTP : {http_mps:10,.0f} movements/s  "
            f"(batch p50 {statistics.median(latencies) * 1000:,.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:,.0f} ms)"
        )
        print(f"raw bulk_write (InsertOne): {raw_mps:10,.0f} documents/s  (bare collection)")
        print(f"raw bulk_write, indexed   : {raw_indexed_mps:10,.0f} documents/s  (the movements collection's indexes)")
        print(f"ratio HTTP / raw          : {http_mps / raw_mps:10.2f}   (HTTP / raw indexed: "
              f"{http_mps / raw_indexed_mps:.2f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--skus", type=int, default=20)
    parser.add_argument("--lots", action="store_true", help="movements of dated lots: includes expiry re-assessment")
    asyncio.run(main(parser.parse_args()))
