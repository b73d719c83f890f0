"""Live supply-flow subscriptions, fed by the event bus: stock changes and dispatch updates."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from strawberry.types import Info

from hub.errors import BadInput
from hub.events.bus import LiveEvent
from schema.permissions import READ
from schema.subscriptions import live
from schema.supply.events import (
    DISPATCH_EVENT_TYPES,
    DispatchUpdatedFilter,
    DispatchUpdateType,
    StockChangedFilter,
    StockChangeType,
    StockPositionChangeType,
)

ROLES = ("shipper", "consignee", "carrier")
After = Annotated[
    strawberry.ID | None,
    strawberry.argument(description="A cursor from an earlier message: replay what came after it, then go live"),
]


@strawberry.type
class Subscription:
    @strawberry.subscription(permission_classes=READ)
    async def stock_changed(
        self, info: Info, filter: StockChangedFilter | None = None, after: After = None
    ) -> AsyncGenerator[StockChangeType, None]:
        wanted = filter or StockChangedFilter()

        def build(event: LiveEvent) -> StockChangeType:
            return StockChangeType(
                cursor=strawberry.ID(event.id),
                occurred_at=event.occurred_at,
                positions=[StockPositionChangeType.from_payload(p) for p in wanted.positions(event)],
            )

        async for value in live(info, ["stock.changed"], wanted.matches, str(after) if after else None, build):
            yield value

    @strawberry.subscription(permission_classes=READ)
    async def dispatch_updated(
        self, info: Info, filter: DispatchUpdatedFilter | None = None, after: After = None
    ) -> AsyncGenerator[DispatchUpdateType, None]:
        viewer = info.context.require_principal().tenant_id
        wanted = filter or DispatchUpdatedFilter()
        if wanted.role is not None and wanted.role not in ROLES:
            raise BadInput(f"role must be one of {', '.join(ROLES)}", field="filter.role")
        async for value in live(
            info, DISPATCH_EVENT_TYPES, lambda event: wanted.matches(event, viewer), str(after) if after else None,
            DispatchUpdateType.from_event,
        ):
            yield value
