"""Read state and acknowledgement of the caller's own notifications."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.dates import utcnow
from hub.services import notifications as service
from schema.notifications.types import NotificationType
from schema.permissions import allowed
from tenants.roles import Group


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=allowed(Group.notifications),
        description="Mark notifications addressed to you read (read: false marks them unread again); one that is "
        "not yours answers NOT_FOUND and nothing changes",
    )
    async def mark_notifications_read(self, info: Info, ids: list[strawberry.ID],
                                      read: bool = True) -> list[NotificationType]:
        who = await service.reader(info.context.require_principal())
        changed = await service.mark_read(who, [str(i) for i in ids], read)
        return [NotificationType.from_model(n, who.name) for n in changed]

    @strawberry.mutation(
        permission_classes=allowed(Group.notifications),
        description="Take a notification addressed to you: everyone it addressed sees who acknowledged it and when",
    )
    async def acknowledge_notification(self, info: Info, id: strawberry.ID) -> NotificationType:
        who = await service.reader(info.context.require_principal())
        return NotificationType.from_model(await service.acknowledge(who, str(id), utcnow()), who.name)
