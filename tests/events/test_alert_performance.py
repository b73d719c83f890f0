"""alertPerformance: times from opening to acknowledgement, decision and resolution, and the backlog by age."""

from __future__ import annotations

from datetime import timedelta

from hub.dates import utcnow
from hub.models.alert import Alert, AlertKind, Severity
from tests.events.conftest import ACKNOWLEDGE, RESOLVE, alert

PERFORMANCE = """
query($filter: AlertPerformanceFilter) {
  alertPerformance(filter: $filter) {
    groups {
      kind severity alerts resolved resolvedBeforeEscalationShare
      toAcknowledge { count medianMinutes p90Minutes }
      toDecision { count medianMinutes p90Minutes }
      toResolution { count medianMinutes p90Minutes }
      decisions { decision alerts }
    }
    backlog { fromHours toHours alerts }
  }
}
"""


async def opened_minutes_ago(alert_id, minutes: float, **steps: float) -> None:
    """Put the alert's opening ``minutes`` ago and each step (acknowledged_at, resolved_at) that many minutes after."""
    raw = await Alert.get_pymongo_collection().find_one({"_id": alert_id})
    opened = utcnow() - timedelta(minutes=minutes)
    fields = {"opened_at": opened, **{key: opened + timedelta(minutes=after) for key, after in steps.items()
                                      if raw.get(key) is not None}}
    await Alert.get_pymongo_collection().update_one({"_id": alert_id}, {"$set": fields})


async def test_times_to_acknowledge_decide_and_resolve_with_median_p90_and_backlog(hub, trio):
    # five warnings resolved by people after 10, 20, 30, 40 and 100 minutes; two acknowledged first (5 and 15 min)
    for n, (minutes, decision) in enumerate(((10, "transfer"), (20, "markdown"), (30, "transfer"),
                                             (40, "false_alarm"), (100, "destroy"))):
        raised = await alert(hub, "shopco", ["acme"], f"done{n}")
        if n < 2:
            await hub.ok(ACKNOWLEDGE, {"id": str(raised.id)}, tenant="shopco")
        await hub.ok(RESOLVE, {"id": str(raised.id), "decision": decision}, tenant="acme" if n == 4 else "shopco")
        await opened_minutes_ago(raised.id, 500, acknowledged_at=5 + 10 * n, resolved_at=minutes)
    # one critical escalated and still open for 30 hours; one opened 10 minutes ago; a stranger's alert
    old = await alert(hub, "shopco", ["acme"], "old", severity=Severity.critical)
    await Alert.get_pymongo_collection().update_one({"_id": old.id}, {"$set": {"escalated_at": utcnow()}})
    await opened_minutes_ago(old.id, 30 * 60)
    await alert(hub, "acme", ["shopco"], "new", kind=AlertKind.expiry_risk)
    await alert(hub, "rival", [], "theirs")
    figures = (await hub.ok(PERFORMANCE, tenant="shopco"))["alertPerformance"]
    by_group = {(g["kind"], g["severity"]): g for g in figures["groups"]}
    assert sorted(by_group) == [("expiry_risk", "warning"), ("mismatch", "critical"), ("mismatch", "warning")]
    done = by_group[("mismatch", "warning")]
    assert done["alerts"] == 5 and done["resolved"] == 5 and done["resolvedBeforeEscalationShare"] == 1.0
    # median of 10..100 is 30; nearest-rank p90 of five values is the fifth: 100
    assert done["toResolution"] == {"count": 5, "medianMinutes": 30.0, "p90Minutes": 100.0}
    assert done["toDecision"] == {"count": 5, "medianMinutes": 30.0, "p90Minutes": 100.0}
    assert done["toAcknowledge"] == {"count": 2, "medianMinutes": 10.0, "p90Minutes": 15.0}
    assert done["decisions"] == [{"decision": "destroy", "alerts": 1}, {"decision": "false_alarm", "alerts": 1},
                                 {"decision": "markdown", "alerts": 1}, {"decision": "transfer", "alerts": 2}]
    waiting = by_group[("mismatch", "critical")]
    assert waiting["resolved"] == 0 and waiting["resolvedBeforeEscalationShare"] is None
    assert waiting["toResolution"] == {"count": 0, "medianMinutes": None, "p90Minutes": None}
    # backlog: the 10-minute-old expiry alert (< 1 h) and the 30-hour-old critical (1-7 days)
    assert [(b["fromHours"], b["toHours"], b["alerts"]) for b in figures["backlog"]] == [
        (0, 1, 1), (1, 24, 0), (24, 168, 1), (168, None, 0)]
    # filters narrow it; a stranger's figures hold none of Shopco's alerts
    critical = (await hub.ok(PERFORMANCE, {"filter": {"severities": ["critical"]}}, tenant="shopco"))
    assert [g["severity"] for g in critical["alertPerformance"]["groups"]] == ["critical"]
    rival = (await hub.ok(PERFORMANCE, tenant="rival"))["alertPerformance"]
    assert [(g["kind"], g["alerts"]) for g in rival["groups"]] == [("mismatch", 1)]
    assert sum(b["alerts"] for b in rival["backlog"]) == 1
