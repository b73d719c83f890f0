"""What the hub issues: RFC 9068 JWT access tokens signed with the key ring, and rotating refresh tokens.

Access tokens are short (15 minutes by default) and self-contained, so resource servers (this hub's GraphQL, or
anyone holding the JWKS) verify them without a lookup; revocation is the exception, answered by the revocation list.
Refresh tokens are opaque random strings stored hashed, grouped into families: one family per sign-in.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from hub.config import Settings
from hub.keys import ALGORITHM, KeyRing
from hub.models.oauth import OAuthClient, RefreshToken
from tenants.models import Member

ACCESS_TOKEN_TYP = "at+jwt"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    """A credential with 256 bits of entropy and a recognisable prefix (secret scanners can spot leaks)."""
    return f"{prefix}{secrets.token_urlsafe(32)}"


def utc_in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


@dataclass
class Grantee:
    """The member a portal token is issued for, and the refresh family (one sign-in) it belongs to."""

    member: Member
    family_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    auth_time: int = field(default_factory=lambda: int(time.time()))  # when they signed in, not when a token is
    # The scope the sign-in's refresh tokens carry (RFC 6749 §6: a rotated refresh token keeps the scope of the one
    # it replaces, even when the refresh asked for a narrower access token). None: the scope of the first token.
    refresh_scope: str | None = None


def access_token_claims(
    settings: Settings, client: OAuthClient, grantee: Grantee | None, scopes: list[str], ttl: int
) -> dict[str, Any]:
    now = int(time.time())
    asserted: dict[str, Any] = {"tenant": client.tenant_id}
    if grantee is None:
        subject = client.client_id
        asserted["roles"] = [role.value for role in client.roles]
    else:
        member = grantee.member
        subject = str(member.id)
        asserted.update(
            roles=[role.value for role in member.roles],
            member=str(member.id),
            family=grantee.family_id,
            idp=member.issuer,
            idp_sub=member.subject,
        )
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": subject,
        "client_id": client.client_id,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "scope": " ".join(scopes),
        settings.claim_namespace: asserted,
    }
    if grantee is not None:
        claims["auth_time"] = grantee.auth_time
    return claims


_private_keys: dict[str, Any] = {}  # kid (a key thumbprint) -> parsed key: parsing the PEM costs milliseconds


def sign_access_token(keyring: KeyRing, claims: dict[str, Any]) -> str:
    key = keyring.current
    private = _private_keys.get(key.kid)
    if private is None:
        private = _private_keys[key.kid] = key.private_key
    return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYP})


async def store_refresh_token(
    settings: Settings, client: OAuthClient, grantee: Grantee, scope: str
) -> str:
    token = new_secret("lprt_")
    await RefreshToken(
        token_hash=digest(token),
        family_id=grantee.family_id,
        client_id=client.client_id,
        tenant_id=client.tenant_id,
        member_id=str(grantee.member.id),
        scope=scope,
        expires_at=utc_in(settings.oauth_refresh_token_ttl_seconds),
        auth_time=grantee.auth_time,
    ).insert()
    return token
