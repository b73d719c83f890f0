"""Places where a tenant holds goods: warehouses, DCs, stores and zones inside them."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from hub.dates import utcnow


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

    class Settings:
        name = "locations"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("code", 1)], unique=True)]
