"""Writing to the event log.

``emit`` must be called with the session of the transaction that writes the state the event describes: the event
and the state commit together or not at all, so subscriptions and webhooks (both readers of this log) never see a
change that was rolled back nor miss one that was kept.

Events are written ``pending``, without a sequence number: an event-writing transaction touches only its own
documents, so writers on different data never contend and a crashed writer holds nothing anyone else needs. The
sequencer (hub/events/sequencer.py) numbers committed events afterwards; readers only see numbered ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from hub import tracing
from hub.dates import utcnow
from hub.events.catalogue import subject_of
from hub.models.event import EVENT_TYPES, Event

RETENTION = timedelta(days=30)


def set_retention(days: int) -> None:
    global RETENTION
    RETENTION = timedelta(days=days)


def build_event(
    type: str, tenant_id: str, audience: Iterable[str], payload: dict[str, Any], *, subject: str | None = None
) -> Event:
    """``subject``, the ordering key, is the catalogue's for the type unless given (benchmarks spread theirs)."""
    assert type in EVENT_TYPES, type
    now = utcnow()
    return Event(
        type=type,
        tenant_id=tenant_id,
        audience=sorted({tenant_id, *audience}),
        payload=payload,
        subject=subject or subject_of(type, tenant_id, payload),
        occurred_at=now,
        expires_at=now + RETENTION,
        pending=True,
    )


async def _write(session: AsyncClientSession | None, events: list[Event]) -> None:
    result = await Event.insert_many(events, session=session)
    for event, inserted_id in zip(events, result.inserted_ids):
        event.id = inserted_id  # callers (webhooks, tests) use the id as the cursor
    tracing.events_written(events)


async def emit(
    session: AsyncClientSession | None,
    type: str,
    tenant_id: str,
    audience: Iterable[str],
    payload: dict[str, Any],
) -> Event:
    event = build_event(type, tenant_id, audience, payload)
    await emit_many(session, [event])
    return event


async def emit_many(session: AsyncClientSession | None, events: list[Event]) -> None:
    if not events:
        return
    # Outside a transaction there is no state to commit with: each event stands alone.
    await _write(session if session is not None and session.in_transaction else None, events)
