"""Delivery retention: deliveries and their attempt logs are kept ``LOG_RETENTION_SECONDS``, then deleted by the hub.

Not by a TTL index: SecantusDB's TTL monitor decodes every document of a TTL collection once a minute while it holds
its storage lock, so with 50,000 deliveries every other command waited up to 5 s each minute, and a month of
deliveries would stall the database for good. The event archiver's pass (one process at a time, hub/events/archive.py)
deletes them instead, oldest first along the (created_at, _id) index, in batches of about ``BATCH``. No delivery is
still being retried by then: the retry schedule gives up after about 28 hours.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pymongo.errors import PyMongoError

from hub.dates import utcnow
from webhooks.models import LOG_RETENTION_SECONDS, WebhookDelivery

if TYPE_CHECKING:
    from hub.db import Database

BATCH = 500
OLD_TTL_INDEX = "created_at_1"  # the TTL index of earlier versions, dropped at start
# Indexes of earlier versions no query uses any more, dropped at start: every delivery written paid for each (about
# 0.1 ms of SecantusDB's CPU per index and document). An endpoint's due deliveries are read along (endpoint_id,
# state, seq), in order.
OLD_INDEXES = (OLD_TTL_INDEX, "endpoint_id_1_state_1_next_attempt_at_1")


async def drop_old_indexes(database: Database) -> None:
    for name in OLD_INDEXES:
        with suppress(PyMongoError):
            await database.db[WebhookDelivery.Settings.name].drop_index(name)


async def prune_deliveries(database: Database, now: datetime | None = None) -> int:
    """Delete the deliveries created before the retention window; answers how many."""
    cutoff = (now or utcnow()) - timedelta(seconds=LOG_RETENTION_SECONDS)
    deliveries = database.db[WebhookDelivery.Settings.name]
    due = {"created_at": {"$lt": cutoff}}
    removed = 0
    while True:
        # The BATCH-th oldest due delivery bounds this batch (ties with it go too, so a batch never stalls on them).
        edge = await deliveries.find(due, {"created_at": 1}).sort([("created_at", 1), ("_id", 1)]) \
            .skip(BATCH - 1).limit(1).to_list(1)
        if not edge:
            return removed + (await deliveries.delete_many(due)).deleted_count
        removed += (await deliveries.delete_many({"created_at": {"$lte": edge[0]["created_at"]}})).deleted_count
