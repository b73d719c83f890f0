"""Live supply-flow subscriptions, fed by the event bus: stock changes and dispatch updates."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import partial
from typing import Annotated

import strawberry
from strawberry.types import Info

from hub.errors import BadInput
from schema.permissions import READ
from schema.subscriptions import PerEventCache
from schema.supply.events import (
    DISPATCH_EVENT_TYPES,
    DispatchUpdatedFilter,
    DispatchUpdateType,
    StockChangedFilter,
    StockChangeType,
    StockPositionChangeType,
)

ROLES = ("shipper", "consignee", "carrier")
SHARED = PerEventCache()
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
        principal = info.context.require_principal()
        bus = info.context.hub.bus
        wanted = filter or StockChangedFilter()
        async with bus.subscribe(
            principal.tenant_id, ["stock.changed"], wanted.matches, str(after) if after else None
        ) as events:
            async for event in events:
                yield StockChangeType(
                    cursor=strawberry.ID(event.id),
                    occurred_at=event.occurred_at,
                    positions=[StockPositionChangeType.from_payload(p) for p in wanted.positions(event)],
                )

    @strawberry.subscription(permission_classes=READ)
    async def dispatch_updated(
        self, info: Info, filter: DispatchUpdatedFilter | None = None, after: After = None
    ) -> AsyncGenerator[DispatchUpdateType, None]:
        principal = info.context.require_principal()
        bus = info.context.hub.bus
        wanted = filter or DispatchUpdatedFilter()
        if wanted.role is not None and wanted.role not in ROLES:
            raise BadInput(f"role must be one of {', '.join(ROLES)}", field="filter.role")
        viewer = principal.tenant_id
        async with bus.subscribe(
            viewer, DISPATCH_EVENT_TYPES, lambda event: wanted.matches(event, viewer), str(after) if after else None
        ) as events:
            async for event in events:
                yield SHARED.get(event.id, partial(DispatchUpdateType.from_event, event))
