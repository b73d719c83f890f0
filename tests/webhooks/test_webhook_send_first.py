"""Deliveries made by the dispatcher of the process serving their endpoint are sent first and written once,
finished: nothing of them is in the database while they are in flight, the saved cursor stays before them, and when
the worker dies (or drops them) they are made again from the log and sent again with the same webhook-id, the
interrupted attempt logged."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from hub.events.log import build_event, emit_many
from hub.models.event import Event
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import create_endpoint, deliveries
from webhooks.dispatcher import Dispatcher
from webhooks.models import INTERRUPTED, DeliveriesInFlight, DeliveryState, DispatcherCursor, WebhookDelivery
from webhooks.runtime import build
from webhooks.worker import Worker


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def lot_events(tenant: str, count: int, first: int = 0) -> list[Event]:
    return [build_event("stock.changed", tenant, [], {"n": n}, subject=f"lot:{n}") for n in range(first, first + count)]


class Processes:
    """Workers running their loop (as a hub process runs it), each with the dispatcher of its process."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.loops: dict[str, asyncio.Task[None]] = {}

    async def start(self, dispatcher_lease: float = 30.0, **settings: Any) -> tuple[Dispatcher, Worker]:
        dispatcher, worker = build(self.hub.settings.with_(**settings))
        dispatcher.lease = timedelta(seconds=dispatcher_lease)
        self.loops[worker.name] = asyncio.create_task(worker.run())
        await worker.started.wait()
        return dispatcher, worker

    async def kill(self, worker: Worker) -> None:
        """Its lanes stop where they are (mid-send, nothing recorded), then its loop; its dispatcher is left as is."""
        lanes = list(worker.lanes.values())
        for lane in lanes:
            lane.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        await self.stop(worker.name)

    async def stop(self, name: str) -> None:
        task = self.loops.pop(name)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def running(quiet_hub) -> AsyncIterator[Processes]:
    processes = Processes(quiet_hub)
    yield processes
    for name in list(processes.loops):
        await processes.stop(name)


async def test_a_served_endpoints_deliveries_are_written_once_they_are_sent(quiet_hub, receiver: Receiver, running):
    # given: a worker running in this process, and a receiver that answers slowly, the second request 500
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, secret = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    dispatcher, worker = await running.start(webhook_retry_schedule=(0.1,), webhook_poll_seconds=0.05)
    receiver.delay = lambda path: 0.3
    receiver.script["/erp"] = [200, 500]
    await emit_many(None, lot_events("acme", 3))
    # when
    assert await dispatcher.run_once() == 3
    await receiver.wait_for(3)
    # then: in flight, nothing is in the delivery log yet; the worker's in-flight document names them, and the
    # cursor that may be saved stays before them
    assert await WebhookDelivery.find_all().count() == 0
    [in_flight] = await DeliveriesInFlight.find_all().to_list()
    assert in_flight.id == worker.name
    assert sorted(str(event_id) for batch in in_flight.batches.values() for event_id in batch["events"]) == sorted(
        r.webhook_id for r in receiver.requests)
    seqs = [event["seq"] for event in await Event.get_pymongo_collection().find({"type": "stock.changed"}).to_list()]
    assert dispatcher.savable() < min(seqs) <= max(seqs) <= dispatcher.position

    async def settled() -> bool:
        found = await WebhookDelivery.find_all().to_list()
        return len(found) == 3 and all(d.state == DeliveryState.succeeded for d in found)

    # and: each is written with its outcome once answered; the failed one goes in pending and is retried
    await until(settled, "every delivery to succeed")
    logged = {d["webhookId"]: d for d in await deliveries(quiet_hub, "acme", endpoint_id)}
    first = {r.webhook_id: r.status for r in receiver.requests[:3]}
    assert Counter(first.values()) == {200: 2, 500: 1}
    for webhook_id, status in first.items():
        assert [a["statusCode"] for a in logged[webhook_id]["attempts"]] == ([500, 200] if status == 500 else [200])
        assert logged[webhook_id]["attemptCount"] == len(logged[webhook_id]["attempts"])
    for stored in await WebhookDelivery.find_all().to_list():
        assert stored.lease_token is None and len(stored.claims) == stored.attempt_count
    for request in receiver.requests:
        request.verify(secret)
    assert worker.owed() is None and dispatcher.savable() == dispatcher.position


async def test_what_a_dead_worker_was_sending_is_made_again_and_sent_with_the_same_webhook_id(
    quiet_hub, receiver: Receiver, running
):
    # given: a worker sending three new deliveries to a receiver that takes its time
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, secret = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    dispatcher, dead = await running.start(dispatcher_lease=1.0)
    receiver.delay = lambda path: 5.0
    await emit_many(None, lot_events("acme", 3))
    assert await dispatcher.run_once() == 3
    await receiver.wait_for(3)
    # the dispatcher saves its cursor meanwhile (as it does every few seconds): not past what is in flight
    dispatcher.save_at = dispatcher.renew_at = datetime.now(UTC)
    assert await dispatcher.run_once() == 0
    cursor = await DispatcherCursor.get("dispatcher")
    seqs = [event["seq"] for event in await Event.get_pymongo_collection().find({"type": "stock.changed"}).to_list()]
    assert cursor is not None and cursor.position is not None and cursor.position < min(seqs)

    # when: the process dies (nothing of it runs any more, nothing is released) and another takes over
    await running.kill(dead)
    receiver.delay = lambda path: 0.0
    successor, worker = await running.start()

    async def leads() -> bool:
        await successor.run_once()
        return successor.leader

    await until(leads, "the dispatcher lease to lapse")
    while await successor.run_once():
        pass
    await until(lambda: _count(DeliveryState.succeeded, 3), "the deliveries to be sent again")

    # then: each was sent again with the same webhook-id, and its log shows the interrupted attempt
    sent = Counter(r.webhook_id for r in receiver.requests)
    assert set(sent.values()) == {2}
    for node in await deliveries(quiet_hub, "acme", endpoint_id):
        assert [(a["statusCode"], a["error"]) for a in node["attempts"]] == [(None, INTERRUPTED), (200, None)]
        assert node["state"] == "succeeded" and node["attemptCount"] == 2
    stored = await WebhookDelivery.find_all().to_list()
    assert {d.attempts[0].worker for d in stored} == {dead.name}
    assert {d.attempts[1].worker for d in stored} == {worker.name}
    # and the dead worker's in-flight document is gone once its deliveries were made again
    assert await DeliveriesInFlight.find({"_id": dead.name}).count() == 0
    for request in receiver.requests:
        request.verify(secret)


async def _count(state: DeliveryState, expected: int) -> bool:
    return await WebhookDelivery.find({"state": state.value}).count() == expected


async def test_deliveries_a_failed_lane_dropped_are_made_again_and_sent_once(
    quiet_hub, receiver: Receiver, running, monkeypatch: pytest.MonkeyPatch
):
    # given: the first order check of a lane fails (the database timed out, say)
    await quiet_hub.tenant("acme", "retailer")
    await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    dispatcher, worker = await running.start()
    ordered = worker.ordered
    failures = [RuntimeError("the database timed out")]

    async def flaky(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return await ordered(*args)

    monkeypatch.setattr(worker, "ordered", flaky)
    await emit_many(None, lot_events("acme", 5))
    # when
    assert await dispatcher.run_once() == 5

    async def dropped() -> bool:
        return not worker.lanes and not failures

    await until(dropped, "the lane to fail")
    assert worker.owed() is not None and dispatcher.savable() < dispatcher.position
    # then: the next pass reads the log again from the dropped deliveries and hands them over anew
    assert await dispatcher.run_once() == 5
    await until(lambda: _count(DeliveryState.succeeded, 5), "the deliveries to be sent")
    assert Counter(Counter(r.webhook_id for r in receiver.requests).values()) == {1: 5}

    async def settled() -> bool:  # the lane lets go of a batch just after its insert returns
        return worker.owed() is None

    await until(settled, "the worker to owe nothing")


async def test_another_tenant_never_sees_deliveries_sent_first(quiet_hub, receiver: Receiver, running):
    # given: two tenants with an endpoint each, served by a running worker
    await quiet_hub.tenant("acme", "retailer")
    await quiet_hub.tenant("rival", "retailer")
    acme_endpoint, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/acme"))
    rival_endpoint, _ = await create_endpoint(quiet_hub, "rival", receiver.at("/rival"))
    dispatcher, _ = await running.start()
    await emit_many(None, lot_events("acme", 2) + lot_events("rival", 1, first=10))
    # when
    assert await dispatcher.run_once() == 3
    await until(lambda: _count(DeliveryState.succeeded, 3), "the deliveries to be sent")
    # then: each tenant's delivery log holds its own deliveries only, and the other's endpoint is not found
    assert {d["endpointId"] for d in await deliveries(quiet_hub, "acme")} == {acme_endpoint}
    assert len(await deliveries(quiet_hub, "acme")) == 2
    assert [d["endpointId"] for d in await deliveries(quiet_hub, "rival")] == [rival_endpoint]
    stolen = await quiet_hub.gql(
        "query($f: WebhookDeliveryFilter) { webhookDeliveries(filter: $f) { edges { node { id } } } }",
        {"f": {"endpointId": acme_endpoint}}, tenant="rival",
    )
    assert [error["extensions"]["code"] for error in stolen["errors"]] == ["NOT_FOUND"]
    assert all(d.tenant_id == ("acme" if str(d.endpoint_id) == acme_endpoint else "rival")
               for d in await WebhookDelivery.find_all().to_list())
    assert ObjectId(acme_endpoint) != ObjectId(rival_endpoint)


async def test_a_slow_endpoints_backlog_waits_in_the_database_and_keeps_its_order(
    quiet_hub, receiver: Receiver, running
):
    # given: a worker that may hold 4 unwritten deliveries per endpoint, and 10 events about one lot
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    dispatcher, worker = await running.start()
    worker.hold_per_endpoint = 4
    receiver.delay = lambda path: 0.2
    await emit_many(None, [build_event("stock.changed", "acme", [], {"n": n}, subject="lot:1") for n in range(10)])
    # when
    assert await dispatcher.run_once() == 10
    # then: the 6 beyond the limit are in the database at once, pending; the first 4 are being sent
    assert await WebhookDelivery.find({"state": "pending"}).count() == 6
    await until(lambda: _count(DeliveryState.succeeded, 10), "the deliveries to be sent")
    # and the lot's deliveries arrived in the log's order, each once
    seqs = [json.loads(r.body)["data"]["seq"] for r in receiver.requests]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) == 10
    assert [d["attemptCount"] for d in await deliveries(quiet_hub, "acme", endpoint_id)] == [1] * 10


async def test_the_dispatcher_waits_while_the_worker_holds_as_much_as_it_may(quiet_hub, receiver: Receiver, running):
    await quiet_hub.tenant("acme", "retailer")
    await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    dispatcher, worker = await running.start()
    worker.hold = 3
    receiver.delay = lambda path: 2.0
    await emit_many(None, lot_events("acme", 5))
    assert await dispatcher.run_once() == 5 and worker.full()
    # when: more events while the five are being sent
    await emit_many(None, lot_events("acme", 2, first=5))
    # then: not read until the worker has written what it holds
    assert await dispatcher.run_once() == 0
    await until(lambda: _not(worker.full()), "the worker to write what it holds")
    assert await dispatcher.run_once() == 2
    await until(lambda: _count(DeliveryState.succeeded, 7), "the deliveries to be sent")
    assert Counter(Counter(r.webhook_id for r in receiver.requests).values()) == {1: 7}


async def _not(value: bool) -> bool:
    return not value
