"""inventoryHealth over HTTP on a seeded ledger, next to the raw reads it needs on the same database.

    python bench/health.py [--positions 50000] [--movements 1000000] [--runs 3]

Seeds one tenant with ``--positions`` lot positions (SKUs with a standard cost, lots with expiry dates, a tenth of
them on hold) and ``--movements`` receipts and sales spread over 400 days straight into the database, then times
``inventoryHealth`` through a real hub process. The seed also writes what the hub keeps beside the ledger in the same
transaction (the daily demand series, each position's arrival date). The raw figure computes the same inputs
straight from the ledger with pymongo and no hub (positions, first arrival per position, 30-day consumption); the
ratio raw / hub shows what keeping those figures with the ledger buys, net of valuation, bands, risk, trend, GraphQL
and HTTP. Prints medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from bson import ObjectId
from pymongo import UpdateOne
from pymongo.errors import PyMongoError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import running_hub, wait_ready
from hub.services import demand
from tenants import service as tenant_service

HEALTH = ("{ inventoryHealth { onHandUnits value { currency amount } valueAtRisk { amount } daysOfSupply turnover "
          "trend { onHandUnits daysOfSupply turnover } aging { units } } }")
TENANT = "bench"


async def seed(database, positions: int, movements: int) -> None:
    db = database.db
    now = datetime.now(UTC)
    skus = [{"_id": ObjectId(), "tenant_id": TENANT, "code": f"S-{n}", "name": f"S-{n}", "unit_cost": 1.0 + n % 7,
             "currency": "EUR", "aliases": []} for n in range(max(1, positions // 50))]
    locations = [ObjectId() for _ in range(50)]
    lots, rows = [], []
    for n in range(positions):
        sku = skus[n % len(skus)]
        lot = {"_id": ObjectId(), "tenant_id": TENANT, "sku_id": sku["_id"], "lot_code": f"L-{n}",
               "status": "on_hold" if n % 10 == 0 else "released"}
        lots.append(lot)
        rows.append({"_id": ObjectId(), "tenant_id": TENANT, "location_id": locations[n % 50], "sku_id": sku["_id"],
                     "sku_owner_id": TENANT, "lot_id": lot["_id"], "lot_code": lot["lot_code"], "on_hand": 100,
                     "expires_on": now + timedelta(days=n % 200 - 20)})
    await db.skus.insert_many(skus)
    await db.lots.insert_many(lots)
    await db.stock_positions.insert_many(rows)
    chunk: list[dict] = []
    arrived: dict[ObjectId, datetime] = {}
    for m in range(movements):
        p = rows[m % positions]
        sale = m >= positions and m % 3 == 0
        chunk.append({"tenant_id": TENANT, "location_id": p["location_id"], "sku_id": p["sku_id"],
                      "sku_owner_id": TENANT, "lot_id": p["lot_id"], "kind": "sale" if sale else "receipt",
                      "quantity": -1 if sale else 1, "idempotency_key": f"k{m}", "fingerprint": "f",
                      "occurred_at": now - timedelta(days=(m * 7919) % 400)})
        if not sale:
            arrived[p["_id"]] = min(arrived.get(p["_id"], chunk[-1]["occurred_at"]), chunk[-1]["occurred_at"])
        if len(chunk) == 10_000 or m == movements - 1:
            # What the hub keeps beside the ledger in the same transaction: the daily demand series.
            await db.movements.insert_many(chunk)
            await db.demand_series.bulk_write(demand.series_writes(chunk), ordered=False)
            chunk = []
    # ... and each position's arrival date.
    await db.stock_positions.bulk_write([UpdateOne({"_id": key}, {"$set": {"arrived_at": first}})
                                         for key, first in arrived.items()], ordered=False)


async def raw_reads(database) -> None:
    """The reads inventoryHealth needs, as bare pymongo calls."""
    db = database.db
    positions = await db.stock_positions.find({"tenant_id": TENANT, "on_hand": {"$gt": 0}}).to_list(None)
    scope = {"tenant_id": TENANT, "location_id": {"$in": sorted({p["location_id"] for p in positions})},
             "sku_id": {"$in": sorted({p["sku_id"] for p in positions})}}
    await (await db.movements.aggregate([
        {"$match": {**scope, "quantity": {"$gt": 0}}},
        {"$group": {"_id": {"l": "$location_id", "s": "$sku_id", "lot": "$lot_id"}, "first": {"$min": "$occurred_at"}}},
    ])).to_list(None)
    since = datetime.now(UTC) - timedelta(days=30)
    await (await db.movements.aggregate([
        {"$match": {**scope, "kind": {"$in": ["sale", "issue"]}, "occurred_at": {"$gte": since}}},
        {"$group": {"_id": None, "units": {"$sum": "$quantity"}}},
    ])).to_list(None)


async def main(args: argparse.Namespace) -> None:
    async with running_hub() as hub:
        await tenant_service.create_tenant(TENANT, "Bench", "retailer")
        started = time.perf_counter()
        await seed(hub.database, args.positions, args.movements)
        print(f"seeded {args.positions:,} positions and {args.movements:,} movements in "
              f"{time.perf_counter() - started:.1f} s")
        await wait_ready(hub.port, hub.process)
        headers = {"authorization": f"Bearer {hub.token(TENANT, 'viewer')}"}
        hub_times, raw_times = [], []
        async with httpx.AsyncClient(timeout=600) as http:
            for _ in range(args.runs):
                started = time.perf_counter()
                body = (await http.post(f"{hub.url}/graphql", json={"query": HEALTH}, headers=headers)).json()
                hub_times.append(time.perf_counter() - started)
                if "errors" in body:
                    raise SystemExit(body["errors"])
                print(f"inventoryHealth: {hub_times[-1]:.2f} s", flush=True)
                started = time.perf_counter()
                try:
                    await raw_reads(hub.database)
                except PyMongoError as exc:  # the floor itself may not finish on a large ledger: say so
                    print(f"raw reads did not finish after {time.perf_counter() - started:.1f} s: {exc}")
                    continue
                raw_times.append(time.perf_counter() - started)
        hub_s = statistics.median(hub_times)
        raw = f"{statistics.median(raw_times):.2f} s" if raw_times else "did not finish"
        ratio = f"{statistics.median(raw_times) / hub_s:.2f}x" if raw_times else "n/a"
        print(f"inventoryHealth: {hub_s:.2f} s (median of {args.runs}); raw reads: {raw}; ratio raw/hub {ratio} "
              "(target >= 0.5x)")
        print(f"answer: {body['data']['inventoryHealth']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=50_000)
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
