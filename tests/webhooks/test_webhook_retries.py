"""Retries on the Standard Webhooks schedule, driven by an injectable clock: hours of waiting without waiting."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from hub.events.log import build_event, emit_many
from tests.webhooks.helpers import ENDPOINTS, create_endpoint, deliveries, raise_mismatch
from webhooks.clock import ManualClock
from webhooks.retry import MAX_RETRY_AFTER, SCHEDULE
from webhooks.runtime import build


@pytest.fixture
async def loops(quiet_hub):
    clock = ManualClock()
    dispatcher, worker = build(quiet_hub.settings, clock)
    yield clock, dispatcher, worker
    await worker.close()


async def test_receiver_failing_twice_gets_the_same_webhook_id_three_times_at_the_scheduled_intervals(
    quiet_hub, receiver, loops
):
    # given
    clock, dispatcher, worker = loops
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, secret = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    receiver.script["/erp"] = [500, 500, 200]
    await raise_mismatch(quiet_hub, "acme", [])
    assert await dispatcher.run_once() == 1
    started = clock.now()
    # when: first attempt now, second 5 s later, third 5 min after that
    assert await worker.run_once() == 1
    clock.advance(timedelta(seconds=4))
    assert await worker.run_once() == 0
    clock.advance(timedelta(seconds=1))
    assert await worker.run_once() == 1
    clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
    assert await worker.run_once() == 0
    clock.advance(timedelta(seconds=1))
    assert await worker.run_once() == 1
    # then
    assert len(receiver.requests) == 3
    assert len({r.webhook_id for r in receiver.requests}) == 1
    for request in receiver.requests:
        request.verify(secret)
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "succeeded"
    assert [a["statusCode"] for a in logged["attempts"]] == [500, 500, 200]
    offsets = [a["at"] for a in logged["attempts"]]
    expected = [started, started + timedelta(seconds=5), started + timedelta(seconds=5, minutes=5)]
    assert offsets == [t.isoformat() for t in expected]


async def test_delivery_fails_after_the_seventh_retry(quiet_hub, receiver, loops):
    clock, dispatcher, worker = loops
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/down"))
    receiver.default = 503
    await raise_mismatch(quiet_hub, "acme", [])
    await dispatcher.run_once()
    # when
    assert await worker.run_once() == 1
    for wait in SCHEDULE:
        clock.advance(wait)
        assert await worker.run_once() == 1
    clock.advance(timedelta(days=1))
    assert await worker.run_once() == 0
    # then
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "failed"
    assert logged["attemptCount"] == 1 + len(SCHEDULE) == 8
    assert logged["nextAttemptAt"] is None
    assert logged["lastError"] == "HTTP 503"


async def test_retry_after_is_honoured_on_429(quiet_hub, receiver, loops):
    clock, dispatcher, worker = loops
    await quiet_hub.tenant("acme", "retailer")
    await create_endpoint(quiet_hub, "acme", receiver.at("/busy"))
    receiver.script["/busy"] = [(429, {"retry-after": "120"}), 200]
    await raise_mismatch(quiet_hub, "acme", [])
    await dispatcher.run_once()
    assert await worker.run_once() == 1
    # when: the schedule alone would retry after 5 s
    clock.advance(timedelta(seconds=119))
    assert await worker.run_once() == 0
    clock.advance(timedelta(seconds=1))
    # then
    assert await worker.run_once() == 1
    assert [len(receiver.on("/busy"))] == [2]


async def test_a_retry_after_too_large_for_any_clock_waits_the_longest_allowed(quiet_hub, receiver, loops):
    clock, dispatcher, worker = loops
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/busy"))
    receiver.script["/busy"] = [(429, {"retry-after": "9" * 40}), 200]
    await raise_mismatch(quiet_hub, "acme", [])
    await dispatcher.run_once()
    # when: the attempt is made and recorded (not lost with its batch, and so sent again at once)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "pending" and [a["statusCode"] for a in logged["attempts"]] == [429]
    # then: retried after the longest wait a Retry-After may ask for
    clock.advance(MAX_RETRY_AFTER - timedelta(seconds=1))
    assert await worker.run_once() == 0
    clock.advance(timedelta(seconds=1))
    assert await worker.run_once() == 1
    assert len(receiver.on("/busy")) == 2


async def test_gone_disables_the_endpoint_and_stops_new_deliveries(quiet_hub, receiver, loops, caplog):
    clock, dispatcher, worker = loops
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/gone"))
    receiver.script["/gone"] = [410]
    await raise_mismatch(quiet_hub, "acme", [], key="first")
    await dispatcher.run_once()
    # when
    with caplog.at_level(logging.WARNING, logger="lotpulse.webhooks.worker"):
        assert await worker.run_once() == 1
    # then
    [endpoint] = [e["node"] for e in (await quiet_hub.ok(ENDPOINTS, tenant="acme"))["webhookEndpoints"]["edges"]]
    assert endpoint["enabled"] is False
    assert "410" in endpoint["disabledReason"]
    assert any("endpoint.disabled" in record.getMessage() for record in caplog.records)
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "failed"
    await raise_mismatch(quiet_hub, "acme", [], key="second")
    assert await dispatcher.run_once() == 0
    clock.advance(timedelta(hours=1))
    assert await worker.run_once() == 0
    assert len(receiver.requests) == 1


async def test_after_a_gone_the_rest_of_the_batch_is_not_sent(quiet_hub, receiver):
    # given: ten deliveries of ten subjects claimed in one batch, sent one at a time; the first is answered 410
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/gone"))
    receiver.script["/gone"] = [410]
    dispatcher, worker = build(quiet_hub.settings.with_(webhook_endpoint_concurrency=1), ManualClock())
    await emit_many(None, [build_event("stock.changed", "acme", [], {"n": n}, subject=f"lot:{n}") for n in range(10)])
    assert await dispatcher.run_once() == 10
    # when
    assert await worker.run_once() == 1
    await worker.close()
    # then: the receiver heard one request; the endpoint is disabled and what it did not hear waits for a replay
    assert len(receiver.requests) == 1
    [endpoint] = (await quiet_hub.ok(ENDPOINTS, tenant="acme"))["webhookEndpoints"]["edges"]
    assert endpoint["node"]["enabled"] is False
    logged = await deliveries(quiet_hub, "acme", endpoint_id)
    assert sorted(d["attemptCount"] for d in logged) == [0] * 9 + [1]
    assert {d["state"] for d in logged} == {"failed"}


async def test_endpoint_failing_for_five_days_is_disabled(quiet_hub, receiver, loops, caplog):
    clock, dispatcher, worker = loops
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/broken"))
    receiver.default = 500
    await raise_mismatch(quiet_hub, "acme", [], key="monday")
    await dispatcher.run_once()
    await worker.run_once()
    for wait in SCHEDULE:
        clock.advance(wait)
        await worker.run_once()
    enabled = (await quiet_hub.ok(ENDPOINTS, tenant="acme"))["webhookEndpoints"]["edges"][0]["node"]["enabled"]
    assert enabled is True  # 8 failures over ~28 hours are not yet 5 days
    # when: a new event fails 5 days after the first failure
    clock.advance(timedelta(days=5) - sum(SCHEDULE, timedelta()))
    await raise_mismatch(quiet_hub, "acme", [], key="saturday")
    assert await dispatcher.run_once() == 1
    with caplog.at_level(logging.WARNING, logger="lotpulse.webhooks.worker"):
        assert await worker.run_once() == 1
    # then
    node = (await quiet_hub.ok(ENDPOINTS, tenant="acme"))["webhookEndpoints"]["edges"][0]["node"]
    assert node["enabled"] is False
    assert "5 days" in node["disabledReason"]
    assert any("endpoint.disabled" in record.getMessage() for record in caplog.records)


async def test_a_success_resets_the_failure_run(quiet_hub, receiver, loops):
    clock, dispatcher, worker = loops
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/flaky"))
    receiver.script["/flaky"] = [500, 200]
    await raise_mismatch(quiet_hub, "acme", [])
    await dispatcher.run_once()
    await worker.run_once()
    failing = (await quiet_hub.ok(ENDPOINTS.replace("eventTypes", "eventTypes failingSince"), tenant="acme"))
    assert failing["webhookEndpoints"]["edges"][0]["node"]["failingSince"] is not None
    clock.advance(timedelta(seconds=5))
    await worker.run_once()
    healthy = (await quiet_hub.ok(ENDPOINTS.replace("eventTypes", "eventTypes failingSince"), tenant="acme"))
    assert healthy["webhookEndpoints"]["edges"][0]["node"]["failingSince"] is None
