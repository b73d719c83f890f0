"""The event log: every accepted change, written in the same transaction as the state it describes.

``seq`` is the log's order. Events are written ``pending`` and numbered after commit by the one leased sequencer
(hub/events/sequencer.py), so a reader that has seen ``seq`` n never meets a new event below n. ObjectIds are no order:
they are minted before commit, by many processes, so an older id can commit after a newer one has been seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pymongo
from beanie import Document
from pydantic import Field

from hub.dates import utcnow
from hub.events.catalogue import EVENT_SCOPE, EVENT_TYPES
from hub.sharding import Declaration, key

# What each event type means, who may hear it and how it is ordered: hub/events/catalogue.py. EVENT_SCOPE holds the
# partnership scope that entitles a partner (an audience member other than the owner) to hear an event, checked
# against the live partnership when the event is delivered; types without one (dispatches, receipts, lots) are heard
# by being in the audience written with the event (the parties of a dispatch, DESIGN.md §4).
__all__ = ["EVENT_SCOPE", "EVENT_TYPES", "Event"]


class Event(Document):
    type: str
    tenant_id: str  # owner
    audience: list[str]  # tenant ids entitled to hear it (always includes the owner)
    payload: dict[str, Any]
    subject: str | None = None  # the ordering key of its webhook deliveries (hub/events/catalogue.py)
    seq: int | None = None  # stamped after commit by the sequencer; readers see numbered events only
    pending: bool | None = None  # True until numbered (written so by hub.events; the sequencer removes it)
    occurred_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime  # leaves the live log for the month's archive after this (hub/events/archive.py)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "type",
        why="written in the owner's transaction, on the owner's shard, with the state it describes",
        before_sharding="seq is unique across the log: the fence of the one sequencer (docs/event-log.md) "
                        "moves to its own state document, since a unique index on seq alone cannot span "
                        "shards; and its stamps (upserts) name the event's tenant and type",
    )

    class Settings:
        name = "events"
        indexes = [
            pymongo.IndexModel([("audience", 1), ("_id", 1)]),
            pymongo.IndexModel([("tenant_id", 1), ("type", 1)]),  # the shard key's
            # Numbers are unique (the sequencer's fence) and only numbered events are in the index.
            pymongo.IndexModel([("seq", 1)], name="seq_unique", unique=True,
                               partialFilterExpression={"seq": {"$gt": 0}}),
            pymongo.IndexModel([("pending", 1), ("_id", 1)], name="pending_id",
                               partialFilterExpression={"pending": True}),
            pymongo.IndexModel([("audience", 1), ("seq", 1)]),
            # No TTL: expired events are archived, never dropped (hub/events/archive.py).
            pymongo.IndexModel([("expires_at", 1), ("seq", 1)], name="archive_due"),
        ]
