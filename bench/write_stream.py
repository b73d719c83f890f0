"""Does a long stream of single writes cost the database more per write as it goes on?

``bench/growth.py`` times each hot operation at two collection sizes; this one looks at the other axis a soak
exercises: the number of writes made so far. It sends --writes single-document writes shaped like the hub's
webhook deliveries (insert one, then finish it with a conditional update, on the collection's real indexes), one
after another, and prints the embedded database's CPU time per write for each block of --block writes (read from
/proc, so a machine shared with other work does not inflate it the way it inflates wall time).

It runs the stream twice, each on a fresh database: with the hub's URI for its embedded database (driver-side
retryable writes off) and with the driver's default (retryable writes on), the floor being the first block of each.
With retryable writes on, SecantusDB keeps every write's reply for 30 minutes and walks that record on each write
(sorting it once it passes 10,000), so the cost per write climbs block after block; with them off it stays flat.

    python -m bench.write_stream [--writes 24000] [--block 2000]

Linux only (/proc). Prints each block's CPU ms per write and the last block's ratio to the first, per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

# Run as a script, bench/ comes first on sys.path and bench/webhooks.py would shadow the webhooks package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bson import ObjectId
from pymongo import AsyncMongoClient

from hub.db import EmbeddedServer
from webhooks.models import WebhookDelivery


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def delivery(seq: int, endpoint: ObjectId) -> dict:
    now = datetime.now(UTC)
    return {
        "_id": ObjectId(), "event_id": ObjectId(), "endpoint_id": endpoint, "tenant_id": "acme",
        "event_type": "stock.changed", "subject": "stock:acme", "seq": seq, "body": "x" * 1200, "state": "pending",
        "next_attempt_at": now, "failures": 0, "attempt_count": 0, "lease_token": f"lease-{seq}", "lease_until": now,
        "claims": [now], "delivered_at": None, "last_error": None, "created_at": now, "updated_at": now,
    }


async def stream(uri: str, pid: int, writes: int, block: int) -> list[float]:
    """CPU ms per write of each block."""
    client: AsyncMongoClient = AsyncMongoClient(uri, tz_aware=True)
    try:
        collection = client["write_stream"]["webhook_deliveries"]
        await collection.create_indexes(WebhookDelivery.Settings.indexes)
        endpoint = ObjectId()
        per_write: list[float] = []
        for first in range(0, writes, block):
            before = cpu_seconds(pid)
            for seq in range(first, first + block, 2):
                document = delivery(seq, endpoint)
                await collection.insert_one(document)
                await collection.update_one(
                    {"_id": document["_id"], "lease_token": document["lease_token"]},
                    {"$set": {"lease_token": None, "state": "delivered"}, "$pop": {"claims": 1}},
                )
            per_write.append((cpu_seconds(pid) - before) / block * 1000)
        return per_write
    finally:
        await client.close()


async def run(args: argparse.Namespace) -> None:
    for label, retry in (("hub's embedded URI (retryable writes off)", False), ("driver default (retryable on)", True)):
        with tempfile.TemporaryDirectory(prefix="lotpulse-stream-") as folder:
            server = EmbeddedServer(Path(folder) / "db", sync_on_commit=True)
            server.start()
            try:
                assert server.process is not None
                uri = server.uri if not retry else server.uri.replace("&retryWrites=false", "")
                blocks = await stream(uri, server.process.pid, args.writes, args.block)
            finally:
                server.stop()
        figures = " ".join(f"{ms:5.2f}" for ms in blocks)
        print(f"{label:44} CPU ms per write by block of {args.block}: {figures}")
        print(f"{'':44} last block / first: x{blocks[-1] / blocks[0]:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=24000)
    parser.add_argument("--block", type=int, default=2000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
