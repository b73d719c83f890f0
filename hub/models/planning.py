"""Planning: daily demand series per position, planning policies, and transfer recommendations.

``DemandSeries`` is written in the same transaction as the movements it sums (one document per holder, location and
SKU, one small entry per day), so the sweep never rescans the ledger: that is what keeps it incremental.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class DemandSeries(Document):
    """Daily sums for one (holder, location, SKU) over all its lots.

    ``days`` maps an ISO date to ``{"s": units sold or issued, "n": net change of on-hand, "pv": price × units,
    "pu": units sold with a price, "pr": units sold on promotion}``. ``on_hand`` is the sum of the changes, so the
    on-hand at the end of any day is ``on_hand`` less the net changes after it (stockout days need no position
    history). Days before ``kept_from`` have been removed (hub/services/demand.py keeps what readers look back on).
    """

    tenant_id: str
    location_id: PydanticObjectId
    sku_id: PydanticObjectId
    sku_owner_id: str
    on_hand: int = 0
    days: dict[str, dict[str, float]] = Field(default_factory=dict)
    first_day: str | None = None
    kept_from: str | None = None  # the oldest day kept in ``days``; absent: every day since ``first_day``
    last_sale_day: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "location_id", "sku_id",
        why="written with the holder's movements; the unique key starts with it",
    )

    class Settings:
        name = "demand_series"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("location_id", 1), ("sku_id", 1)], unique=True),
            pymongo.IndexModel([("updated_at", 1)]),
            pymongo.IndexModel([("tenant_id", 1), ("sku_id", 1)]),  # a holder's network of one SKU (transfers)
            pymongo.IndexModel([("sku_owner_id", 1), ("tenant_id", 1)]),
        ]


class PlanningPolicy(Document):
    """A holder's planning parameters for a SKU, at one location or (``location_id`` None) at all of them."""

    tenant_id: str
    sku_id: PydanticObjectId
    location_id: PydanticObjectId | None = None
    lead_time_days: float | None = None
    review_days: float | None = None
    target_days_of_supply: float | None = None
    max_days_of_supply: float | None = None  # obsolescence threshold
    discontinued: bool = False
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "sku_id", "location_id",
        why="the tenant's policies; the unique key starts with it",
    )

    class Settings:
        name = "planning_policies"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("sku_id", 1), ("location_id", 1)], unique=True)]


class RecommendationStatus(str, Enum):
    open = "open"
    accepted = "accepted"
    dismissed = "dismissed"
    expired = "expired"  # the situation changed: a later sweep no longer proposes it


class TransferKind(str, Enum):
    internal = "internal"  # between two locations of one holder: accepting books a transfer_out/transfer_in pair
    partner = "partner"  # from one holder to another (VMI): accepting drafts a dispatch for the source to confirm


class TransferLot(BaseModel):
    lot_id: PydanticObjectId | None = None
    lot_code: str | None = None
    quantity: int
    expires_on: date | None = None


class TransferRecommendation(Document):
    """``internal``: ``tenant_id`` holds both locations. ``partner``: ``tenant_id`` is the SKU owner, the one tenant
    that sees both holders' stock (each shares ``stock`` with it); the holders learn of it as a draft dispatch."""

    tenant_id: str
    kind: TransferKind = TransferKind.internal
    from_holder_id: str | None = None  # partner: the shipper of the draft
    to_holder_id: str | None = None  # partner: its consignee
    dispatch_id: PydanticObjectId | None = None  # partner, once accepted: the draft dispatch
    dispatch_ref: str | None = None
    audience: list[str]
    sku_id: PydanticObjectId
    sku_code: str
    sku_owner_id: str  # VMI: the SKU owner reads it when the holder shares ``stock`` with it
    from_location_id: PydanticObjectId
    from_location_code: str
    to_location_id: PydanticObjectId
    to_location_code: str
    quantity: int
    lots: list[TransferLot] = Field(default_factory=list)
    units_saved_from_expiry: int = 0
    stockout_days_avoided: float = 0.0
    evidence: dict[str, Any] = Field(default_factory=dict)
    dedupe_key: str
    status: RecommendationStatus = RecommendationStatus.open
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None  # why it was dismissed or expired
    booked_keys: list[str] = Field(default_factory=list)  # idempotency keys of the movements accepting it booked

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "sku_id",
        why="the holder's network of one SKU",
        before_sharding="the unique dedupe_key becomes (tenant_id, dedupe_key)",
    )

    class Settings:
        name = "transfer_recommendations"
        indexes = [
            # one open recommendation per (holder, SKU, from, to); decided ones stay as history
            pymongo.IndexModel([("dedupe_key", 1)], unique=True,
                               partialFilterExpression={"status": RecommendationStatus.open.value}),
            pymongo.IndexModel([("dedupe_key", 1), ("status", 1), ("decided_at", 1)]),
            pymongo.IndexModel([("tenant_id", 1), ("sku_id", 1), ("status", 1)]),
            pymongo.IndexModel([("audience", 1), ("status", 1), ("_id", -1)]),
        ]


MODELS: list[type[Document]] = [DemandSeries, PlanningPolicy, TransferRecommendation]
