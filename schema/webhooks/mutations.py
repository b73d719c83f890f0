"""Mutations: create, update, rotate, delete webhook endpoints and replay their deliveries (tenant admins only)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from schema.permissions import allowed
from schema.webhooks.types import (
    CreateWebhookEndpointInput,
    ReplayWebhookDeliveriesPayload,
    UpdateWebhookEndpointInput,
    WebhookEndpointSecretPayload,
    WebhookEndpointType,
)
from tenants.roles import Group
from webhooks import service


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=allowed(Group.webhooks),
        description="Answers the signing secret, this once",
    )
    async def create_webhook_endpoint(
        self, info: Info, input: CreateWebhookEndpointInput
    ) -> WebhookEndpointSecretPayload:
        access = await info.context.access()
        endpoint, secret = await service.create_endpoint(
            access, info.context.hub.settings, input.url, input.event_types, input.description
        )
        return WebhookEndpointSecretPayload(endpoint=WebhookEndpointType.from_model(endpoint), secret=secret)

    @strawberry.mutation(permission_classes=allowed(Group.webhooks))
    async def update_webhook_endpoint(self, info: Info, input: UpdateWebhookEndpointInput) -> WebhookEndpointType:
        access = await info.context.access()
        endpoint = await service.update_endpoint(
            access,
            info.context.hub.settings,
            str(input.id),
            url=input.url,
            event_types=input.event_types,
            description=input.description,
            enabled=input.enabled,
        )
        return WebhookEndpointType.from_model(endpoint)

    @strawberry.mutation(
        permission_classes=allowed(Group.webhooks),
        description="A new secret signs from now on; the previous one also signs until the overlap ends",
    )
    async def rotate_webhook_secret(
        self, info: Info, id: strawberry.ID, overlap_hours: int | None = None
    ) -> WebhookEndpointSecretPayload:
        access = await info.context.access()
        endpoint, secret = await service.rotate_secret(access, info.context.hub.settings, str(id), overlap_hours)
        return WebhookEndpointSecretPayload(endpoint=WebhookEndpointType.from_model(endpoint), secret=secret)

    @strawberry.mutation(permission_classes=allowed(Group.webhooks))
    async def delete_webhook_endpoint(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        await service.delete_endpoint(await info.context.access(), str(id))
        return id

    @strawberry.mutation(
        permission_classes=allowed(Group.webhooks), description="Send again every event since `since` (same webhook-id)"
    )
    async def replay_webhook_deliveries(
        self, info: Info, endpoint_id: strawberry.ID, since: datetime, only_failed: bool = False
    ) -> ReplayWebhookDeliveriesPayload:
        queued = await service.replay(await info.context.access(), str(endpoint_id), since, only_failed)
        return ReplayWebhookDeliveriesPayload(queued=queued)
