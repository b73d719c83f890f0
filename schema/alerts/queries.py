"""The alerts query: alerts whose audience names the caller, newest first."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.models.alert import Alert
from schema.alerts.types import AlertFilter, AlertType
from schema.pagination import Connection, paginate
from schema.permissions import READ


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ)
    async def alerts(
        self, info: Info, filter: AlertFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[AlertType]:
        access = await info.context.access()
        visible = access.alerts()
        viewer = access.tenant_id
        clauses = [visible, *(filter.to_query(viewer) if filter else [])]
        return await paginate(
            Alert,
            {"$and": clauses} if len(clauses) > 1 else visible,
            first,
            after,
            info.context.hub.settings.max_page_size,
            lambda alert: AlertType.from_model(alert, viewer),
            descending=True,
        )

    @strawberry.field(permission_classes=READ)
    async def alert(self, info: Info, id: strawberry.ID) -> AlertType:
        access = await info.context.access()
        return AlertType.from_model(await access.get(Alert, id, access.alerts(), "alert"), access.tenant_id)
