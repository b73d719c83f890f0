"""notifications: what escalation steps sent to the caller, newest first."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.services import notifications as service
from schema.notifications.types import NotificationType
from schema.permissions import READ


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=READ,
        description="Notifications addressed to you by escalation steps: to a role your token carries or to you as a "
        "member of your tenant; newest first",
    )
    async def notifications(self, info: Info, unread_only: bool = False, first: int = 50) -> list[NotificationType]:
        who = await service.reader(info.context.require_principal())
        found = await service.listing(who, unread_only=unread_only, first=first)
        return [NotificationType.from_model(n, who.name) for n in found]
