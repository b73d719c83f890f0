"""Planning queries: the demand of a SKU at a location, transfer recommendations, replenishment suggestions."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.dates import utcnow
from hub.models.planning import TransferRecommendation
from hub.services import transfers
from hub.services.signals import rules_from
from schema.pagination import Connection, paginate
from schema.permissions import READ
from schema.planning.types import (
    Demand,
    ReplenishmentFilter,
    ReplenishmentSuggestion,
    TransferRecommendationFilter,
    TransferRecommendationType,
)


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ, description="History, baseline, forecast and its holdout error")
    async def demand(self, info: Info, sku: str, location_id: strawberry.ID, days: int = 14) -> Demand:
        access = await info.context.access()
        found = await transfers.demand_of(access, sku, str(location_id), utcnow().date(), days)
        return Demand.from_answer(found)

    @strawberry.field(permission_classes=READ)
    async def transfer_recommendations(
        self, info: Info, filter: TransferRecommendationFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[TransferRecommendationType]:
        access = await info.context.access()
        wanted = filter or TransferRecommendationFilter()
        query = await transfers.list_recommendations(
            access, wanted.statuses, str(wanted.sku_id) if wanted.sku_id else None,
            str(wanted.location_id) if wanted.location_id else None)
        return await paginate(TransferRecommendation, query, first, after, info.context.hub.settings.max_page_size,
                              TransferRecommendationType.from_model, descending=True)

    @strawberry.field(permission_classes=READ, description="Forecast-driven orders for positions with a lead time")
    async def replenishment_suggestions(
        self, info: Info, filter: ReplenishmentFilter | None = None
    ) -> list[ReplenishmentSuggestion]:
        access = await info.context.access()
        wanted = filter or ReplenishmentFilter()
        found = await transfers.replenishment_suggestions(
            access, utcnow().date(), rules_from(info.context.hub.settings),
            str(wanted.sku_id) if wanted.sku_id else None, str(wanted.location_id) if wanted.location_id else None)
        return [ReplenishmentSuggestion.from_suggestion(s) for s in found]
