"""Queries: the tenant's OAuth clients, its identity provider and its audit log (tenant admins)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from hub.models.audit import AuditEntry
from hub.models.oauth import IdentityProvider, OAuthClient
from schema.oauth.types import AuditEntryType, AuditFilter, IdentityProviderType, OAuthClientType
from schema.pagination import Connection, paginate
from schema.permissions import allowed
from tenants.roles import Group


@strawberry.type
class Query:
    @strawberry.field(name="oauthClients", permission_classes=allowed(Group.administration))
    async def oauth_clients(
        self, info: Info, first: int = 100, after: str | None = None
    ) -> Connection[OAuthClientType]:
        access = await info.context.access()
        return await paginate(
            OAuthClient, access.oauth_clients(), first, after, info.context.hub.settings.max_page_size,
            OAuthClientType.from_model,
        )

    @strawberry.field(permission_classes=allowed(Group.administration))
    async def identity_provider(self, info: Info) -> IdentityProviderType | None:
        access = await info.context.access()
        provider = await IdentityProvider.find_one(access.oauth_clients())
        return IdentityProviderType.from_model(provider) if provider else None

    @strawberry.field(permission_classes=allowed(Group.administration), description="Newest first.")
    async def audit_log(
        self, info: Info, filter: AuditFilter | None = None, first: int = 100, after: str | None = None
    ) -> Connection[AuditEntryType]:
        access = await info.context.access()
        query: dict[str, Any] = access.audit_log()
        if filter and filter.action:
            query["action"] = filter.action
        if filter and filter.outcome:
            query["outcome"] = filter.outcome
        if filter and filter.actor:
            query["actor"] = filter.actor
        if filter and filter.client_id:
            query["client_id"] = filter.client_id
        if filter and filter.since:
            query["at"] = {"$gte": filter.since}
        return await paginate(
            AuditEntry, query, first, after, info.context.hub.settings.max_page_size, AuditEntryType.from_model,
            descending=True,
        )
