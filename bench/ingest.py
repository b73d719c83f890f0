"""Readings per second through ``ingestReadings`` over HTTP, next to raw ``insert_many`` into the same database.

Starts an embedded SecantusDB and the hub on loopback, registers 200 sensors at one location holding a chilled SKU,
then posts batches of 5,000 readings (25 per sensor, one a minute) as a gateway would. The raw figure inserts one
document per reading with ``insert_many`` in chunks of the same size: the floor cost of the storage itself, without
validation, buckets, idempotency, detection or transactions; a second floor does the same into a collection with the
unique (sensor_id, t) index that naive storage needs to drop re-sent readings and to read one sensor's series.
Each call is followed by the floors' inserts of as many readings (taking turns), and each figure is the time of the
calls or inserts alone, so on a shared machine both sides see the same load. The CPU time the database process (and
the bench's own process: hub and client) spends during the calls and during the bare floor's inserts is printed too,
to show where a call's work goes; it includes the database's background work in that time.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Run as a script, Python puts bench/ first on sys.path, where sibling benchmarks would shadow the hub's packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import uvicorn  # noqa: E402

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to see where a call's work is done."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
            runs = {}
            for n, compact in enumerate((False, True)):
                latencies, floor_seconds = [], [0.0, 0.0]
                db_cpu, floor_cpu, hub_cpu = 0.0, 0.0, 0.0
                for k in range(args.batches):
                    offset = (n * args.batches + k) * per_sensor
                    payload = batch(sensor_ids, start, per_sensor, offset, compact)
                    t0, c0, h0 = time.perf_counter(), cpu_seconds(db_pid), time.process_time()
                    result = (await gql(http, token, INGEST, {"input": payload}))["ingestReadings"]
                    latencies.append(time.perf_counter() - t0)
                    db_cpu += cpu_seconds(db_pid) - c0
                    hub_cpu += time.process_time() - h0
                    assert result["accepted"] == size and not result["rejected"] and not result["excursions"], result
                    for which, collection in enumerate(raw):
                        docs = [{"sensor_id": sensor_id, "t": start + timedelta(minutes=offset + i), "c": 3.0,
                                 "rh": 85.0} for sensor_id in sensor_ids for i in range(per_sensor)]
                        t0, c0 = time.perf_counter(), cpu_seconds(db_pid)
                        await collection.insert_many(docs, ordered=False)
                        floor_seconds[which] += time.perf_counter() - t0
                        if which == 0:
                            floor_cpu += cpu_seconds(db_pid) - c0
                runs["samples" if compact else "readings"] = (
                    sum(latencies), latencies, floor_seconds, (hub_cpu, db_cpu, floor_cpu)
                )

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
          "and into one with the unique (sensor_id, t) index (taking turns: same load)")
    for form, (seconds, latencies, (bare, indexed), (hub_cpu, db_cpu, floor_cpu)) in runs.items():
        p50 = statistics.median(latencies) * 1000
        print(f"  as {form:<9} {total / seconds:8.0f} readings/s   call p50 {p50:.0f} ms  p99 "
              f"{percentile(latencies, 0.99) * 1000:.0f} ms;  raw {total / bare:.0f}/s bare, {total / indexed:.0f}/s "
              f"indexed:  {bare / seconds:.2f}x raw, {indexed / seconds:.2f}x raw with its index")
        print(f"  {'':12} calls (ms): {' '.join(f'{x * 1000:.0f}' for x in latencies)}")
        per_call = [cpu / args.batches * 1000 for cpu in (hub_cpu, db_cpu, floor_cpu)]
        print(f"  {'':12} CPU per call: hub process {per_call[0]:.0f} ms, database {per_call[1]:.0f} ms; "
              f"bare insert_many: database {per_call[2]:.0f} ms")
    print(f"  replayed batch {size / replay_seconds:8.0f} readings/s   (all duplicates, nothing written)")
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=5000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
