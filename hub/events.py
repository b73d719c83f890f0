"""Writing to the event log.

``emit`` must be called with the session of the transaction that writes the state the event describes: the event
and the state commit together or not at all, so subscriptions and webhooks (both readers of this log) never see a
change that was rolled back nor miss one that was kept.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterable

from pymongo.asynchronous.client_session import AsyncClientSession

from hub.models.event import EVENT_TYPES, Event
from tenants.models import utcnow

RETENTION = timedelta(days=30)


def set_retention(days: int) -> None:
    global RETENTION
    RETENTION = timedelta(days=days)


def build_event(type: str, tenant_id: str, audience: Iterable[str], payload: dict[str, Any]) -> Event:
    assert type in EVENT_TYPES, type
    now = utcnow()
    return Event(
        type=type,
        tenant_id=tenant_id,
        audience=sorted({tenant_id, *audience}),
        payload=payload,
        occurred_at=now,
        expires_at=now + RETENTION,
    )


async def emit(
    session: AsyncClientSession | None,
    type: str,
    tenant_id: str,
    audience: Iterable[str],
    payload: dict[str, Any],
) -> Event:
    event = build_event(type, tenant_id, audience, payload)
    await event.insert(session=session)
    return event


async def emit_many(session: AsyncClientSession | None, events: list[Event]) -> None:
    if events:
        await Event.insert_many(events, session=session)
