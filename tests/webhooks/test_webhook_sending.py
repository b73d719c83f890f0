"""Sending details: many workers never double-send, redirects are not followed, slow receivers time out."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter

from hub.events.log import build_event, emit_many
from tests.webhooks.helpers import create_endpoint, deliveries
from webhooks.clock import ManualClock
from webhooks.dispatcher import Dispatcher
from webhooks.runtime import build
from webhooks.worker import Worker


async def test_workers_racing_for_the_same_backlog_send_each_delivery_once(quiet_hub, receiver):
    # given
    await quiet_hub.tenant("acme", "retailer")
    await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    await emit_many(None, [build_event("stock.changed", "acme", [], {"n": n}, subject=f"lot:{n}") for n in range(40)])
    assert await Dispatcher().run_once() == 40
    clock = ManualClock()
    settings = quiet_hub.settings.with_(webhook_lease_seconds=4.0, webhook_timeout_seconds=1.0)
    workers = [Worker(settings, clock=clock) for _ in range(3)]
    try:
        # when: three workers claim at the same moments until nothing is left
        while sum(await asyncio.gather(*(worker.run_once() for worker in workers))):
            pass
    finally:
        await asyncio.gather(*(worker.close() for worker in workers))
    # then
    sent = Counter(r.webhook_id for r in receiver.requests)
    assert len(sent) == 40 and set(sent.values()) == {1}


async def test_redirects_are_not_followed(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/moved"))
    receiver.script["/moved"] = [(302, {"location": receiver.at("/elsewhere")})]
    await emit_many(None, [build_event("stock.changed", "acme", [], {"n": 1})])
    dispatcher, worker = build(quiet_hub.settings, ManualClock())
    await dispatcher.run_once()
    await worker.run_once()
    await worker.close()
    assert [r.path for r in receiver.requests] == ["/moved"]
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "pending" and logged["lastError"] == "HTTP 302"


async def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/slow"))
    receiver.delay = lambda path: 1.0
    await emit_many(None, [build_event("stock.changed", "acme", [], {"n": 1})])
    dispatcher, worker = build(quiet_hub.settings.with_(webhook_timeout_seconds=0.2), ManualClock())
    await dispatcher.run_once()
    await worker.run_once()
    await worker.close()
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["attempts"][0]["error"] == "timed out"
    assert logged["attempts"][0]["statusCode"] is None


async def test_the_standalone_worker_command_delivers_what_is_due(quiet_hub, receiver, key_file):
    # given: an event and no hub loops running
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, secret = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    await emit_many(None, [build_event("stock.changed", "acme", [], {"n": 1})])
    env = {
        **os.environ,
        "LOTPULSE_MONGODB_URI": quiet_hub.settings.mongodb_uri or "",
        "LOTPULSE_DATABASE": quiet_hub.settings.database,
        "LOTPULSE_SIGNING_KEY_FILE": str(key_file),
        "LOTPULSE_WEBHOOK_ALLOW_PRIVATE": "1",
        "LOTPULSE_LOG_LEVEL": "WARNING",
    }
    # when
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hub.cli", "webhooks", "worker", "--once", env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    # then
    assert process.returncode == 0, output.decode()
    assert "1 delivery attempts made" in output.decode()
    [request] = receiver.requests
    request.verify(secret)
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "succeeded"


async def test_stopping_a_worker_lets_requests_in_flight_finish_and_be_logged(quiet_hub, receiver):
    # given: a delivery in flight to a receiver that takes half a second
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    receiver.delay = lambda path: 0.5
    await emit_many(None, [build_event("stock.changed", "acme", [], {"n": 1})])
    dispatcher, worker = build(quiet_hub.settings)
    await dispatcher.run_once()
    running = asyncio.create_task(worker.run())
    await receiver.wait_for(1)
    # when: the process shuts down
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    # then: the outcome was recorded, so no other worker will send it again
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "succeeded"
    assert [a["statusCode"] for a in logged["attempts"]] == [200]
