"""Pallets and cases by SSCC: what a logistic unit holds, as the tenant's own aggregation events (EPCIS) last said.

One document per (tenant, SSCC) with its current contents: the packing record a dispatch line naming the SSCC alone
ships from. Once shipped, the dispatch's lines are what everybody goes by (receipts scanning the SSCC, sensors
attached to it): see hub/services/pallets.py.
"""

from __future__ import annotations

from datetime import date, datetime
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
    # Set when an excursion seen by a logger on this pallet shortened these goods' shelf life (not the lot's).
    effective_expires_on: date | None = None


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
