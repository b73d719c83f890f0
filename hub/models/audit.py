"""The audit log: who did what, when, from where, and whether it was allowed. Never holds secrets or tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pymongo
from beanie import Document
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, key


class AuditEntry(Document):
    tenant_id: str | None  # None: a refusal that could not be tied to a tenant (unknown client)
    action: str  # e.g. token.issued, token.refused, token.revoked, client.created, member.removed
    outcome: str = "success"  # success | refused
    actor: str | None = None  # member subject, client id, or None for anonymous callers
    actor_kind: str = "anonymous"  # member | client | anonymous | system
    client_id: str | None = None
    target: str | None = None
    reason: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "action",
        why="read per tenant, newest first, optionally by action",
    )

    class Settings:
        name = "audit_log"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("_id", -1)]),
            pymongo.IndexModel([("tenant_id", 1), ("action", 1), ("_id", -1)]),
        ]
