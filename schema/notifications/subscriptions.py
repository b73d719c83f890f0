"""The live notifications subscription: each one as its escalation step fires, to the people it addresses only."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry
from strawberry.types import Info

from hub.services import notifications as service
from schema.notifications.types import NotificationType
from schema.permissions import READ
from schema.subscriptions import live


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=READ,
        description="Notifications addressed to you (a role your token carries, or you as a member), as they are sent",
    )
    async def notifications(
        self,
        info: Info,
        after: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="An event cursor (eventCursor): replay what came after it, then live"),
        ] = None,
    ) -> AsyncGenerator[NotificationType, None]:
        who = await service.reader(info.context.require_principal())
        async for value in live(info, ["alert.escalated"], who.addressed, str(after) if after else None,
                                NotificationType.from_event):
            yield value
