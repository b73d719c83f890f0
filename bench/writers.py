"""16 concurrent writers, batches of 10 movements: one hub, two hubs on one database, and two raw pymongo floors.

    python bench/writers.py [--writers 16] [--batch 10] [--seconds 20] [--profile]

Starts one SecantusDB process (or uses LOTPULSE_MONGODB_URI) and, per phase, fresh hub processes
(``python -m hub.cli serve``) on one database. Each writer is one client with its own store, posting
``recordMovements`` batches back to back for ``--seconds``. Two floors, the same writers with pymongo:

- the raw floor (the one the targets name): what a batch has to store at the least, one transaction per batch that
  inserts the 10 movement documents (with the movements collection's unique idempotency index) and upserts their 10
  stock positions;
- by hand, what the hub stores: the documents the hub writes for a batch (movements, positions, 11 events numbered
  after the commit, demand series) with plain driver calls into collections with the hub's own indexes, and nothing
  else (no lookups, no checks): what those documents cost on the store, whoever writes them.

Printed: movements/s, batch p50/p99, errors by code, the ratios to the raw floor and to storing by hand, measured in
the same run, and the CPU each batch cost the database process (when the bench started it) and the hub processes: on
one shared machine the database's CPU per batch is the steadier figure. ``--profile`` adds each hub phase's database
commands per batch by collection (the server's profiler, which slows the phase).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from bson import ObjectId
from pymongo import AsyncMongoClient, IndexModel, InsertOne, UpdateOne
from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import on_cpu, percentile, wait_ready
from hub.auth import mint_local_token
from hub.config import Settings
from hub.db import Database, Deadlines, EmbeddedServer, free_port
from hub.keys import KeyFile
from hub.models.event import Event
from hub.models.movement import Movement
from hub.models.planning import DemandSeries
from hub.models.stock import StockPosition
from tenants import service as tenant_service

RECORD = "mutation($m: [MovementInput!]!, $l: ID) { recordMovements(movements: $m, locationId: $l) { accepted } }"
SKUS = 10


class Result:
    def __init__(self, name: str) -> None:
        self.name = name
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.movements = 0
        self.elapsed = 0.0
        self.requests = 0  # database requests (every client's, background work included) during the phase
        self.cpu: dict[str, float] = {}  # seconds on a CPU during the phase, by process

    @property
    def rate(self) -> float:
        return self.movements / self.elapsed if self.elapsed else 0.0

    def line(self, floor: Result | None) -> str:
        p50 = percentile(self.latencies, 0.5) * 1000 if self.latencies else float("nan")
        p99 = percentile(self.latencies, 0.99) * 1000 if self.latencies else float("nan")
        text = f"{self.name:<28} {self.rate:8,.0f} movements/s   batch p50 {p50:6,.0f} ms  p99 {p99:6,.0f} ms"
        if floor is not None:
            floor_p99 = percentile(floor.latencies, 0.99) * 1000
            text += f"   {self.rate / floor.rate:5.2f}x floor rate, p99 {p99 / floor_p99:4.2f}x floor p99"
        errors = ", ".join(f"{code}: {n}" for code, n in self.errors.most_common()) or "none"
        batches = len(self.latencies) + sum(self.errors.values())
        per_batch = f"{self.requests / batches:.1f}" if batches else "?"
        cpu = "".join(f", {name} {spent / batches * 1000:.1f} ms" for name, spent in self.cpu.items() if batches)
        return (f"{text}\n{'':<28} errors: {errors}; database requests per batch: {per_batch}"
                + (f"; CPU per batch{cpu}" if cpu else ""))


async def server_requests(uri: str) -> int:
    """Wire requests the database server has answered so far (serverStatus ``network.numRequests``)."""
    client: AsyncMongoClient = AsyncMongoClient(uri)
    try:
        status = await client.admin.command("serverStatus")
        return int(status["network"]["numRequests"])
    finally:
        await client.close()


class Spent:
    """CPU seconds of some processes over a phase."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: on_cpu(pid) for name, pid in pids.items()}

    def done(self) -> dict[str, float]:
        return {name: on_cpu(pid) - self.start[name] for name, pid in self.pids.items()}


async def raw_floor(uri: str, name: str, args: argparse.Namespace, db_pid: int | None) -> Result:
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True)
    db = client[name]
    await db.floor_movements.create_indexes([IndexModel([("tenant_id", 1), ("idempotency_key", 1)], unique=True)])
    await db.floor_positions.create_indexes(
        [IndexModel([("tenant_id", 1), ("location_id", 1), ("sku_id", 1), ("lot_id", 1)], unique=True)])
    result = Result("raw pymongo floor")
    skus = [ObjectId() for _ in range(SKUS)]
    deadline = time.perf_counter() + args.seconds

    async def writer(w: int) -> None:
        store = ObjectId()
        n = 0
        while time.perf_counter() < deadline:
            batch = [{"tenant_id": "bench", "location_id": store, "sku_id": skus[i % SKUS], "kind": "receipt",
                      "quantity": 1, "idempotency_key": f"floor-{w}-{n}-{i}"} for i in range(args.batch)]
            n += 1

            async def work(session, batch=batch) -> None:  # type: ignore[no-untyped-def]
                await db.floor_movements.insert_many(batch, session=session)
                await db.floor_positions.bulk_write([
                    UpdateOne({"tenant_id": "bench", "location_id": store, "sku_id": m["sku_id"], "lot_id": None},
                              {"$inc": {"on_hand": 1}}, upsert=True) for m in batch], session=session)

            started = time.perf_counter()
            async with client.start_session() as session:
                await session.with_transaction(work, write_concern=WriteConcern("majority"))
            result.latencies.append(time.perf_counter() - started)
            result.movements += args.batch

    await measured(result, uri, {"database": db_pid} if db_pid else {}, writer, args.writers)
    await client.close()
    return result


async def by_hand(uri: str, name: str, args: argparse.Namespace, db_pid: int | None) -> Result:
    """The same writers storing by hand what the hub stores for a batch, into collections with the hub's indexes.

    Per batch, in one transaction: the 10 movement documents, the 10 positions (inserted on the writer's first batch,
    then changed by id: the writer knows them, as the hub remembers them), the 11 events (a ``stock.changed`` per
    position and one ``movements.recorded``) written pending, and the 10 daily demand series; after the commit the
    events are numbered, as the sequencer does. No validation, no lookups, no retries: what those documents cost on
    this store, which no code writing them could go below."""
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True)
    db = client[name]
    for model in (Movement, StockPosition, Event, DemandSeries):
        await db[model.Settings.name].create_indexes(model.Settings.indexes)
    result = Result("by hand, what the hub stores")
    skus = [ObjectId() for _ in range(SKUS)]
    deadline = time.perf_counter() + args.seconds
    numbers = itertools.count(1)

    async def writer(w: int) -> None:
        store = ObjectId()
        positions: list[ObjectId] = []  # known once the first batch has committed
        series: list[ObjectId] = []
        n = 0
        while time.perf_counter() < deadline:
            now = datetime.now(UTC)
            day = now.date().isoformat()
            movements = [{
                "_id": ObjectId(), "tenant_id": "bench", "location_id": store, "sku_id": skus[i % SKUS],
                "sku_owner_id": "bench", "lot_id": None, "lot_code": None, "kind": "receipt", "quantity": 1,
                "counted": None, "idempotency_key": f"w{w}-{n}-{i}", "fingerprint": f"{w}{n}{i}", "reference": None,
                "occurred_at": now, "recorded_at": now, "actor": "bench", "actor_kind": "user", "client_id": None,
                "reason": None} for i in range(args.batch)]
            events = [{
                "_id": ObjectId(), "type": "stock.changed", "tenant_id": "bench", "audience": ["bench"],
                "payload": {"locationId": str(store), "skuId": str(sku), "lotId": None, "onHand": n + 1, "delta": 1},
                "subject": f"position:{store}:{sku}", "pending": True, "occurred_at": now,
                "expires_at": now + timedelta(days=30)} for sku in skus]
            events.append({**events[0], "_id": ObjectId(), "type": "movements.recorded", "subject": None,
                           "payload": {"count": args.batch, "movementIds": [str(m["_id"]) for m in movements]}})
            new_positions: list[dict[str, Any]] = [] if positions else [{
                "_id": ObjectId(), "tenant_id": "bench", "location_id": store, "sku_id": sku, "sku_owner_id": "bench",
                "lot_id": None, "lot_code": None, "on_hand": 1, "expires_on": None, "effective_expires_on": None,
                "updated_at": now} for sku in skus]
            new_series: list[dict[str, Any]] = [] if series else [{
                "_id": ObjectId(), "tenant_id": "bench", "location_id": store, "sku_id": sku, "sku_owner_id": "bench",
                "on_hand": 1, "days": {day: {"n": 1}}, "first_day": day, "kept_from": day, "updated_at": now}
                for sku in skus]
            writes: list[tuple[str, list[Any]]] = [
                ("stock_positions", [UpdateOne({"_id": p}, {"$inc": {"on_hand": 1}, "$set": {"updated_at": now}})
                                     for p in positions] + [InsertOne(d) for d in new_positions]),
                ("events", [InsertOne(e) for e in events]),
                ("movements", [InsertOne(m) for m in movements]),
                ("demand_series", [UpdateOne({"_id": s}, {"$inc": {"on_hand": 1, f"days.{day}.n": 1},
                                                          "$set": {"updated_at": now}}) for s in series]
                 + [InsertOne(d) for d in new_series]),
            ]
            n += 1
            started = time.perf_counter()
            async with client.start_session() as session:
                await session.with_transaction(functools.partial(store_all, db, writes),
                                               write_concern=WriteConcern("majority"))
            await db.events.bulk_write([UpdateOne({"_id": e["_id"], "pending": True},
                                                  {"$set": {"seq": next(numbers)}, "$unset": {"pending": ""}})
                                        for e in events], ordered=True)
            result.latencies.append(time.perf_counter() - started)
            result.movements += args.batch
            positions += [d["_id"] for d in new_positions]
            series += [d["_id"] for d in new_series]

    await measured(result, uri, {"database": db_pid} if db_pid else {}, writer, args.writers)
    await client.close()
    return result


async def store_all(db: Any, writes: list[tuple[str, list[Any]]], session: Any) -> None:
    for collection, ops in writes:
        await db[collection].bulk_write(ops, ordered=True, session=session)


async def measured(result: Result, uri: str, pids: dict[str, int], writer: Any, writers: int) -> None:
    """Run ``writers`` copies of ``writer`` and record the phase's time, database requests and CPU in ``result``."""
    before = await server_requests(uri)
    spent = Spent(pids)
    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    result.elapsed = time.perf_counter() - started
    result.cpu = spent.done()
    result.requests = await server_requests(uri) - before


@asynccontextmanager
async def hubs(count: int, uri: str, name: str, tmp: Path
               ) -> AsyncIterator[tuple[list[int], Settings, KeyFile, list[int]]]:
    """``count`` hub processes on one database, sharing keys and issuer."""
    ports = [free_port() for _ in range(count)]
    keyring = KeyFile(tmp / "keys.json")
    _ = keyring.current  # the file exists before the hubs start: the first imports it into the database
    public = f"http://127.0.0.1:{ports[0]}"
    processes = []
    for n, port in enumerate(ports):
        env = {**os.environ, "LOTPULSE_MONGODB_URI": uri, "LOTPULSE_DATABASE": name, "LOTPULSE_PORT": str(port),
               "LOTPULSE_PUBLIC_URL": public, "LOTPULSE_SIGNING_KEY_FILE": str(tmp / "keys.json"),
               "LOTPULSE_DATA_DIR": str(tmp), "LOTPULSE_LOG_LEVEL": "WARNING", "LOTPULSE_WEBHOOK_WORKER": "false",
               "LOTPULSE_SWEEP_INTERVAL_MINUTES": "0"}
        processes.append(subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env,
                                          stdout=open(tmp / f"hub{n}.log", "ab"), stderr=subprocess.STDOUT))
    settings = Settings(public_url=public, signing_key_file=tmp / "keys.json")
    try:
        for port, process in zip(ports, processes):
            await wait_ready(port, process)
        yield ports, settings, keyring, [process.pid for process in processes]
    finally:
        for process in processes:
            process.terminate()
            with suppress(subprocess.TimeoutExpired):
                process.wait(10)


async def through_hubs(uri: str, args: argparse.Namespace, count: int, db_pid: int | None) -> Result:
    name = f"bench_writers_{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="lotpulse-writers-"))
    database = await Database.connect(uri, name, deadlines=Deadlines(operation=None, transaction=None))
    await tenant_service.create_tenant("bench", "Bench", "retailer")
    result = Result(f"{count} hub process{'es' if count > 1 else ''}")
    try:
        async with hubs(count, uri, name, tmp) as (ports, settings, keyring, pids):
            token = mint_local_token(settings, keyring, "bench", ["integration"], 3600)
            headers = {"authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as http:
                async def gql(port: int, query: str, variables: dict | None = None) -> dict:
                    response = await http.post(f"http://127.0.0.1:{port}/graphql", headers=headers,
                                               json={"query": query, "variables": variables or {}})
                    body = response.json()
                    if "errors" in body:
                        raise SystemExit(body["errors"])
                    return body["data"]

                for s in range(SKUS):
                    await gql(ports[0], f'mutation {{ upsertSku(input: {{code: "W-{s}", name: "W {s}"}}) '
                                        '{ sku { id } } }')
                stores = [(await gql(ports[0], f'mutation {{ createLocation(input: {{code: "S{w}", name: "S{w}", '
                                               'kind: store}) { id } }'))["createLocation"]["id"]
                          for w in range(args.writers)]
                deadline = time.perf_counter() + args.seconds

                async def writer(w: int) -> None:
                    port = ports[w % count]
                    n = 0
                    while time.perf_counter() < deadline:
                        batch = [{"sku": f"W-{i % SKUS}", "kind": "receipt", "quantity": 1,
                                  "idempotencyKey": f"w{w}-{n}-{i}"} for i in range(args.batch)]
                        n += 1
                        started = time.perf_counter()
                        response = await http.post(f"http://127.0.0.1:{port}/graphql", headers=headers,
                                                   json={"query": RECORD, "variables": {"m": batch, "l": stores[w]}})
                        elapsed = time.perf_counter() - started
                        try:
                            body = response.json()
                        except ValueError:
                            result.errors[f"HTTP {response.status_code}"] += 1
                            continue
                        if "errors" in body:
                            code = body["errors"][0].get("extensions", {}).get("code", "?")
                            result.errors[code] += 1
                            continue
                        result.latencies.append(elapsed)
                        result.movements += args.batch

                if args.profile:
                    await database.db.command({"profile": 2})
                await measured(result, uri, {**({"database": db_pid} if db_pid else {}),
                                             **{f"hub {n + 1}": pid for n, pid in enumerate(pids)}},
                               writer, args.writers)
                if args.profile:
                    await database.db.command({"profile": 0})
                    await print_profile(database, result.movements / args.batch)
    finally:
        # SecantusDB has been seen to hang dropping a database right after its clients went away: bounded wait (the
        # driver answers the cancelled drop with a connection error).
        with suppress(asyncio.TimeoutError, PyMongoError):
            await asyncio.wait_for(database.client.drop_database(name), 10)
        await database.close()
    print(result.line(None), flush=True)
    return result


async def print_profile(database: Database, batches: float) -> None:
    """The phase's commands by collection and kind, per batch (``--profile``: the server's profiler, level 2)."""
    count: Counter[tuple[str, str]] = Counter()
    async for doc in database.db["system.profile"].find({}, {"ns": 1, "command": 1}):
        count[(doc.get("ns", "?").split(".", 1)[-1], next(iter(doc.get("command") or {}), "?"))] += 1
    for (collection, command), n in count.most_common():
        if n / batches >= 0.01:
            print(f"{'':<28} {n / batches:6.2f} per batch: {command} {collection}")


async def main(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    server = None
    uri = os.environ.get("LOTPULSE_MONGODB_URI")
    if not uri:
        tmp = Path(tempfile.mkdtemp(prefix="lotpulse-writers-db-"))
        server = EmbeddedServer(tmp / "db", log_path=tmp / "secantusd.log")
        server.start()
        uri = server.uri
    try:
        floor_name = f"bench_floor_{uuid.uuid4().hex[:8]}"
        db_pid = server.process.pid if server is not None and server.process is not None else None
        floor = await raw_floor(uri, floor_name, args, db_pid)
        print(floor.line(None), flush=True)
        hand = await by_hand(uri, floor_name + "_hand", args, db_pid)
        print(hand.line(floor), flush=True)
        one = await through_hubs(uri, args, 1, db_pid)
        two = await through_hubs(uri, args, 2, db_pid)
        client: AsyncMongoClient = AsyncMongoClient(uri)
        with suppress(asyncio.TimeoutError, PyMongoError):
            await asyncio.wait_for(client.drop_database(floor_name), 10)
            await asyncio.wait_for(client.drop_database(floor_name + "_hand"), 10)
        await client.close()
    finally:
        if server is not None:
            server.stop()
    print()
    print(f"{args.writers} writers, batches of {args.batch} movements, {args.seconds:.0f} s per phase, one machine "
          f"({os.cpu_count()} cores; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after)")
    print(floor.line(None))
    print(hand.line(floor))
    print(one.line(floor))
    print(two.line(floor))
    print(f"2 hubs / 1 hub: {two.rate / one.rate:.2f}x; against storing by hand what the hub stores: 1 hub "
          f"{one.rate / hand.rate:.2f}x, 2 hubs {two.rate / hand.rate:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true",
                        help="also print each hub phase's database commands per batch, by collection (slows it)")
    asyncio.run(main(parser.parse_args()))
