"""Delivery retention: deliveries past the retention window are deleted by the hub in batches, newer ones stay, and
the collection carries no TTL index (SecantusDB's TTL monitor stalls every command while it scans the collection)."""

from __future__ import annotations

from datetime import timedelta

from bson import ObjectId

from hub.dates import utcnow
from webhooks import retention
from webhooks.models import LOG_RETENTION_SECONDS, WebhookDelivery


def delivery(created_days_ago: float, tenant: str) -> dict:
    created = utcnow() - timedelta(days=created_days_ago)
    return {"_id": ObjectId(), "event_id": ObjectId(), "endpoint_id": ObjectId(), "tenant_id": tenant,
            "event_type": "stock.changed", "seq": 1, "body": "{}", "state": "delivered", "next_attempt_at": created,
            "created_at": created, "updated_at": created}


async def test_deliveries_past_the_window_are_deleted_in_batches_and_newer_ones_stay(hub):
    deliveries = WebhookDelivery.get_pymongo_collection()
    window_days = LOG_RETENTION_SECONDS / 86400
    # More old ones than two batches, some sharing one creation time (a batch bound must not stall on ties).
    old = [delivery(window_days + 1 + n / 1000, "acme") for n in range(2 * retention.BATCH + 37)]
    tied = utcnow() - timedelta(days=window_days + 3)
    for doc in old[:5]:
        doc["created_at"] = tied
    kept = [delivery(window_days - 1, "acme"), delivery(0, "globex"), delivery(window_days - 0.01, "globex")]
    await deliveries.insert_many(old + kept)

    assert await retention.prune_deliveries(hub.state.database) == len(old)

    left = {doc["_id"] for doc in await deliveries.find({}, {"_id": 1}).to_list(None)}
    assert left == {doc["_id"] for doc in kept}
    assert await retention.prune_deliveries(hub.state.database) == 0


async def test_the_collection_has_no_ttl_index_and_old_ones_are_dropped_at_start(hub):
    deliveries = WebhookDelivery.get_pymongo_collection()
    await deliveries.create_index([("created_at", 1)], expireAfterSeconds=LOG_RETENTION_SECONDS)  # an old version's
    # and the indexes of earlier versions that no query uses any more
    await deliveries.create_index([("endpoint_id", 1), ("state", 1), ("next_attempt_at", 1)])

    await retention.drop_old_indexes(hub.state.database)

    indexes = await deliveries.index_information()
    assert not [name for name, spec in indexes.items() if "expireAfterSeconds" in spec]
    assert indexes["retention"]["key"] == [("created_at", 1), ("_id", 1)]
    assert not set(retention.OLD_INDEXES) & set(indexes)
    expected = {tuple(tuple(part) for part in model.document["key"].items())
                for model in WebhookDelivery.Settings.indexes}  # type: ignore[attr-defined]
    assert {tuple(tuple(part) for part in spec["key"]) for name, spec in indexes.items() if name != "_id_"} == expected
