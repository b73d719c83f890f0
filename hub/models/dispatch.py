"""Dispatches: advance ship notices from a shipper to a consignee, optionally through a carrier (3PL)."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class DispatchStatus(str, Enum):
    draft = "draft"  # proposed for the shipper to confirm (a cross-partner transfer a VMI partner accepted)
    dispatched = "dispatched"
    in_transit = "in_transit"
    received = "received"
    received_with_mismatch = "received_with_mismatch"
    cancelled = "cancelled"


# Receipts move a dispatch to the received states; people move it along the rest.
TRANSITIONS: dict[DispatchStatus, frozenset[DispatchStatus]] = {
    DispatchStatus.draft: frozenset({DispatchStatus.dispatched, DispatchStatus.cancelled}),
    DispatchStatus.dispatched: frozenset(
        {DispatchStatus.in_transit, DispatchStatus.received, DispatchStatus.received_with_mismatch,
         DispatchStatus.cancelled}
    ),
    DispatchStatus.in_transit: frozenset(
        {DispatchStatus.received, DispatchStatus.received_with_mismatch, DispatchStatus.cancelled}
    ),
    DispatchStatus.received: frozenset(),
    DispatchStatus.received_with_mismatch: frozenset(),
    DispatchStatus.cancelled: frozenset(),
}
OPEN_STATUSES = (DispatchStatus.dispatched, DispatchStatus.in_transit)
PLANNED_STATUSES = (DispatchStatus.draft, *OPEN_STATUSES)  # goods on their way or about to be: inbound for planning


class DispatchLine(BaseModel):
    sku_id: PydanticObjectId
    lot_id: PydanticObjectId
    lot_code: str
    quantity: int
    produced_on: date | None = None
    expires_on: date | None = None
    received: int = 0  # running total over all receipts
    sscc: str | None = None  # the logistic unit (pallet or case) these goods travel on
    in_sscc: str | None = None  # the pallet that unit is stacked on, when it is a case or layer
    # Set when an excursion seen by a logger on this line's unit shortened these goods' shelf life (not the lot's).
    effective_expires_on: date | None = None


class StatusChange(BaseModel):
    status: DispatchStatus
    at: datetime
    by: str  # tenant id
    note: str | None = None


class Dispatch(Document):
    tenant_id: str  # the shipper
    ref: str  # the shipper's own reference (ASN number), unique per shipper
    from_location_id: PydanticObjectId | None = None
    consignee_id: str
    to_location_id: PydanticObjectId | None = None
    carrier_id: str | None = None
    parties: list[str]  # shipper, consignee and carrier (and who requested a draft): who sees it
    requested_by: str | None = None  # a draft's author when not the shipper (the VMI partner that accepted a transfer)
    shipped_on: date | None = None
    expected_on: date | None = None
    status: DispatchStatus = DispatchStatus.dispatched
    history: list[StatusChange] = Field(default_factory=list)
    lines: list[DispatchLine]
    ssccs: list[str] = Field(default_factory=list)  # every SSCC its lines name (sscc and in_sscc): found by unit
    has_mismatch: bool = False
    receipt_count: int = 0
    version: int = 0  # compare-and-set: concurrent receipts and transitions never both win
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "ref",
        why="the shipper's; the unique (tenant_id, ref) starts with it; parties find theirs by a scatter-"
            "gather read",
    )

    class Settings:
        name = "dispatches"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("ref", 1)], unique=True),
            pymongo.IndexModel([("parties", 1), ("_id", -1)]),
            pymongo.IndexModel([("parties", 1), ("status", 1)]),
            pymongo.IndexModel([("ssccs", 1)]),
        ]
