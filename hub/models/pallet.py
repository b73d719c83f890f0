"""Pallets and cases by SSCC: what a logistic unit holds, as aggregation events (EPCIS) last said.

Kept minimal on purpose: one document per (tenant, SSCC) with its current contents. Dispatch lines, receipts and
sensors do not point at pallets yet; that is the next step of the pallet work.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class PalletContent(BaseModel):
    """One child of a logistic unit: an instance (SGTIN, SSCC of a case) or a quantity of a class (LGTIN, GTIN)."""

    epc: str  # canonical GS1 Digital Link URI of the child or its class
    gtin: str | None = None
    lot_code: str | None = None
    serial: str | None = None
    quantity: float | None = None  # for a class; None for an instance
    uom: str | None = None


class Pallet(Document):
    tenant_id: str  # whose aggregation events built it
    sscc: str  # SSCC-18
    contents: list[PalletContent] = Field(default_factory=list)
    location_id: PydanticObjectId | None = None  # where it was last seen (bizLocation), if that is a known location
    last_event_id: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "sscc",
        why="the packing tenant's pallets; the unique (tenant_id, sscc) starts with it",
    )

    class Settings:
        name = "pallets"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("sscc", 1)], unique=True)]
