"""Writing to the event log.

``emit`` must be called with the session of the transaction that writes the state the event describes: the event
and the state commit together or not at all, so subscriptions and webhooks (both readers of this log) never see a
change that was rolled back nor miss one that was kept.

Each event takes the next ``seq`` from the ``counters`` document inside that same transaction. A concurrent
transaction that also emits conflicts on the counter and is retried after the first commits, so ``seq`` order is
commit order: a reader that has seen ``seq`` n has seen every event with a smaller ``seq`` that will ever exist. That
is what makes an event a correct resume cursor with many hub processes writing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterable

from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub import tracing
from hub.db import run_transaction
from hub.models.event import EVENT_TYPES, Event
from hub.dates import utcnow

RETENTION = timedelta(days=30)
COUNTERS = "counters"
EVENTS_COUNTER = "events"


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


async def _reserve(session: AsyncClientSession, count: int) -> int:
    """Reserve ``count`` sequence numbers in the caller's transaction; answers the first."""
    counters = Event.get_pymongo_collection().database[COUNTERS]
    doc = await counters.find_one_and_update(
        {"_id": EVENTS_COUNTER},
        {"$inc": {"seq": count}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return int(doc["seq"]) - count + 1


async def _write(session: AsyncClientSession, events: list[Event]) -> None:
    first = await _reserve(session, len(events))
    for offset, event in enumerate(events):
        event.seq = first + offset
    result = await Event.insert_many(events, session=session)
    for event, inserted_id in zip(events, result.inserted_ids):
        event.id = inserted_id  # callers (webhooks, tests) use the id as the cursor
    tracing.events_written(events)


async def _in_own_transaction(events: list[Event]) -> None:
    """Outside a caller's transaction the counter and the insert still have to commit together."""
    client = Event.get_pymongo_collection().database.client

    async def work(session: AsyncClientSession) -> None:
        await _write(session, events)

    await run_transaction(client, work)


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
    if session is not None and session.in_transaction:
        await _write(session, events)
    else:
        await _in_own_transaction(events)
