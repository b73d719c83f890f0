"""Persisted queries: the automatic (APQ) cache of query texts by hash, and each OAuth client's safelist."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import pymongo
from beanie import Document
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, Unsharded


class PersistedQuery(Document):
    """A query text under its SHA-256 (hex), and the tenants that registered it: a hash answers only those (a text
    can hold what it asks about, so one tenant's registration must not tell others that someone ran it)."""

    id: str  # type: ignore[assignment]  # the hash
    query: str
    tenants: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = Unsharded(
        "query texts by hash, each answering the tenants that registered it",
    )

    class Settings:
        name = "persisted_queries"


class SafelistedQuery(Document):
    """A query an OAuth client may run while its safelist is enforced."""

    tenant_id: str
    client_id: str
    hash: str
    name: str | None = None
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = Unsharded(
        "a client's safelist, looked up by (client_id, hash) before the tenant is known",
    )

    class Settings:
        name = "safelisted_queries"
        indexes = [pymongo.IndexModel([("client_id", 1), ("hash", 1)], unique=True)]


class ClientSafelist(Document):
    """Whether a client runs only its safelisted queries (no document: it may run any query)."""

    id: str  # type: ignore[assignment]  # the client id
    tenant_id: str
    enforced: bool = False
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = Unsharded(
        "one small document per OAuth client",
    )

    class Settings:
        name = "client_safelists"


MODELS: list[type[Document]] = [PersistedQuery, SafelistedQuery, ClientSafelist]
