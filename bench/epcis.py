"""Captured EPCIS events per second through ``POST /epcis/capture`` over HTTP, next to a raw insert of the same events.

Starts a hub process on its own SecantusDB (bench/harness.py), then posts EPCIS 2.0 documents as a partner's
traceability system would: ``--documents`` documents of ``--events`` ObjectEvents each (instance EPCs, a read point,
business location and transaction; half of them without ``eventID``, so the hub computes the CBV event hash), one
request at a time. Every event is validated against the official schema and the CBV, given its id, checked for a
duplicate, normalised for queries and stored; these events map to no domain object (``inspecting``), so the figure
is the capture path itself. The raw figure inserts the same event objects with ``insert_many``, one call per
document, into a collection of the same database: the floor cost of storing them, with no validation, ids, index
fields or HTTP. The two take turns document by document, so both meet the same load on a shared machine. A third
figure captures shipping events that each become a dispatch (``--mapped`` of them), to show what mapping into the
domain costs on top.

    python bench/epcis.py [--documents 10] [--events 500] [--mapped 100]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import time
import uuid
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


async def capture_one(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> float:
    """Seconds to capture one document (checked: every event captured); the client's JSON encoding is not timed."""
    content = json.dumps(body).encode()
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    started = time.perf_counter()
    response = await client.post("/epcis/capture", content=content, headers=headers)
    elapsed = time.perf_counter() - started
    job = response.json()
    if response.status_code != 202 or job["capturedEvents"] != len(body["epcisBody"]["eventList"]):
        raise SystemExit(f"capture failed: {response.status_code} {str(job)[:300]}")
    return elapsed


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
            await capture_one(client, token, document([observation(999, n) for n in range(10)]))
            # The two figures take turns, document by document, so both meet the same load on a shared machine.
            raw_collection = hub.database.db["bench_raw_epcis"]
            before = load()
            captured_seconds = raw_seconds = 0.0
            for body, raw_body in zip(documents, raw_documents):
                captured_seconds += await capture_one(client, token, body)
                started = time.perf_counter()
                await raw_collection.insert_many(raw_body["epcisBody"]["eventList"])
                raw_seconds += time.perf_counter() - started
            after = load()
            mapped_seconds = 0.0
            for n in range(args.mapped):
                mapped_seconds += await capture_one(client, token, document([shipment(n, consignee_gln)]))
    captured, raw = args.documents * args.events / captured_seconds, args.documents * args.events / raw_seconds
    mapped = args.mapped / mapped_seconds if args.mapped else 0.0
    total = args.documents * args.events
    print(f"EPCIS capture, {args.documents} documents x {args.events} events ({total} events, half without eventID)")
    print(f"  POST /epcis/capture     {captured:10.0f} events/s")
    print(f"  raw insert_many         {raw:10.0f} events/s   (same events, one call per document)")
    print(f"  ratio                   {captured / raw:10.2f}x   (target >= 0.5x)   [{before}; after: {after}]")
    if args.mapped:
        print(f"  mapped (each a dispatch) {mapped:9.1f} events/s   ({args.mapped} one-event documents, shipping)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=10)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--mapped", type=int, default=100)
    asyncio.run(main(parser.parse_args()))
