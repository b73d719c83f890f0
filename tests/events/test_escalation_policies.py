"""Escalation policies: chains of steps per kind and severity, fired on the hub's settable clock by its leased sweep,
once each, stopping at acknowledgement; admin-only, audited, and private to their tenant."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub import clock
from hub.business_hours import due_at
from hub.dates import utcnow
from hub.models.alert import Alert, AlertKind, Severity
from hub.models.escalation import ANY, BusinessHours, EscalationPolicy, EscalationStep, StepAction
from hub.models.event import Event
from hub.services.escalation import chain_of, choose, default_chain, escalate_overdue, key_of
from tests.conftest import Hub, hub_settings, start_hub
from tests.events.conftest import ACKNOWLEDGE, alert, partner

pytestmark = pytest.mark.anyio  # parametrized coroutines need the marker before collection
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
UPSERT = """
mutation($input: EscalationPolicyInput!) {
  upsertEscalationPolicy(input: $input) {
    id alertKind severity builtIn steps { afterMinutes action role memberId } businessHours { timeZone days start end }
  }
}
"""
POLICIES = "{ escalationPolicies { id alertKind severity builtIn steps { afterMinutes action role } } }"
AUDIT = '{ auditLog(filter: {action: "escalation_policy.changed"}) { edges { node { action details } } } }'
ALERT = "query($id: ID!) { alert(id: $id) { severity status escalatedAt escalations { step action role at } } }"
TWO_STEPS = {
    "alertKind": "mismatch",
    "severity": "warning",
    "steps": [{"afterMinutes": 10, "action": "raise_severity"},
              {"afterMinutes": 30, "action": "notify_role", "role": "planner"}],
}


@pytest.fixture
async def clocked_hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Hub]:
    """A hub on a virtual clock (``LOTPULSE_CLOCK``) whose escalation sweep runs every tenth of a second."""
    settings = hub_settings(key_file, mongo_uri, clock=START.isoformat(), alert_escalation_interval_seconds=0.1)
    async for running in start_hub(settings):
        yield running


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 30
    while not await check():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


async def steps_of(alert_id: Any) -> list[tuple[int, str, list[str]]]:
    """The alert's escalation events in log order (numbered ones: the sequencer stamps them after commit)."""
    query = {"type": "alert.escalated", "payload.alert.id": str(alert_id), "seq": {"$gt": 0}}
    events = await Event.find(query).sort("seq").to_list()
    return [(e.payload["escalation"]["step"], e.payload["escalation"]["action"], e.audience) for e in events]


async def test_a_two_step_policy_fires_in_order_on_the_clock_and_stops_when_acknowledged(clocked_hub):
    hub = clocked_hub
    virtual = clock.current()
    assert isinstance(virtual, clock.VirtualClock) and virtual.now() == START
    # given: acme's two-step policy for warning mismatches, and two such alerts shared with shopco
    for tenant, kind in (("acme", "supplier"), ("shopco", "retailer")):
        await hub.tenant(tenant, kind)
    await partner(hub, "acme", "shopco", ["alerts"])
    await hub.ok(UPSERT, {"input": TWO_STEPS}, tenant="acme")
    waiting = await alert(hub, "acme", ["shopco"], "k1")
    handled = await alert(hub, "acme", ["shopco"], "k2")
    # when: 11 minutes pass on the hub's clock
    virtual.advance(timedelta(minutes=11))
    await until(lambda: _both_have(waiting.id, handled.id, 1), "the first step fired on both")
    # then: the first step raised both to critical, heard by everyone who sees the alerts
    assert await steps_of(waiting.id) == [(1, "raise_severity", ["acme", "shopco"])]
    assert (await hub.ok(ALERT, {"id": str(waiting.id)}, tenant="shopco"))["alert"]["severity"] == "critical"
    # when: one is acknowledged, and the clock passes the second step's 30 minutes
    await hub.ok(ACKNOWLEDGE, {"id": str(handled.id)}, tenant="shopco")
    virtual.advance(timedelta(minutes=20))
    await until(lambda: _has(waiting.id, 2), "the second step fired")
    # then: the waiting alert got step 2 (to acme's planners, acme alone hears it); the acknowledged one stopped
    assert await steps_of(waiting.id) == [(1, "raise_severity", ["acme", "shopco"]), (2, "notify_role", ["acme"])]
    assert await steps_of(handled.id) == [(1, "raise_severity", ["acme", "shopco"])]
    assert await fired(handled.id) == 1
    # the alert keeps its history: the owner sees both steps, the partner only the one addressed to it
    mine = (await hub.ok(ALERT, {"id": str(waiting.id)}, tenant="acme"))["alert"]["escalations"]
    assert [(s["step"], s["action"], s["role"], s["at"]) for s in mine] == [
        (1, "raise_severity", None, (START + timedelta(minutes=11)).isoformat()),
        (2, "notify_role", "planner", (START + timedelta(minutes=31)).isoformat())]
    theirs = (await hub.ok(ALERT, {"id": str(waiting.id)}, tenant="shopco"))["alert"]["escalations"]
    assert [s["step"] for s in theirs] == [1]
    stored = await Alert.get(waiting.id)
    assert stored is not None and stored.escalation_step == 2 and stored.escalation_done_at == START + timedelta(
        minutes=31) and stored.escalations[1]["role"] == "planner"
    # and: nothing fires again however long it waits (a default-policy alert escalating proves a sweep ran)
    marker = await alert(hub, "acme", [], "marker", kind=AlertKind.expiry_risk)
    virtual.advance(timedelta(days=3))
    await until(lambda: _has(marker.id, 1), "a sweep ran three days later")
    assert await fired(waiting.id) == 2 and await fired(handled.id) == 1


async def fired(alert_id: Any) -> int:
    """Every escalation event of the alert, numbered yet or not."""
    return await Event.find({"type": "alert.escalated", "payload.alert.id": str(alert_id)}).count()


async def _has(alert_id: Any, step: int) -> bool:
    return any(n == step for n, _, _ in await steps_of(alert_id))


async def _both_have(one: Any, two: Any, step: int) -> bool:
    return await _has(one, step) and await _has(two, step)


async def test_each_step_fires_once_when_two_processes_sweep_together(module_hub, suffix):
    # given: a tenant's two-step policy and an alert both steps of which are overdue
    owner = await module_hub.tenant(f"esc-{suffix}")
    await module_hub.ok(UPSERT, {"input": TWO_STEPS}, tenant=owner)
    raised = await alert(module_hub, owner, [], f"twice-{suffix}")
    later = utcnow() + timedelta(hours=1)
    # when: two processes sweep at the same moment
    database = module_hub.state.database
    counts = await asyncio.gather(*(escalate_overdue(database, timedelta(hours=4), later, [owner]) for _ in "ab"))
    # then: two steps fired in all, in order, once each
    assert sum(counts) == 2
    await until(lambda: _has(raised.id, 2), "the events are in the log")
    assert [(n, action) for n, action, _ in await steps_of(raised.id)] == [(1, "raise_severity"), (2, "notify_role")]


async def test_without_a_policy_an_alert_follows_the_default_one_raise(module_hub, suffix):
    owner = await module_hub.tenant(f"dflt-{suffix}")
    raised = await alert(module_hub, owner, [], f"dflt-{suffix}", severity=Severity.info)
    policies = (await module_hub.ok(POLICIES, tenant=owner))["escalationPolicies"]
    assert policies == [{"id": None, "alertKind": None, "severity": None, "builtIn": True,
                         "steps": [{"afterMinutes": 240, "action": "raise_severity", "role": None}]}]
    database = module_hub.state.database
    assert await escalate_overdue(database, timedelta(hours=4), utcnow() + timedelta(hours=3), [owner]) == 0
    assert await escalate_overdue(database, timedelta(hours=4), utcnow() + timedelta(hours=5), [owner]) == 1
    assert await escalate_overdue(database, timedelta(hours=4), utcnow() + timedelta(days=5), [owner]) == 0
    stored = await Alert.get(raised.id)
    assert stored is not None and stored.severity == Severity.warning


async def test_policies_are_private_to_their_tenant_and_changes_are_audited(module_hub, suffix):
    acme, globex = await module_hub.tenant(f"a-{suffix}"), await module_hub.tenant(f"g-{suffix}")
    first = (await module_hub.ok(UPSERT, {"input": TWO_STEPS}, tenant=acme))["upsertEscalationPolicy"]
    changed = {**TWO_STEPS, "steps": TWO_STEPS["steps"][:1],
               "businessHours": {"timeZone": "Europe/Berlin", "days": [5, 1, 2], "start": "08:00", "end": "17:30"}}
    second = (await module_hub.ok(UPSERT, {"input": changed}, tenant=acme))["upsertEscalationPolicy"]
    assert second["id"] == first["id"] and second["businessHours"]["days"] == [1, 2, 5]
    # another tenant sees none of acme's policies, and its upsert of the same kind and severity is its own
    theirs = (await module_hub.ok(POLICIES, tenant=globex))["escalationPolicies"]
    assert [p["builtIn"] for p in theirs] == [True]
    other = {**TWO_STEPS, "steps": []}
    mine = (await module_hub.ok(UPSERT, {"input": other}, tenant=globex))["upsertEscalationPolicy"]
    assert mine["id"] != first["id"]
    acme_policies = (await module_hub.ok(POLICIES, tenant=acme))["escalationPolicies"]
    assert [len(p["steps"]) for p in acme_policies] == [1, 1]  # acme's own, then the default
    # every change is in acme's audit log with before and after; globex's log has only its own
    entries = [e["node"]["details"] for e in (await module_hub.ok(AUDIT, tenant=acme))["auditLog"]["edges"]]
    steps = [(e["before"] and len(e["before"]["steps"]), len(e["after"]["steps"])) for e in entries]
    assert steps == [(2, 1), (None, 2)]  # newest first
    assert entries[0]["after"]["businessHours"]["timeZone"] == "Europe/Berlin"
    theirs_audit = (await module_hub.ok(AUDIT, tenant=globex))["auditLog"]["edges"]
    assert [e["node"]["details"]["after"]["steps"] for e in theirs_audit] == [[]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": [{"afterMinutes": 30, "action": "raise_severity"}, {"afterMinutes": 10, "action": "page_webhook"}]},
         "steps.1.afterMinutes"),
        ({"steps": [{"afterMinutes": 5, "action": "notify_role"}]}, "steps.0.role"),
        ({"steps": [{"afterMinutes": 5, "action": "raise_severity", "role": "admin"}]}, "steps.0.role"),
        ({"businessHours": {"timeZone": "Mars/Olympus", "days": [1], "start": "08:00", "end": "18:00"}},
         "businessHours.timeZone"),
        ({"businessHours": {"timeZone": "UTC", "days": [1], "start": "18:00", "end": "08:00"}}, "businessHours"),
    ],
)
async def test_a_bad_policy_is_refused_and_nothing_is_stored(module_hub, suffix, change, field):
    owner = await module_hub.tenant(f"bad-{suffix}")
    body = await module_hub.gql(UPSERT, {"input": {**TWO_STEPS, **change}}, tenant=owner)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == field
    assert [p["builtIn"] for p in (await module_hub.ok(POLICIES, tenant=owner))["escalationPolicies"]] == [True]


async def test_another_tenant_s_member_cannot_be_notified(module_hub, suffix):
    acme, globex = await module_hub.tenant(f"ma-{suffix}"), await module_hub.tenant(f"mg-{suffix}")
    added = await module_hub.ok('mutation($i: AddMemberInput!) { addMember(input: $i) { id } }',
                                {"i": {"issuer": "https://idp.test", "subject": f"bob-{suffix}", "roles": ["planner"]}},
                                tenant=globex)
    step = {"afterMinutes": 5, "action": "notify_member", "memberId": added["addMember"]["id"]}
    body = await module_hub.gql(UPSERT, {"input": {**TWO_STEPS, "steps": [step]}}, tenant=acme)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    ok = await module_hub.ok(UPSERT, {"input": {**TWO_STEPS, "steps": [step]}}, tenant=globex)
    assert ok["upsertEscalationPolicy"]["steps"][0]["memberId"] == added["addMember"]["id"]


def test_business_minutes_skip_nights_and_weekends():
    hours = BusinessHours(time_zone="Europe/Berlin", days=[1, 2, 3, 4, 5], start="09:00", end="18:00")
    friday_evening = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)  # 17:30 in Berlin
    # 30 minutes left on Friday, 30 more on Monday from 09:00 Berlin (08:00 UTC)
    assert due_at(friday_evening, timedelta(minutes=60), hours) == datetime(2026, 3, 9, 8, 30, tzinfo=UTC)
    # opened on a Sunday: the clock starts Monday morning
    assert due_at(datetime(2026, 3, 8, 12, tzinfo=UTC), timedelta(0), hours) == datetime(2026, 3, 9, 8, tzinfo=UTC)
    # across the spring DST change (29 March 2026): 09:00 Berlin is 07:00 UTC on Monday 30 March
    assert due_at(datetime(2026, 3, 27, 16, 50, tzinfo=UTC), timedelta(minutes=20), hours) == datetime(
        2026, 3, 30, 7, 10, tzinfo=UTC)
    assert due_at(friday_evening, timedelta(minutes=60), None) == friday_evening + timedelta(minutes=60)


def test_an_alert_follows_its_most_specific_policy_and_keeps_it_once_escalated():
    def policy(kind: str, severity: str, minutes: int) -> EscalationPolicy:
        return EscalationPolicy(tenant_id="acme", kind=kind, severity=severity,
                                steps=[EscalationStep(after_minutes=minutes, action=StepAction.raise_severity)])

    chains = {key_of(p.kind, p.severity): chain_of(p)
              for p in (policy("mismatch", "warning", 1), policy("mismatch", ANY, 2), policy(ANY, "warning", 3))}
    default = default_chain(timedelta(hours=4))
    assert choose(chains, default, "mismatch", "warning", None).steps[0][0] == timedelta(minutes=1)
    assert choose(chains, default, "mismatch", "critical", None).steps[0][0] == timedelta(minutes=2)
    assert choose(chains, default, "expiry_risk", "warning", None).steps[0][0] == timedelta(minutes=3)
    assert choose(chains, default, "expiry_risk", "info", None) is default
    # raised to critical by its first step, it stays on the policy it started with
    assert choose(chains, default, "mismatch", "critical", "mismatch/warning").key == "mismatch/warning"
