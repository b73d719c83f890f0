"""Alerts as the parties see them: deduplicated, acknowledged, resolved, reopened and escalated, each with its event."""

from __future__ import annotations

from datetime import timedelta

from hub.dates import utcnow
from hub.models.alert import Alert, Severity
from hub.models.event import Event
from hub.services.escalation import escalate_overdue
from tests.events.conftest import ACKNOWLEDGE, RESOLVE, REVOKE, alert

ALERTS = """
query($filter: AlertFilter, $first: Int, $after: String) {
  alerts(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id kind severity status ownerId title occurrences evidence note subjects { kind id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
ALERT = "query($id: ID!) { alert(id: $id) { id status severity escalatedAt } }"


async def events_of(type: str) -> list[Event]:
    return await Event.find({"type": type}).sort("seq").to_list()


async def test_raising_the_same_finding_twice_updates_one_alert(hub, trio):
    first = await alert(hub, "shopco", ["acme"], "k1", evidence={"short": 5})
    second = await alert(hub, "shopco", ["acme"], "k1", evidence={"short": 7})
    assert first.id == second.id and second.occurrences == 2
    assert await Alert.find({}).count() == 1
    nodes = [e["node"] for e in (await hub.ok(ALERTS, tenant="shopco"))["alerts"]["edges"]]
    assert [(n["occurrences"], n["evidence"]) for n in nodes] == [(2, {"short": 7})]
    # found once, then updated in place with the same id
    assert len(await events_of("mismatch.detected")) == 1
    [updated] = await events_of("alert.updated")
    assert updated.payload["alert"]["id"] == str(first.id) and updated.payload["alert"]["evidence"] == {"short": 7}


async def test_raising_an_identical_finding_again_emits_nothing(hub, trio):
    await alert(hub, "shopco", ["acme"], "k1")
    again = await alert(hub, "shopco", ["acme"], "k1")
    assert again.occurrences == 2
    assert len(await events_of("mismatch.detected")) == 1


async def test_acknowledging_records_who_when_and_why_and_emits_an_event(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1")
    data = await hub.ok(ACKNOWLEDGE, {"id": str(raised.id), "note": "driver called"}, tenant="acme",
                        roles=("operator",))
    acknowledged = data["acknowledgeAlert"]
    assert acknowledged["status"] == "acknowledged" and acknowledged["note"] == "driver called"
    assert acknowledged["acknowledgedBy"] == "acme:local:acme" and acknowledged["acknowledgedAt"]
    [event] = await events_of("alert.acknowledged")
    assert event.tenant_id == "shopco" and event.audience == ["acme", "shopco"]
    assert event.payload["alert"]["acknowledgedBy"] == "acme:local:acme"


async def test_an_acknowledged_alert_raised_again_keeps_its_status_but_takes_the_new_evidence(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1", evidence={"short": 5})
    await hub.ok(ACKNOWLEDGE, {"id": str(raised.id)}, tenant="shopco")
    again = await alert(hub, "shopco", ["acme"], "k1", evidence={"short": 9})
    assert again.status.value == "acknowledged" and again.evidence == {"short": 9}
    assert again.acknowledged_by == "shopco:local:shopco"


async def test_a_resolved_alert_reopens_when_the_finding_comes_back(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1")
    variables = {"id": str(raised.id), "decision": "false_alarm", "note": "re-counted"}
    resolved = (await hub.ok(RESOLVE, variables, tenant="shopco"))["resolveAlert"]
    assert resolved == {"id": str(raised.id), "status": "resolved", "resolvedBy": "shopco:local:shopco",
                        "note": "re-counted", "decision": "false_alarm"}
    [event] = await events_of("alert.resolved")
    assert event.payload["alert"]["decision"] == "false_alarm"
    reopened = await alert(hub, "shopco", ["acme"], "k1")
    assert reopened.id == raised.id and reopened.status.value == "open"
    assert reopened.resolved_at is None and reopened.note is None and reopened.decision is None
    assert len(await events_of("mismatch.detected")) == 2


async def test_resolving_needs_a_decision_from_the_vocabulary_and_changes_nothing_without_one(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1")
    before = (await Alert.get(raised.id)).model_dump()
    for variables, field in (
        ({}, "decision"),
        ({"note": "sold it off"}, "decision"),
        ({"decision": "other"}, "note"),  # 'other' says what only with a note
        ({"decision": "other", "note": "   "}, "note"),
    ):
        body = await hub.gql(RESOLVE, {"id": str(raised.id), **variables}, tenant="shopco")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", variables
        assert body["errors"][0]["extensions"]["field"] == field, variables
    unknown = await hub.gql(RESOLVE, {"id": str(raised.id), "decision": "shrug"}, tenant="shopco")
    assert unknown["errors"] and unknown.get("data") is None  # not in the vocabulary: refused by the schema
    assert (await Alert.get(raised.id)).model_dump() == before
    assert await events_of("alert.resolved") == []
    variables = {"id": str(raised.id), "decision": "other", "note": "donated to the food bank"}
    done = (await hub.ok(RESOLVE, variables, tenant="shopco"))["resolveAlert"]
    assert done["decision"] == "other" and done["note"] == "donated to the food bank"


async def test_lifecycle_transitions_that_make_no_sense_conflict(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1")
    await hub.ok(ACKNOWLEDGE, {"id": str(raised.id)}, tenant="shopco")
    again = await hub.gql(ACKNOWLEDGE, {"id": str(raised.id)}, tenant="acme")
    assert again["errors"][0]["extensions"]["code"] == "CONFLICT"
    await hub.ok(RESOLVE, {"id": str(raised.id), "decision": "transfer"}, tenant="acme")
    twice = await hub.gql(RESOLVE, {"id": str(raised.id), "decision": "transfer"}, tenant="shopco")
    assert twice["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert len(await events_of("alert.resolved")) == 1


async def test_a_stranger_can_neither_see_nor_change_an_alert(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1")
    assert (await hub.ok(ALERTS, tenant="rival"))["alerts"]["edges"] == []
    for document in (ALERT, ACKNOWLEDGE, RESOLVE):
        body = await hub.gql(document, {"id": str(raised.id), "decision": "destroy"}, tenant="rival")
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", document
    assert (await Alert.get(raised.id)).status.value == "open"


async def test_a_revoked_partner_loses_the_alert_at_once(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1")
    assert len((await hub.ok(ALERTS, tenant="acme"))["alerts"]["edges"]) == 1
    await hub.ok(REVOKE, {"id": trio}, tenant="acme")
    assert (await hub.ok(ALERTS, tenant="acme"))["alerts"]["edges"] == []
    body = await hub.gql(ACKNOWLEDGE, {"id": str(raised.id)}, tenant="acme")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # the owner keeps it
    assert len((await hub.ok(ALERTS, tenant="shopco"))["alerts"]["edges"]) == 1


async def test_a_viewer_may_read_alerts_but_not_acknowledge_them(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1")
    assert len((await hub.ok(ALERTS, tenant="acme", roles=("viewer",)))["alerts"]["edges"]) == 1
    body = await hub.gql(ACKNOWLEDGE, {"id": str(raised.id)}, tenant="acme", roles=("viewer",))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_alerts_are_listed_newest_first_with_filters_and_pages(hub, trio):
    for n in range(5):
        await alert(hub, "shopco", ["acme"], f"k{n}", severity=Severity.critical if n % 2 else Severity.info)
    resolved = await alert(hub, "acme", [], "mine")
    await hub.ok(RESOLVE, {"id": str(resolved.id), "decision": "accept_risk"}, tenant="acme")
    page = (await hub.ok(ALERTS, {"first": 2}, tenant="acme"))["alerts"]
    assert [e["node"]["title"] for e in page["edges"]] == ["alert mine", "alert k4"]
    rest = (await hub.ok(ALERTS, {"first": 10, "after": page["pageInfo"]["endCursor"]}, tenant="acme"))["alerts"]
    assert [e["node"]["title"] for e in rest["edges"]] == ["alert k3", "alert k2", "alert k1", "alert k0"]
    critical = await hub.ok(ALERTS, {"filter": {"severities": ["critical"]}}, tenant="acme")
    assert [e["node"]["title"] for e in critical["alerts"]["edges"]] == ["alert k3", "alert k1"]
    open_ones = await hub.ok(ALERTS, {"filter": {"statuses": ["open"], "ownerId": "acme"}}, tenant="acme")
    assert open_ones["alerts"]["edges"] == []
    by_subject = await hub.ok(ALERTS, {"filter": {"subjectId": "d-k2"}}, tenant="acme")
    assert [e["node"]["title"] for e in by_subject["alerts"]["edges"]] == ["alert k2"]


async def test_an_unacknowledged_alert_escalates_once_past_its_deadline(hub, trio):
    # given: one alert left open, one acknowledged
    waiting = await alert(hub, "shopco", ["acme"], "k1", severity=Severity.warning)
    handled = await alert(hub, "shopco", ["acme"], "k2", severity=Severity.warning)
    await hub.ok(ACKNOWLEDGE, {"id": str(handled.id)}, tenant="shopco")
    deadline = timedelta(minutes=30)
    # when: the sweep runs before and after the deadline, twice
    assert await escalate_overdue(hub.state.database, deadline) == 0
    later = utcnow() + timedelta(minutes=31)
    assert await escalate_overdue(hub.state.database, deadline, now=later) == 1
    assert await escalate_overdue(hub.state.database, deadline, now=later + timedelta(hours=5)) == 0
    # then: raised one level, once, with an event the partner hears too
    data = (await hub.ok(ALERT, {"id": str(waiting.id)}, tenant="acme"))["alert"]
    assert data["severity"] == "critical" and data["escalatedAt"]
    assert (await Alert.get(handled.id)).severity == Severity.warning
    [event] = await events_of("alert.escalated")
    assert event.audience == ["acme", "shopco"] and event.payload["previousSeverity"] == "warning"


async def test_a_re_raised_escalated_alert_keeps_its_raised_severity(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1", severity=Severity.info)
    await escalate_overdue(hub.state.database, timedelta(0), now=utcnow() + timedelta(seconds=1))
    again = await alert(hub, "shopco", ["acme"], "k1", severity=Severity.info, evidence={"n": 2})
    assert again.id == raised.id and again.severity == Severity.warning


async def test_an_oversized_note_is_refused_and_the_alert_stays_open(hub, trio):
    raised = await alert(hub, "shopco", ["acme"], "k1")
    body = await hub.gql(ACKNOWLEDGE, {"id": str(raised.id), "note": "n" * 2001}, tenant="shopco")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    stored = await Alert.get(raised.id)
    assert stored.status.value == "open" and stored.note is None
    assert await events_of("alert.acknowledged") == []
