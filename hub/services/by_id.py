"""Many documents changed by ``_id`` in one update statement, each with values of its own, each guarded.

On SecantusDB every update statement pays for planning and for reading the collection's index catalogue again, about
half what the document write itself costs: ten ``UpdateOne`` of stock positions cost 2.0 ms of the database's CPU per
position, one pipeline ``update_many`` over their ids 1.35 ms (bench/writers.py, "Scaling out" in the README). The
pipeline finds each document's row by the position of its ``_id`` in the statement's id list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

CHUNK = 100  # ids per statement: each document looks its row up in the list (a linear search)
_ROW = "_lp_row"  # scratch fields of the pipeline, removed by its last stage
_OK = "_lp_ok"


@dataclass
class Row:
    """One document's change. ``guard``: the values its fields must hold, or it is left as it is; ``set``: new values;
    ``min``: ``$min`` (a stored null stays null, as ``$min`` in an update leaves it)."""

    id: Any
    set: dict[str, Any]
    guard: dict[str, Any] = field(default_factory=dict)
    min: dict[str, Any] = field(default_factory=dict)


def _value(rows: list[Row], values: list[Any]) -> Any:
    """The expression giving each document its own value: one literal when all rows share it."""
    first = values[0]
    if all(type(v) is type(first) and v == first for v in values):
        return {"$literal": first}
    return {"$arrayElemAt": [{"$literal": values}, f"${_ROW}"]}


def pipeline(rows: list[Row]) -> list[dict[str, Any]]:
    """The update pipeline for ``rows`` (all naming the same fields)."""
    head = rows[0]
    ok: Any = {"$and": [{"$eq": [f"${name}", _value(rows, [r.guard[name] for r in rows])]} for name in head.guard]}
    changes: dict[str, Any] = {
        name: {"$cond": [f"${_OK}", _value(rows, [r.set[name] for r in rows]), f"${name}"]} for name in head.set
    }
    for name in head.min:
        given = _value(rows, [r.min[name] for r in rows])
        lower = {"$cond": [{"$eq": [{"$type": f"${name}"}, "null"]}, None, {"$min": [f"${name}", given]}]}
        changes[name] = {"$cond": [f"${_OK}", lower, f"${name}"]}
    return [
        {"$set": {_ROW: {"$indexOfArray": [{"$literal": [r.id for r in rows]}, "$_id"]}}},
        {"$set": {_OK: ok}},
        {"$set": changes},
        {"$unset": [_ROW, _OK]},
    ]


async def update_rows(collection: AsyncCollection[Any], rows: list[Row],
                      session: AsyncClientSession | None = None) -> int:
    """Apply ``rows``; answers how many documents changed. A document that is gone or fails its guard is not
    counted, nor is one the change leaves as it was: callers compare with ``len(rows)`` only for changes that always
    change something."""
    groups: dict[tuple[tuple[str, ...], ...], list[Row]] = {}
    for row in rows:  # one statement per shape of change (usually one)
        groups.setdefault((tuple(row.guard), tuple(row.set), tuple(row.min)), []).append(row)
    modified = 0
    for group in groups.values():
        for start in range(0, len(group), CHUNK):
            chunk = group[start:start + CHUNK]
            result = await collection.update_many({"_id": {"$in": [r.id for r in chunk]}}, pipeline(chunk),
                                                  session=session)
            modified += result.modified_count
    return modified
