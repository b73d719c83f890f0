"""Movements: the immutable ledger stock positions are derived from (DESIGN.md §1, "stock is derived")."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class MovementKind(str, Enum):
    receipt = "receipt"
    issue = "issue"
    sale = "sale"
    adjustment = "adjustment"
    transfer_in = "transfer_in"
    transfer_out = "transfer_out"
    return_ = "return"
    count = "count"  # type: ignore[assignment]  # a movement kind, shadowing str.count on purpose


# Kinds that bring stock to a position: the first of them with a positive quantity is when the stock arrived.
ADDING = frozenset({MovementKind.receipt, MovementKind.transfer_in, MovementKind.return_, MovementKind.adjustment,
                    MovementKind.count})


class Movement(Document):
    """One signed change of on-hand, written once and never updated.

    ``quantity`` is always the change that was applied, also for a ``count`` (which stores the counted value in
    ``counted``): the sum of a position's movements is its on-hand, which is what ``stock rebuild`` checks. Sales and
    issues are negative, so the trailing velocity is ``-sum(quantity)`` over those kinds.
    """

    tenant_id: str  # the stock holder
    location_id: PydanticObjectId
    sku_id: PydanticObjectId
    sku_owner_id: str  # the brand owning the SKU: VMI partners see positions of their SKUs
    lot_id: PydanticObjectId | None = None
    lot_code: str | None = None
    kind: MovementKind
    quantity: int
    counted: int | None = None
    idempotency_key: str
    fingerprint: str  # hash of what the client sent: a reused key with other content is refused
    reference: str | None = None  # e.g. "receipt:<id>"
    occurred_at: datetime
    unit_price: float | None = None  # optional, sent by partners that have it: explains drops by price changes
    promotion: bool | None = None
    recorded_at: datetime = Field(default_factory=utcnow)
    # Who booked it (member subject or OAuth client id; "system" for the hub's own bookings) and why, if said.
    actor: str | None = None
    actor_kind: str | None = None  # member | client | system
    client_id: str | None = None
    reason: str | None = None
    unit_cost: float | None = None  # what a received unit cost (from a receipt line), with its currency
    currency: str | None = None

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "idempotency_key",
        why="the ledger of the holder; the unique (tenant_id, idempotency_key) starts with it",
    )

    class Settings:
        name = "movements"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("idempotency_key", 1)], unique=True),
            # velocity (trailing sales per location and SKU) and rebuild scans
            pymongo.IndexModel([("tenant_id", 1), ("location_id", 1), ("sku_id", 1), ("kind", 1), ("occurred_at", 1)]),
            pymongo.IndexModel([("tenant_id", 1), ("_id", -1)]),  # the movements query, newest first
        ]
