"""Raising alerts: deduplicated by key, and every change written with its event in the caller's transaction."""

from __future__ import annotations

from typing import Any, Iterable

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.events import emit
from hub.models.alert import Alert, AlertKind, AlertStatus, Severity, SubjectRef
from tenants.models import utcnow

DETECTED_EVENT = {
    AlertKind.mismatch: "mismatch.detected",
    AlertKind.expiry_risk: "expiry_risk.detected",
    AlertKind.sensor_spike: "sensor_spike.detected",
}


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert as events, subscriptions and webhooks carry it."""
    return {
        "alert": {
            "id": str(alert.id),
            "kind": alert.kind.value,
            "severity": alert.severity.value,
            "status": alert.status.value,
            "ownerId": alert.tenant_id,
            "title": alert.title,
            "subjects": [subject.model_dump() for subject in alert.subjects],
            "evidence": alert.evidence,
            "recommendation": alert.recommendation,
            "occurrences": alert.occurrences,
            "createdAt": alert.created_at.isoformat(),
            "updatedAt": alert.updated_at.isoformat(),
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
) -> Alert:
    """Open the alert, or update the open one with the same key (never a duplicate); emits ``<kind>.detected``.

    A resolved alert with the same key is reopened: the finding came back.
    """
    now = utcnow()
    audience_ids = sorted({owner, *audience})
    raw = await Alert.get_pymongo_collection().find_one_and_update(
        {"dedupe_key": dedupe_key},
        {
            "$set": {
                "severity": severity.value,
                "audience": audience_ids,
                "title": title,
                "subjects": [subject.model_dump() for subject in subjects or []],
                "evidence": evidence or {},
                "recommendation": recommendation,
                "updated_at": now,
                "status": AlertStatus.open.value,
            },
            "$inc": {"occurrences": 1},
            "$setOnInsert": {"kind": kind.value, "tenant_id": owner, "dedupe_key": dedupe_key, "created_at": now},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    alert = Alert.model_validate(raw)
    await emit(session, DETECTED_EVENT[kind], owner, audience_ids, alert_payload(alert))
    return alert
