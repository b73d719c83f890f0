"""Relay-style connections over MongoDB, paged by ``_id`` (stable, indexed, no skip scans)."""

from __future__ import annotations

import base64
from typing import Any, Awaitable, Callable, Generic, Sequence, TypeVar

import strawberry
from beanie import Document
from bson import ObjectId
from bson.errors import InvalidId

from hub.errors import BadInput

N = TypeVar("N")
D = TypeVar("D", bound=Document)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[N]:
        return [edge.node for edge in self.edges]


def encode_cursor(value: ObjectId) -> str:
    return base64.urlsafe_b64encode(f"id:{value}".encode()).decode()


def decode_cursor(cursor: str) -> ObjectId:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith("id:"):
            raise ValueError
        return ObjectId(text[3:])
    except (ValueError, InvalidId, UnicodeError):
        raise BadInput("invalid cursor", field="after") from None


def check_first(first: int, max_page: int) -> int:
    if not 1 <= first <= max_page:
        raise BadInput(f"first must be between 1 and {max_page}", field="first")
    return first


async def paginate(
    model: type[D],
    filter: dict[str, Any],
    first: int,
    after: str | None,
    max_page: int,
    to_node: Callable[[D], N] | Callable[[Sequence[D]], Awaitable[list[N]]],
    descending: bool = False,
    batch: bool = False,
) -> Connection[N]:
    """One page of ``model`` matching ``filter``; ``to_node`` maps documents (or, with ``batch``, a list of them)."""
    check_first(first, max_page)
    query = dict(filter)
    if after is not None:
        boundary = decode_cursor(after)
        query = {"$and": [filter, {"_id": {"$lt" if descending else "$gt": boundary}}]}
    docs = await model.find(query).sort(("_id", -1 if descending else 1)).limit(first + 1).to_list()
    page = docs[:first]
    nodes = await to_node(page) if batch else [to_node(doc) for doc in page]  # type: ignore[arg-type,misc]
    edges = [Edge(cursor=encode_cursor(doc.id), node=node) for doc, node in zip(page, nodes)]  # type: ignore[arg-type]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(docs) > first, end_cursor=edges[-1].cursor if edges else None),
    )
