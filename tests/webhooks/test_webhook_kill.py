"""Kill -9 the hub while 1,000 deliveries are pending: after a restart every one arrives and every attempt is logged."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from hub.auth import Principal
from hub.config import Settings
from hub.db import Database, Deadlines, free_port
from hub.events.log import build_event, emit_many
from hub.events.sequencer import Sequencer
from tenants import service as tenant_service
from tenants.access import Access
from tests.webhooks.conftest import Receiver
from webhooks import service
from webhooks.dispatcher import Dispatcher
from webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery

COUNT = 1000
pytestmark = pytest.mark.slow


def start_hub_process(mongo_uri: str, database: str, key_file: Path, data_dir: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "LOTPULSE_MONGODB_URI": mongo_uri,
        "LOTPULSE_DATABASE": database,
        "LOTPULSE_PORT": str(free_port()),
        "LOTPULSE_SIGNING_KEY_FILE": str(key_file),
        "LOTPULSE_DATA_DIR": str(data_dir),
        "LOTPULSE_WEBHOOK_ALLOW_PRIVATE": "1",
        "LOTPULSE_WEBHOOK_LEASE_SECONDS": "6",
        "LOTPULSE_WEBHOOK_TIMEOUT_SECONDS": "1",
        "LOTPULSE_WEBHOOK_POLL_SECONDS": "0.25",
        "LOTPULSE_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


async def until(condition, timeout: float, what: str, every: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


async def test_killed_hub_loses_no_delivery(mongo_uri: str, key_file: Path, tmp_path: Path, receiver: Receiver):
    # given: 1,000 deliveries pending in a fresh database
    name = f"t_kill_{uuid.uuid4().hex[:8]}"
    # the test's own set-up writes 1,000 deliveries at once: like a shell tool, it has no per-operation deadline
    database = await Database.connect(mongo_uri, name, deadlines=Deadlines(operation=None, transaction=None))
    hub: subprocess.Popen | None = None
    try:
        await tenant_service.create_tenant("acme", "Acme", "retailer")
        admin = Access(Principal(tenant_id="acme", subject="ops", issuer="test", roles=frozenset({"admin"})))
        _, secret = await service.create_endpoint(admin, Settings(webhook_allow_private=True), receiver.at("/erp"), [])
        await emit_many(None, [build_event("stock.changed", "acme", [], {"sequence": n}) for n in range(COUNT)])
        sequencer = Sequencer(database)  # no hub runs yet: the test numbers the log itself
        while await sequencer.stamp_once():
            pass
        await sequencer.release()
        dispatcher = Dispatcher()
        while await dispatcher.run_once():
            pass
        await dispatcher.release()
        pending = WebhookDelivery.find({"state": DeliveryState.pending.value})
        assert await pending.count() == COUNT

        # when: the hub is killed mid-way, then started again
        log = tmp_path / "hub.log"
        hub = start_hub_process(mongo_uri, name, key_file, tmp_path, log)

        async def some_arrived() -> bool:
            return len(receiver.requests) >= 150

        await until(some_arrived, 60, "the first deliveries")
        hub.send_signal(signal.SIGKILL)
        hub.wait()
        arrived_before_kill = len({r.webhook_id for r in receiver.requests})
        assert arrived_before_kill < COUNT, "the hub finished before it could be killed"
        hub = start_hub_process(mongo_uri, name, key_file, tmp_path, log)

        async def all_arrived() -> bool:
            return len({r.webhook_id for r in receiver.requests}) == COUNT

        async def all_recorded() -> bool:
            return await WebhookDelivery.find({"state": DeliveryState.succeeded.value}).count() == COUNT

        await until(all_arrived, 180, "every webhook-id to arrive")
        await until(all_recorded, 30, "every delivery to be logged as succeeded", every=0.5)
    finally:
        if hub is not None and hub.poll() is None:
            hub.terminate()
            hub.wait(10)

    # then: each webhook-id arrived at least once, verified, and the log holds at least every request received
    received = Counter(r.webhook_id for r in receiver.requests)
    logged = {str(d.event_id): d for d in await WebhookDelivery.find_all().to_list()}
    assert set(received) == set(logged) and len(logged) == COUNT
    for request in receiver.requests[:: max(1, len(receiver.requests) // 50)]:
        request.verify(secret)
    attempts: dict[object, list[WebhookAttempt]] = {}
    async for attempt in WebhookAttempt.find_all().sort(("at", 1)):
        attempts.setdefault(attempt.delivery_id, []).append(attempt)
    for webhook_id, delivery in logged.items():
        assert delivery.state == DeliveryState.succeeded
        tries = attempts[delivery.id]
        assert delivery.attempt_count == len(tries) >= received[webhook_id] >= 1
        assert tries[-1].status_code == 200
    await database.db.client.drop_database(name)
    await database.close()
