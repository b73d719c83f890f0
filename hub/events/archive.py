"""Event retention: the live log keeps ``LOTPULSE_EVENT_RETENTION_DAYS``; older events are archived, never lost.

An event past its ``expires_at`` moves, numbered and unchanged, to the archive collection of the month it occurred
in (``events_archive_YYYY_MM``): inserted there first, deleted from the live log after, so a crash between the two
leaves a copy in both and the next pass finishes (an archived id is never inserted twice). One hub process at a time
does it (a one-partition lease, hub/leases.py). The live log has no TTL index any more: nothing expires unarchived.

A subscription cursor older than the live window answers ``CURSOR_EXPIRED`` naming its archive; ``lotpulse events
export --since DATE`` writes the archived and live events as compressed JSON lines (docs/event-log.md).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bson import ObjectId, json_util
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from hub.dates import utcnow
from hub.errors import HubError
from hub.events import views
from hub.leases import Partitions
from webhooks import retention

if TYPE_CHECKING:
    from hub.db import Database
    from hub.state import HubState

log = logging.getLogger("lotpulse.events.archive")
PREFIX = "events_archive_"
BATCH = 1000
DUPLICATE_KEY = 11000
OLD_TTL_INDEX = "expires_at_1"  # the TTL index of earlier versions, dropped at start


class CursorExpired(HubError):
    code = "CURSOR_EXPIRED"


def archive_name(occurred_at: datetime) -> str:
    return f"{PREFIX}{occurred_at:%Y_%m}"


async def archives(database: Database) -> list[str]:
    """The archive collections, oldest month first."""
    names = await database.db.list_collection_names(filter={"name": {"$regex": f"^{PREFIX}"}})
    return sorted(names)


async def archive_due(database: Database, now: datetime | None = None) -> int:
    """Move every numbered event past its ``expires_at`` into its month's archive; answers how many moved."""
    now = now or utcnow()
    events = database.db["events"]
    moved = 0
    while True:
        docs = await events.find({"expires_at": {"$lte": now}, "seq": {"$gt": 0}}).limit(BATCH).to_list(BATCH)
        if not docs:
            return moved
        by_month: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for doc in docs:
            by_month[archive_name(doc["occurred_at"])].append(doc)
        for name, group in by_month.items():
            try:
                await database.db[name].insert_many(group, ordered=False)
            except BulkWriteError as exc:  # archived by an earlier pass that stopped before deleting: keep that copy
                if any(error["code"] != DUPLICATE_KEY for error in exc.details["writeErrors"]):
                    raise
        await events.delete_many({"_id": {"$in": [doc["_id"] for doc in docs]}})
        moved += len(docs)


async def archived_cursor(database: Database, tenant_id: str, cursor: ObjectId,
                          retention_days: int) -> CursorExpired | None:
    """The error for a cursor whose event left the live log for the archive (None when it is in no archive, or the
    tenant was not in its audience: another tenant's cursor stays unknown)."""
    for name in await archives(database):
        doc = await database.db[name].find_one({"_id": cursor, "audience": tenant_id}, {"occurred_at": 1, "seq": 1})
        if doc is not None:
            occurred = doc["occurred_at"]
            return CursorExpired(
                f"this cursor is older than the live event log ({retention_days} days): its event is archived in "
                f"{name}; read the history with `lotpulse events export --since {occurred:%Y-%m-%d}`, then query the "
                "current state and subscribe without 'after'",
                field="after", archive=name, occurredAt=occurred.isoformat(), seq=doc["seq"],
            )
    return None


async def export(database: Database, since: datetime, out: Path, until: datetime | None = None,
                 tenant_id: str | None = None) -> int:
    """Write the events that occurred in [since, until), archived and live, in log order, as gzip JSON lines
    (MongoDB extended JSON, relaxed); answers how many. With ``tenant_id``: the events it was in the audience of,
    each as it would have heard it (``hub/events/views.py``), its audience cut to that tenant and the owner."""
    written = 0
    with gzip.open(out, "wt", encoding="utf-8") as sink:
        async for doc in _history(database, since, until, tenant_id):
            if tenant_id is not None:  # who else heard it is not the tenant's business
                doc["payload"] = views.payload_for(doc.get("payload") or {}, tenant_id)
                doc["audience"] = [t for t in doc.get("audience", []) if t in (tenant_id, doc.get("tenant_id"))]
            sink.write(json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS) + "\n")
            written += 1
    return written


async def _history(database: Database, since: datetime, until: datetime | None,
                   tenant_id: str | None) -> AsyncIterator[dict[str, Any]]:
    window: dict[str, Any] = {"$gte": since, **({"$lt": until} if until is not None else {})}
    query: dict[str, Any] = {"occurred_at": window, "seq": {"$gt": 0}}
    if tenant_id is not None:
        query["audience"] = tenant_id
    for name in [*await archives(database), "events"]:
        if name != "events" and name < archive_name(since):
            continue  # a month wholly before ``since``
        # Month by month, then the live log; within each, log order.
        async for doc in database.db[name].find(query, {"pending": 0}).sort("seq", 1):
            yield doc


async def start_archiver(hub: HubState) -> None:
    """Startup hook: drop the old TTL indexes (events must not expire unarchived; webhooks/retention.py says why
    deliveries have none) and, on one process, archive events and delete deliveries past their windows."""
    events = hub.database.db["events"]
    with suppress(OperationFailure, PyMongoError):
        await events.drop_index(OLD_TTL_INDEX)
    await retention.drop_old_indexes(hub.database)
    lease = Partitions(hub.database, "event-archive", count=1, lease_seconds=hub.settings.work_lease_seconds)
    hub.spawn("event-archive-lease", lease.run)
    interval = hub.settings.event_archive_interval_seconds

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            if not lease.held:
                continue
            try:
                moved = await archive_due(hub.database)
                if moved:
                    log.info("archived %d events past the live window", moved)
                pruned = await retention.prune_deliveries(hub.database)
                if pruned:
                    log.info("deleted %d webhook deliveries past the retention window", pruned)
            except Exception:
                log.exception("archiving the event log or pruning webhook deliveries failed; retrying next interval")

    hub.spawn("event-archive", loop)
