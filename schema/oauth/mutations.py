"""Mutations: register, rotate and delete OAuth clients; configure the tenant's identity provider (admins)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.oauth import clients, upstream
from schema.oauth.types import (
    CreateOAuthClientInput,
    IdentityProviderInput,
    IdentityProviderType,
    OAuthClientCredentials,
    OAuthClientType,
)
from schema.permissions import allowed
from tenants.roles import Group


@strawberry.type
class Mutation:
    @strawberry.mutation(name="createOAuthClient", permission_classes=allowed(Group.administration))
    async def create_oauth_client(self, info: Info, input: CreateOAuthClientInput) -> OAuthClientCredentials:
        access = await info.context.access()
        client, secret = await clients.create_client(
            access, input.name, input.kind, input.scopes, input.roles, input.redirect_uris
        )
        return OAuthClientCredentials(client=OAuthClientType.from_model(client), client_secret=secret)

    @strawberry.mutation(name="rotateOAuthClientSecret", permission_classes=allowed(Group.administration))
    async def rotate_oauth_client_secret(self, info: Info, client_id: str) -> OAuthClientCredentials:
        client, secret = await clients.rotate_secret(await info.context.access(), client_id)
        return OAuthClientCredentials(client=OAuthClientType.from_model(client), client_secret=secret)

    @strawberry.mutation(name="deleteOAuthClient", permission_classes=allowed(Group.administration))
    async def delete_oauth_client(self, info: Info, client_id: str) -> str:
        hub = info.context.hub
        await clients.delete_client(
            await info.context.access(), client_id, hub.validator.revocations,
            hub.settings.oauth_access_token_ttl_seconds,
        )
        return client_id

    @strawberry.mutation(permission_classes=allowed(Group.administration))
    async def configure_identity_provider(self, info: Info, input: IdentityProviderInput) -> IdentityProviderType:
        provider = await upstream.configure_provider(
            await info.context.access(), input.issuer, input.client_id, input.client_secret, input.scope
        )
        return IdentityProviderType.from_model(provider)
