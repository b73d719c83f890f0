"""GraphQL types for planning: demand, transfer recommendations, replenishment suggestions, planning policies."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import strawberry
from strawberry.scalars import JSON

from hub.models.planning import PlanningPolicy, RecommendationStatus, TransferKind, TransferRecommendation
from hub.services.transfers import DemandAnswer, Suggestion

RecommendationStatusEnum = strawberry.enum(RecommendationStatus, name="TransferRecommendationStatus")
TransferKindEnum = strawberry.enum(TransferKind, name="TransferKind")


@strawberry.type
class DemandDay:
    day: date
    units: int = strawberry.field(description="Sold or issued")
    stockout: bool = strawberry.field(description="Ended the day with nothing on hand: left out of the baseline")


@strawberry.type
class ForecastDay:
    day: date
    units: float


@strawberry.type
class ForecastError:
    holdout_days: int
    mape: float | None = strawberry.field(description="Mean absolute percentage error on in-stock days with sales")
    mase: float | None = strawberry.field(description="Mean absolute scaled error (< 1 beats same-weekday-last-week)")
    mae: float
    naive_seasonal_mae: float | None = strawberry.field(description="The same-weekday-last-week forecast's error")


@strawberry.type
class Demand:
    sku_id: strawberry.ID
    sku_code: str
    location_id: strawberry.ID
    holder_id: strawberry.ID
    method: str | None = strawberry.field(description="weekday_seasonal or croston_sba; null without enough history")
    level_per_day: float | None
    weekday_factors: list[float] | None = strawberry.field(description="Monday..Sunday")
    observed_days: int
    censored_days: int = strawberry.field(description="Stockout days left out of the baseline")
    promotion_days: int = strawberry.field(
        description="In-stock days sold on promotion, left out of the baseline while they are a minority")
    history: list[DemandDay]
    forecast: list[ForecastDay]
    error: ForecastError | None

    @classmethod
    def from_answer(cls, found: DemandAnswer) -> Demand:
        a = found.answer
        b = a.baseline
        error = a.error
        return cls(
            sku_id=strawberry.ID(str(found.sku.id)), sku_code=found.sku.code,
            location_id=strawberry.ID(found.location), holder_id=strawberry.ID(found.holder),
            method=b.method if b else None, level_per_day=round(b.level, 3) if b else None,
            weekday_factors=[round(f, 3) for f in b.factors] if b else None,
            observed_days=b.observed_days if b else 0, censored_days=b.censored_days if b else 0,
            promotion_days=b.promotion_days if b else 0,
            history=[DemandDay(day=d.day, units=d.units, stockout=d.stockout) for d in a.history],
            forecast=[ForecastDay(day=a.forecast_start + timedelta(days=n), units=round(u, 3))
                      for n, u in enumerate(a.forecast)],
            error=ForecastError(
                holdout_days=error.holdout_days, mape=error.mape, mase=error.mase, mae=round(error.mae, 3),
                naive_seasonal_mae=None if error.naive_mae != error.naive_mae else round(error.naive_mae, 3),
            ) if error else None,
        )


@strawberry.type(name="TransferLot")
class TransferLotType:
    lot_code: str | None
    quantity: int
    expires_on: date | None


@strawberry.type(name="TransferRecommendation")
class TransferRecommendationType:
    id: strawberry.ID
    status: RecommendationStatusEnum  # type: ignore[valid-type]
    kind: TransferKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="internal: between your own locations; partner: between two holders of your SKU (VMI)")
    holder_id: strawberry.ID = strawberry.field(description="Who holds the stock to move")
    to_holder_id: strawberry.ID = strawberry.field(description="Who receives it (the holder itself when internal)")
    dispatch_id: strawberry.ID | None = strawberry.field(description="partner, once accepted: the draft dispatch")
    dispatch_ref: str | None
    sku_id: strawberry.ID
    sku_code: str
    from_location_id: strawberry.ID
    from_location_code: str
    to_location_id: strawberry.ID
    to_location_code: str
    quantity: int
    lots: list[TransferLotType] = strawberry.field(description="First expired, first out")
    units_saved_from_expiry: int
    stockout_days_avoided: float
    evidence: JSON
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None = strawberry.field(description="Why it was dismissed or expired")

    @classmethod
    def from_model(cls, r: TransferRecommendation) -> TransferRecommendationType:
        return cls(
            id=strawberry.ID(str(r.id)), status=r.status, kind=r.kind,
            holder_id=strawberry.ID(r.from_holder_id or r.tenant_id),
            to_holder_id=strawberry.ID(r.to_holder_id or r.tenant_id),
            dispatch_id=strawberry.ID(str(r.dispatch_id)) if r.dispatch_id else None, dispatch_ref=r.dispatch_ref,
            sku_id=strawberry.ID(str(r.sku_id)), sku_code=r.sku_code,
            from_location_id=strawberry.ID(str(r.from_location_id)), from_location_code=r.from_location_code,
            to_location_id=strawberry.ID(str(r.to_location_id)), to_location_code=r.to_location_code,
            quantity=r.quantity,
            lots=[TransferLotType(lot_code=l.lot_code, quantity=l.quantity, expires_on=l.expires_on) for l in r.lots],
            units_saved_from_expiry=r.units_saved_from_expiry, stockout_days_avoided=r.stockout_days_avoided,
            evidence=JSON(r.evidence), created_at=r.created_at, updated_at=r.updated_at, decided_at=r.decided_at,
            decided_by=r.decided_by, reason=r.reason,
        )


@strawberry.input
class TransferRecommendationFilter:
    statuses: list[RecommendationStatusEnum] | None = None  # type: ignore[valid-type]
    sku_id: strawberry.ID | None = None
    location_id: strawberry.ID | None = strawberry.field(default=None, description="As source or destination")


@strawberry.type
class ReplenishmentSuggestion:
    sku_id: strawberry.ID
    sku_code: str
    location_id: strawberry.ID
    location_code: str
    quantity: int = strawberry.field(description="Order-up-to level less on-hand and inbound")
    source: str = strawberry.field(description="transfer, purchase or transfer_and_purchase")
    transfer_units: int
    purchase_units: int
    transfers: list[TransferRecommendationType]
    order_up_to: float
    safety_stock: float
    forecast_per_day: float
    on_hand: int
    inbound: int
    lead_time_days: float
    review_days: float

    @classmethod
    def from_suggestion(cls, s: Suggestion) -> ReplenishmentSuggestion:
        r = s.replenishment
        source = ("transfer" if not s.purchase_units else "transfer_and_purchase") if s.transfer_units else "purchase"
        return cls(
            sku_id=strawberry.ID(str(s.sku.id) if s.sku else ""), sku_code=s.sku.code if s.sku else "",
            location_id=strawberry.ID(s.location_id), location_code=s.location_code, quantity=r.quantity,
            source=source, transfer_units=s.transfer_units, purchase_units=s.purchase_units,
            transfers=[TransferRecommendationType.from_model(t) for t in s.transfers],
            order_up_to=round(r.order_up_to, 2), safety_stock=round(r.safety_stock, 2),
            forecast_per_day=round(r.site.rate, 3), on_hand=r.site.on_hand, inbound=r.site.inbound,
            lead_time_days=r.site.lead_time_days, review_days=r.site.review_days,
        )


@strawberry.input
class ReplenishmentFilter:
    sku_id: strawberry.ID | None = None
    location_id: strawberry.ID | None = None


@strawberry.input
class PlanningPolicyInput:
    sku: str = strawberry.field(description="SKU id, code, your alias or GTIN")
    location_id: strawberry.ID | None = strawberry.field(default=None, description="Default: all your locations")
    lead_time_days: float | None = None
    review_days: float | None = None
    target_days_of_supply: float | None = None
    max_days_of_supply: float | None = strawberry.field(default=None, description="Obsolescence threshold")
    discontinued: bool = False


@strawberry.type(name="PlanningPolicy")
class PlanningPolicyType:
    sku_id: strawberry.ID
    location_id: strawberry.ID | None
    lead_time_days: float | None
    review_days: float | None
    target_days_of_supply: float | None
    max_days_of_supply: float | None
    discontinued: bool

    @classmethod
    def from_model(cls, p: PlanningPolicy) -> PlanningPolicyType:
        return cls(
            sku_id=strawberry.ID(str(p.sku_id)),
            location_id=strawberry.ID(str(p.location_id)) if p.location_id else None,
            lead_time_days=p.lead_time_days, review_days=p.review_days,
            target_days_of_supply=p.target_days_of_supply, max_days_of_supply=p.max_days_of_supply,
            discontinued=p.discontinued,
        )
