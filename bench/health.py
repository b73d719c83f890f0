"""inventoryHealth over HTTP on a seeded ledger, next to the raw aggregation of the same ledger on the same database.

    python bench/health.py [--positions 50000] [--movements 1000000] [--runs 3] [--keep DIR] [--raw-timeout 1800]
                           [--report-seconds 60]

Seeding goes straight to the database in bulk (``insert_many``, unordered, 5,000 documents a batch), before the hub
starts: what the hub stores for a ledger of receipts and sales over the last 400 days (each lot arrives some day in
that window, then sells and is restocked), each document built by the hub's own model class and encoded as beanie
stores it: locations, SKUs with a standard cost and a category, lots with expiry dates (a tenth on hold), the
movements, and what the hub keeps beside the ledger in the same transaction (each position's on-hand and arrival
date, the lot costs of costed receipts, the daily demand series). The ledger's indexes (the hub's own definitions)
are built after it is written. Through the API the same ledger books at a few hundred movements a second on a small
machine. With ``--keep DIR`` the database (and the hub's signing key) live in ``DIR``, and a later run with the same
sizes measures it again without seeding.

The hub figure is ``inventoryHealth`` through a real hub process over HTTP. The raw figure aggregates the same
inputs straight from the ledger with pymongo and no hub: each position's on-hand and first arrival, and the units
consumed over the last 30 days (``--raw-timeout`` bounds it; if it does not finish, the run says how long it ran).
The ratio raw / hub (target >= 0.5x) shows what keeping those figures with the ledger buys, net of valuation,
bands, risk, trend, GraphQL and HTTP. Prints medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from beanie import Document
from beanie.odm.utils.encoder import Encoder
from bson import ObjectId
from pymongo.errors import BulkWriteError, PyMongoError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BENCH_DEADLINES, running_hub, wait_ready
from hub.config import Settings
from hub.db import Database, EmbeddedServer
from hub.models.health import LotCost
from hub.models.location import Location, LocationKind
from hub.models.lot import Lot, LotStatus
from hub.models.movement import Movement, MovementKind
from hub.models.planning import DemandSeries
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from tenants.models import Tenant, TenantKind

HEALTH = ("query($filter: HealthFilter) { inventoryHealth(filter: $filter) { onHandUnits value { currency amount } "
          "valueAtRisk { amount } daysOfSupply turnover trend { source onHandUnits daysOfSupply turnover } "
          "aging { units } } }")
TENANT = "bench"
LOCATIONS = 50
HISTORY_DAYS = 400
BATCH = 5_000
CATEGORIES = ("chilled", "frozen", "ambient", "fresh", "bakery")
_encode = Encoder(to_db=True).encode


def stored(doc: Document) -> dict[str, Any]:
    """The document as the hub stores it (beanie's own encoding of the model)."""
    return _encode(doc)  # type: ignore[no-any-return]


@dataclass
class Position:
    """One (location, SKU, lot) being seeded: its ledger so far and what the hub keeps beside it."""

    location: ObjectId
    sku: ObjectId
    lot: Lot
    unit_cost: float | None  # what its receipts were costed at, if they were
    on_hand: int = 0
    costed_units: int = 0
    arrived_at: datetime | None = None
    last: dict[str, Any] = field(default_factory=dict)


def ledger(position: Position, count: int, now: datetime, rng: random.Random, key: int) -> Iterator[Movement]:
    """``count`` movements of one position, oldest first: the lot arrives some day in the last 400 days, then sells,
    restocked when it runs low."""
    arrived = rng.uniform(1, HISTORY_DAYS)
    ages = [arrived, *sorted((rng.uniform(0, arrived) for _ in range(count - 1)), reverse=True)]
    for n, age in enumerate(ages):
        at = now - timedelta(days=age)
        if position.on_hand < 6:
            kind, quantity = MovementKind.receipt, rng.choice((24, 48))
        else:
            kind, quantity = MovementKind.sale, -rng.randint(1, 6)
        costed = kind is MovementKind.receipt and position.unit_cost is not None
        yield Movement(
            id=ObjectId(), tenant_id=TENANT, location_id=position.location, sku_id=position.sku, sku_owner_id=TENANT,
            lot_id=position.lot.id, lot_code=position.lot.lot_code, kind=kind, quantity=quantity,
            idempotency_key=f"seed-{key + n}", fingerprint="seed", occurred_at=at, recorded_at=at,
            actor="seed", actor_kind="system", unit_cost=position.unit_cost if costed else None,
            currency="EUR" if costed else None,
        )
        position.on_hand += quantity
        position.costed_units += quantity if costed else 0
        if kind is MovementKind.receipt and position.arrived_at is None:
            position.arrived_at = at


async def insert(collection: Any, docs: list[dict[str, Any]]) -> None:
    """Unordered bulk insert; a duplicate of one of our own ``_id``s is a driver retry of a batch that got in."""
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if any(error["code"] != 11000 for error in exc.details["writeErrors"]):
            raise


async def seed(database: Database, positions: int, movements: int) -> None:
    """Write the tenant's master data, ledger and derived documents in bulk, each built by the hub's model."""
    db = database.db
    rng = random.Random(15)
    now = datetime.now(UTC)
    today = now.date()
    await db.tenants.insert_one(stored(Tenant(id=TENANT, name="Bench", kind=TenantKind.retailer)))
    locations = [Location(id=ObjectId(), tenant_id=TENANT, code=f"L{n}", name=f"Store {n}", kind=LocationKind.store)
                 for n in range(LOCATIONS)]
    sku_count = max(1, positions // (2 * LOCATIONS))  # two lots per location and SKU
    skus = [Sku(id=ObjectId(), tenant_id=TENANT, code=f"S-{n}", name=f"SKU {n}", unit_cost=1.0 + n % 7,
                currency="EUR", category=CATEGORIES[n % len(CATEGORIES)]) for n in range(sku_count)]
    await insert(db.locations, [stored(loc) for loc in locations])
    await insert(db.skus, [stored(s) for s in skus])
    seeded: list[Position] = []
    for n in range(positions):
        sku = skus[n % sku_count]
        expires = today + timedelta(days=n % 200 - 20)
        lot = Lot(id=ObjectId(), tenant_id=TENANT, sku_id=sku.id, lot_code=f"LOT-{n}", expires_on=expires,
                  status=LotStatus.on_hold if n % 10 == 0 else LotStatus.released)
        seeded.append(Position(locations[(n // sku_count) % LOCATIONS].id, sku.id, lot,  # type: ignore[arg-type]
                               round(0.9 + n % 11 / 10, 2) if n % 3 == 0 else None))
    for start in range(0, positions, BATCH):
        await insert(db.lots, [stored(p.lot) for p in seeded[start:start + BATCH]])
    # The ledger's indexes are built once at the end (the hub's own definitions): faster than kept up insert by insert.
    await db.movements.drop_indexes()
    series: dict[tuple[ObjectId, ObjectId], DemandSeries] = {}
    chunk: list[dict[str, Any]] = []
    written = 0
    for n, position in enumerate(seeded):
        count = movements // positions + (1 if n < movements % positions else 0)
        for movement in ledger(position, count, now, rng, written):
            doc = stored(movement)
            chunk.append(doc)
            position.last = doc
            daily = series.setdefault((position.location, position.sku), DemandSeries(
                id=ObjectId(), tenant_id=TENANT, location_id=position.location, sku_id=position.sku,
                sku_owner_id=TENANT, updated_at=now))
            day = movement.occurred_at.date().isoformat()
            figures = daily.days.setdefault(day, {"n": 0})
            figures["n"] += movement.quantity
            daily.on_hand += movement.quantity
            daily.first_day = min(daily.first_day or day, day)
            if movement.kind is MovementKind.sale:
                figures["s"] = figures.get("s", 0) + -movement.quantity
                daily.last_sale_day = max(daily.last_sale_day or day, day)
        written += count
        if len(chunk) >= BATCH or n == positions - 1:
            await insert(db.movements, chunk)
            chunk = []
            if n * 10 // positions != (n + 1) * 10 // positions:
                print(f"  {written:,} movements", flush=True)
    rows = [stored(StockPosition(
        id=ObjectId(), tenant_id=TENANT, location_id=p.location, sku_id=p.sku, sku_owner_id=TENANT, lot_id=p.lot.id,
        lot_code=p.lot.lot_code, on_hand=p.on_hand, expires_on=p.lot.expires_on,
        last_movement_id=p.last.get("_id"), last_movement_at=p.last.get("occurred_at"), arrived_at=p.arrived_at,
        updated_at=now)) for p in seeded]
    costs = [stored(LotCost(id=ObjectId(), tenant_id=TENANT, lot_id=p.lot.id, sku_id=p.sku, currency="EUR",  # type: ignore[arg-type]
                            cost=p.costed_units * p.unit_cost, units=p.costed_units))
             for p in seeded if p.unit_cost is not None and p.costed_units]
    print("  ledger written; building its indexes", flush=True)
    await db.movements.create_indexes(Movement.Settings.indexes)
    for start in range(0, len(rows), BATCH):
        await insert(db.stock_positions, rows[start:start + BATCH])
    await insert(db.demand_series, [stored(s) for s in series.values()])
    if costs:
        await insert(db.lot_costs, costs)


async def raw_aggregation(database: Database, timeout: float) -> None:
    """The inputs inventoryHealth needs, aggregated from the ledger in bare pymongo."""
    db = database.db
    since = datetime.now(UTC) - timedelta(days=30)
    per_position = db.movements.aggregate([
        {"$match": {"tenant_id": TENANT}},
        {"$group": {"_id": {"l": "$location_id", "s": "$sku_id", "lot": "$lot_id"},
                    "on_hand": {"$sum": "$quantity"},
                    "first": {"$min": {"$cond": [{"$gt": ["$quantity", 0]}, "$occurred_at", None]}}}},
    ], maxTimeMS=int(timeout * 1000))
    await (await per_position).to_list(None)
    consumed = db.movements.aggregate([
        {"$match": {"tenant_id": TENANT, "kind": {"$in": ["sale", "issue"]}, "occurred_at": {"$gte": since}}},
        {"$group": {"_id": None, "units": {"$sum": "$quantity"}}},
    ], maxTimeMS=int(timeout * 1000))
    await (await consumed).to_list(None)


async def bare_reads(database: Database) -> None:
    """What any design that works the figures out per query reads at least: the tenant's positions and demand series,
    in bare pymongo, nothing computed."""
    db = database.db
    await db.stock_positions.find({"tenant_id": TENANT, "on_hand": {"$gt": 0}}).to_list(None)
    await db.demand_series.find({"tenant_id": TENANT}).to_list(None)


async def sample_filters(database: Database) -> dict[str, dict[str, str]]:
    """One store, one SKU, one category of the seed: the narrowed questions a dashboard asks."""
    db = database.db
    location = await db.locations.find_one({"tenant_id": TENANT, "code": "L0"})
    sku = await db.skus.find_one({"tenant_id": TENANT, "code": "S-0"})
    assert location is not None and sku is not None
    return {"one store": {"locationId": str(location["_id"])}, "one SKU": {"skuId": str(sku["_id"])},
            "one category": {"category": CATEGORIES[0]}}


async def seeded_sizes(database: Database) -> tuple[int, int]:
    db = database.db
    return (await db.stock_positions.estimated_document_count(), await db.movements.estimated_document_count())


async def prepare(folder: Path, positions: int, movements: int) -> None:
    """Seed the database kept in ``folder`` unless it holds this seed already; the hub is not running meanwhile."""
    server = None
    uri = os.environ.get("LOTPULSE_MONGODB_URI")
    if not uri:
        server = EmbeddedServer(folder / "db", log_path=folder / "seed.log", sync_on_commit=False)
        server.start(timeout=600.0)  # a large kept database takes a while to open
        uri = server.uri
    database = await Database.connect(uri, "bench", deadlines=BENCH_DEADLINES)
    try:
        have = await seeded_sizes(database)
        if have == (positions, movements):
            print(f"reusing the seeded database: {have[0]:,} positions, {have[1]:,} movements")
        elif any(have):
            raise SystemExit(f"the kept database holds another seed ({have[0]:,} positions, {have[1]:,} movements)")
        else:
            started = time.perf_counter()
            await seed(database, positions, movements)
            took = time.perf_counter() - started
            print(f"seeded {positions:,} positions and {movements:,} movements in {took:.1f} s "
                  f"({movements / took:,.0f} movements/s)", flush=True)
    finally:
        await database.close()
        if server is not None:
            server.stop()


async def main(args: argparse.Namespace) -> None:
    folder = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="lotpulse-health-"))
    await prepare(folder, args.positions, args.movements)
    try:
        await measure(args, folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


async def measure(args: argparse.Namespace, folder: Path) -> None:
    budget = {}
    if args.report_seconds is not None:
        budget = {"LOTPULSE_REPORT_TIMEOUT_SECONDS": str(args.report_seconds)}
    settings = Settings.from_env({**os.environ, **budget})
    print(f"the hub's deadline for a report: {settings.report_timeout_seconds:g} s (any other request: "
          f"{settings.request_timeout_seconds:g} s)", flush=True)
    async with running_hub(keep=folder, **budget) as hub:
        await wait_ready(hub.port, hub.process)
        headers = {"authorization": f"Bearer {hub.token(TENANT, 'viewer')}"}
        hub_times, raw_times, bare_times = [], [], []
        filters = await sample_filters(hub.database)
        filtered_times: dict[str, list[float]] = {name: [] for name in filters}
        async with httpx.AsyncClient(timeout=None) as http:
            for _ in range(args.runs):
                started = time.perf_counter()
                await bare_reads(hub.database)
                bare_times.append(time.perf_counter() - started)
                print(f"bare reads of the positions and demand series: {bare_times[-1]:.2f} s", flush=True)
                started = time.perf_counter()
                body = (await http.post(f"{hub.url}/graphql", json={"query": HEALTH}, headers=headers)).json()
                hub_times.append(time.perf_counter() - started)
                if "errors" in body:
                    raise SystemExit(body["errors"])
                print(f"inventoryHealth: {hub_times[-1]:.2f} s", flush=True)
                for name, chosen in filters.items():
                    started = time.perf_counter()
                    narrowed = (await http.post(f"{hub.url}/graphql", headers=headers, json={
                        "query": HEALTH, "variables": {"filter": chosen}})).json()
                    filtered_times[name].append(time.perf_counter() - started)
                    if "errors" in narrowed:
                        raise SystemExit(narrowed["errors"])
                    print(f"inventoryHealth({name}): {filtered_times[name][-1]:.2f} s", flush=True)
                started = time.perf_counter()
                try:
                    await raw_aggregation(hub.database, args.raw_timeout)
                except PyMongoError as exc:  # the floor itself may not finish on a large ledger: say so
                    print(f"raw aggregation stopped after {time.perf_counter() - started:.1f} s: {exc}", flush=True)
                    continue
                raw_times.append(time.perf_counter() - started)
                print(f"raw aggregation: {raw_times[-1]:.2f} s", flush=True)
        hub_s = statistics.median(hub_times)
        raw = f"{statistics.median(raw_times):.2f} s" if raw_times else "did not finish"
        ratio = f"{statistics.median(raw_times) / hub_s:.2f}x" if raw_times else "n/a"
        print(f"inventoryHealth: {hub_s:.2f} s (median of {args.runs}); raw aggregation: {raw}; ratio raw/hub "
              f"{ratio} (target >= 0.5x); bare reads of its positions and series: "
              f"{statistics.median(bare_times):.2f} s (hub / bare {hub_s / statistics.median(bare_times):.2f}x)")
        for name, times in filtered_times.items():
            print(f"inventoryHealth({name}): {statistics.median(times):.2f} s (median of {args.runs})")
        print(f"answer: {body['data']['inventoryHealth']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=50_000)
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", help="folder whose database is kept (seeded once, measured again later)")
    parser.add_argument("--raw-timeout", type=float, default=1800.0, help="seconds the raw aggregation may run")
    parser.add_argument("--report-seconds", type=float, help="the hub's deadline for a report query "
                        "(default: the hub's own, LOTPULSE_REPORT_TIMEOUT_SECONDS)")
    asyncio.run(main(parser.parse_args()))
