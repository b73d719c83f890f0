"""The live alerts subscription: detections and lifecycle changes, replayed from a cursor, then live."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from strawberry.types import Info

from schema.alerts.types import AlertEventFilter, AlertEventType
from schema.permissions import READ
from schema.subscriptions import live


@strawberry.type
class Subscription:
    @strawberry.subscription(permission_classes=READ)
    async def alerts(
        self,
        info: Info,
        filter: AlertEventFilter | None = None,
        after: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="A cursor from an earlier AlertEvent: replay what came after it, then live"
            ),
        ] = None,
    ) -> AsyncGenerator[AlertEventType, None]:
        wanted = filter or AlertEventFilter()
        viewer = info.context.require_principal().tenant_id
        async for value in live(
            info, wanted.event_types(), lambda event: wanted.matches(event, viewer), str(after) if after else None,
            lambda event: AlertEventType.from_event(event, viewer),
        ):
            yield value
