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
    changed = await update_rows(collection, [
        Row(1, {"n": 6, "tag": "$not-a-path"}, guard={"n": 5}),
        Row(2, {"n": 9, "tag": "$not-a-path"}, guard={"n": 7}),
        Row(3, {"n": 2, "tag": "z"}, guard={"n": 99}),  # stale guard: left as it is
        Row(4, {"n": 1, "tag": "z"}, guard={"n": 0}),  # gone: nothing created
    ])
    assert changed == 2
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
    assert await update_rows(collection, [Row(n, {"v": 1}, min={"at": DAY}) for n in range(4)]) == 4
    for n in range(4):
        await collection.update_one({"_id": 10 + n}, {"$set": {"v": 1}, "$min": {"at": DAY}})
    ours = [doc.get("at", "missing") async for doc in collection.find({"_id": {"$lt": 10}}, sort=[("_id", 1)])]
    theirs = [doc.get("at", "missing") async for doc in collection.find({"_id": {"$gte": 10}}, sort=[("_id", 1)])]
    assert ours == theirs == [DAY, None, earlier, DAY]


async def test_many_rows_of_several_shapes_take_several_statements(collection: Any) -> None:
    count = by_id.CHUNK * 2 + 7
    await collection.insert_many([{"_id": n, "n": n} for n in range(count)])
    rows = [Row(n, {"n": n + 1000}, guard={"n": n}, min={"first": DAY} if n % 3 == 0 else {}) for n in range(count)]
    assert await update_rows(collection, rows) == count
    docs = [doc async for doc in collection.find({}, sort=[("_id", 1)])]
    assert [doc["n"] for doc in docs] == [n + 1000 for n in range(count)]
    assert [n for n, doc in enumerate(docs) if "first" in doc] == list(range(0, count, 3))
    assert not any(key.startswith("_lp_") for doc in docs for key in doc)
