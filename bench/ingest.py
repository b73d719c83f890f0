"""Readings per second through ``ingestReadings`` over HTTP, next to raw ``insert_many`` into the same database.

Starts an embedded SecantusDB and the hub on loopback, registers 200 sensors at one location holding a chilled SKU,
then posts batches of 5,000 readings (25 per sensor, one a minute) as a gateway would. The raw figure inserts one
document per reading with ``insert_many`` in chunks of the same size: the floor cost of the storage itself, without
validation, buckets, idempotency, detection or transactions; a second floor does the same into a collection with the
unique (sensor_id, t) index that naive storage needs to drop re-sent readings and to read one sensor's series.
Each call is followed by the floors' inserts of as many readings (taking turns), so on a shared machine both sides
see the same load. Each turn starts with the hub and the database idle and is timed until the work it caused is done
(``Turns``: a write's change-stream work outlives its acknowledgement, and the floor's 5,000 oplog entries would
otherwise be read during the next call); the ratios timed until acknowledged only are printed too, and so is the CPU
time each process (the bench's own runs the hub and the client) spent per call and per bare insert_many.

The readings are back-dated by hours (every minute of the run needs its own readings), so the heartbeat would find
every sensor silent each minute, raise 200 ``sensor_offline`` alerts and have the next call resolve them one by one:
it is switched off (``sensor_offline_minutes=0``), as that churn measures alerting, not ingestion.

The hub runs with generous deadlines (60 s per transaction and request): on a loaded machine a 5,000-reading call
can pass the default 4 s, and a refused call would measure the deadline, not the storage.

    python bench/ingest.py [--batches 10] [--sensors 200] [--batch-size 5000]
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
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ first on sys.path, where sibling benchmarks would shadow the hub's packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from bench.harness import on_cpu  # noqa: E402
from hub.app import create_app  # noqa: E402
from hub.auth import mint_local_token  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.db import EmbeddedServer, free_port  # noqa: E402
from hub.keys import KeyFile  # noqa: E402
from tenants import service as tenant_service  # noqa: E402

CREATE_LOCATION = "mutation($i: CreateLocationInput!) { createLocation(input: $i) { id } }"
UPSERT_SKU = "mutation($i: SkuInput!) { upsertSku(input: $i) { sku { id } } }"
RECORD = "mutation($m: [MovementInput!]!, $l: ID) { recordMovements(movements: $m, locationId: $l) { accepted } }"
REGISTER = "mutation($i: RegisterSensorInput!) { registerSensor(input: $i) { sensor { id } } }"
INGEST = """
mutation($input: [SensorReadingsInput!]!) {
  ingestReadings(input: $input) { accepted duplicates rejected { reason } excursions { excursionId } }
}
"""


POLL_SECONDS = 0.02  # how often the processes' CPU time is sampled
QUIET_SECONDS = 0.2  # idle: this long at background level
BACKGROUND = 0.1  # background level: both processes together on a CPU at most this share of the time
GIVE_UP_SECONDS = 30.0


@dataclass
class Side:
    """One side's turns added up: seconds until acknowledged, until its work was done, CPU seconds per process."""

    acknowledged: list[float] = field(default_factory=list)
    settled: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)


class Turns:
    """Each turn starts with the hub and the database idle and lasts until the work it caused is done.

    A write leaves work behind after it is acknowledged: the hub's event bus reads the database's change stream, and
    the database reads every new oplog entry for it (5,000 for the floor's insert_many, a few hundred for a call).
    Timed until acknowledged, each side would pay part of the other's leftovers; so each turn is timed until both
    processes fell to their background level for good (the earliest moment after which they stayed there).
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.gave_up = 0
        self.watching = 0.0  # CPU seconds this process spent sampling, left out of its own figure

    def sample(self) -> dict[str, float]:
        started = time.thread_time()
        spent = {name: on_cpu(pid) for name, pid in self.pids.items()}
        self.watching += time.thread_time() - started
        return {name: cpu - self.watching if pid == os.getpid() else cpu for (name, cpu), pid in
                zip(spent.items(), self.pids.values(), strict=True)}

    async def settled(self, since: float) -> float:
        history = [(since, sum(self.sample().values()))]
        while True:
            await asyncio.sleep(POLL_SECONDS)
            now, spent = time.perf_counter(), sum(self.sample().values())
            history.append((now, spent))
            quiet = [cpu for at, cpu in history if at <= now - QUIET_SECONDS]
            if quiet and spent - quiet[-1] <= BACKGROUND * QUIET_SECONDS:
                return next(at for at, cpu in history if spent - cpu <= BACKGROUND * (now - at))
            if now - since > GIVE_UP_SECONDS:
                self.gave_up += 1
                return now

    async def turn(self, side: Side, work: Awaitable[Any]) -> Any:
        await self.settled(time.perf_counter())
        before, started = self.sample(), time.perf_counter()
        result = await work
        acknowledged = time.perf_counter()
        end = await self.settled(acknowledged)
        after = self.sample()
        side.acknowledged.append(acknowledged - started)
        side.settled.append(end - started)
        for name, spent in after.items():
            side.cpu[name] = side.cpu.get(name, 0.0) + spent - before[name]
        return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def gql(http: httpx.AsyncClient, token: str, query: str, variables: dict) -> dict:
    response = await http.post("/graphql", json={"query": query, "variables": variables},
                               headers={"authorization": f"Bearer {token}"})
    body = response.json()
    assert "errors" not in body, (body["errors"], response.elapsed)
    return body["data"]


def batch(sensor_ids: list[str], start: datetime, per_sensor: int, offset: int, compact: bool) -> list[dict]:
    """Typed ``readings`` objects, or the same readings as compact ``samples`` arrays."""
    out = []
    for sensor_id in sensor_ids:
        points = [(start + timedelta(minutes=offset + i), round(3.0 + (i % 7) * 0.25, 2)) for i in range(per_sensor)]
        if compact:
            out.append({"sensorId": sensor_id, "samples": [[at.isoformat(), c, 85.0] for at, c in points]})
        else:
            out.append({"sensorId": sensor_id, "readings": [
                {"at": at.isoformat(), "temperatureC": c, "humidityPct": 85.0} for at, c in points
            ]})
    return out


async def run(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="lotpulse-bench-"))
    server = EmbeddedServer(workdir / "db", log_path=workdir / "secantusd.log")
    server.start()
    assert server.process is not None
    db_pid = server.process.pid
    port = free_port()
    settings = Settings(
        mongodb_uri=server.uri, database=f"bench_{uuid.uuid4().hex[:8]}", data_dir=workdir, port=port,
        public_url=f"http://127.0.0.1:{port}", signing_key_file=workdir / "keys.json", sweep_interval_minutes=0,
        webhook_worker=False, sensor_offline_minutes=0, transaction_timeout_seconds=60.0,
        request_timeout_seconds=60.0, db_timeout_seconds=60.0,
    )
    keyring = KeyFile(settings.signing_key_file)  # type: ignore[arg-type]
    _ = keyring.current  # the file exists before the hub starts: the hub imports it into its database
    app = create_app(settings)
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(uv.serve())
    while not uv.started:
        await asyncio.sleep(0.01)
    token = mint_local_token(settings, keyring, "coldstore", ["admin"], 3600)
    try:
        async with httpx.AsyncClient(base_url=settings.public_url, timeout=120) as http:
            await tenant_service.create_tenant("coldstore", "Cold Store", "logistics")
            chiller = {"code": "CH-1", "name": "Chiller", "kind": "zone"}
            location = await gql(http, token, CREATE_LOCATION, {"i": chiller})
            location_id = location["createLocation"]["id"]
            sku = {"code": "MILK", "name": "Milk", "storage": {"tempMaxC": 8.0}, "excursionSensitivity": 0.5}
            await gql(http, token, UPSERT_SKU, {"i": sku})
            stock = {"sku": "MILK", "kind": "receipt", "quantity": 1000, "idempotencyKey": "r1", "lotCode": "M1",
                     "expiresOn": (datetime.now(UTC).date() + timedelta(days=12)).isoformat()}
            await gql(http, token, RECORD, {"m": [stock], "l": location_id})
            sensor_ids = []
            for n in range(args.sensors):
                probe = {"deviceId": f"probe-{n:04d}", "locationId": location_id}
                data = await gql(http, token, REGISTER, {"i": probe})
                sensor_ids.append(data["registerSensor"]["sensor"]["id"])

            per_sensor = args.batch_size // args.sensors
            size = per_sensor * args.sensors
            # Two runs over fresh minutes each (typed, then compact), readings one a minute per sensor.
            start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(
                minutes=2 * per_sensor * args.batches + 5
            )
            # Each call is followed by the floors' inserts of as many readings, taking turns, so the hub and the
            # floors are measured under the same load from the rest of the machine.
            raw = [app.state.hub.database.db[f"bench_raw_readings_{indexed}"] for indexed in (0, 1)]
            await raw[1].create_index([("sensor_id", 1), ("t", 1)], unique=True)
            turns = Turns({"bench process (hub)": os.getpid(), "database": db_pid})
            runs: dict[str, tuple[Side, Side, Side]] = {}
            for n, compact in enumerate((False, True)):
                hub_side, bare, indexed = Side(), Side(), Side()
                for k in range(args.batches):
                    offset = (n * args.batches + k) * per_sensor
                    payload = batch(sensor_ids, start, per_sensor, offset, compact)
                    result = (await turns.turn(hub_side, gql(http, token, INGEST, {"input": payload})))
                    result = result["ingestReadings"]
                    assert result["accepted"] == size and not result["rejected"] and not result["excursions"], result
                    for side, collection in zip((bare, indexed), raw, strict=True):
                        docs = [{"sensor_id": sensor_id, "t": start + timedelta(minutes=offset + i), "c": 3.0,
                                 "rh": 85.0} for sensor_id in sensor_ids for i in range(per_sensor)]
                        await turns.turn(side, collection.insert_many(docs, ordered=False))
                runs["samples" if compact else "readings"] = (hub_side, bare, indexed)

            t0 = time.perf_counter()
            replay = (await gql(http, token, INGEST, {"input": batch(sensor_ids, start, per_sensor, 0, True)}))
            replay_seconds = time.perf_counter() - t0
            assert replay["ingestReadings"]["accepted"] == 0 and replay["ingestReadings"]["duplicates"] == size

        buckets = await app.state.hub.database.db["readings"].count_documents({})
    finally:
        uv.should_exit = True
        await serving
        server.stop()

    total = size * args.batches
    print(f"ingestReadings over HTTP: {args.batches} calls of {size} readings ({args.sensors} sensors x {per_sensor}) "
          f"per form; {2 * total} readings stored in {buckets} buckets")
    print("each call followed by raw insert_many of as many readings, one document per reading, into a bare collection "
          "and into one with the unique (sensor_id, t) index (taking turns: same load); each turn from idle until "
          "its work was done")
    for form, (hub_side, bare, indexed) in runs.items():
        seconds, floor, floor_indexed = (sum(side.settled) for side in (hub_side, bare, indexed))
        acked = [sum(side.acknowledged) for side in (hub_side, bare, indexed)]
        latencies = hub_side.acknowledged
        print(f"  as {form:<9} {total / seconds:8.0f} readings/s   call p50 {statistics.median(latencies) * 1000:.0f} "
              f"ms  p99 {percentile(latencies, 0.99) * 1000:.0f} ms;  raw {total / floor:.0f}/s bare, "
              f"{total / floor_indexed:.0f}/s indexed:  {floor / seconds:.2f}x raw, {floor_indexed / seconds:.2f}x "
              "raw with its index")
        print(f"  {'':12} timed until acknowledged only: {acked[1] / acked[0]:.2f}x raw, {acked[2] / acked[0]:.2f}x "
              f"raw with its index; calls (ms): {' '.join(f'{x * 1000:.0f}' for x in latencies)}")
        print(f"  {'':12} CPU per call: " + ", ".join(f"{name} {cpu / args.batches * 1000:.0f} ms"
                                                      for name, cpu in hub_side.cpu.items())
              + "; per bare insert_many: " + ", ".join(f"{name} {cpu / args.batches * 1000:.0f} ms"
                                                      for name, cpu in bare.cpu.items()))
    print(f"  replayed batch {size / replay_seconds:8.0f} readings/s   (all duplicates, nothing written)")
    if turns.gave_up:
        print(f"  {turns.gave_up} turns never saw the processes idle within {GIVE_UP_SECONDS:.0f} s")
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=5000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
