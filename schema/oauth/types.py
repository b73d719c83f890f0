"""GraphQL types for OAuth clients, the tenant's identity provider and the audit log. No type carries a stored
secret: a client secret appears once, in the answer of the mutation that created or rotated it."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

import schema.scalars  # noqa: F401 - binds the model enums to GraphQL
from hub.models.audit import AuditEntry
from hub.models.oauth import ClientKind, IdentityProvider, OAuthClient
from tenants.models import Role


@strawberry.type(name="OAuthClient")
class OAuthClientType:
    id: strawberry.ID
    client_id: str
    name: str
    kind: ClientKind
    scopes: list[str]
    roles: list[Role]
    grant_types: list[str]
    redirect_uris: list[str]
    created_by: str
    created_at: datetime
    secret_rotated_at: datetime | None

    @classmethod
    def from_model(cls, client: OAuthClient) -> OAuthClientType:
        return cls(
            id=strawberry.ID(str(client.id)),
            client_id=client.client_id,
            name=client.name,
            kind=client.kind,
            scopes=list(client.scopes),
            roles=list(client.roles),
            grant_types=list(client.grant_types),
            redirect_uris=list(client.redirect_uris),
            created_by=client.created_by,
            created_at=client.created_at,
            secret_rotated_at=client.secret_rotated_at,
        )


@strawberry.type
class OAuthClientCredentials:
    """A client and its secret, shown this once (stored hashed); null for public clients."""

    client: OAuthClientType
    client_secret: str | None


@strawberry.input
class CreateOAuthClientInput:
    name: str
    scopes: list[str]
    kind: ClientKind = ClientKind.confidential
    roles: list[Role] = strawberry.field(default_factory=lambda: [Role.integration])
    redirect_uris: list[str] = strawberry.field(default_factory=list)


@strawberry.input
class IdentityProviderInput:
    issuer: str
    client_id: str
    client_secret: str
    scope: str | None = None


@strawberry.type(name="IdentityProvider")
class IdentityProviderType:
    issuer: str
    client_id: str
    scope: str
    updated_at: datetime

    @classmethod
    def from_model(cls, provider: IdentityProvider) -> IdentityProviderType:
        return cls(
            issuer=provider.issuer, client_id=provider.client_id, scope=provider.scope, updated_at=provider.updated_at
        )


@strawberry.input
class AuditFilter:
    action: str | None = None
    outcome: str | None = None
    actor: str | None = strawberry.field(default=None, description="A member subject or client id")
    client_id: str | None = None
    since: datetime | None = None


@strawberry.type(name="AuditEntry")
class AuditEntryType:
    id: strawberry.ID
    at: datetime
    action: str
    outcome: str
    actor: str | None
    actor_kind: str
    client_id: str | None
    target: str | None
    reason: str | None
    ip: str | None
    user_agent: str | None
    details: JSON

    @classmethod
    def from_model(cls, entry: AuditEntry) -> AuditEntryType:
        return cls(
            id=strawberry.ID(str(entry.id)),
            at=entry.at,
            action=entry.action,
            outcome=entry.outcome,
            actor=entry.actor,
            actor_kind=entry.actor_kind,
            client_id=entry.client_id,
            target=entry.target,
            reason=entry.reason,
            ip=entry.ip,
            user_agent=entry.user_agent,
            details=JSON(entry.details),
        )
