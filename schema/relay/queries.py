"""``node(id:)`` and ``nodes(ids:)``: an object found by id alone, through the same access rules as its own query.

Ids are MongoDB ObjectIds, unique across collections, so a lookup asks each kind of node at once; another tenant's
object (or an unknown id) answers null, as the Relay convention has it, never revealing that it exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from beanie import Document
from bson import ObjectId
from bson.errors import InvalidId
from strawberry.types import Info

from hub.errors import BadInput
from hub.models.alert import Alert
from hub.models.dispatch import Dispatch
from hub.models.location import Location
from hub.models.lot import Lot
from hub.models.receipt import Receipt
from hub.models.sku import Sku
from schema.alerts.types import AlertType
from schema.catalog.queries import sku_nodes
from schema.catalog.types import LocationType, LotType, SkuType
from schema.node import Node
from schema.permissions import READ
from schema.supply.queries import dispatch_nodes
from schema.supply.types import ReceiptType
from tenants.access import Access

MAX_IDS = 100


@dataclass(frozen=True)
class Kind:
    model: type[Document]
    filter: Callable[[Access], dict[str, Any]]
    node: Callable[[Any, Access], Awaitable[Node]]


async def _lot(lot: Lot, access: Access) -> Node:
    skus = await sku_nodes({lot.sku_id}, access.tenant_id)
    return LotType.from_model(lot, skus.get(lot.sku_id))


async def _wrap(node: Node) -> Node:
    return node


KINDS = (
    Kind(Sku, lambda a: a.skus("read"), lambda d, a: _wrap(SkuType.from_model(d, a.tenant_id))),
    Kind(Location, lambda a: a.locations("read"), lambda d, a: _wrap(LocationType.from_model(d))),
    Kind(Lot, lambda a: a.lots("read"), _lot),
    Kind(Dispatch, lambda a: a.dispatches("read"), lambda d, a: _first(dispatch_nodes([d], a.tenant_id))),
    Kind(Receipt, lambda a: a.receipts("read"), lambda d, a: _wrap(ReceiptType.from_model(d, a.tenant_id))),
    Kind(Alert, lambda a: a.alerts(), lambda d, a: _wrap(AlertType.from_model(d, a.tenant_id))),
)


async def _first(nodes: Awaitable[list[Any]]) -> Node:
    return (await nodes)[0]


async def find_node(access: Access, id: str) -> Node | None:
    try:
        oid = ObjectId(id)
    except (InvalidId, TypeError):
        return None
    found = await asyncio.gather(*(kind.model.find_one({"_id": oid, **kind.filter(access)}) for kind in KINDS))
    for kind, doc in zip(KINDS, found):
        if doc is not None:
            return await kind.node(doc, access)
    return None


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ, description="Any object by its id (null when not yours to see)")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await find_node(await info.context.access(), str(id))

    @strawberry.field(permission_classes=READ, description="Objects by id, in order (null where not yours to see)")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_IDS:
            raise BadInput(f"at most {MAX_IDS} ids", field="ids")
        access = await info.context.access()
        return list(await asyncio.gather(*(find_node(access, str(id)) for id in ids)))
