"""Receipts: what the receiver scanned against a dispatch, and what reconciliation found."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class ReceiptOutcome(str, Enum):
    matched = "matched"
    mismatched = "mismatched"


class ReceiptLine(BaseModel):
    sku_ref: str  # as scanned: id, code, alias or GTIN
    sku_id: PydanticObjectId | None = None  # None: the reference names no SKU the receiver can see
    lot_code: str
    lot_id: PydanticObjectId | None = None  # the lot the stock was booked to
    quantity: int
    expires_on: date | None = None
    dispatch_line: int | None = None
    sscc: str | None = None  # the pallet or case it came on (scanned as a whole: its notified contents)


class MismatchRecord(BaseModel):
    kind: str
    line: int | None = None
    dispatch_line: int | None = None
    expected: str | None = None
    found: str | None = None
    near_miss: bool = False
    sku_id: PydanticObjectId | None = None
    lot_code: str | None = None


class Receipt(Document):
    tenant_id: str  # the receiver who recorded it (consignee, or the carrier as receiving 3PL)
    dispatch_id: PydanticObjectId
    parties: list[str]  # the dispatch's parties: who sees it
    location_id: PydanticObjectId
    ref: str | None = None  # the receiver's reference; resending the same ref answers the first receipt
    lines: list[ReceiptLine]
    final: bool = False
    outcome: ReceiptOutcome
    mismatches: list[MismatchRecord] = Field(default_factory=list)
    alert_id: PydanticObjectId | None = None
    held_lot_ids: list[PydanticObjectId] = Field(default_factory=list)  # lots this receipt's mismatches put on hold
    received_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None  # the receiver settled the mismatches (and released the holds)
    resolved_by: str | None = None
    resolution_note: str | None = None

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "dispatch_id",
        why="the receiver's; parties find theirs by a scatter-gather read",
    )

    class Settings:
        name = "receipts"
        indexes = [
            pymongo.IndexModel([("dispatch_id", 1), ("_id", 1)]),
            pymongo.IndexModel([("tenant_id", 1), ("dispatch_id", 1)]),  # the shard key's
            pymongo.IndexModel([("parties", 1), ("_id", -1)]),
            pymongo.IndexModel([("dispatch_id", 1), ("ref", 1)]),
            pymongo.IndexModel([("held_lot_ids", 1)]),
        ]
