"""A tenant's choices for its inventory health figures."""

from __future__ import annotations

from datetime import datetime

import pymongo
from beanie import Document
from pydantic import Field

from hub.dates import utcnow


class HealthSettings(Document):
    tenant_id: str
    aging_bands: list[int]  # upper bounds in days, increasing; stock older than the last is the open band
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "health_settings"
        indexes = [pymongo.IndexModel([("tenant_id", 1)], unique=True)]
