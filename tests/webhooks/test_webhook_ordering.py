"""Per-subject order over real HTTP: deliveries about one lot reach an endpoint in the log's order, each after the
one before it was answered 2xx (or given up), while other lots flow in parallel and are not held up by a lot waiting
for a retry."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from bson import ObjectId

from hub.config import Settings
from hub.events.log import build_event, emit_many
from tests.conftest import Hub, start_hub
from tests.webhooks.conftest import Received, Receiver
from tests.webhooks.helpers import create_endpoint
from webhooks.models import DeliveryState, WebhookDelivery

LOTS = 8
WAVES = 5
PER_WAVE = 4  # events per lot per wave


@pytest.fixture
async def ordered_hub(settings: Settings) -> AsyncIterator[Hub]:
    """Background webhook loops, brisk polling, several requests in flight per endpoint, quick and many retries."""
    async for running in start_hub(settings.with_(webhook_poll_seconds=0.05, webhook_endpoint_concurrency=6,
                                                  webhook_retry_schedule=(0.2,) * 300)):
        yield running


def lot_event(tenant: str, lot: int, n: int):  # type: ignore[no-untyped-def]
    return build_event("stock.changed", tenant, [], {"positions": [], "lotNumber": lot, "n": n}, subject=f"lot:{lot}")


async def test_one_lot_arrives_in_order_while_the_others_flow(ordered_hub: Hub, receiver: Receiver):
    # given: a receiver that answers after a random pause and fails some deliveries once; lot 0's first event it
    # refuses until every event of the other lots has been answered 200, so lot 0 waits on retries meanwhile (were
    # the others held up behind it, they would never all arrive and the test would time out)
    await ordered_hub.tenant("acme", "retailer")
    endpoint_id, secret = await create_endpoint(ordered_hub, "acme", receiver.at("/erp"))
    rng = random.Random(17)
    failed_once: set[str] = set()
    others = (LOTS - 1) * WAVES * PER_WAVE
    stuck_refusals = 0

    def others_done() -> bool:
        return len({r.webhook_id for r in receiver.requests
                    if r.status == 200 and json.loads(r.body)["data"]["lotNumber"] != 0}) == others

    async def respond(request: Received) -> int:
        nonlocal stuck_refusals
        await asyncio.sleep(rng.uniform(0.0, 0.03))
        data = json.loads(request.body)["data"]
        if data["lotNumber"] == 0 and data["n"] == 0 and not others_done():
            stuck_refusals += 1
            return 503
        if rng.random() < 0.15 and request.webhook_id not in failed_once:
            failed_once.add(request.webhook_id)
            return 500
        return 200

    receiver.respond = respond

    # when: events of every lot are committed in waves while earlier ones are being delivered
    total = 0
    for wave in range(WAVES):
        await emit_many(None, [lot_event("acme", lot, wave * PER_WAVE + k)
                               for k in range(PER_WAVE) for lot in range(LOTS)])
        total += LOTS * PER_WAVE
        await asyncio.sleep(0.05)
    deadline = time.monotonic() + 180  # generous: a loaded machine, never a pass condition
    while len({r.webhook_id for r in receiver.requests if r.status == 200}) < total:
        assert time.monotonic() < deadline, "not every event was delivered"
        await asyncio.sleep(0.05)
    while await WebhookDelivery.find({"endpoint_id": ObjectId(endpoint_id), "state": "pending"}).count():
        assert time.monotonic() < deadline, "deliveries were left pending"
        await asyncio.sleep(0.05)
    found = await WebhookDelivery.find({"endpoint_id": ObjectId(endpoint_id)}).to_list()

    # then: every event delivered and recorded as succeeded; lot 0 was refused while the others went through
    assert len(found) == total and all(d.state == DeliveryState.succeeded for d in found)
    assert stuck_refusals >= 1 and failed_once
    by_lot: dict[int, list[tuple[int, Received]]] = defaultdict(list)
    for request in sorted(receiver.requests, key=lambda r: r.at):
        data = request.verify(secret)["data"]
        assert data["subject"] == f"lot:{data['lotNumber']}"
        by_lot[data["lotNumber"]].append((data["seq"], request))
    assert sorted(by_lot) == list(range(LOTS))
    for lot, requests in by_lot.items():
        # in arrival order the lot's events never go back (a failed one is resent before the next one goes) ...
        seqs = [seq for seq, _ in requests]
        assert seqs == sorted(seqs), f"lot {lot} arrived out of order"
        # ... and none was sent before every earlier event of the lot had been answered 200
        succeeded = {seq: request.answered for seq, request in requests if request.status == 200}
        assert len(succeeded) == WAVES * PER_WAVE
        for seq, request in requests:
            assert all(answered <= request.at for other, answered in succeeded.items() if other < seq), (
                f"lot {lot}: seq {seq} was sent before an earlier event succeeded")
    # the other lots were all answered while lot 0's first event was still being refused
    first_of_lot_0 = by_lot[0][0][1]
    assert first_of_lot_0.status == 503
    lot_0_through = min(r.answered for _, r in by_lot[0] if r.status == 200)
    assert max(r.answered for lot, rs in by_lot.items() if lot != 0 for _, r in rs) <= lot_0_through
