"""inventoryHealth: value, aging and value at risk of the stock the caller may see (hub/services/health.py)."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from hub.dates import utcnow
from hub.services import health as health_service
from schema.permissions import READ
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
class InventoryHealth:
    as_of: date
    on_hand_units: int
    unvalued_units: int = strawberry.field(description="Units of SKUs without a unit cost")
    value: list[Money] = strawberry.field(description="Stock value at standard cost, per currency")
    value_at_risk: list[Money] = strawberry.field(description="held + expiry + obsolescence, each position once")
    held_value: list[Money] = strawberry.field(description="Lots on hold, quarantined or recalled")
    expiry_risk_value: list[Money] = strawberry.field(description="Expired lots and open expiry_risk alerts")
    obsolescence_risk_value: list[Money] = strawberry.field(description="Open obsolescence_risk alerts")
    aging: list[AgingBand]
    consumed_units: int = strawberry.field(description="Sales and issues over the last 30 days")
    days_of_supply: float | None = strawberry.field(description="On hand / average daily consumption (30 days)")


@strawberry.input
class HealthFilter:
    location_id: strawberry.ID | None = None
    sku_id: strawberry.ID | None = None
    holder_id: strawberry.ID | None = strawberry.field(default=None, description="A partner holding your SKUs")
    as_of: date | None = strawberry.field(default=None, description="Default: today (UTC)")
    bands: list[int] | None = strawberry.field(
        default=None, description="Aging band upper bounds in days; default [30, 60, 90, 180]"
    )


def _money(amounts: dict[str, float]) -> list[Money]:
    return [Money(currency=c, amount=round(a, 2)) for c, a in sorted(amounts.items()) if a]


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ)
    async def inventory_health(self, info: Info, filter: HealthFilter | None = None) -> InventoryHealth:
        access = await info.context.access()
        f = filter or HealthFilter()
        today = f.as_of or utcnow().date()
        bands = health_service.check_bands(f.bands) if f.bands is not None else health_service.DEFAULT_BANDS
        h = await health_service.inventory_health(
            access,
            today,
            location_id=object_id(str(f.location_id), "location") if f.location_id else None,
            sku_id=object_id(str(f.sku_id), "sku") if f.sku_id else None,
            holder_id=str(f.holder_id) if f.holder_id else None,
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
            value=_money(h.value),
            value_at_risk=_money(at_risk),
            held_value=_money(h.held),
            expiry_risk_value=_money(h.expiry_risk),
            obsolescence_risk_value=_money(h.obsolescence_risk),
            aging=[AgingBand(from_days=b.from_days, to_days=b.to_days, units=b.units, value=_money(b.value))
                   for b in h.bands],
            consumed_units=h.consumed_units,
            days_of_supply=h.days_of_supply,
        )
