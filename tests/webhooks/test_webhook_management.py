"""Managing endpoints through the API: update, disable and enable, delete, replay only failures, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.events.log import build_event, emit_many
from tests.webhooks.helpers import (
    CREATE_ENDPOINT,
    DELETE_ENDPOINT,
    ENDPOINTS,
    REPLAY,
    ROTATE_SECRET,
    UPDATE_ENDPOINT,
    create_endpoint,
    deliveries,
)
from webhooks.clock import ManualClock
from webhooks.retry import SCHEDULE
from webhooks.runtime import build


def stock_changed(tenant: str, n: int):  # type: ignore[no-untyped-def]
    return build_event("stock.changed", tenant, [], {"stockChanged": {"n": n}})


async def test_an_admin_changes_the_url_and_event_types(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/old"))
    changes = {"id": endpoint_id, "url": receiver.at("/new"), "eventTypes": ["stock.changed"], "description": "ERP"}
    updated = (await quiet_hub.ok(UPDATE_ENDPOINT, {"input": changes}, tenant="acme"))["updateWebhookEndpoint"]
    assert updated == {"id": endpoint_id, "url": receiver.at("/new"), "eventTypes": ["stock.changed"],
                       "enabled": True, "disabledReason": None, "description": "ERP"}
    dispatcher, worker = build(quiet_hub.settings, ManualClock())
    await emit_many(None, [stock_changed("acme", 1)])
    await dispatcher.run_once()
    await worker.run_once()
    await worker.close()
    assert [r.path for r in receiver.requests] == ["/new"]


async def test_a_disabled_endpoint_gets_nothing_until_enabled_again(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    clock = ManualClock()
    dispatcher, worker = build(quiet_hub.settings, clock)
    await emit_many(None, [stock_changed("acme", 1)])
    await dispatcher.run_once()  # pending before the admin disables it
    # when
    off = await quiet_hub.ok(UPDATE_ENDPOINT, {"input": {"id": endpoint_id, "enabled": False}}, tenant="acme")
    assert off["updateWebhookEndpoint"]["enabled"] is False
    await emit_many(None, [stock_changed("acme", 2)])
    assert await dispatcher.run_once() == 0
    assert await worker.run_once() == 0
    # then: enabling resumes what was pending
    await quiet_hub.ok(UPDATE_ENDPOINT, {"input": {"id": endpoint_id, "enabled": True}}, tenant="acme")
    clock.advance(timedelta(seconds=1))
    assert await worker.run_once() == 1
    await worker.close()
    assert len(receiver.requests) == 1


async def test_deleting_an_endpoint_removes_its_log(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    dispatcher, worker = build(quiet_hub.settings, ManualClock())
    await emit_many(None, [stock_changed("acme", 1)])
    await dispatcher.run_once()
    await worker.run_once()
    await worker.close()
    assert len(await deliveries(quiet_hub, "acme")) == 1
    # when
    assert (await quiet_hub.ok(DELETE_ENDPOINT, {"id": endpoint_id}, tenant="acme"))["deleteWebhookEndpoint"]
    # then
    assert (await quiet_hub.ok(ENDPOINTS, tenant="acme"))["webhookEndpoints"]["edges"] == []
    assert await deliveries(quiet_hub, "acme") == []
    again = await quiet_hub.gql(DELETE_ENDPOINT, {"id": endpoint_id}, tenant="acme")
    assert again["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_replay_of_failures_only_leaves_succeeded_deliveries_alone(quiet_hub, receiver):
    # given: one delivery succeeded, one failed for good
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"))
    since = datetime.now(UTC) - timedelta(minutes=1)
    clock = ManualClock()
    dispatcher, worker = build(quiet_hub.settings, clock)
    await emit_many(None, [stock_changed("acme", 1), stock_changed("acme", 2)])
    await dispatcher.run_once()
    receiver.script["/erp"] = [200] + [500] * (1 + len(SCHEDULE))
    await worker.run_once()
    for wait in SCHEDULE:
        clock.advance(wait)
        await worker.run_once()
    states = sorted(d["state"] for d in await deliveries(quiet_hub, "acme", endpoint_id))
    assert states == ["failed", "succeeded"]
    # when
    replayed = await quiet_hub.ok(REPLAY, {"id": endpoint_id, "since": since.isoformat(), "onlyFailed": True},
                                  tenant="acme")
    # then
    assert replayed["replayWebhookDeliveries"]["queued"] == 1
    before = len(receiver.requests)
    clock.advance(timedelta(seconds=1))
    assert await worker.run_once() == 1
    await worker.close()
    assert len(receiver.requests) == before + 1
    assert sorted(d["state"] for d in await deliveries(quiet_hub, "acme", endpoint_id)) == ["succeeded", "succeeded"]


async def test_oversized_or_malformed_input_is_refused(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    bad = [
        {"url": receiver.at("/" + "x" * 3000)},
        {"url": receiver.at("/x"), "description": "d" * 501},
        {"url": "not a url"},
        {"url": "javascript:alert(1)"},
    ]
    for payload in bad:
        body = await quiet_hub.gql(CREATE_ENDPOINT, {"input": payload}, tenant="acme")
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], payload
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/x"))
    replay = await quiet_hub.ok(REPLAY, {"id": endpoint_id, "since": future}, tenant="acme")
    assert replay["replayWebhookDeliveries"]["queued"] == 0
    assert (await quiet_hub.gql(DELETE_ENDPOINT, {"id": "not-an-id"}, tenant="acme"))["errors"][0]["extensions"][
        "code"
    ] == "NOT_FOUND"


AUDIT_LOG = "{ auditLog(first: 50) { edges { node { action actor target details } } } }"


async def test_webhook_admin_changes_are_audited_without_the_secret(quiet_hub, receiver):
    # given
    await quiet_hub.tenant("acme", "retailer")
    await quiet_hub.tenant("beta", "retailer")
    endpoint_id, first_secret = await create_endpoint(quiet_hub, "acme", receiver.at("/x"))
    await quiet_hub.ok(UPDATE_ENDPOINT, {"input": {"id": endpoint_id, "description": "ERP"}}, tenant="acme")
    rotated = await quiet_hub.ok(ROTATE_SECRET, {"id": endpoint_id, "overlap": 1}, tenant="acme")
    await quiet_hub.ok(DELETE_ENDPOINT, {"id": endpoint_id}, tenant="acme")
    # when
    entries = [e["node"] for e in (await quiet_hub.ok(AUDIT_LOG, tenant="acme"))["auditLog"]["edges"]]
    # then
    assert [e["action"] for e in entries] == [
        "webhook.deleted",
        "webhook.secret_rotated",
        "webhook.updated",
        "webhook.created",
    ]
    assert {e["target"] for e in entries} == {endpoint_id}
    dumped = repr(entries)
    assert first_secret not in dumped and rotated["rotateWebhookSecret"]["secret"] not in dumped
    assert (await quiet_hub.ok(AUDIT_LOG, tenant="beta"))["auditLog"]["edges"] == []
