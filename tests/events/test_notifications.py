"""Escalation steps that notify a role or a member reach those people, live and by query, and nobody else: not a
member without the role, not another member, not a partner sharing the alert, not another tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub import clock
from hub.models.alert import AlertKind
from hub.models.notification import Notification
from tests.conftest import Hub, hub_settings, start_hub
from tests.events.conftest import Listener, alert, partner
from tests.events.test_escalation_policies import UPSERT, steps_of, until

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIVE = """
subscription { notifications { id alertId alertKind severity title step of action role memberId read createdAt } }
"""
LIST = """
query($unreadOnly: Boolean) {
  notifications(unreadOnly: $unreadOnly) { id alertId step action role memberId read acknowledgedAt acknowledgedBy }
}
"""
MARK = "mutation($ids: [ID!]!, $read: Boolean) { markNotificationsRead(ids: $ids, read: $read) { id read } }"
TAKE = "mutation($id: ID!) { acknowledgeNotification(id: $id) { id read acknowledgedAt acknowledgedBy } }"
ADD_MEMBER = "mutation($input: AddMemberInput!) { addMember(input: $input) { id } }"


@pytest.fixture(scope="module")
async def clocked(key_file: Path, mongo_uri: str) -> AsyncIterator[Hub]:
    """One hub on a virtual clock for the module, its escalation sweep every tenth of a second; tests take fresh
    tenants and only move the clock forward."""
    settings = hub_settings(key_file, mongo_uri, clock=START.isoformat(), alert_escalation_interval_seconds=0.1)
    async for running in start_hub(settings):
        yield running


async def listening(hub: Hub, token: str, tenant: str) -> Listener:
    """A notifications subscription, live on the hub's bus before it returns."""
    before = hub.state.bus.count(tenant)
    listener = Listener(hub.ws_url, token, LIVE).start()
    await until(lambda: _joined(hub, tenant, before, listener), "the subscription reached the bus")
    assert listener.error is None
    return listener


async def _joined(hub: Hub, tenant: str, before: int, listener: Listener) -> bool:
    return hub.state.bus.count(tenant) > before or listener.task is None or listener.task.done()


def advance(minutes: int) -> None:
    virtual = clock.current()
    assert isinstance(virtual, clock.VirtualClock)
    virtual.advance(timedelta(minutes=minutes))


async def errors_of(hub: Hub, query: str, variables: dict[str, Any], token: str) -> list[str]:
    body = await hub.gql(query, variables, token=token)
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def test_a_two_step_policy_notifies_the_planners_and_not_a_viewer(clocked, suffix):
    hub = clocked
    owner, other, rival = f"nacme-{suffix}", f"nshop-{suffix}", f"nrival-{suffix}"
    for tenant, kind in ((owner, "supplier"), (other, "retailer"), (rival, "retailer")):
        await hub.tenant(tenant, kind)
    await partner(hub, owner, other, ["alerts"])
    # given: the owner's two-step policy (raise after 10 minutes, its planners after 30) and one alert it shares
    await hub.ok(UPSERT, {"input": {"alertKind": "mismatch", "severity": "warning", "steps": [
        {"afterMinutes": 10, "action": "raise_severity"},
        {"afterMinutes": 30, "action": "notify_role", "role": "planner"}]}}, tenant=owner)
    planner = hub.token(owner, "planner", subject=f"planner-{suffix}")
    viewer = hub.token(owner, "viewer", subject=f"viewer-{suffix}")
    outsiders = [hub.token(tenant, "planner", subject=f"p-{tenant}") for tenant in (other, rival)]
    hears = await listening(hub, planner, owner)
    deaf = await listening(hub, viewer, owner)
    far = [await listening(hub, token, tenant) for token, tenant in zip(outsiders, (other, rival))]
    waiting = await alert(hub, owner, [other], f"n-{suffix}")
    # when: the first step falls due, nobody is notified (it raises the severity)
    advance(11)
    await until(lambda: _fired(waiting.id, 1), "the first step fired")
    assert await hears.silent_for(0.3)
    # when: the second step falls due
    advance(20)
    await until(lambda: _fired(waiting.id, 2), "the second step fired")
    # then: the owner's planner hears it live, once
    live = (await hears.next(timeout=10))["notifications"]
    assert (live["alertId"], live["step"], live["of"], live["action"], live["role"]) == (
        str(waiting.id), 2, 2, "notify_role", "planner")
    assert live["alertKind"] == "mismatch" and live["severity"] == "critical" and live["read"] is False
    assert await hears.silent_for(0.3)
    # and: a viewer of the owner, the partner's and an unrelated tenant's planners hear nothing
    for listener in (deaf, *far):
        assert await listener.silent_for(0.2)
    # the planner lists it unread; the others list nothing
    listed = (await hub.ok(LIST, {"unreadOnly": True}, token=planner))["notifications"]
    assert [(n["id"], n["step"], n["read"]) for n in listed] == [(live["id"], 2, False)]
    for token in (viewer, *outsiders):
        assert (await hub.ok(LIST, {}, token=token))["notifications"] == []
    # others cannot mark or take it: NOT_FOUND, and nothing changes
    for token in (viewer, *outsiders):
        assert await errors_of(hub, MARK, {"ids": [live["id"]]}, token) == ["NOT_FOUND"]
        assert await errors_of(hub, TAKE, {"id": live["id"]}, token) == ["NOT_FOUND"]
    stored = await Notification.get(live["id"])
    assert stored is not None and stored.read_by == [] and stored.acknowledged_at is None
    # the planner reads it (no longer unread), then takes it
    assert (await hub.ok(MARK, {"ids": [live["id"]]}, token=planner))["markNotificationsRead"] == [
        {"id": live["id"], "read": True}]
    assert (await hub.ok(LIST, {"unreadOnly": True}, token=planner))["notifications"] == []
    taken = (await hub.ok(TAKE, {"id": live["id"]}, token=planner))["acknowledgeNotification"]
    assert taken["acknowledgedAt"] == (START + timedelta(minutes=31)).isoformat()
    assert taken["acknowledgedBy"] == f"{hub.settings.issuer}|planner-{suffix}"
    # a second planner of the owner sees it acknowledged by the first, and unread for themselves
    second = hub.token(owner, "planner", subject=f"planner2-{suffix}")
    [seen] = (await hub.ok(LIST, {}, token=second))["notifications"]
    assert (seen["read"], seen["acknowledgedBy"]) == (False, taken["acknowledgedBy"])


async def test_a_member_step_reaches_that_member_only(clocked, suffix):
    hub = clocked
    owner = await hub.tenant(f"nmem-{suffix}")
    # given: two operators who are members of the owner; the policy names one of them
    issuer = hub.settings.issuer
    chosen = (await hub.ok(ADD_MEMBER, {"input": {"issuer": issuer, "subject": f"op1-{suffix}",
                                                  "roles": ["operator"]}}, tenant=owner))["addMember"]["id"]
    await hub.ok(ADD_MEMBER, {"input": {"issuer": issuer, "subject": f"op2-{suffix}", "roles": ["operator"]}},
                 tenant=owner)
    await hub.ok(UPSERT, {"input": {"alertKind": "expiry_risk", "steps": [
        {"afterMinutes": 5, "action": "notify_member", "memberId": chosen}]}}, tenant=owner)
    member = hub.token(owner, "operator", subject=f"op1-{suffix}")
    colleague = hub.token(owner, "operator", subject=f"op2-{suffix}")
    hears = await listening(hub, member, owner)
    deaf = await listening(hub, colleague, owner)
    raised = await alert(hub, owner, [], f"m-{suffix}", kind=AlertKind.expiry_risk)
    # when: the step falls due
    advance(6)
    await until(lambda: _fired(raised.id, 1), "the member step fired")
    # then: the named member hears and lists it; the other operator neither
    live = (await hears.next(timeout=10))["notifications"]
    assert (live["alertId"], live["action"], live["memberId"], live["role"]) == (
        str(raised.id), "notify_member", chosen, None)
    assert await deaf.silent_for(0.3)
    assert [n["id"] for n in (await hub.ok(LIST, {}, token=member))["notifications"]] == [live["id"]]
    assert (await hub.ok(LIST, {}, token=colleague))["notifications"] == []
    assert await errors_of(hub, MARK, {"ids": [live["id"]]}, colleague) == ["NOT_FOUND"]
    # the event names where it went, for portals and ERPs; it went to the owner alone
    [(step, action, audience)] = await steps_of(raised.id)
    assert (step, action, audience) == (1, "notify_member", [owner])


async def test_bad_input_is_refused(clocked, suffix):
    hub = clocked
    owner = await hub.tenant(f"nbad-{suffix}")
    token = hub.token(owner, "planner")
    assert await errors_of(hub, MARK, {"ids": ["not-an-id"]}, token) == ["NOT_FOUND"]
    assert await errors_of(hub, MARK, {"ids": []}, token) == ["BAD_USER_INPUT"]
    assert await errors_of(hub, TAKE, {"id": "0" * 24}, token) == ["NOT_FOUND"]
    assert await errors_of(hub, "{ notifications(first: 0) { id } }", {}, token) == ["BAD_USER_INPUT"]


async def _fired(alert_id: Any, step: int) -> bool:
    return any(n == step for n, _, _ in await steps_of(alert_id))
