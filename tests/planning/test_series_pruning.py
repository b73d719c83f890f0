"""A demand series keeps the days its readers look back on: a movement added to it removes the older ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from hub.models.planning import DemandSeries
from hub.services import demand
from tests.planning.conftest import UPSERT_SKU, rhythm, today


async def test_a_written_series_drops_days_past_what_it_keeps_and_reads_the_same(net):
    # given: 180 days of sales at one store, another store and another tenant's store with the same history
    span = demand.KEEP_DAYS + 40
    daily = [rhythm(span - i) for i in range(span)]
    sku = ObjectId(await net.sku("OLD-1", shelfLifeDays=730))
    await net.history("ST-1", "OLD-1", daily, stock=20_000, lot=None)
    await net.history("ST-2", "OLD-1", daily, stock=20_000, lot=None)
    await net.hub.ok(UPSERT_SKU, {"input": {"code": "R-OLD", "name": "Rival's own"}}, tenant="rival")
    await net.history("R-1", "R-OLD", daily, stock=20_000, lot=None, tenant="rival")
    series = DemandSeries.get_pymongo_collection()
    before = {doc["location_id"]: doc async for doc in series.find({})}
    store, other, rival = (ObjectId(net.locations[code]) for code in ("ST-1", "ST-2", "R-1"))
    assert len(before[store]["days"]) == span + 1  # the receipt's day and every day sold

    # when: one more sale at the first store
    sold_at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    await net.move("ST-1", [{"sku": "OLD-1", "kind": "sale", "quantity": -5, "occurredAt": sold_at}])

    # then: its days before the cutoff are gone, its totals and first day stay, and what readers see is the same
    after = await series.find_one({"location_id": store, "sku_id": sku})
    cutoff = (today() - timedelta(days=demand.KEEP_DAYS)).isoformat()
    assert min(after["days"]) == cutoff and after["kept_from"] == cutoff
    assert len(after["days"]) == demand.KEEP_DAYS + 1  # the kept days and today's
    assert after["first_day"] == before[store]["first_day"] < cutoff
    assert after["on_hand"] == before[store]["on_hand"] - 5
    old_view, new_view = demand.view(before[store], today()), demand.view(after, today())
    assert new_view.days == old_view.days and new_view.closing == old_view.closing
    # and the series nobody wrote to, this holder's other store and the other tenant's, are untouched
    for location in (other, rival):
        assert await series.find_one({"_id": before[location]["_id"]}) == before[location]


async def test_a_late_movement_before_the_kept_days_is_kept_until_the_next_prune(net):
    # given: a series pruned once
    span = demand.KEEP_DAYS + 40
    await net.sku("OLD-2", shelfLifeDays=730)
    await net.history("ST-1", "OLD-2", [rhythm(span - i) for i in range(span)], stock=20_000, lot=None)
    now = datetime.now(UTC) - timedelta(minutes=1)
    await net.move("ST-1", [{"sku": "OLD-2", "kind": "sale", "quantity": -1, "occurredAt": now.isoformat()}])

    # when: a sale booked late, dated before the kept days
    late = today() - timedelta(days=demand.KEEP_DAYS + 10)
    late_at = datetime.combine(late, datetime.min.time(), tzinfo=UTC).replace(hour=12).isoformat()
    await net.move("ST-1", [{"sku": "OLD-2", "kind": "sale", "quantity": -2, "occurredAt": late_at}])

    # then: its day is there, counted once more, and the next prune starts from it
    doc = await DemandSeries.get_pymongo_collection().find_one({"location_id": ObjectId(net.locations["ST-1"]),
                                                                "sku_id": ObjectId(net.skus["OLD-2"])})
    assert doc["days"][late.isoformat()] == {"n": -2, "s": 2} and doc["kept_from"] == late.isoformat()
