"""Does any hot database operation get slower as the data grows? Each one timed at N and at 10 × N documents.

The soak's throughput must not fall as its database fills, so every query and write the hub runs per request, per
live delivery or per background pass must cost about the same on a large collection as on a small one. The plan
(``explain``) is one witness, but SecantusDB's explain is not always what runs (it reports a collection scan for
some ``_id`` writes that are point lookups), so this script measures: it seeds the collections the hot paths touch
with N documents shaped like the hub's (mostly finished history: numbered events, recorded movements, delivered
webhooks), times each operation (median of --repeat runs), grows them to 10 × N and times again. An indexed
operation costs about the same (×1-1.5: a deeper B-tree); a scan costs about ×10.

    python -m bench.growth [--documents 2000] [--repeat 15]

Prints each operation's median at both sizes, the ratio, and the plan's stages; exits 1 if any ratio is >= 3.
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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, bench/ comes first on sys.path and bench/webhooks.py would shadow the webhooks package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bson import ObjectId
from pymongo import UpdateOne

from hub.db import Database, Deadlines, EmbeddedServer

TENANT = "acme"
ENDPOINT = ObjectId()
LOCATION = ObjectId()
SKUS = [ObjectId() for _ in range(20)]
NOW = datetime.now(UTC)
STAMPED = 10**9  # numbers the timed stamps take


class Seeder:
    """Appends history shaped like the hub's; ``grow(n)`` brings every collection to n documents."""

    def __init__(self, database: Database) -> None:
        self.db = database.db
        self.size = 0
        self.stamped = 0
        self.positions: list[ObjectId] = []

    async def grow(self, target: int) -> None:
        start, end = self.size, target
        chunk = 2000
        for low in range(start, end, chunk):
            high = min(end, low + chunk)
            events, movements, deliveries, alerts, readings, positions = [], [], [], [], [], []
            for n in range(low, high):
                event_id = ObjectId()
                at = NOW - timedelta(seconds=end - n)
                events.append({"_id": event_id, "type": "stock.changed", "tenant_id": TENANT, "audience": [TENANT],
                               "payload": {"positions": [{"onHand": n}]}, "seq": n + 1, "occurred_at": at,
                               "expires_at": at + timedelta(days=30)})
                movements.append({"_id": ObjectId(), "tenant_id": TENANT, "location_id": LOCATION,
                                  "sku_id": SKUS[n % len(SKUS)], "sku_owner_id": TENANT, "lot_id": None,
                                  "kind": "receipt", "quantity": 1, "idempotency_key": f"k{n}",
                                  "fingerprint": "f", "occurred_at": at, "recorded_at": at})
                deliveries.append({"_id": ObjectId(), "event_id": event_id, "endpoint_id": ENDPOINT,
                                   "tenant_id": TENANT, "event_type": "stock.changed", "body": "{}", "seq": n + 1,
                                   "subject": f"stock:{TENANT}",
                                   "state": "succeeded", "next_attempt_at": at, "failures": 0, "attempt_count": 1,
                                   "lease_token": None, "lease_until": None, "claims": [at], "delivered_at": at,
                                   "created_at": at, "updated_at": at})
                if n % 2 == 0:  # positions of the tenant's other locations (and lots)
                    positions.append({"tenant_id": TENANT, "location_id": ObjectId(), "sku_id": SKUS[n % len(SKUS)],
                                      "lot_id": ObjectId(), "on_hand": 1})
                if n % 10 == 0:
                    alerts.append({"_id": ObjectId(), "tenant_id": TENANT, "status": "resolved", "kind": "x",
                                   "escalated_at": None, "opened_at": at, "dedupe_key": f"d{n}"})
                    readings.append({"_id": f"{SKUS[0]}:{n:010d}", "sensor_id": SKUS[0], "tenant_id": TENANT,
                                     "hour": at, "readings": [], "count": 0, "sum_c": 0.0})
            await self.db["events"].insert_many(events, ordered=False)
            await self.db["movements"].insert_many(movements, ordered=False)
            await self.db["webhook_deliveries"].insert_many(deliveries, ordered=False)
            await self.db["stock_positions"].insert_many(positions, ordered=False)
            if alerts:
                await self.db["alerts"].insert_many(alerts, ordered=False)
                await self.db["readings"].insert_many(readings, ordered=False)
        if not self.positions:
            self.positions = [ObjectId() for _ in SKUS]
            await self.db["stock_positions"].insert_many([
                {"_id": pid, "tenant_id": TENANT, "location_id": LOCATION, "sku_id": sku, "lot_id": None, "on_hand": 0}
                for pid, sku in zip(self.positions, SKUS, strict=True)])
        self.size = target


Op = Callable[[], Awaitable[Any]]


def operations(seeder: Seeder) -> dict[str, tuple[Op, dict[str, Any] | None]]:
    """name -> (the operation, the find command to explain or None)."""
    db = seeder.db
    due_index = {"state": "pending", "next_attempt_at": {"$lte": NOW}}  # webhooks/worker.py _due

    def find(coll: str, flt: dict[str, Any], sort: dict[str, int] | None = None,
             limit: int = 0) -> tuple[Op, dict[str, Any]]:
        async def run() -> Any:
            cursor = db[coll].find(flt)
            if sort:
                cursor = cursor.sort(list(sort.items()))
            return await cursor.limit(limit).to_list(None)
        command: dict[str, Any] = {"find": coll, "filter": flt, **({"sort": sort} if sort else {})}
        return run, command

    async def pending_stamp() -> None:  # the sequencer's stamp: insert a pending event, number it
        event_id = ObjectId()
        await db["events"].insert_one({"_id": event_id, "type": "stock.changed", "tenant_id": TENANT,
                                       "audience": [TENANT], "payload": {}, "pending": True, "occurred_at": NOW,
                                       "expires_at": NOW + timedelta(days=1)})
        seeder.stamped += 1
        await db["events"].bulk_write([UpdateOne(
            {"_id": event_id, "pending": True}, {"$set": {"seq": STAMPED + seeder.stamped}, "$unset": {"pending": ""}},
            upsert=True)])

    async def position_update() -> None:
        doc = await db["stock_positions"].find_one({"_id": seeder.positions[0]})
        await db["stock_positions"].bulk_write([UpdateOne(
            {"_id": doc["_id"], "on_hand": doc["on_hand"]}, {"$set": {"on_hand": doc["on_hand"] + 1}})])

    async def movement_insert() -> None:  # the unique (tenant, idempotency key) index is checked on insert
        await db["movements"].insert_one({"tenant_id": TENANT, "location_id": LOCATION, "sku_id": SKUS[0],
                                          "idempotency_key": uuid.uuid4().hex, "kind": "receipt", "quantity": 1})

    async def delivery_claim() -> None:  # made, claimed by lease token, completed: the worker's writes
        token = uuid.uuid4().hex
        delivery = ObjectId()
        await db["webhook_deliveries"].insert_one({"_id": delivery, "event_id": ObjectId(), "endpoint_id": ENDPOINT,
                                                   "state": "pending", "next_attempt_at": NOW, "lease_until": None,
                                                   "created_at": NOW})
        await db["webhook_deliveries"].update_many(
            {"_id": {"$in": [delivery]}, "lease_token": {"$in": [None]}, "state": "pending"},
            {"$set": {"lease_token": token}})
        await db["webhook_deliveries"].find({"lease_token": token}).to_list(None)
        await db["webhook_deliveries"].update_many({"_id": {"$in": [delivery]}, "lease_token": token},
                                                   {"$set": {"state": "succeeded", "lease_token": None}})

    async def due_endpoints() -> Any:
        return await db["webhook_deliveries"].distinct("endpoint_id", due_index)

    async def reading_bucket() -> None:
        await db["readings"].update_one({"_id": f"{SKUS[0]}:{0:010d}"}, {"$inc": {"count": 1}})

    top = seeder.size  # the newest number below the timed stamps (what the bus knows as its last)
    return {
        "sequencer: pending events": find("events", {"pending": True}, {"_id": 1}, limit=1000),
        "sequencer/bus: highest number (at start)": find("events", {"seq": {"$gt": top - 50}}, {"seq": -1}, limit=1),
        "sequencer: insert pending + stamp": (pending_stamp, None),
        "bus/dispatcher: events after a number": find("events", {"seq": {"$gt": top - 5}}, {"seq": 1}, limit=200),
        "replay: a tenant's events after a cursor": find(
            "events", {"audience": TENANT, "seq": {"$gt": top - 5}}, {"seq": 1}, limit=200),
        "eventCursor: a tenant's newest event": find(
            "events", {"audience": TENANT, "seq": {"$gt": top - 256}}, {"seq": -1}, limit=1),
        "movements: idempotency keys of a batch": find(
            "movements", {"tenant_id": TENANT, "idempotency_key": {"$in": ["k1", "new-1", "new-2"]}}),
        "movements: insert one": (movement_insert, None),
        "movements: positions of a batch at a location": find(
            "stock_positions", {"tenant_id": TENANT, "location_id": LOCATION, "sku_id": {"$in": SKUS[:5]}}),
        "positions: guarded update by _id": (position_update, None),
        "webhooks: endpoints with due deliveries": (due_endpoints, {"find": "webhook_deliveries",
                                                                    "filter": due_index}),
        "webhooks: due deliveries of an endpoint": find(
            "webhook_deliveries", {"endpoint_id": ENDPOINT, **due_index}, {"next_attempt_at": 1}, limit=1000),
        "webhooks: pending before a batch (per-subject order)": find(
            "webhook_deliveries", {"endpoint_id": ENDPOINT, "state": "pending", "seq": {"$lte": top}}, {"seq": 1},
            limit=200),
        "webhooks: existing deliveries of events": find("webhook_deliveries", {"event_id": {"$in": [ObjectId()]}}),
        "webhooks: make, claim, complete one": (delivery_claim, None),
        "escalation: overdue alerts": find(
            "alerts", {"status": "open", "escalation_done_at": None, "opened_at": {"$lte": NOW}}),
        "readings: update one bucket": (reading_bucket, None),
    }


def stages(plan: Any) -> list[str]:
    if isinstance(plan, dict):
        return ([plan["stage"]] if "stage" in plan else []) + [s for v in plan.values() for s in stages(v)]
    if isinstance(plan, list):
        return [s for item in plan for s in stages(item)]
    return []


async def measure(seeder: Seeder, repeat: int) -> tuple[dict[str, float], dict[str, str]]:
    timings: dict[str, float] = {}
    plans: dict[str, str] = {}
    for name, (op, command) in operations(seeder).items():
        await op()  # warm
        samples = []
        for _ in range(repeat):
            began = time.perf_counter()
            await op()
            samples.append(time.perf_counter() - began)
        timings[name] = statistics.median(samples)
        if command is not None:
            explained = await seeder.db.command("explain", command, verbosity="queryPlanner")
            plans[name] = ">".join(dict.fromkeys(stages(explained["queryPlanner"]["winningPlan"])))
    return timings, plans


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="lotpulse-growth-"))
    server = None
    uri = os.environ.get("LOTPULSE_MONGODB_URI")
    if not uri:
        server = EmbeddedServer(tmp / "db", log_path=tmp / "secantusd.log", sync_on_commit=False)
        server.start()
        uri = server.uri
    name = f"growth_{uuid.uuid4().hex[:8]}"
    database = await Database.connect(uri, name, timed=False, deadlines=Deadlines(operation=None, transaction=None))
    try:
        seeder = Seeder(database)
        small, large = args.documents, args.documents * 10
        await seeder.grow(small)
        before, _ = await measure(seeder, args.repeat)
        began = time.monotonic()
        await seeder.grow(large)
        print(f"seeded {small} then {large} documents per collection ({time.monotonic() - began:.0f} s to grow); "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        after, plans = await measure(seeder, args.repeat)
        worst = 0.0
        print(f"\n{'operation':45s} {small:>8d} docs {large:>8d} docs  ratio  plan")
        for op in before:
            ratio = after[op] / before[op]
            worst = max(worst, ratio)
            flag = "  <- grows with the data" if ratio >= 3 else ""
            print(f"{op:45s} {before[op] * 1000:10.1f} ms {after[op] * 1000:10.1f} ms  {ratio:5.2f}  "
                  f"{plans.get(op, '-')}{flag}")
        print(f"\nlargest ratio {worst:.2f} at 10 x the data (an index: about 1-1.5; a scan: about 10)")
        return 0 if worst < 3 else 1
    finally:
        if server is None:
            await database.client.drop_database(name)
        await database.close()
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=15)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
