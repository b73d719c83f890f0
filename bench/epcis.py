"""Captured EPCIS events per second through ``POST /epcis/capture`` over HTTP, next to a raw insert of the same events.

Starts a hub process on its own SecantusDB (bench/harness.py), then posts EPCIS 2.0 documents as a partner's
traceability system would: ``--documents`` documents of ``--events`` ObjectEvents each (instance EPCs, a read point,
business location and transaction; half of them without ``eventID``, so the hub computes the CBV event hash), one
request at a time. Every event is validated against the official schema and the CBV, given its id, checked for a
duplicate, normalised for queries and stored; these events map to no domain object (``inspecting``), so the figure
is the capture path itself. The raw figure inserts the same event objects with ``insert_many``, one call per
document, into a collection of the same database: the floor cost of storing them, with no validation, ids, index
fields or HTTP. The two take turns, ``--turn`` documents at a time (each side first every other time), so both meet
the same load on a shared machine.

Every write leaves work in the database after it is acknowledged: the hub's event bus watches the database's change
stream, which reads each new oplog entry. So each turn starts when the database and hub processes are idle, and is
timed until its work is done: until they fell to their background level for good (together on a CPU at most 10 %
of the time, read from /proc/<pid>/task/*/schedstat). Each side pays for all the work its own writes cause, and
none of the other's. (A little leftover work right after the acknowledgement can pass for background: that favours
the raw insert, whose leftovers come after it, slightly.) Timed only until acknowledged (also printed), the raw
insert would leave much of its database work outside its clock, while a capture, which inserts its events in
batches of 100, meets its earlier batches' change-stream work inside it. The CPU each process spent per event is
printed too, and the median of the ratios of each capture turn and the raw turn of the same documents next to it:
on a machine shared with other work, a burst that hits a few turns moves the totals, hardly the median. (With
``LOTPULSE_MONGODB_URI`` the database process is not ours to watch: only the hub's idleness is awaited, and the
database's leftovers are not seen.) A third figure captures shipping events that each become a dispatch
(``--mapped`` of them), to show what mapping into the domain costs on top.

    python bench/epcis.py [--documents 30] [--events 500] [--turn 1] [--mapped 100]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ first on sys.path, where sibling benchmarks would shadow the hub's packages.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.harness import running_hub, wait_ready  # noqa: E402
from hub.gs1 import check_digit  # noqa: E402
from tenants import service as tenant_service  # noqa: E402

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
UPSERT_SKU = "mutation($i: SkuInput!) { upsertSku(input: $i) { sku { id } } }"
INVITE = "mutation($i: InvitePartnerInput!) { invitePartner(input: $i) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id } }"
PREFIX = "4012345"
GTIN = "0" + PREFIX + "33393"
GTIN += str(check_digit(GTIN))


def observation(doc: int, n: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "ObjectEvent", "action": "OBSERVE", "bizStep": "inspecting", "disposition": "in_progress",
        "eventTime": f"2030-03-16T{n // 3600 % 24:02}:{n // 60 % 60:02}:{n % 60:02}.{doc:03}Z",
        "eventTimeZoneOffset": "+01:00",
        "epcList": [f"urn:epc:id:sgtin:{PREFIX}.033393.{doc}-{n}-{k}" for k in range(3)],
        "readPoint": {"id": f"urn:epc:id:sgln:{PREFIX}.00001.{n % 7}"},
        "bizLocation": {"id": f"urn:epc:id:sgln:{PREFIX}.00001.0"},
        "bizTransactionList": [{"type": "po", "bizTransaction": f"urn:epcglobal:cbv:bt:{PREFIX}000016:PO-{doc}"}],
    }
    if n % 2 == 0:
        event["eventID"] = f"urn:uuid:{uuid.uuid4()}"
    return event


def shipment(n: int, consignee_gln: str) -> dict[str, Any]:
    lgtin = f"urn:epc:class:lgtin:{PREFIX}.033393.LOT{n % 20}"
    return {
        "type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit",
        "eventTime": "2030-03-16T10:00:00Z", "eventTimeZoneOffset": "+00:00",
        "quantityList": [{"epcClass": lgtin, "quantity": 10 + n % 5}],
        "bizTransactionList": [{"type": "desadv", "bizTransaction": f"urn:epcglobal:cbv:bt:{PREFIX}000016:ASN-{n}"}],
        "destinationList": [{"type": "owning_party", "destination": f"urn:epc:id:pgln:{consignee_gln[:7]}."
                                                                    f"{consignee_gln[7:12]}"}],
    }


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@context": CONTEXT, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2030-03-16T10:00:00Z", "epcisBody": {"eventList": events}}


async def capture_one(client: httpx.AsyncClient, token: str, body: dict[str, Any] | bytes, events: int) -> None:
    """Capture one document (checked: every event captured)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    response = await client.post("/epcis/capture", content=content, headers=headers)
    job = response.json()
    if response.status_code != 202 or job["capturedEvents"] != events:
        raise SystemExit(f"capture failed: {response.status_code} {str(job)[:300]}")


async def timed_capture(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    await capture_one(client, token, body, len(body["epcisBody"]["eventList"]))
    return time.perf_counter() - started


POLL_SECONDS = 0.01  # how often the processes' CPU time is sampled
QUIET_SECONDS = 0.2  # idle: this long at background level
BACKGROUND = 0.1  # background level: the processes together on a CPU for at most this share of the time (idle, the
# hub and its database use about 3 %: lease renewals, change-stream polls)
GIVE_UP_SECONDS = 30.0


def on_cpu(pid: int) -> int:
    """Nanoseconds all threads of a process spent on a CPU (time spent waiting for one is not counted: on a loaded
    machine, even a short wake-up of an idle process waits tens of milliseconds)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return 0
    for task in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total


@dataclass
class Side:
    """What one side's turns took, turn by turn."""

    settled: list[float] = field(default_factory=list)  # seconds from a turn's start until its work was done
    acknowledged: list[float] = field(default_factory=list)  # seconds until its last write was acknowledged
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process, leftovers included


class Watched:
    """The processes a turn's work runs in (the hub and its database), sampled to find when that work is done."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.gave_up = 0  # waits that never saw the processes idle: those turns include some of what followed

    def sample(self) -> dict[str, int]:
        return {name: on_cpu(pid) for name, pid in self.pids.items()}

    async def settled(self, since: float) -> tuple[float, dict[str, int]]:
        """Wait until the processes stay at background level for ``QUIET_SECONDS``; answers when they fell to it
        for good (the earliest moment after which they stayed there, ``since`` at the earliest) and the last
        sample."""
        history: list[tuple[float, int]] = []
        sample = self.sample()
        history.append((since, sum(sample.values())))
        while True:
            await asyncio.sleep(POLL_SECONDS)
            sample, now = self.sample(), time.perf_counter()
            spent = sum(sample.values())
            history.append((now, spent))
            quiet = [cpu for at, cpu in history if at <= now - QUIET_SECONDS]
            if quiet and spent - quiet[-1] <= BACKGROUND * QUIET_SECONDS * 1e9:
                end = next(at for at, cpu in history if spent - cpu <= BACKGROUND * (now - at) * 1e9)
                return end, sample
            if now - since > GIVE_UP_SECONDS:
                self.gave_up += 1
                return now, sample

    async def turn(self, work: Callable[[], Awaitable[None]], side: Side) -> None:
        _, before = await self.settled(time.perf_counter())
        started = time.perf_counter()
        await work()
        acknowledged = time.perf_counter()
        end, after = await self.settled(acknowledged)
        side.acknowledged.append(acknowledged - started)
        side.settled.append(end - started)
        for name in self.pids:
            side.cpu[name] = side.cpu.get(name, 0.0) + (after[name] - before[name]) / 1e9


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


async def main(args: argparse.Namespace) -> None:
    documents = [document([observation(d, n) for n in range(args.events)]) for d in range(args.documents)]
    raw_documents = copy.deepcopy(documents)
    async with running_hub() as hub:
        consignee_gln = "4012345000023"
        await tenant_service.create_tenant("acme", "Acme", "supplier", gln="4012345000016")
        await tenant_service.create_tenant("shopco", "Shopco", "retailer", gln=consignee_gln)
        await wait_ready(hub.port, hub.process)
        token = hub.token("acme", "integration")
        async with httpx.AsyncClient(base_url=hub.url, timeout=300) as client:
            admin = {"authorization": f"Bearer {hub.token('acme', 'admin')}"}
            shop = {"authorization": f"Bearer {hub.token('shopco', 'admin')}"}
            sku = {"code": "YOG-1", "name": "Yogurt", "gtin": GTIN, "shelfLifeDays": 30}
            await client.post("/graphql", json={"query": UPSERT_SKU, "variables": {"i": sku}}, headers=admin)
            invite = {"partnerId": "shopco", "weShare": ["sku_master"], "theyShare": ["dispatches"]}
            reply = await client.post("/graphql", json={"query": INVITE, "variables": {"i": invite}}, headers=admin)
            partnership = reply.json()["data"]["invitePartner"]["id"]
            await client.post("/graphql", json={"query": ACCEPT, "variables": {"id": partnership}}, headers=shop)
            # warm-up: one small document (schema compiled, connections open), not counted
            await capture_one(client, token, document([observation(999, n) for n in range(10)]), 10)
            raw_collection = hub.database.db["bench_raw_epcis"]
            pids = {"database": hub.server.process.pid} if hub.server and hub.server.process else {}
            watched = Watched({**pids, "hub": hub.process.pid})
            # The client's JSON encoding is not timed: the raw side's documents are not encoded in advance either.
            bodies = [json.dumps(body).encode() for body in documents]
            counts = [len(body["epcisBody"]["eventList"]) for body in documents]
            raw_lists = [raw_body["epcisBody"]["eventList"] for raw_body in raw_documents]
            captured, raw = Side(), Side()

            async def captures(first: int) -> None:
                for n in range(first, min(first + args.turn, args.documents)):
                    await capture_one(client, token, bodies[n], counts[n])

            async def raw_inserts(first: int) -> None:
                for events in raw_lists[first:first + args.turn]:
                    await raw_collection.insert_many(events)

            before = load()
            for n, first in enumerate(range(0, args.documents, args.turn)):
                sides = [(partial(captures, first), captured), (partial(raw_inserts, first), raw)]
                for work, side in sides if n % 2 == 0 else reversed(sides):  # each side first every other time
                    await watched.turn(work, side)
            after = load()
            mapped_seconds = 0.0
            for n in range(args.mapped):
                mapped_seconds += await timed_capture(client, token, document([shipment(n, consignee_gln)]))
    total = args.documents * args.events
    mapped = args.mapped / mapped_seconds if args.mapped else 0.0
    print(f"EPCIS capture, {args.documents} documents x {args.events} events ({total} events, half without eventID), "
          f"taking turns {args.turn} documents at a time")
    print(f"                          {'until idle':>16}  {'acknowledged':>16}   CPU per event until idle")
    for name, side in (("POST /epcis/capture", captured), ("raw insert_many", raw)):
        cpu = ", ".join(f"{process} {seconds / total * 1e6:.0f} us" for process, seconds in side.cpu.items())
        print(f"  {name:22}  {total / sum(side.settled):7.0f} events/s  {total / sum(side.acknowledged):7.0f} events/s"
              f"   {cpu}")
    settled, acknowledged = sum(raw.settled) / sum(captured.settled), sum(raw.acknowledged) / sum(captured.acknowledged)
    print(f"  ratio                   {settled:15.2f}x  {acknowledged:15.2f}x   (target >= 0.5x until idle)   "
          f"[{before}; after: {after}]")
    # Each capture turn and the raw turn of the same documents next to it met nearly the same outside load: the
    # median of their ratios is not swayed by a burst of other work that hit only a few turns.
    pairs = [r / c for r, c in zip(raw.settled, captured.settled)]
    low, median, high = statistics.quantiles(pairs, n=4) if len(pairs) > 1 else pairs * 3
    print(f"  paired turns, median {median:12.2f}x   (middle half {low:.2f}-{high:.2f}x, all {min(pairs):.2f}-"
          f"{max(pairs):.2f}x, {len(pairs)} pairs)")
    if watched.gave_up:
        print(f"  {watched.gave_up} waits never saw the processes idle within {GIVE_UP_SECONDS:.0f} s: those turns "
              f"include some of what followed them")
    if args.mapped:
        print(f"  mapped (each a dispatch) {mapped:9.1f} events/s   ({args.mapped} one-event documents, shipping)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=30)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--turn", type=int, default=1, help="documents per turn")
    parser.add_argument("--mapped", type=int, default=100)
    asyncio.run(main(parser.parse_args()))
