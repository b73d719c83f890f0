"""One update statement for many documents, each with its own values and guard (hub/services/by_id.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from hub.services import by_id
from hub.services.by_id import Row, update_rows

DAY = datetime(2026, 1, 10, tzinfo=UTC)


@pytest.fixture
async def collection(mongo_uri: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, tz_aware=True)
    name = f"db_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]["things"]
    finally:
        await client.drop_database(name)
        await client.close()


async def test_each_document_gets_its_own_values_only_where_its_guard_holds(collection: Any) -> None:
    await collection.insert_many([{"_id": 1, "n": 5, "tag": "a"}, {"_id": 2, "n": 7, "tag": "b"},
                                  {"_id": 3, "n": 1, "tag": "c"}])
    outcome = await update_rows(collection, [
        Row(1, {"n": 6, "tag": "$not-a-path"}, guard={"n": 5}),
        Row(2, {"n": 9, "tag": "$not-a-path"}, guard={"n": 7}),
        Row(3, {"n": 2, "tag": "z"}, guard={"n": 99}),  # stale guard: left as it is
        Row(4, {"n": 1, "tag": "z"}, guard={"n": 0}),  # gone: nothing created
    ])
    assert (outcome.matched, outcome.modified) == (3, 2)
    assert [doc async for doc in collection.find({}, sort=[("_id", 1)])] == [
        {"_id": 1, "n": 6, "tag": "$not-a-path"}, {"_id": 2, "n": 9, "tag": "$not-a-path"},
        {"_id": 3, "n": 1, "tag": "c"},
    ]


async def test_min_behaves_as_the_update_operator(collection: Any) -> None:
    """Missing: set; null: stays null; earlier: kept; later: replaced. Checked against ``$min`` itself."""
    earlier, later = DAY - timedelta(days=1), DAY + timedelta(days=1)
    starts: list[dict[str, Any]] = [{}, {"at": None}, {"at": earlier}, {"at": later}]
    await collection.insert_many([{"_id": n, "v": 0, **start} for n, start in enumerate(starts)]
                                 + [{"_id": 10 + n, "v": 0, **start} for n, start in enumerate(starts)])
    assert (await update_rows(collection, [Row(n, {"v": 1}, min={"at": DAY}) for n in range(4)])).modified == 4
    for n in range(4):
        await collection.update_one({"_id": 10 + n}, {"$set": {"v": 1}, "$min": {"at": DAY}})
    ours = [doc.get("at", "missing") async for doc in collection.find({"_id": {"$lt": 10}}, sort=[("_id", 1)])]
    theirs = [doc.get("at", "missing") async for doc in collection.find({"_id": {"$gte": 10}}, sort=[("_id", 1)])]
    assert ours == theirs == [DAY, None, earlier, DAY]


async def test_many_rows_of_several_shapes_take_several_statements(collection: Any) -> None:
    count = by_id.CHUNK * 2 + 7
    await collection.insert_many([{"_id": n, "n": n} for n in range(count)])
    rows = [Row(n, {"n": n + 1000}, guard={"n": n}, min={"first": DAY} if n % 3 == 0 else {}) for n in range(count)]
    assert (await update_rows(collection, rows)).modified == count
    docs = [doc async for doc in collection.find({}, sort=[("_id", 1)])]
    assert [doc["n"] for doc in docs] == [n + 1000 for n in range(count)]
    assert [n for n, doc in enumerate(docs) if "first" in doc] == list(range(0, count, 3))
    assert not any(key.startswith("_lp_") for doc in docs for key in doc)


async def test_dotted_increments_maximums_and_removals_match_the_update_operators(collection: Any) -> None:
    """A demand series' change (hub/services/demand.py): counts added under a day that may not exist yet, the latest
    sale day, old days removed. Each document is checked against its twin changed by the operators themselves."""
    starts: list[dict[str, Any]] = [
        {"on_hand": 4, "days": {"2026-01-01": {"n": 4}, "2026-01-09": {"n": 2, "s": 1}}, "last": "2026-01-09"},
        {"on_hand": 1, "days": {"2026-01-10": {"n": 1}}, "last": None},
        {"on_hand": 0, "days": {}},
    ]
    changes = [({"on_hand": -2, "days.2026-01-10.n": -2, "days.2026-01-10.s": 2}, {"last": "2026-01-10"},
                ("days.2026-01-01",)),
               ({"on_hand": -1, "days.2026-01-10.n": -1, "days.2026-01-10.s": 1}, {"last": "2026-01-10"}, ()),
               ({"on_hand": 5, "days.2026-01-10.n": 5, "days.2026-01-10.s": 0.5}, {"last": "2026-01-08"}, ())]
    await collection.insert_many([{"_id": n, **start} for n, start in enumerate(starts)]
                                 + [{"_id": 10 + n, **start} for n, start in enumerate(starts)])
    rows = [Row(n, {"at": DAY}, inc=inc, max=most, unset=drop) for n, (inc, most, drop) in enumerate(changes)]
    assert (await update_rows(collection, rows)).modified == 3
    for n, (inc, most, drop) in enumerate(changes):
        await collection.update_one({"_id": 10 + n}, {"$set": {"at": DAY}, "$inc": inc, "$max": most,
                                                      **({"$unset": dict.fromkeys(drop, "")} if drop else {})})
    ours = [doc async for doc in collection.find({"_id": {"$lt": 10}}, {"_id": 0}, sort=[("_id", 1)])]
    theirs = [doc async for doc in collection.find({"_id": {"$gte": 10}}, {"_id": 0}, sort=[("_id", 1)])]
    assert ours == theirs
    assert ours[0]["days"] == {"2026-01-09": {"n": 2, "s": 1}, "2026-01-10": {"n": -2, "s": 2}}
