"""Signal to action: how long alerts wait for an acknowledgement, a decision and a resolution, and what waits now.

Every duration counts from ``opened_at`` (raised, or reopened when the finding came back). A decision is a person's
resolution (``decision`` set); a resolution also counts the hub closing an alert whose finding went away. The p90 is
the nearest-rank percentile: the smallest duration at least 90 % of the alerts were at or under.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.models.alert import Alert, AlertStatus
from tenants.access import DISPATCH_PARTIES, Access

BACKLOG_BANDS = ((0, 1), (1, 24), (24, 168), (168, None))  # hours: < 1 h, 1-24 h, 1-7 days, > 7 days


@dataclass
class Durations:
    """Minutes to one lifecycle step."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return round(statistics.median(self.values), 2) if self.values else None

    @property
    def p90(self) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        return round(ordered[math.ceil(0.9 * len(ordered)) - 1], 2)


@dataclass
class Group:
    kind: str
    severity: str
    by: str | None = None  # the location id or partner tenant of this group, when grouped by one
    by_label: str | None = None
    alerts: int = 0
    resolved: int = 0
    resolved_before_escalation: int = 0
    to_acknowledge: Durations = field(default_factory=Durations)
    to_decision: Durations = field(default_factory=Durations)
    to_resolution: Durations = field(default_factory=Durations)
    decisions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    decision_values: dict[str, dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )


@dataclass
class Backlog:
    from_hours: int
    to_hours: int | None
    alerts: int = 0


@dataclass
class Performance:
    groups: list[Group]
    backlog: list[Backlog]


def _minutes(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds() / 60)


def _dimension(raw: dict[str, Any], by: str | None, viewer: str) -> list[tuple[str | None, str | None]]:
    """The (id, label) groups an alert falls in: its locations, or the partners it is shared with (one alert may
    count in several; a partner's alert counts under its owner); ``(None, None)`` when it names none."""
    if by == "location":
        places = [(s["id"], s.get("label")) for s in raw.get("subjects", []) if s.get("kind") == "location"]
        return places or [(None, None)]
    if by == "partner":
        # The owner groups by everyone it shared the alert with, a dispatch's party by the dispatch's parties (all
        # on the notice), any other partner by the owner only: who else was told is the owner's business (another
        # brand stocked at the same retailer).
        known = raw["tenant_id"] == viewer or raw.get("audience_rule") == DISPATCH_PARTIES
        shared = raw.get("audience", []) if known else []
        others = sorted({raw["tenant_id"], *shared} - {viewer})
        return [(t, t) for t in others] or [(None, None)]
    return [(None, None)]


async def alert_performance(access: Access, clauses: list[dict[str, Any]], now: datetime,
                            by: str | None = None) -> Performance:
    """Figures per (kind, severity), and per location or partner when ``by`` says so, over the alerts the caller
    sees that match ``clauses``; backlog as of ``now``."""
    query = {"$and": [access.alerts(), *clauses]}
    groups: dict[tuple[str, str, str], Group] = {}
    backlog = [Backlog(lo, hi) for lo, hi in BACKLOG_BANDS]
    fields = {"kind": 1, "severity": 1, "status": 1, "opened_at": 1, "acknowledged_at": 1, "resolved_at": 1,
              "decision": 1, "escalated_at": 1, "decision_value": 1, "subjects": 1, "audience": 1, "tenant_id": 1,
              "audience_rule": 1}
    async for raw in Alert.get_pymongo_collection().find(query, fields):
        for key, label in _dimension(raw, by, access.tenant_id):
            _count(groups.setdefault((raw["kind"], raw["severity"], key or ""),
                                     Group(raw["kind"], raw["severity"], key, label)), raw)
        if raw["status"] != AlertStatus.resolved.value or not raw.get("resolved_at"):
            opened = raw["opened_at"]
            hours = _minutes(opened, now.replace(tzinfo=None) if opened.tzinfo is None else now) / 60
            band = next(b for b in backlog if b.to_hours is None or hours < b.to_hours)
            band.alerts += 1
    return Performance(groups=[groups[key] for key in sorted(groups)], backlog=backlog)


def _count(group: Group, raw: dict[str, Any]) -> None:
    group.alerts += 1
    opened = raw["opened_at"]
    if raw.get("acknowledged_at"):
        group.to_acknowledge.values.append(_minutes(opened, raw["acknowledged_at"]))
    if raw["status"] == AlertStatus.resolved.value and raw.get("resolved_at"):
        group.resolved += 1
        group.to_resolution.values.append(_minutes(opened, raw["resolved_at"]))
        if raw.get("decision"):
            group.to_decision.values.append(_minutes(opened, raw["resolved_at"]))
            group.decisions[raw["decision"]] += 1
            for currency, amount in (raw.get("decision_value") or {}).items():
                group.decision_values[raw["decision"]][currency] += amount
        if not raw.get("escalated_at"):
            group.resolved_before_escalation += 1
