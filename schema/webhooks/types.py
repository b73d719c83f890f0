"""GraphQL types for webhook endpoints, deliveries and attempts. A secret appears only in the payload making it."""

from __future__ import annotations

from datetime import datetime

import strawberry

from hub.dates import utcnow
from webhooks.models import DeliveryState, WebhookDelivery, WebhookEndpoint

DeliveryStateEnum = strawberry.enum(DeliveryState, name="WebhookDeliveryState")


@strawberry.type(name="WebhookEndpoint")
class WebhookEndpointType:
    id: strawberry.ID
    url: str
    description: str | None
    event_types: list[str] = strawberry.field(description="Event types delivered; empty means all")
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None = strawberry.field(description="Start of the current run of failed attempts")
    secret_rotation_ends_at: datetime | None = strawberry.field(
        description="While a rotation overlaps, the previous secret also signs until this instant"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, endpoint: WebhookEndpoint) -> WebhookEndpointType:
        now = utcnow()
        overlap = [s.expires_at for s in endpoint.secrets if s.expires_at is not None and s.active(now)]
        return cls(
            id=strawberry.ID(str(endpoint.id)),
            url=endpoint.url,
            description=endpoint.description,
            event_types=list(endpoint.event_types),
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            disabled_at=endpoint.disabled_at,
            failing_since=endpoint.failing_since,
            secret_rotation_ends_at=max(overlap) if overlap else None,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at,
        )


@strawberry.type
class WebhookEndpointSecretPayload:
    endpoint: WebhookEndpointType
    secret: str = strawberry.field(description="The whsec_ signing secret: shown this once, store it now")


@strawberry.type(name="WebhookAttempt")
class WebhookAttemptType:
    at: datetime
    status_code: int | None
    duration_ms: int
    response_excerpt: str | None
    error: str | None


@strawberry.type(name="WebhookDelivery")
class WebhookDeliveryType:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    webhook_id: str = strawberry.field(description="The webhook-id header: the event id, stable across retries")
    event_type: str
    subject: str | None = strawberry.field(
        description="The event's ordering key (lot:<id>, alert:<id>, ...): an endpoint's deliveries about one subject "
        "are sent in the log's order, each after the one before succeeded or was given up"
    )
    body: str = strawberry.field(description="The JSON body as sent (signed anew, with a fresh timestamp, per attempt)")
    state: DeliveryState
    attempt_count: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempts: list[WebhookAttemptType]

    @classmethod
    def from_model(cls, doc: WebhookDelivery) -> WebhookDeliveryType:
        state = DeliveryState(doc.state)
        return cls(
            id=strawberry.ID(str(doc.id)),
            endpoint_id=strawberry.ID(str(doc.endpoint_id)),
            webhook_id=str(doc.event_id),
            event_type=doc.event_type,
            subject=doc.subject,
            body=doc.body,
            state=state,
            attempt_count=doc.attempt_count,
            next_attempt_at=doc.next_attempt_at if state == DeliveryState.pending else None,
            last_error=doc.last_error,
            created_at=doc.created_at,
            delivered_at=doc.delivered_at,
            attempts=[
                WebhookAttemptType(
                    at=a.at,
                    status_code=a.status_code,
                    duration_ms=a.duration_ms,
                    response_excerpt=a.response_excerpt,
                    error=a.error,
                )
                for a in doc.attempts
            ],
        )


@strawberry.type
class ReplayWebhookDeliveriesPayload:
    queued: int = strawberry.field(description="Deliveries queued to be sent again (same webhook-id)")


@strawberry.input
class CreateWebhookEndpointInput:
    url: str
    event_types: list[str] = strawberry.field(default_factory=list, description="Empty: every event type")
    description: str | None = None


@strawberry.input
class UpdateWebhookEndpointInput:
    id: strawberry.ID
    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    enabled: bool | None = strawberry.field(
        default=None,
        description="true re-enables a disabled endpoint; what failed meanwhile is re-sent by "
        "replayWebhookDeliveries(onlyFailed: true)",
    )


@strawberry.input
class WebhookDeliveryFilter:
    endpoint_id: strawberry.ID | None = None
    state: DeliveryState | None = None
    event_type: str | None = None
    subject: str | None = strawberry.field(
        default=None, description="One subject's deliveries (lot:<id>, alert:<id>, ...), newest first like the rest"
    )
