"""Alert lifecycle mutations: any writer of a tenant in the alert's audience may acknowledge or resolve it."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.models.alert import Decision
from hub.services import alerts as alert_service
from schema.alerts.types import AlertType
from schema.permissions import allowed
from schema.scalars import DecisionEnum  # noqa: F401 - registers the enum
from tenants.roles import Group


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=allowed(Group.acknowledge))
    async def acknowledge_alert(self, info: Info, id: strawberry.ID, note: str | None = None) -> AlertType:
        access = await info.context.access()
        alert = await alert_service.acknowledge_alert(info.context.hub.database, access, id, note)
        return AlertType.from_model(alert, access.tenant_id)

    @strawberry.mutation(
        permission_classes=allowed(Group.decisions),
        description="Close the alert with the decision taken on it (required; 'other' needs a note)",
    )
    async def resolve_alert(
        self, info: Info, id: strawberry.ID, decision: Decision | None = None, note: str | None = None
    ) -> AlertType:
        access = await info.context.access()
        alert = await alert_service.resolve_alert(info.context.hub.database, access, id, decision, note)
        return AlertType.from_model(alert, access.tenant_id)
