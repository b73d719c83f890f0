"""Per-endpoint lanes: endpoints shared out between workers by leased partitions, batches pipelined under one
in-flight bound, and every outcome of a batch recorded once, failures and timeouts included."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from bson import ObjectId

from hub.events.log import build_event, emit_many
from hub.leases import Partitions, partition_of
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import create_endpoint
from webhooks.clock import ManualClock
from webhooks.dispatcher import Dispatcher
from webhooks.models import DeliveryState, WebhookDelivery
from webhooks.runtime import JOB
from webhooks.worker import Worker


async def dispatch(*tenants_and_counts: tuple[str, int]) -> None:
    await emit_many(None, [build_event("stock.changed", tenant, [], {"stockChanged": {"n": n}}, subject=f"lot:{n}")
                           for tenant, count in tenants_and_counts for n in range(count)])
    dispatcher = Dispatcher()
    while await dispatcher.run_once() or dispatcher.more:
        pass
    await dispatcher.release()


async def settled(count: int, timeout: float = 60.0) -> list[WebhookDelivery]:
    """Every delivery once none is pending or claimed."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await WebhookDelivery.find_all().to_list()
        if len(found) == count and all(d.state != DeliveryState.pending and d.lease_token is None for d in found):
            return found
        assert asyncio.get_running_loop().time() < deadline, "deliveries were left pending"
        await asyncio.sleep(0.05)


async def test_three_workers_share_the_endpoints_and_send_each_delivery_once(quiet_hub, receiver: Receiver):
    # given: 6 endpoints with 20 deliveries each, and three workers that have shared out the endpoint partitions
    tenants = [f"share{n}" for n in range(6)]
    endpoints: dict[str, str] = {}
    for tenant in tenants:
        await quiet_hub.tenant(tenant, "retailer")
        endpoints[tenant], _ = await create_endpoint(quiet_hub, tenant, receiver.at(f"/{tenant}"))
    await dispatch(*((tenant, 20) for tenant in tenants))
    settings = quiet_hub.settings.with_(webhook_poll_seconds=0.05)
    workers = [Worker(settings) for _ in range(3)]
    for worker in workers:
        worker.partitions = Partitions(quiet_hub.state.database, JOB, lease_seconds=60, name=worker.name)
    for _ in range(2):  # the first to come takes everything; the next round gives back down to a fair share
        for worker in workers:
            await worker.partitions.refresh()  # type: ignore[union-attr]
    held = [worker.partitions.held for worker in workers]  # type: ignore[union-attr]
    assert sum(len(h) for h in held) == 16 and len(frozenset().union(*held)) == 16 and all(held)
    owner = {t: next(w.name for w in workers if w.serves(ObjectId(e))) for t, e in endpoints.items()}

    # when
    running = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        found = await settled(120)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    # then: every delivery was sent exactly once, by the worker holding its endpoint's partition
    assert Counter(Counter(r.webhook_id for r in receiver.requests).values()) == {1: 120}
    by_endpoint: dict[str, set[str | None]] = {}
    for delivery in found:
        assert delivery.state == DeliveryState.succeeded and delivery.attempt_count == len(delivery.attempts) == 1
        by_endpoint.setdefault(str(delivery.endpoint_id), set()).add(delivery.attempts[0].worker)
    assert {t: by_endpoint[e] for t, e in endpoints.items()} == {t: {owner[t]} for t in tenants}
    expected_workers = {w.name for w in workers if any(partition_of(e) in w.partitions.held  # type: ignore[union-attr]
                                                       for e in endpoints.values())}
    assert set().union(*by_endpoint.values()) == expected_workers


async def test_pipelined_batches_keep_the_per_endpoint_limit(quiet_hub, receiver: Receiver):
    # given: one slow endpoint with a backlog of several batches
    await quiet_hub.tenant("piped", "retailer")
    await create_endpoint(quiet_hub, "piped", receiver.at("/piped"))
    await dispatch(("piped", 40))
    receiver.delay = lambda path: 0.05
    worker = Worker(quiet_hub.settings.with_(webhook_endpoint_concurrency=3, webhook_poll_seconds=0.05))
    worker.batch = 10
    running = asyncio.create_task(worker.run())
    try:
        found = await settled(40)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    # then: sent with the limit used and never exceeded, each once
    assert receiver.max_in_flight["/piped"] == 3
    assert len({r.webhook_id for r in receiver.requests}) == len(receiver.requests) == 40
    assert all(d.state == DeliveryState.succeeded for d in found)


async def test_a_batch_records_each_outcome_as_the_receiver_answered_it(quiet_hub, receiver: Receiver):
    # given: 30 deliveries in one batch, half of them answered 500
    await quiet_hub.tenant("mixed", "retailer")
    await create_endpoint(quiet_hub, "mixed", receiver.at("/mixed"))
    await dispatch(("mixed", 30))
    receiver.script["/mixed"] = [500, 200] * 15
    clock = ManualClock()
    worker = Worker(quiet_hub.settings, clock=clock)
    try:
        # when: one pass, then the retry falling due
        assert await worker.run_once() == 30
        answered = {r.webhook_id: r.status for r in receiver.requests}
        first = {str(d.event_id): d for d in await WebhookDelivery.find_all().to_list()}
        clock.advance(timedelta(seconds=6))
        assert await worker.run_once() == 15
        assert await worker.run_once() == 0
    finally:
        await worker.close()
    # then: each outcome matches the answer its request got, no more, no less
    assert len(answered) == 30 and Counter(answered.values()) == {500: 15, 200: 15}
    for webhook_id, status in answered.items():
        delivery = first[webhook_id]
        assert [a.status_code for a in delivery.attempts] == [status]
        assert delivery.state == (DeliveryState.succeeded if status == 200 else DeliveryState.pending)
        assert delivery.failures == (status == 500) and delivery.lease_token is None
    final = {str(d.event_id): d for d in await WebhookDelivery.find_all().to_list()}
    for webhook_id, status in answered.items():
        assert final[webhook_id].state == DeliveryState.succeeded
        assert [a.status_code for a in final[webhook_id].attempts] == ([500, 200] if status == 500 else [200])
    assert Counter(r.webhook_id for r in receiver.requests) == {
        webhook_id: 2 if status == 500 else 1 for webhook_id, status in answered.items()
    }


async def test_timed_out_attempts_are_recorded_and_sent_again_with_the_same_webhook_id(quiet_hub, receiver: Receiver):
    # given: a receiver that answers long after the worker stops waiting
    await quiet_hub.tenant("sleepy", "retailer")
    await create_endpoint(quiet_hub, "sleepy", receiver.at("/sleepy"))
    await dispatch(("sleepy", 5))
    receiver.delay = lambda path: 3.0
    clock = ManualClock()
    worker = Worker(quiet_hub.settings.with_(webhook_timeout_seconds=0.5), clock=clock)
    try:
        # when
        assert await worker.run_once() == 5
        timed_out = await WebhookDelivery.find_all().to_list()
        receiver.delay = lambda path: 0.0
        clock.advance(timedelta(seconds=6))
        assert await worker.run_once() == 5
    finally:
        await worker.close()
    # then
    for delivery in timed_out:
        assert delivery.state == DeliveryState.pending and delivery.failures == 1 and delivery.lease_token is None
        assert [(a.status_code, a.error) for a in delivery.attempts] == [(None, "timed out")]
    for delivery in await WebhookDelivery.find_all().to_list():
        assert delivery.state == DeliveryState.succeeded
        assert [a.error for a in delivery.attempts] == ["timed out", None] and delivery.attempt_count == 2
    assert Counter(Counter(r.webhook_id for r in receiver.requests).values()) == {2: 5}
