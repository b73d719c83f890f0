"""What a brand is shown of another tenant's sensor findings: the finding, and its own goods in it, nothing more.

A sensor at a location watches the goods of every brand stocked there, and its owner shares the spike (or the
silence) with each brand whose goods it watched (``hub/services/audiences.py``). The excursion and its alert name
every lot exposed there; a brand other than the sensor's owner is shown its own lots only. Another brand's lot
codes, SKU codes and quantities, and that it supplies the location at all, are that brand's and the location
owner's business. Applied wherever an excursion or a sensor alert leaves the hub for a tenant other than the
sensor's owner: queries, the live stream, webhooks, EPCIS. Alerts addressed to a dispatch's parties are not
narrowed: the lots they name are on the dispatch every party sees.

Pure functions over the stored shapes (``hub/services/alerts.py alert_payload``, ``Excursion.exposed_lots``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

SENSOR_ALERTS = frozenset({"sensor_spike", "sensor_offline"})
DISPATCH_PARTIES = "dispatch"  # tenants/access.py DISPATCH_PARTIES (not imported: this module stays pure)
T = TypeVar("T")


def quantity(lot: Mapping[str, Any]) -> str:
    """How much of a lot was exposed, in cases where it comes in cases (an evidence lot of a spike alert)."""
    units, cases, pack = lot.get("units", 0), lot.get("cases", 0), lot.get("packSize", 1)
    if lot.get("totalUnits") is not None:  # a part of what the dispatches carry: say of how much
        if pack > 1 and cases:
            return f"{cases} of {lot.get('totalCases')} cases ({units} of {lot['totalUnits']} units)"
        return f"{units} of {lot['totalUnits']} units"
    if pack > 1 and cases:
        loose = units - cases * pack
        return f"{cases} cases ({units} units{f', {loose} loose' if loose else ''})"
    return f"{units} units"


def _place(lot: Mapping[str, Any], where: str) -> str:
    ssccs = lot.get("ssccs") or []
    if ssccs:
        return f"on {'SSCCs' if len(ssccs) > 1 else 'SSCC'} {', '.join(ssccs)}"
    return f"at {where}"


def recommendation(lots: Sequence[Mapping[str, Any]], where: str) -> str:
    """A spike alert's advice from the lots of its evidence: what was exposed where, and what it cost."""
    if not lots:
        return f"Check the cooling at {where}; no tracked goods were exposed."
    exposed = "; ".join(f"{quantity(lot)} of lot {lot['lotCode']} exposed {_place(lot, where)}" for lot in lots)
    redated = [lot for lot in lots if lot.get("expiresAfter") != lot.get("expiresBefore")]
    if redated:
        dates = ", ".join(f"{lot['lotCode']} now expires {lot.get('expiresAfter')} (was {lot.get('expiresBefore')})"
                          for lot in redated)
        return f"{exposed}: dispatch with priority or inspect ({dates}). Check the cooling at {where}."
    return f"{exposed}: inspect the goods and check the cooling; no shelf life lost so far."


def narrows(alert: Mapping[str, Any], viewer: str | None) -> bool:
    """Is ``alert`` (an alert payload) shown to ``viewer`` narrowed to its own goods?"""
    return (
        viewer is not None
        and alert.get("kind") in SENSOR_ALERTS
        and alert.get("audienceRule") != DISPATCH_PARTIES
        and alert.get("ownerId") != viewer
    )


def alert_for(alert: Mapping[str, Any], viewer: str | None) -> Mapping[str, Any]:
    """``alert`` (an alert payload) as ``viewer`` may see it: a partner's sensor alert names only the viewer's lots
    (lots recorded without their owner, before owners were recorded, are not shown to partners)."""
    if not narrows(alert, viewer):
        return alert
    evidence: dict[str, Any] = dict(alert.get("evidence") or {})
    lots = [lot for lot in evidence.get("lots") or [] if lot.get("ownerId") == viewer]
    kept = {lot.get("lotId") for lot in lots}
    evidence["lots"] = lots
    if "exposedUnits" in evidence:
        evidence["exposedUnits"] = sum(lot.get("units", 0) for lot in lots)
    narrowed = {
        **alert,
        "subjects": [s for s in alert.get("subjects") or [] if s.get("kind") != "lot" or s.get("id") in kept],
        "evidence": evidence,
    }
    if alert.get("kind") == "sensor_spike":
        where = evidence.get("locationCode") or evidence.get("deviceId") or "the sensor"
        narrowed["recommendation"] = recommendation(lots, where)
    # Another brand in the audience may have acknowledged or resolved it: its people, notes and decisions are its own.
    known = {viewer, alert.get("ownerId"), None}
    if _tenant_of(alert.get("acknowledgedBy")) not in known:
        narrowed["acknowledgedBy"] = None
    if _tenant_of(alert.get("resolvedBy")) not in known:
        narrowed["resolvedBy"] = None
        narrowed["decision"] = None
    last = alert.get("resolvedBy") if alert.get("resolvedAt") else alert.get("acknowledgedBy")
    if _tenant_of(last) not in known:
        narrowed["note"] = None
    return narrowed


def _tenant_of(actor: str | None) -> str | None:
    """The tenant of an alert's actor (``tenant:subject``); the hub itself (``system:...``) and nobody count as
    known to everyone."""
    if actor is None or actor.startswith("system:"):
        return None
    return actor.partition(":")[0]


def payload_for(payload: Mapping[str, Any], viewer: str | None) -> Mapping[str, Any]:
    """An event payload as ``viewer`` may hear it: the alert it carries, if any, narrowed by ``alert_for``."""
    alert = payload.get("alert")
    if not isinstance(alert, Mapping) or not narrows(alert, viewer):
        return payload
    return {**payload, "alert": alert_for(alert, viewer)}


def exposed_for(owner: str, viewer: str | None, lots: Sequence[T]) -> list[T]:
    """An excursion's exposed lots as ``viewer`` may see them: all for the sensor's owner, else the viewer's own."""
    if viewer is None or viewer == owner:
        return list(lots)
    return [lot for lot in lots if getattr(lot, "owner_id", None) == viewer]
