"""An admin's change to an endpoint (disable, delete, new URL) holds for the deliveries its worker already holds in
memory, not only for those made afterwards: a backlog sent first must not outlive the endpoint as it was."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from hub.events.log import emit_many
from tests.webhooks.conftest import Received, Receiver
from tests.webhooks.helpers import DELETE_ENDPOINT, ENDPOINTS, REPLAY, UPDATE_ENDPOINT, create_endpoint, deliveries
from tests.webhooks.test_webhook_send_first import Processes, lot_events, running, until  # noqa: F401
from webhooks import worker as worker_module
from webhooks.models import WebhookDelivery

EVENTS = 40


@pytest.fixture
def gate(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The receiver holds every request until the gate opens; the worker reads its endpoint afresh every time."""
    monkeypatch.setattr(worker_module, "ENDPOINT_FRESH_SECONDS", 0.0)
    opened = asyncio.Event()

    async def answer(_: Received) -> int:
        await opened.wait()
        return 200

    receiver.respond = answer
    return opened


async def _backlog(hub, receiver: Receiver, running: Processes, path: str) -> tuple[str, object]:
    """An endpoint whose worker sends one request at a time, one delivery per batch, with EVENTS held in memory."""
    await hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(hub, "acme", receiver.at(path))
    dispatcher, worker = await running.start(webhook_endpoint_concurrency=1)
    worker.batch = 1
    await emit_many(None, lot_events("acme", EVENTS))
    assert await dispatcher.run_once() == EVENTS
    await receiver.wait_for(1)
    return endpoint_id, worker


async def _written(count: int) -> None:
    async def done() -> bool:
        return await WebhookDelivery.find_all().count() == count
    await until(done, f"{count} deliveries to be written")


async def test_disabling_an_endpoint_stops_the_backlog_its_worker_holds(quiet_hub, receiver, running, gate):
    endpoint_id, worker = await _backlog(quiet_hub, receiver, running, "/erp")
    # when: the admin disables it while the first request is in flight
    off = await quiet_hub.ok(UPDATE_ENDPOINT, {"input": {"id": endpoint_id, "enabled": False}}, tenant="acme")
    assert off["updateWebhookEndpoint"]["enabled"] is False
    gate.set()
    await _written(EVENTS)
    await until(lambda: _idle(worker), "the lane to finish")
    # then: at most the batches already in the lane's pipeline went out; the rest wait, pending, unsent
    sent = len(receiver.requests)
    assert sent <= worker_module.PIPELINE
    logged = await deliveries(quiet_hub, "acme", endpoint_id)
    assert [d["state"] for d in logged].count("pending") == EVENTS - sent
    # and: enabling it again sends them, each once
    await quiet_hub.ok(UPDATE_ENDPOINT, {"input": {"id": endpoint_id, "enabled": True}}, tenant="acme")
    worker.wake()
    await receiver.wait_for(EVENTS)
    assert len({r.webhook_id for r in receiver.requests}) == EVENTS


async def test_deleting_an_endpoint_stops_the_backlog_its_worker_holds(quiet_hub, receiver, running, gate):
    endpoint_id, worker = await _backlog(quiet_hub, receiver, running, "/erp")
    # when
    assert (await quiet_hub.ok(DELETE_ENDPOINT, {"id": endpoint_id}, tenant="acme"))["deleteWebhookEndpoint"]
    gate.set()
    await until(lambda: _idle(worker), "the lane to finish")
    # then: nothing beyond the lane's pipeline was sent, and nothing of it was written for the deleted endpoint
    assert len(receiver.requests) <= worker_module.PIPELINE
    remaining = await WebhookDelivery.find({"endpoint_id": ObjectId(endpoint_id)}).count()
    assert remaining <= worker_module.PIPELINE


async def test_a_new_url_takes_the_backlog_along(quiet_hub, receiver, running, gate):
    endpoint_id, worker = await _backlog(quiet_hub, receiver, running, "/old")
    # when
    await quiet_hub.ok(UPDATE_ENDPOINT, {"input": {"id": endpoint_id, "url": receiver.at("/new")}}, tenant="acme")
    gate.set()
    await _written(EVENTS)
    # then: what was held in memory goes to the new URL
    assert len(receiver.on("/old")) <= worker_module.PIPELINE
    assert len(receiver.requests) == EVENTS


async def _all_heard(receiver: Receiver) -> bool:
    return len({r.webhook_id for r in receiver.requests if r.status == 200}) == EVENTS


async def _idle(worker) -> bool:
    return not worker.lanes and worker.owed() is None


async def test_a_gone_stops_the_backlog_and_a_re_enabled_endpoint_gets_it_by_replay(quiet_hub, receiver, running):
    # given: a held backlog of one delivery per batch, sent one at a time; the receiver answers the first 410
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    dispatcher, worker = await running.start(webhook_endpoint_concurrency=1)
    worker.batch = 1
    receiver.script["/erp"] = [410]
    await emit_many(None, lot_events("acme", EVENTS))
    # when
    assert await dispatcher.run_once() == EVENTS
    await _written(EVENTS)
    await until(lambda: _idle(worker), "the lane to finish")
    # then: nothing went after the 410, and the endpoint is disabled
    assert [r.status for r in receiver.requests] == [410]
    assert (await quiet_hub.ok(ENDPOINTS, tenant="acme"))["webhookEndpoints"]["edges"][0]["node"]["enabled"] is False
    # and: enabled again and replayed, every event arrives, each once more at most
    await quiet_hub.ok(UPDATE_ENDPOINT, {"input": {"id": endpoint_id, "enabled": True}}, tenant="acme")
    since = datetime.now(UTC) - timedelta(hours=1)
    await quiet_hub.ok(REPLAY, {"id": endpoint_id, "since": since.isoformat(), "onlyFailed": True}, tenant="acme")
    worker.wake()
    await until(lambda: _all_heard(receiver), "every event to be delivered")
