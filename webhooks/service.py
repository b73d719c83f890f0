"""Managing webhook endpoints (tenant admins only) and replaying deliveries.

Another tenant's endpoint answers NOT_FOUND, like every object of the hub. A secret is answered exactly once, when
it is made; afterwards it only signs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from hub import audit
from hub.config import Settings
from hub.dates import utcnow
from hub.errors import BadInput, Conflict
from hub.models.event import EVENT_TYPES, Event
from tenants.access import Access
from tenants.roles import Group
from webhooks import guard
from webhooks.dispatcher import insert_new, plan
from webhooks.models import DeliveryState, EndpointSecret, WebhookDelivery, WebhookEndpoint
from webhooks.signing import new_secret

MAX_ENDPOINTS_PER_TENANT = 50
MAX_DESCRIPTION = 500
MAX_REPLAY = 10_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def require_manager(access: Access) -> None:
    """The role table's ``webhooks`` group (also checked by the GraphQL permission; repeated here so every caller
    of the service, not only GraphQL, is held to it)."""
    access.require(Group.webhooks)


def _event_types(types: list[str] | None) -> list[str]:
    chosen = sorted(set(types or []))
    unknown = [t for t in chosen if t not in EVENT_TYPES]
    if unknown:
        raise BadInput(f"unknown event types: {', '.join(unknown)}", field="eventTypes", allowed=list(EVENT_TYPES))
    return chosen


def _description(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_DESCRIPTION:
        raise BadInput(f"description is longer than {MAX_DESCRIPTION} characters", field="description")
    return text


async def get_endpoint(access: Access, endpoint_id: str) -> WebhookEndpoint:
    require_manager(access)
    return await access.get(WebhookEndpoint, endpoint_id, access.owned(), "webhook endpoint")


async def create_endpoint(
    access: Access, settings: Settings, url: str, event_types: list[str] | None, description: str | None = None
) -> tuple[WebhookEndpoint, str]:
    require_manager(access)
    await guard.check(url, settings.webhook_allow_private)
    if await WebhookEndpoint.find(access.owned()).count() >= MAX_ENDPOINTS_PER_TENANT:
        raise Conflict(f"a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        tenant_id=access.tenant_id,
        url=url.strip(),
        description=_description(description),
        event_types=_event_types(event_types),
        secrets=[EndpointSecret(value=secret)],
    )
    await endpoint.insert()
    await audit.record(
        "webhook.created", tenant_id=access.tenant_id, target=str(endpoint.id),
        details={"url": endpoint.url, "eventTypes": endpoint.event_types},
    )
    return endpoint, secret


async def update_endpoint(
    access: Access,
    settings: Settings,
    endpoint_id: str,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    endpoint = await get_endpoint(access, endpoint_id)
    changes: dict[str, object] = {"updated_at": utcnow()}
    if url is not None:
        await guard.check(url, settings.webhook_allow_private)
        changes["url"] = url.strip()
    if event_types is not None:
        changes["event_types"] = _event_types(event_types)
    if description is not None:
        changes["description"] = _description(description)
    if enabled is True:
        changes.update(enabled=True, disabled_reason=None, disabled_at=None, failing_since=None)
    elif enabled is False:
        changes.update(enabled=False, disabled_reason="disabled by an admin", disabled_at=utcnow())
    await WebhookEndpoint.get_pymongo_collection().update_one({"_id": endpoint.id}, {"$set": changes})
    await audit.record(
        "webhook.updated", tenant_id=access.tenant_id, target=str(endpoint.id),
        details={key: value for key, value in changes.items() if key != "updated_at"},
    )
    return await get_endpoint(access, endpoint_id)


async def rotate_secret(
    access: Access, settings: Settings, endpoint_id: str, overlap_hours: int | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new secret signs from now on; the current one keeps signing too until the overlap ends."""
    endpoint = await get_endpoint(access, endpoint_id)
    hours = settings.webhook_secret_overlap_hours if overlap_hours is None else overlap_hours
    if not 0 <= hours <= 24 * 7:
        raise BadInput("overlap must be between 0 and 168 hours", field="overlapHours")
    now = utcnow()
    ends = now + timedelta(hours=hours)
    kept = [
        EndpointSecret(value=s.value, created_at=s.created_at, expires_at=min(s.expires_at or ends, ends))
        for s in endpoint.secrets
        if s.active(now) and hours > 0
    ]
    secret = new_secret()
    secrets = [EndpointSecret(value=secret, created_at=now), *kept]
    await WebhookEndpoint.get_pymongo_collection().update_one(
        {"_id": endpoint.id},
        {"$set": {"secrets": [s.model_dump() for s in secrets], "updated_at": now}},
    )
    await audit.record("webhook.secret_rotated", tenant_id=access.tenant_id, target=str(endpoint.id),
                       details={"overlapHours": hours})
    return await get_endpoint(access, endpoint_id), secret


async def delete_endpoint(access: Access, endpoint_id: str) -> None:
    endpoint = await get_endpoint(access, endpoint_id)
    await WebhookDelivery.get_pymongo_collection().delete_many({"endpoint_id": endpoint.id})
    await endpoint.delete()
    await audit.record("webhook.deleted", tenant_id=access.tenant_id, target=str(endpoint.id),
                       details={"url": endpoint.url})


async def replay(access: Access, endpoint_id: str, since: datetime, only_failed: bool = False) -> int:
    """Queue again every event since ``since`` the endpoint may receive; answers how many deliveries are queued.

    Missing deliveries are created (events from before the endpoint, or while it was disabled); finished ones go
    back to pending with the same ``webhook-id``; with ``only_failed``, succeeded ones are left alone.
    """
    endpoint = await get_endpoint(access, endpoint_id)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    now = utcnow()
    since = min(max(since, EPOCH), now)  # an ObjectId holds 1970-2106 only: earlier is 'all', later is 'none'

    query: dict[str, object] = {"audience": endpoint.tenant_id, "_id": {"$gte": ObjectId.from_datetime(since)}}
    if endpoint.event_types:
        query["type"] = {"$in": endpoint.event_types}
    events = await Event.get_pymongo_collection().find(query).sort("_id", 1).limit(MAX_REPLAY + 1).to_list(None)
    if len(events) > MAX_REPLAY:
        raise BadInput(f"more than {MAX_REPLAY} events since then: replay a shorter period", field="since")
    planned = await plan(events, [endpoint.model_copy(update={"enabled": True})], now, replay=True)
    inserted = await insert_new(planned)
    fresh = {doc["event_id"] for doc in inserted}
    existing = [doc["event_id"] for doc in planned if doc["event_id"] not in fresh]
    states = [DeliveryState.failed.value]
    if not only_failed:
        states.append(DeliveryState.succeeded.value)
    reset = await WebhookDelivery.get_pymongo_collection().update_many(
        {"endpoint_id": endpoint.id, "event_id": {"$in": existing}, "state": {"$in": states}},
        {"$set": {"state": DeliveryState.pending.value, "next_attempt_at": now, "failures": 0, "updated_at": now,
                  "last_error": None, "lease_token": None, "lease_until": None}},
    )
    queued = len(inserted) + reset.modified_count
    await audit.record("webhook.replayed", tenant_id=access.tenant_id, target=str(endpoint.id),
                       details={"since": since.isoformat(), "onlyFailed": only_failed, "queued": queued})
    return queued
