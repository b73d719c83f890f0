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
    """One document's change, as the update operators would make it (paths may be dotted). ``guard``: the values its
    fields must hold, or it is left as it is; ``min`` keeps a stored null, as ``$min`` does."""

    id: Any
    set: dict[str, Any]
    guard: dict[str, Any] = field(default_factory=dict)
    min: dict[str, Any] = field(default_factory=dict)
    max: dict[str, Any] = field(default_factory=dict)
    inc: dict[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(sorted(part)) for part in (self.guard, self.set, self.min, self.max, self.inc, self.unset))


def _value(rows: list[Row], values: list[Any]) -> Any:
    """The expression giving each document its own value: one literal when all rows share it."""
    first = values[0]
    if all(type(v) is type(first) and v == first for v in values):
        return {"$literal": first}
    return {"$arrayElemAt": [{"$literal": values}, f"${_ROW}"]}


def pipeline(rows: list[Row]) -> list[dict[str, Any]]:
    """The update pipeline for ``rows`` (all of one shape)."""
    head = rows[0]
    changes: dict[str, Any] = {name: _value(rows, [r.set[name] for r in rows]) for name in head.set}
    for name in head.min:
        given = _value(rows, [r.min[name] for r in rows])
        changes[name] = {"$cond": [{"$eq": [{"$type": f"${name}"}, "null"]}, None, {"$min": [f"${name}", given]}]}
    for name in head.max:  # a stored null is replaced, as by $max
        changes[name] = {"$max": [f"${name}", _value(rows, [r.max[name] for r in rows])]}
    for name in head.inc:
        changes[name] = {"$add": [{"$ifNull": [f"${name}", 0]}, _value(rows, [r.inc[name] for r in rows])]}
    stages: list[dict[str, Any]] = [{"$set": {_ROW: {"$indexOfArray": [{"$literal": [r.id for r in rows]}, "$_id"]}}}]
    if head.guard:
        ok = {"$and": [{"$eq": [f"${name}", _value(rows, [r.guard[name] for r in rows])]} for name in head.guard]}
        stages.append({"$set": {_OK: ok}})
        changes = {name: {"$cond": [f"${_OK}", change, f"${name}"]} for name, change in changes.items()}
    stages.append({"$set": changes})
    stages.append({"$unset": [_ROW, *([_OK] if head.guard else []), *head.unset]})
    return stages


@dataclass
class Outcome:
    matched: int = 0  # documents found
    modified: int = 0  # of those, changed: not one that failed its guard, nor one the change left as it was


async def update_rows(collection: AsyncCollection[Any], rows: list[Row],
                      session: AsyncClientSession | None = None) -> Outcome:
    """Apply ``rows``, one statement per shape of change (usually one) and ``CHUNK`` ids."""
    groups: dict[tuple[tuple[str, ...], ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(row.shape, []).append(row)
    outcome = Outcome()
    for group in groups.values():
        for start in range(0, len(group), CHUNK):
            chunk = group[start:start + CHUNK]
            result = await collection.update_many({"_id": {"$in": [r.id for r in chunk]}}, pipeline(chunk),
                                                  session=session)
            outcome.matched += result.matched_count
            outcome.modified += result.modified_count
    return outcome
