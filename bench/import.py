"""CSV import through ``lotpulse import`` (the shell command a user runs), next to inserting what it stored raw.

    python bench/import.py [--rows 50000] [--kinds locations,skus,stock]

Writes a file of ``--rows`` rows per kind and times ``lotpulse import KIND FILE --tenant bench`` (a new process:
start-up, reading, checking every row, writing in chunks) against a fresh database: locations first, then SKUs,
then opening stock naming them (100 locations x ``--rows``/100 SKUs, up to four lots per SKU, one position per
row; each row books a count movement, its position, its demand series and, for a new lot, the lot). Right after
each import, the documents it stored are inserted again, one ``insert_many`` per 1,000, into scratch collections
with the same indexes: what any writer of those documents pays on this store, the floor the import is held to.
Prints rows per minute (the target: >= 50,000 rows/min through the command) and the import's ratio to its floor,
with the machine's load average, since the figures move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ first on sys.path, where sibling benchmarks would shadow the hub's packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchHub, running_hub  # noqa: E402
from hub.gs1 import check_digit  # noqa: E402
from hub.models.location import Location  # noqa: E402
from hub.models.lot import Lot  # noqa: E402
from hub.models.movement import Movement  # noqa: E402
from hub.models.planning import DemandSeries  # noqa: E402
from hub.models.sku import Sku  # noqa: E402
from hub.models.stock import StockPosition  # noqa: E402
from tenants import service as tenant_service  # noqa: E402

TENANT = "bench"
LOCATIONS = 100  # stock rows spread over this many locations
KINDS = ("locations", "skus", "stock")
# What each import writes (collection, its indexes): the floor re-inserts these documents.
WRITES: dict[str, list[tuple[str, list[Any]]]] = {
    "locations": [("locations", Location.Settings.indexes)],
    "skus": [("skus", Sku.Settings.indexes)],
    "stock": [("movements", Movement.Settings.indexes), ("stock_positions", StockPosition.Settings.indexes),
              ("demand_series", DemandSeries.Settings.indexes), ("lots", Lot.Settings.indexes)],
}


def gtin(n: int) -> str:
    body = f"2{n:011d}"
    return body + str(check_digit(body))


def write_file(path: Path, kind: str, rows: int) -> None:
    with path.open("w") as out:
        if kind == "locations":
            out.write("code,name,kind,gln\n")
            for n in range(rows):
                out.write(f"L-{n},Store {n},{'warehouse' if n % 10 == 0 else 'store'},\n")
        elif kind == "skus":
            out.write("code,name,gtin,pack_size,unit_cost,currency,category\n")
            for n in range(rows):
                out.write(f"S-{n},Item {n},{gtin(n)},6,1.25,EUR,dairy\n")
        else:
            out.write("location,sku,lot,quantity,expiry\n")
            for n in range(rows):
                sku = n // LOCATIONS
                out.write(f"L-{n % LOCATIONS},S-{sku},B{sku:05d}-{n % 4},{n % 90 + 1},2031-{n % 12 + 1:02}-15\n")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


async def import_file(hub: BenchHub, folder: Path, kind: str, path: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")} | {
        "LOTPULSE_MONGODB_URI": hub.settings.mongodb_uri, "LOTPULSE_DATABASE": hub.settings.database,
        "LOTPULSE_DATA_DIR": str(folder), "LOTPULSE_SIGNING_KEY_FILE": str(folder / "keys.json"),
        "LOTPULSE_LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "hub.cli", "import", kind, str(path), "--tenant", TENANT, "--quiet"],
        env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    return seconds, done.stdout.strip().splitlines()[0]


async def floor(hub: BenchHub, kind: str) -> tuple[float, int]:
    """Seconds to insert again what the import of ``kind`` stored, and how many documents that is."""
    seconds, count = 0.0, 0
    for name, indexes in WRITES[kind]:
        docs = await hub.database.db[name].find({"tenant_id": TENANT}).to_list(None)
        for doc in docs:
            doc.pop("_id")
        scratch = hub.database.db[f"bench_raw_{name}"]
        await scratch.drop()
        if indexes:
            await scratch.create_indexes(indexes)
        started = time.perf_counter()
        for start in range(0, len(docs), 1000):
            await scratch.insert_many(docs[start:start + 1000], ordered=False)
        seconds += time.perf_counter() - started
        count += len(docs)
    return seconds, count


async def main(args: argparse.Namespace) -> None:
    kinds = [k for k in KINDS if k in args.kinds.split(",")]
    async with running_hub() as hub:
        await tenant_service.create_tenant(TENANT, "Bench", "supplier")
        folder = Path(tempfile.mkdtemp(prefix="lotpulse-import-"))
        sizes = {"locations": max(args.rows, LOCATIONS) if "stock" in kinds else args.rows,
                 "skus": max(args.rows, args.rows // LOCATIONS + 1) if "stock" in kinds else args.rows,
                 "stock": args.rows}
        for kind in ("locations", "skus"):  # stock names them: imported even when not measured
            if "stock" in kinds and kind not in kinds:
                path = folder / f"{kind}.csv"
                write_file(path, kind, args.rows // LOCATIONS + LOCATIONS)
                await import_file(hub, folder, kind, path)
        print(f"lotpulse import, {args.rows} rows per kind, against raw insert_many of what it stored "
              "(same indexes, 1,000 per call)")
        met = True
        for kind in kinds:
            path = folder / f"{kind}.csv"
            write_file(path, kind, sizes[kind])
            before = load()
            seconds, summary = await import_file(hub, folder, kind, path)
            raw_seconds, documents = await floor(hub, kind)
            rate = sizes[kind] / seconds * 60
            met &= rate >= 50_000
            print(f"  {kind:9s} {rate:9,.0f} rows/min ({seconds:5.1f} s, process start included)   "
                  f"raw {sizes[kind] / raw_seconds * 60:9,.0f} rows/min ({documents} documents, {raw_seconds:5.1f} s)"
                  f"   import/raw {raw_seconds / seconds:4.2f}x   [{before}]")
            print(f"            {summary}")
        print(f"  target >= 50,000 rows/min: {'met' if met else 'NOT met'} ({load()})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--kinds", default=",".join(KINDS))
    asyncio.run(main(parser.parse_args()))
