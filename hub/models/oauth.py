"""OAuth state the hub keeps: registered clients, per-tenant upstream identity providers, authorization codes,
refresh-token families, revocations and failed-authentication counters.

Secrets and tokens are stored only as SHA-256 digests: they are long random strings (not passwords), so a fast hash
is enough and a database leak does not leak usable credentials. The upstream client secret is the one exception: the
hub must present it to the identity provider, so it is stored as given and never returned by the API.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import ClassVar

import pymongo
from beanie import Document
from pydantic import Field

from hub.dates import utcnow
from hub.sharding import Declaration, Unsharded
from tenants.models import Role


class ClientKind(str, Enum):
    confidential = "confidential"  # an ERP or other server: authenticates with its secret
    public = "public"  # a browser or native portal: no secret, PKCE only


class OAuthClient(Document):
    client_id: str
    tenant_id: str
    name: str
    kind: ClientKind
    secret_hash: str | None = None
    scopes: list[str]
    roles: list[Role] = Field(default_factory=list)  # what a client_credentials token acts as
    grant_types: list[str]
    redirect_uris: list[str] = Field(default_factory=list)
    created_by: str
    created_at: datetime = Field(default_factory=utcnow)
    secret_rotated_at: datetime | None = None

    shard_key: ClassVar[Declaration] = Unsharded(
        "a handful per tenant, looked up by client id before the tenant is known",
    )

    class Settings:
        name = "oauth_clients"
        indexes = [
            pymongo.IndexModel([("client_id", 1)], unique=True),
            pymongo.IndexModel([("tenant_id", 1)]),
        ]


class IdentityProvider(Document):
    """The OpenID Connect provider a tenant's portal users sign in with."""

    tenant_id: str
    issuer: str
    client_id: str
    client_secret: str
    scope: str = "openid email profile"
    updated_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = Unsharded(
        "one per tenant at most, read on sign-in",
    )

    class Settings:
        name = "identity_providers"
        indexes = [pymongo.IndexModel([("tenant_id", 1)], unique=True)]


class AuthorizationCode(Document):
    code_hash: str
    client_id: str
    tenant_id: str
    member_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    family_id: str  # the refresh-token family its tokens start; a replayed code revokes it
    expires_at: datetime
    used: bool = False
    auth_time: int | None = None  # when the member signed in at their identity provider (RFC 9068 auth_time)

    shard_key: ClassVar[Declaration] = Unsharded(
        "short-lived, looked up by the code's hash before any tenant is known",
    )

    class Settings:
        name = "oauth_codes"
        indexes = [
            pymongo.IndexModel([("code_hash", 1)], unique=True),
            pymongo.IndexModel([("expires_at", 1)], expireAfterSeconds=3600),
        ]


class RefreshToken(Document):
    token_hash: str
    family_id: str
    client_id: str
    tenant_id: str
    member_id: str
    scope: str
    expires_at: datetime
    rotated: bool = False  # used once already: presenting it again revokes the family
    revoked: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    auth_time: int | None = None  # the sign-in's, carried through every rotation (older tokens: unknown)

    shard_key: ClassVar[Declaration] = Unsharded(
        "looked up by the token's hash before any tenant is known",
    )

    class Settings:
        name = "oauth_refresh_tokens"
        indexes = [
            pymongo.IndexModel([("token_hash", 1)], unique=True),
            pymongo.IndexModel([("family_id", 1)]),
            pymongo.IndexModel([("expires_at", 1)], expireAfterSeconds=0),
        ]


class Revocation(Document):
    """A revoked access token (``jti:``), refresh family (``fam:``), client (``client:``) or member (``member:``);
    kept until every token it covers has expired."""

    key: str
    tenant_id: str
    reason: str
    expires_at: datetime
    created_at: datetime = Field(default_factory=utcnow)

    shard_key: ClassVar[Declaration] = Unsharded(
        "short-lived, looked up by key on every request",
    )

    class Settings:
        name = "oauth_revocations"
        indexes = [
            pymongo.IndexModel([("key", 1)], unique=True),
            pymongo.IndexModel([("expires_at", 1)], expireAfterSeconds=0),
        ]


class FailedAuth(Document):
    """Failed client authentications in one window, per client id or per IP."""

    key: str
    window_start: datetime
    failures: int = 0
    expires_at: datetime

    shard_key: ClassVar[Declaration] = Unsharded(
        "short-lived counters by caller key, before any tenant is known",
    )

    class Settings:
        name = "oauth_failed_auth"
        indexes = [
            pymongo.IndexModel([("key", 1), ("window_start", 1)], unique=True),
            pymongo.IndexModel([("expires_at", 1)], expireAfterSeconds=0),
        ]


class SignInState(Document):
    """State of a sign-in in flight: the portal's authorization request, and authlib's upstream state data."""

    key: str
    value: str
    expires_at: datetime

    shard_key: ClassVar[Declaration] = Unsharded(
        "short-lived, looked up by key during a sign-in",
    )

    class Settings:
        name = "oauth_signin_state"
        indexes = [
            pymongo.IndexModel([("key", 1)], unique=True),
            pymongo.IndexModel([("expires_at", 1)], expireAfterSeconds=0),
        ]


MODELS: list[type[Document]] = [
    OAuthClient,
    IdentityProvider,
    AuthorizationCode,
    RefreshToken,
    Revocation,
    FailedAuth,
    SignInState,
]
