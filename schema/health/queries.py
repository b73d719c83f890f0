"""inventoryHealth: value, aging and value at risk of the stock the caller may see (hub/services/health.py)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry
from strawberry.types import Info

from hub.dates import utcnow
from hub.models.alert import AlertKind, Decision, Severity
from hub.services import alert_performance as performance_service
from hub.services import health as health_service
from schema.permissions import READ
from schema.scalars import AlertKindEnum, DecisionEnum, SeverityEnum  # noqa: F401 - registers the enums
from tenants.access import object_id


@strawberry.type
class Money:
    currency: str
    amount: float


@strawberry.type
class AgingBand:
    from_days: int
    to_days: int | None = strawberry.field(description="Null: open-ended (older than from_days)")
    units: int
    value: list[Money]


@strawberry.type
class HealthTrend:
    as_of: date
    source: str = strawberry.field(
        description="snapshot: the hub's daily snapshot of that day; series: rebuilt from the demand series "
        "(value at current unit values, value at risk unknown)"
    )
    on_hand_units: int
    value: list[Money]
    value_at_risk: list[Money] | None = strawberry.field(description="Null when no snapshot of that day exists")
    consumed_units: int
    days_of_supply: float | None
    turnover: float | None


@strawberry.type
class DecisionValue:
    decision: Decision
    alerts: int
    value: list[Money] = strawberry.field(description="The stock the alerts were about, valued when decided")


@strawberry.type
class InventoryHealth:
    as_of: date
    on_hand_units: int
    unvalued_units: int = strawberry.field(description="Units of SKUs without a unit cost")
    unvalued_units_at_risk: int = strawberry.field(
        description="Of those, units at risk (held, expiry, obsolescence): their value is unknown, and "
        "valueAtRisk leaves it out"
    )
    value: list[Money] = strawberry.field(description="Stock value at standard cost, per currency")
    value_at_risk: list[Money] = strawberry.field(description="held + expiry + obsolescence, each position once")
    held_value: list[Money] = strawberry.field(description="Lots on hold, quarantined or recalled")
    expiry_risk_value: list[Money] = strawberry.field(description="Expired lots and open expiry_risk alerts")
    obsolescence_risk_value: list[Money] = strawberry.field(description="Open obsolescence_risk alerts")
    aging: list[AgingBand]
    consumed_units: int = strawberry.field(description="Sales and issues over the last 30 days")
    days_of_supply: float | None = strawberry.field(description="On hand / average daily consumption (30 days)")
    turnover: float | None = strawberry.field(
        description="Annualised: units consumed over 30 days / average on-hand over them x 365 / 30"
    )
    trend: HealthTrend | None = strawberry.field(description="The same figures 30 days earlier")
    decisions: list[DecisionValue] = strawberry.field(
        description="Alerts decided in the last 30 days, per decision, with the value of the stock they were about"
    )


@strawberry.input
class HealthFilter:
    location_id: strawberry.ID | None = None
    sku_id: strawberry.ID | None = None
    holder_id: strawberry.ID | None = strawberry.field(default=None, description="A partner holding your SKUs")
    category: str | None = strawberry.field(default=None, description="SKUs of this category (the owner's)")
    as_of: date | None = strawberry.field(default=None, description="Default: today (UTC)")
    bands: list[int] | None = strawberry.field(
        default=None, description="Aging band upper bounds in days; default: the tenant's (setAgingBands)"
    )


@strawberry.type
class DurationFigures:
    """Minutes from the alert opening to one lifecycle step."""

    count: int
    median_minutes: float | None
    p90_minutes: float | None = strawberry.field(description="Nearest-rank 90th percentile")

    @classmethod
    def of(cls, durations: performance_service.Durations) -> DurationFigures:
        return cls(count=len(durations.values), median_minutes=durations.median, p90_minutes=durations.p90)


@strawberry.type
class DecisionCount:
    decision: Decision
    alerts: int
    value: list[Money] = strawberry.field(description="The stock the alerts were about, valued when decided")


@strawberry.enum
class PerformanceDimension(Enum):
    LOCATION = "location"
    PARTNER = "partner"


@strawberry.type
class AlertPerformanceGroup:
    kind: AlertKind
    severity: Severity
    location_id: strawberry.ID | None = strawberry.field(description="With by: LOCATION (null: alerts naming none)")
    location_label: str | None
    partner_id: strawberry.ID | None = strawberry.field(
        description="With by: PARTNER, the other tenant the alert is shared with (null: yours alone)"
    )
    alerts: int
    resolved: int
    resolved_before_escalation_share: float | None = strawberry.field(
        description="Of the resolved alerts, the share resolved without being escalated"
    )
    to_acknowledge: DurationFigures
    to_decision: DurationFigures = strawberry.field(description="Resolutions by a person, with a decision")
    to_resolution: DurationFigures = strawberry.field(description="Every resolution, the hub's own included")
    decisions: list[DecisionCount]


@strawberry.type
class BacklogBand:
    from_hours: int
    to_hours: int | None
    alerts: int = strawberry.field(description="Open or acknowledged alerts that have waited this long")


@strawberry.type
class AlertPerformance:
    as_of: datetime
    groups: list[AlertPerformanceGroup]
    backlog: list[BacklogBand]


@strawberry.input
class AlertPerformanceFilter:
    kinds: list[AlertKind] | None = None
    severities: list[Severity] | None = None
    owner_id: strawberry.ID | None = None
    since: datetime | None = strawberry.field(default=None, description="Alerts opened at or after")
    until: datetime | None = strawberry.field(default=None, description="Alerts opened before")
    by: PerformanceDimension | None = strawberry.field(
        default=None, description="Also group by location or by partner (an alert may count in several groups)"
    )


def _money(amounts: dict[str, float]) -> list[Money]:
    return [Money(currency=c, amount=round(a, 2)) for c, a in sorted(amounts.items()) if a]


def _trend(trend: health_service.Trend | None) -> HealthTrend | None:
    if trend is None:
        return None
    return HealthTrend(
        as_of=trend.as_of, source=trend.source, on_hand_units=trend.on_hand_units, value=_money(trend.value),
        value_at_risk=_money(trend.value_at_risk) if trend.value_at_risk is not None else None,
        consumed_units=trend.consumed_units, days_of_supply=trend.days_of_supply, turnover=trend.turnover,
    )


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ)
    async def inventory_health(self, info: Info, filter: HealthFilter | None = None) -> InventoryHealth:
        access = await info.context.access()
        f = filter or HealthFilter()
        today = f.as_of or utcnow().date()
        if f.bands is not None:
            bands = health_service.check_bands(f.bands)
        else:
            bands = await health_service.tenant_bands(access.tenant_id)
        h = await health_service.inventory_health(
            access,
            today,
            location_id=object_id(str(f.location_id), "location") if f.location_id else None,
            sku_id=object_id(str(f.sku_id), "sku") if f.sku_id else None,
            holder_id=str(f.holder_id) if f.holder_id else None,
            category=f.category.strip() if f.category else None,
            bands=bands,
        )
        at_risk: dict[str, float] = {}
        for part in (h.held, h.expiry_risk, h.obsolescence_risk):
            for currency, amount in part.items():
                at_risk[currency] = at_risk.get(currency, 0.0) + amount
        return InventoryHealth(
            as_of=today,
            on_hand_units=h.on_hand_units,
            unvalued_units=h.unvalued_units,
            unvalued_units_at_risk=h.unvalued_at_risk,
            value=_money(h.value),
            value_at_risk=_money(at_risk),
            held_value=_money(h.held),
            expiry_risk_value=_money(h.expiry_risk),
            obsolescence_risk_value=_money(h.obsolescence_risk),
            aging=[AgingBand(from_days=b.from_days, to_days=b.to_days, units=b.units, value=_money(b.value))
                   for b in h.bands],
            consumed_units=h.consumed_units,
            days_of_supply=h.days_of_supply,
            turnover=h.turnover,
            trend=_trend(h.trend),
            decisions=[DecisionValue(decision=Decision(d), alerts=n, value=_money(v))
                       for d, (n, v) in sorted(h.decisions.items())],
        )

    @strawberry.field(permission_classes=READ, description="Signal to action: time to acknowledge, decide, resolve")
    async def alert_performance(self, info: Info, filter: AlertPerformanceFilter | None = None) -> AlertPerformance:
        access = await info.context.access()
        f = filter or AlertPerformanceFilter()
        clauses: list[dict] = []
        if f.kinds is not None:
            clauses.append({"kind": {"$in": [kind.value for kind in f.kinds]}})
        if f.severities is not None:
            clauses.append({"severity": {"$in": [severity.value for severity in f.severities]}})
        if f.owner_id is not None:
            clauses.append({"tenant_id": str(f.owner_id)})
        if f.since is not None:
            clauses.append({"opened_at": {"$gte": f.since}})
        if f.until is not None:
            clauses.append({"opened_at": {"$lt": f.until}})
        now = utcnow()
        by = f.by.value if f.by is not None else None
        figures = await performance_service.alert_performance(access, clauses, now, by)
        return AlertPerformance(
            as_of=now,
            groups=[
                AlertPerformanceGroup(
                    kind=AlertKind(g.kind),
                    severity=Severity(g.severity),
                    location_id=strawberry.ID(g.by) if by == "location" and g.by else None,
                    location_label=g.by_label if by == "location" else None,
                    partner_id=strawberry.ID(g.by) if by == "partner" and g.by else None,
                    alerts=g.alerts,
                    resolved=g.resolved,
                    resolved_before_escalation_share=round(g.resolved_before_escalation / g.resolved, 3)
                    if g.resolved
                    else None,
                    to_acknowledge=DurationFigures.of(g.to_acknowledge),
                    to_decision=DurationFigures.of(g.to_decision),
                    to_resolution=DurationFigures.of(g.to_resolution),
                    decisions=[DecisionCount(decision=Decision(d), alerts=n, value=_money(g.decision_values.get(d, {})))
                               for d, n in sorted(g.decisions.items())],
                )
                for g in figures.groups
            ],
            backlog=[
                BacklogBand(from_hours=b.from_hours, to_hours=b.to_hours, alerts=b.alerts) for b in figures.backlog
            ],
        )
