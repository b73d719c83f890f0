"""CSV import through ``lotpulse import`` (the shell command a user runs), next to inserting the same rows raw.

    python bench/import.py [--rows 50000]

Writes a SKU file of ``--rows`` rows, times ``lotpulse import skus FILE --tenant bench`` against a fresh database
(a new process: start-up, reading, checking every row, writing in chunks), then inserts the documents the import
stored, one ``insert_many`` per 1,000, twice: into a bare scratch collection of the same database (the floor of
storing them at all) and into one with the SKU collection's indexes (what any writer of SKUs pays on this store:
the unique code and GTIN, aliases, category). Prints rows per minute for each and the import's ratio to both (the
target: >= 50,000 rows/min through the command).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import running_hub
from hub.gs1 import check_digit
from hub.models.sku import Sku
from tenants import service as tenant_service

TENANT = "bench"


def gtin(n: int) -> str:
    body = f"2{n:011d}"
    return body + str(check_digit(body))


async def main(args: argparse.Namespace) -> None:
    async with running_hub() as hub:
        await tenant_service.create_tenant(TENANT, "Bench", "supplier")
        folder = Path(tempfile.mkdtemp(prefix="lotpulse-import-"))
        path = folder / "skus.csv"
        with path.open("w") as out:
            out.write("code,name,gtin,pack_size,unit_cost,currency,category\n")
            for n in range(args.rows):
                out.write(f"S-{n},Item {n},{gtin(n)},6,1.25,EUR,dairy\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")} | {
            "LOTPULSE_MONGODB_URI": hub.settings.mongodb_uri, "LOTPULSE_DATABASE": hub.settings.database,
            "LOTPULSE_DATA_DIR": str(folder), "LOTPULSE_SIGNING_KEY_FILE": str(folder / "keys.json"),
            "LOTPULSE_LOG_LEVEL": "WARNING",
        }
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "hub.cli", "import", "skus", str(path), "--tenant", TENANT,
                               "--quiet"], env=env, capture_output=True, text=True)
        hub_s = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(done.stdout + done.stderr)
        stored = await hub.database.db["skus"].find({"tenant_id": TENANT}, {"_id": 0}).to_list(None)
        floors = {}
        for name, indexes in (("bare", []), ("indexed", Sku.Settings.indexes)):
            scratch = hub.database.db[f"bench_raw_skus_{name}"]
            if indexes:
                await scratch.create_indexes(indexes)
            docs = [dict(doc) for doc in stored]
            started = time.perf_counter()
            for start in range(0, len(docs), 1000):
                await scratch.insert_many(docs[start:start + 1000], ordered=False)
            floors[name] = time.perf_counter() - started
        print(done.stdout.strip())
        print(f"lotpulse import: {args.rows / hub_s * 60:,.0f} rows/min ({hub_s:.1f} s, process start included)")
        for name, seconds in floors.items():
            print(f"raw insert_many, {name}: {args.rows / seconds * 60:,.0f} rows/min ({seconds:.1f} s); "
                  f"import/raw ratio {seconds / hub_s:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    asyncio.run(main(parser.parse_args()))
