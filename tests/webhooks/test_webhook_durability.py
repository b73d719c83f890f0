"""Durability: the dispatcher's cursor survives restarts and late commits; leases hand work over after a crash."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from hub.events.log import build_event, emit_many
from hub.models.event import Event
from tests.webhooks.helpers import REPLAY, ROTATE_SECRET, create_endpoint, deliveries, raise_mismatch
from webhooks.clock import ManualClock
from webhooks.dispatcher import Dispatcher
from webhooks.models import DispatcherCursor, WebhookDelivery
from webhooks.runtime import build
from webhooks.worker import INTERRUPTED, Worker


def stock_event(tenant: str, n: int, id: ObjectId | None = None) -> Event:
    event = build_event("stock.changed", tenant, [], {"stockChanged": {"sequence": n}}, subject=f"lot:{n}")
    if id is not None:
        event.id = id
    return event


async def test_an_event_whose_id_is_older_than_one_already_dispatched_is_still_dispatched_once(quiet_hub, receiver):
    # given: ids are made before a transaction commits, so they do not follow commit order
    endpoint_id, _ = await _acme_endpoint(quiet_hub, receiver)
    dispatcher = Dispatcher()
    await emit_many(None, [stock_event("acme", 2)])
    assert await dispatcher.run_once() == 1
    # when: a transaction that took its event id earlier commits only now
    await emit_many(None, [stock_event("acme", 1, ObjectId.from_datetime(ObjectId(endpoint_id).generation_time))])
    # then
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    assert await WebhookDelivery.find_all().count() == 2


async def _acme_endpoint(hub, receiver):  # type: ignore[no-untyped-def]
    await hub.tenant("acme", "retailer")
    return await create_endpoint(hub, "acme", receiver.at("/erp"))


async def test_a_restarted_dispatcher_neither_loses_nor_duplicates(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    first = Dispatcher()
    await emit_many(None, [stock_event("acme", n) for n in range(30)])
    assert await first.run_once() == 30
    await first.release()
    # when: a new process takes over, and more events arrive
    await emit_many(None, [stock_event("acme", n) for n in range(30, 40)])
    second = Dispatcher()
    made = await second.run_once()
    # then
    assert made == 10
    assert await WebhookDelivery.find_all().count() == 40
    cursor = await DispatcherCursor.get("dispatcher")
    assert cursor is not None and cursor.owner == second.name


async def test_only_one_dispatcher_leads_at_a_time(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    leader, follower = Dispatcher(), Dispatcher()
    await emit_many(None, [stock_event("acme", 1)])
    assert await leader.run_once() == 1
    assert await follower.run_once() == 0 and follower.leader is False
    await leader.release()
    await emit_many(None, [stock_event("acme", 2)])
    assert await follower.run_once() == 1


async def test_an_expired_lease_is_picked_up_by_another_worker_and_the_log_shows_both_attempts(quiet_hub, receiver):
    # given: a worker claims a delivery, then dies before sending
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, secret = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    clock = ManualClock()
    dispatcher, crashed = build(quiet_hub.settings, clock)
    await raise_mismatch(quiet_hub, "acme", [])
    await dispatcher.run_once()
    assert await crashed.claim(ObjectId(endpoint_id)) is not None
    await crashed.close()
    survivor = Worker(quiet_hub.settings, clock=clock)
    try:
        # when
        assert await survivor.run_once() == 0  # the lease still holds
        clock.advance(timedelta(seconds=quiet_hub.settings.webhook_lease_seconds + 1))
        assert await survivor.run_once() == 1
    finally:
        await survivor.close()
    # then
    [request] = receiver.requests
    request.verify(secret)
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "succeeded"
    assert [(a["statusCode"], a["error"]) for a in logged["attempts"]] == [(None, INTERRUPTED), (200, None)]


async def test_one_slow_endpoint_does_not_starve_the_others(quiet_hub, receiver):
    # given: a slow ERP with a backlog, and a fast one
    await quiet_hub.tenant("slowco", "retailer")
    await quiet_hub.tenant("fastco", "retailer")
    await create_endpoint(quiet_hub, "slowco", receiver.at("/slow"))
    await create_endpoint(quiet_hub, "fastco", receiver.at("/fast"))
    receiver.delay = lambda path: 0.3 if path == "/slow" else 0.0
    settings = quiet_hub.settings.with_(webhook_endpoint_concurrency=2, webhook_poll_seconds=0.05)
    await emit_many(None, [stock_event("slowco", n) for n in range(8)] + [stock_event("fastco", n) for n in range(4)])
    dispatcher, worker = build(settings)
    await dispatcher.run_once()
    running = asyncio.create_task(worker.run())
    try:
        # when
        await receiver.wait_for(4, "/fast")
        slow_when_fast_done = len(receiver.on("/slow"))
        await receiver.wait_for(8, "/slow")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    # then: the fast endpoint was served while the slow one was still working through its backlog
    assert slow_when_fast_done < 8
    assert receiver.max_in_flight["/slow"] == 2  # the per-endpoint limit, used but never exceeded


async def test_rotation_signs_with_both_secrets_during_the_overlap(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, old = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    rotated = (await quiet_hub.ok(ROTATE_SECRET, {"id": endpoint_id, "overlap": 24}, tenant="acme"))[
        "rotateWebhookSecret"
    ]
    new = rotated["secret"]
    assert new != old and rotated["endpoint"]["secretRotationEndsAt"] is not None
    dispatcher, worker = build(quiet_hub.settings, ManualClock())
    await raise_mismatch(quiet_hub, "acme", [], key="one")
    await dispatcher.run_once()
    await worker.run_once()
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    request.verify(old)
    request.verify(new)
    # when the overlap is cut to zero, only the newest secret signs
    newest = (await quiet_hub.ok(ROTATE_SECRET, {"id": endpoint_id, "overlap": 0}, tenant="acme"))[
        "rotateWebhookSecret"
    ]["secret"]
    await raise_mismatch(quiet_hub, "acme", [], key="two")
    await dispatcher.run_once()
    await worker.run_once()
    await worker.close()
    second = receiver.requests[1]
    assert len(second.headers["webhook-signature"].split(" ")) == 1
    second.verify(newest)


async def test_replay_sends_again_with_the_same_webhook_id(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, secret = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    since = datetime.now(UTC) - timedelta(minutes=1)
    clock = ManualClock()
    dispatcher, worker = build(quiet_hub.settings, clock)
    await raise_mismatch(quiet_hub, "acme", [])
    await dispatcher.run_once()
    await worker.run_once()
    # when: the replay queues it at the wall clock's now, which the worker's clock must have reached (it stood
    # still while the test ran, however long that took)
    queued = await quiet_hub.ok(REPLAY, {"id": endpoint_id, "since": since.isoformat()}, tenant="acme")
    assert queued["replayWebhookDeliveries"]["queued"] == 1
    clock.advance(datetime.now(UTC) - clock.now() + timedelta(seconds=1))
    assert await worker.run_once() == 1
    await worker.close()
    # then
    first, again = receiver.requests
    assert first.webhook_id == again.webhook_id
    again.verify(secret)
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "succeeded" and logged["attemptCount"] == 2
