"""Queries: the tenant's webhook endpoints and the delivery log (tenant admins only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry.types import Info

from schema.pagination import Connection, paginate
from schema.permissions import allowed
from schema.webhooks.types import WebhookDeliveryFilter, WebhookDeliveryType, WebhookEndpointType
from tenants.roles import Group
from webhooks import service
from webhooks.models import WebhookDelivery, WebhookEndpoint


@strawberry.type
class Query:
    @strawberry.field(permission_classes=allowed(Group.webhooks))
    async def webhook_endpoints(
        self, info: Info, first: int = 100, after: str | None = None
    ) -> Connection[WebhookEndpointType]:
        access = await info.context.access()
        service.require_manager(access)
        return await paginate(
            WebhookEndpoint,
            access.owned(),
            first,
            after,
            info.context.hub.settings.max_page_size,
            WebhookEndpointType.from_model,
        )

    @strawberry.field(permission_classes=allowed(Group.webhooks), description="Newest first, with every attempt")
    async def webhook_deliveries(
        self, info: Info, filter: WebhookDeliveryFilter | None = None, first: int = 100, after: str | None = None
    ) -> Connection[WebhookDeliveryType]:
        access = await info.context.access()
        service.require_manager(access)
        query: dict[str, Any] = access.owned()
        if filter is not None:
            if filter.endpoint_id is not None:
                endpoint = await service.get_endpoint(access, str(filter.endpoint_id))
                query["endpoint_id"] = endpoint.id
            if filter.state is not None:
                query["state"] = filter.state.value
            if filter.event_type is not None:
                query["event_type"] = filter.event_type
            if filter.subject is not None:
                query["subject"] = filter.subject

        async def nodes(page: Sequence[WebhookDelivery]) -> list[WebhookDeliveryType]:
            return [WebhookDeliveryType.from_model(doc) for doc in page]

        return await paginate(
            WebhookDelivery,
            query,
            first,
            after,
            info.context.hub.settings.max_page_size,
            nodes,
            descending=True,
            batch=True,
        )
