"""Places where a tenant holds goods: warehouses, DCs, stores and zones inside them."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class LocationKind(str, Enum):
    warehouse = "warehouse"
    dc = "dc"
    store = "store"
    zone = "zone"


class Location(Document):
    tenant_id: str
    code: str
    name: str
    kind: LocationKind
    gln: str | None = None
    parent_id: PydanticObjectId | None = None
    created_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "code",
        why="the owner's places; the unique (tenant_id, code) starts with it",
    )

    class Settings:
        name = "locations"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("code", 1)], unique=True)]
