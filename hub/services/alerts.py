"""Alerts: raised deduplicated by key, acknowledged, resolved and escalated, each change written with its event.

Every write here takes the caller's session (or runs its own transaction), so the alert and the event that tells
partners about it commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub import audit, metrics
from hub.dates import utcnow
from hub.db import IN_SLICE
from hub.errors import BadInput, Conflict
from hub.events.log import build_event, emit, emit_many
from hub.models.alert import Alert, AlertKind, AlertStatus, Decision, Severity, SubjectRef
from hub.services import health
from tenants.access import Access
from tenants.roles import Group

if TYPE_CHECKING:
    from hub.db import Database

log = logging.getLogger("lotpulse.alerts")

DETECTED_EVENT = {
    AlertKind.mismatch: "mismatch.detected",
    AlertKind.expiry_risk: "expiry_risk.detected",
    AlertKind.sensor_spike: "sensor_spike.detected",
    AlertKind.velocity_drop: "velocity_drop.detected",
    AlertKind.velocity_spike: "velocity_spike.detected",
    AlertKind.obsolescence_risk: "obsolescence_risk.detected",
    AlertKind.fefo_violation: "fefo_violation.detected",
    AlertKind.sensor_offline: "sensor_offline.detected",
}
UPDATED_EVENT = "alert.updated"
ALERT_EVENT_TYPES = (
    *DETECTED_EVENT.values(), UPDATED_EVENT, "alert.acknowledged", "alert.resolved", "alert.escalated"
)
SEVERITY_ORDER = list(Severity)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert as events, subscriptions and webhooks carry it."""
    return {
        "alert": {
            "id": str(alert.id),
            "kind": alert.kind.value,
            "severity": alert.severity.value,
            "status": alert.status.value,
            "ownerId": alert.tenant_id,
            "audienceRule": alert.audience_rule,
            "title": alert.title,
            "subjects": [subject.model_dump() for subject in alert.subjects],
            "evidence": alert.evidence,
            "recommendation": alert.recommendation,
            "occurrences": alert.occurrences,
            "createdAt": alert.created_at.isoformat(),
            "updatedAt": alert.updated_at.isoformat(),
            "acknowledgedAt": _iso(alert.acknowledged_at),
            "acknowledgedBy": alert.acknowledged_by,
            "resolvedAt": _iso(alert.resolved_at),
            "resolvedBy": alert.resolved_by,
            "note": alert.note,
            "decision": alert.decision.value if alert.decision is not None else None,
            "escalatedAt": _iso(alert.escalated_at),
        }
    }


async def raise_alert(
    session: AsyncClientSession | None,
    *,
    kind: AlertKind,
    severity: Severity,
    owner: str,
    audience: Iterable[str],
    title: str,
    dedupe_key: str,
    subjects: list[SubjectRef] | None = None,
    evidence: dict[str, Any] | None = None,
    recommendation: str | None = None,
    audience_rule: str = "sharing",
) -> Alert:
    """Open the alert, or update the one with the same key in place (never a duplicate; its id is stable).

    A new alert emits ``<kind>.detected``. An open or acknowledged alert keeps its status (an acknowledgement is not
    silently undone) and gets the new evidence, emitting ``alert.updated`` when anything changed; an escalated
    severity is never lowered. A resolved alert reopens (``<kind>.detected``): the finding came back. Raising the
    very same finding again changes nothing and emits nothing, so periodic sweeps do not spam partners.
    """
    collection = Alert.get_pymongo_collection()
    now = utcnow()
    audience_ids = sorted({owner, *audience})
    fields: dict[str, Any] = {
        "audience": audience_ids,
        "title": title,
        "subjects": [subject.model_dump() for subject in subjects or []],
        "evidence": evidence or {},
        "recommendation": recommendation,
        "audience_rule": audience_rule,
    }
    existing = await collection.find_one({"dedupe_key": dedupe_key}, session=session)
    if existing is None:
        raw = await collection.find_one_and_update(
            {"dedupe_key": dedupe_key},
            {
                "$set": {**fields, "severity": severity.value, "updated_at": now},
                "$inc": {"occurrences": 1},
                "$setOnInsert": {
                    "kind": kind.value,
                    "tenant_id": owner,
                    "status": AlertStatus.open.value,
                    "created_at": now,
                    "opened_at": now,
                },
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        changed, event_type = True, DETECTED_EVENT[kind]
    else:
        current = Severity(existing["severity"])
        kept = max(current, severity, key=SEVERITY_ORDER.index) if existing.get("escalated_at") else severity
        update: dict[str, Any] = {**fields, "severity": kept.value, "updated_at": now}
        reopen = existing["status"] == AlertStatus.resolved.value
        if reopen:
            update.update(
                status=AlertStatus.open.value,
                opened_at=now,
                acknowledged_at=None,
                acknowledged_by=None,
                resolved_at=None,
                resolved_by=None,
                note=None,
                decision=None,
                escalated_at=None,
                escalation_policy=None,
                escalation_step=0,
                escalation_done_at=None,
                escalations=[],
                severity=severity.value,
            )
        changed = reopen or any(existing.get(key) != value for key, value in {**fields, "severity": kept.value}.items())
        event_type = DETECTED_EVENT[kind] if reopen else UPDATED_EVENT
        raw = await collection.find_one_and_update(
            {"_id": existing["_id"]},
            {"$set": update, "$inc": {"occurrences": 1}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
    alert = Alert.model_validate(raw)
    if changed:
        await emit(session, event_type, alert.tenant_id, alert.audience, alert_payload(alert))
    return alert


async def resolve_by_system(session: AsyncClientSession | None, alert_id: Any, resolver: str, note: str) -> bool:
    """The hub itself saw the finding go away (readings resumed, excursions merged): resolve it, emit the event."""
    now = utcnow()
    raw = await Alert.get_pymongo_collection().find_one_and_update(
        {"_id": alert_id, "status": {"$ne": AlertStatus.resolved.value}},
        {"$set": {"status": AlertStatus.resolved.value, "resolved_at": now, "resolved_by": resolver, "note": note,
                  "updated_at": now}},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if raw is None:
        return False
    alert = Alert.model_validate(raw)
    await emit(session, "alert.resolved", alert.tenant_id, alert.audience, alert_payload(alert))
    return True


async def resolve_all_by_system(session: AsyncClientSession, dedupe_keys: list[str], resolver: str, note: str
                                ) -> list[Alert]:
    """``resolve_by_system`` for the open alerts of many findings at once, in the caller's transaction (what it reads
    is what it changes; a concurrent change conflicts and the transaction runs again): a read and an update per slice
    of keys and one insert of their events, where one finding at a time took five round trips each (a gateway back
    from an outage brings hundreds of sensors in one call)."""
    collection = Alert.get_pymongo_collection()
    now = utcnow()
    changes = {"status": AlertStatus.resolved.value, "resolved_at": now, "resolved_by": resolver, "note": note,
               "updated_at": now}
    resolved: list[Alert] = []
    for start in range(0, len(dedupe_keys), IN_SLICE):
        keys = dedupe_keys[start:start + IN_SLICE]
        found = await collection.find({"dedupe_key": {"$in": keys}, "status": {"$ne": AlertStatus.resolved.value}},
                                      session=session).to_list(None)
        if found:
            await collection.update_many({"_id": {"$in": [doc["_id"] for doc in found]}}, {"$set": changes},
                                         session=session)
            resolved += [Alert.model_validate({**doc, **changes}) for doc in found]
    await emit_many(session, [build_event("alert.resolved", alert.tenant_id, alert.audience, alert_payload(alert))
                              for alert in resolved])
    return resolved


def _actor(access: Access) -> str:
    return f"{access.tenant_id}:{access.principal.subject}"


async def _transition(
    database: Database,
    access: Access,
    alert_id: str,
    allowed_from: tuple[AlertStatus, ...],
    changes: dict[str, Any],
    event_type: str,
    seen: Callable[[Alert], Awaitable[None]] | None = None,
) -> Alert:
    visible = access.alerts()

    async def work(session: AsyncClientSession) -> Alert:
        alert = await access.get(Alert, alert_id, visible, "alert")
        if alert.status not in allowed_from:
            raise Conflict(f"alert is {alert.status.value}")
        if seen is not None:
            await seen(alert)
        raw = await Alert.get_pymongo_collection().find_one_and_update(
            {"_id": alert.id, "status": alert.status.value},  # compare-and-set: two parties racing, one wins
            {"$set": {**changes, "updated_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if raw is None:
            raise Conflict("alert changed meanwhile; reload it")
        updated = Alert.model_validate(raw)
        await emit(session, event_type, updated.tenant_id, updated.audience, alert_payload(updated))
        return updated

    return await database.in_transaction(work)


NOTE_LIMIT = 2000


def _note(note: str | None) -> str | None:
    """Notes are free text (line breaks welcome), trimmed and bounded; an empty note is no note."""
    if note is None:
        return None
    note = note.strip()
    if len(note) > NOTE_LIMIT:
        raise BadInput(f"note must be at most {NOTE_LIMIT} characters", field="note")
    return note or None


async def acknowledge_alert(database: Database, access: Access, alert_id: str, note: str | None = None) -> Alert:
    """Someone in the audience has seen it and owns the follow-up; stops escalation."""
    access.require(Group.acknowledge)
    now = utcnow()
    acknowledged = await _transition(
        database,
        access,
        alert_id,
        (AlertStatus.open,),
        {
            "status": AlertStatus.acknowledged.value,
            "acknowledged_at": now,
            "acknowledged_by": _actor(access),
            "note": _note(note),
        },
        "alert.acknowledged",
    )
    _observe("acknowledge", acknowledged, now)
    return acknowledged


def _observe(step: str, alert: Alert, at: datetime) -> None:
    opened = alert.opened_at if alert.opened_at.tzinfo else alert.opened_at.replace(tzinfo=at.tzinfo)
    seconds = max(0.0, (at - opened).total_seconds())
    metrics.SIGNAL_TO_ACTION.labels(step, alert.kind.value, alert.severity.value).observe(seconds)


async def resolve_alert(
    database: Database, access: Access, alert_id: str, decision: Decision | None, note: str | None = None
) -> Alert:
    """Close the alert with the decision taken on it; the decision is what the health figures count."""
    access.require(Group.decisions)
    if decision is None:
        raise BadInput(
            f"resolving an alert needs a decision: one of {', '.join(d.value for d in Decision)}", field="decision"
        )
    note = _note(note)
    if decision is Decision.other and note is None:
        raise BadInput("the decision 'other' needs a note saying what was decided", field="note")
    now = utcnow()
    before: dict[str, Any] = {}

    changes: dict[str, Any] = {
        "status": AlertStatus.resolved.value,
        "resolved_at": now,
        "resolved_by": _actor(access),
        "note": note,
        "decision": decision.value,
    }

    async def remember(alert: Alert) -> None:
        before.update(status=alert.status.value, severity=alert.severity.value)
        # What the decision was about, valued as it stood: health figures weigh transfers against write-offs.
        changes["decision_value"] = await health.stake_of(alert)

    resolved = await _transition(
        database,
        access,
        alert_id,
        (AlertStatus.open, AlertStatus.acknowledged),
        changes,
        "alert.resolved",
        remember,
    )
    _observe("decision", resolved, now)
    metrics.DECISIONS.labels(decision.value, "yes" if resolved.escalated_at else "no").inc()
    for currency, amount in (resolved.decision_value or {}).items():
        metrics.DECISION_VALUE.labels(decision.value, currency).inc(amount)
    # The owner and the deciding tenant (a partner in the audience) both keep the record.
    for tenant in sorted({resolved.tenant_id, access.tenant_id}):
        await audit.record(
            "alert.decided", tenant_id=tenant, principal=access.principal, target=str(resolved.id),
            details={"kind": resolved.kind.value, "owner": resolved.tenant_id, "decidedBy": access.tenant_id,
                     "before": before, "after": {"status": resolved.status.value, "decision": decision.value},
                     "note": note},
        )
    return resolved


async def open_alerts(session: AsyncClientSession, found: list[dict[str, Any]]) -> list[Alert]:
    """Open many new alerts at once (a sweep's first findings): one insert and one event write for all of them.

    Each item holds ``raise_alert``'s keyword arguments; the caller knows no alert has their keys (in this
    transaction a concurrent writer of the same key makes the insert fail and the transaction start over).
    """
    if not found:
        return []
    now = utcnow()
    alerts = [
        Alert(
            id=PydanticObjectId(), kind=item["kind"], severity=item["severity"], tenant_id=item["owner"],
            audience=sorted({item["owner"], *item.get("audience", [])}), title=item["title"],
            subjects=item.get("subjects") or [], evidence=item.get("evidence") or {},
            recommendation=item.get("recommendation"), dedupe_key=item["dedupe_key"],
            created_at=now, updated_at=now, opened_at=now,
        )
        for item in found
    ]
    await Alert.insert_many(alerts, session=session)
    await emit_many(session, [
        build_event(DETECTED_EVENT[a.kind], a.tenant_id, a.audience, alert_payload(a)) for a in alerts
    ])
    return alerts
