"""Where the caller's live stream stands now: read the current state, then subscribe from here with no gap."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.models.event import Event
from schema.permissions import READ


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=READ,
        description="The newest event addressed to the caller: query the state you need, then subscribe with "
        "'after' set to this cursor to hear every change after that moment (null: nothing yet).",
    )
    async def event_cursor(self, info: Info) -> strawberry.ID | None:
        principal = info.context.require_principal()
        latest = await Event.find({"audience": principal.tenant_id}).sort("-seq").limit(1).to_list()
        return strawberry.ID(str(latest[0].id)) if latest else None
