"""Notifications: what an escalation step tells a role or a member of the alert's owner, and who has read it."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import pymongo
from beanie import Document, PydanticObjectId
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


def role_key(role: str) -> str:
    return f"role:{role}"


def member_key(member_id: str) -> str:
    return f"member:{member_id}"


class Notification(Document):
    """One step's message to the owner's people, written with the step's ``alert.escalated`` event.

    ``recipients`` holds ``role:<role>`` or ``member:<id>``: a reader sees a notification when one of its own keys is
    in it, so a query is the tenant plus one ``$in`` on an index. Read state is per reader (a role notification has
    several); acknowledging is once for everyone addressed: someone has taken it.
    """

    tenant_id: str  # the alert's owner: nobody of another tenant is ever addressed
    recipients: list[str]
    alert_id: PydanticObjectId
    alert_kind: str
    severity: str
    title: str
    step: int
    of: int
    action: str  # notify_role | notify_member
    created_at: datetime = Field(default_factory=utcnow)
    read_by: list[str] = Field(default_factory=list)  # readers: member id, else issuer|subject
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "alert_id",
        why="the owner's notifications, by the alert they are about",
    )

    class Settings:
        name = "notifications"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("recipients", 1), ("created_at", -1)]),  # a reader's, newest first
            pymongo.IndexModel([("tenant_id", 1), ("alert_id", 1)]),
        ]
