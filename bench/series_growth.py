"""What one demand-series update costs the database as the series keeps more days (why series keep 140 days).

    python bench/series_growth.py [--series 500]

Starts a SecantusDB process (or uses LOTPULSE_MONGODB_URI), inserts ``--series`` series with the hub's indexes and
10, 112 (what readers look back on), 140 (what a series keeps), 365 and 730 days, then adds one sale to each, the way
a movement does, in transactions of 50. Prints the database process's CPU per update (embedded database only) and
the wall time per update, each as a ratio to the 10-day series measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

# Run as a script, Python puts bench/ first on sys.path, where sibling benchmarks would shadow the hub's packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pymongo import AsyncMongoClient, UpdateOne  # noqa: E402

from hub.db import EmbeddedServer  # noqa: E402
from hub.embedded import stop_server, wait_listening  # noqa: E402
from hub.models.planning import DemandSeries  # noqa: E402

SIZES = (10, 112, 140, 365, 730)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main(args: argparse.Namespace) -> None:
    server = None
    uri = os.environ.get("LOTPULSE_MONGODB_URI")
    if not uri:
        server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="lotpulse-series-")) / "db", sync_on_commit=False)
        server.spawn()
        await wait_listening(server)
        uri = server.uri
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True)
    db = client[f"bench_series_{os.getpid()}"]
    today = date.today()
    results: dict[int, tuple[float | None, float]] = {}
    try:
        for days in SIZES:
            collection = db[f"series_{days}"]
            await collection.create_indexes(DemandSeries.Settings.indexes)
            history = {(today - timedelta(days=d)).isoformat(): {"n": -3, "s": 3} for d in range(1, days + 1)}
            docs = [{"tenant_id": "bench", "location_id": i, "sku_id": i, "sku_owner_id": "owner", "on_hand": 100,
                     "days": history, "first_day": min(history), "updated_at": datetime.now(UTC)}
                    for i in range(args.series)]
            await collection.insert_many(docs)
            ids = [doc["_id"] for doc in docs]
            before = cpu_seconds(server.process.pid) if server and server.process else None
            started = time.perf_counter()
            for start in range(0, len(ids), 50):
                sale = {"$inc": {"on_hand": -1, f"days.{today}.n": -1, f"days.{today}.s": 1},
                        "$set": {"updated_at": datetime.now(UTC)}}
                writes = [UpdateOne({"_id": i}, sale) for i in ids[start:start + 50]]
                async with client.start_session() as session:
                    async def work(s, writes=writes, target=collection) -> None:  # type: ignore[no-untyped-def]
                        await target.bulk_write(writes, session=s)
                    await session.with_transaction(work)
            wall = (time.perf_counter() - started) / len(ids) * 1000
            used = ((cpu_seconds(server.process.pid) - before) / len(ids) * 1000  # type: ignore[union-attr]
                    if before is not None else None)
            results[days] = (used, wall)
        floor_cpu, floor_wall = results[SIZES[0]]
        print(f"one demand-series update, {args.series} series per size, load {os.getloadavg()[0]:.2f}")
        for days, (used, wall) in results.items():
            cpu = f"database CPU {used:6.3f} ms ({used / floor_cpu:4.2f}x)" if used is not None and floor_cpu else ""
            print(f"  {days:4d} days kept: {cpu}   wall {wall:6.3f} ms ({wall / floor_wall:4.2f}x the 10-day series)")
    finally:
        await client.drop_database(db.name)
        await client.close()
        if server is not None:
            await stop_server(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=500)
    asyncio.run(main(parser.parse_args()))
