"""GraphQL types of a client's safelist."""

from __future__ import annotations

from datetime import datetime

import strawberry

from hub.models.persisted import SafelistedQuery


@strawberry.type
class SafelistedQueryType:
    hash: str = strawberry.field(description="SHA-256 of the query text (hex): send it as persistedQuery.sha256Hash")
    name: str | None
    created_by: str
    created_at: datetime

    @classmethod
    def from_model(cls, entry: SafelistedQuery) -> SafelistedQueryType:
        return cls(hash=entry.hash, name=entry.name, created_by=entry.created_by, created_at=entry.created_at)


@strawberry.type
class ClientSafelistType:
    client_id: str
    enforced: bool = strawberry.field(description="When true the client may run only these queries")
    queries: list[SafelistedQueryType]
