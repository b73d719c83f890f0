"""OAuth clients: registering, rotating and deleting them (tenant admins), and the view authlib works with.

A confidential client (a partner ERP) holds a secret shown once and stored hashed; it uses ``client_credentials``
and, with redirect URIs, the authorization code flow. A public client (a browser portal) has no secret and must use
the authorization code flow with PKCE. Redirect URIs are matched exactly (RFC 9700 §2.1).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin

from hub import audit
from hub.errors import BadInput, Forbidden, NotFound
from hub.models.oauth import ClientKind, OAuthClient, RefreshToken
from hub.oauth.revocation import RevocationList, client_key
from hub.oauth.scopes import parse_scope, unknown_scopes
from hub.oauth.tokens import digest, new_secret, utc_in
from tenants.access import Access
from tenants.models import Role
from tenants.roles import Group

SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
MAX_REDIRECT_URIS = 10


@dataclass
class HubClient(ClientMixin):
    """An ``OAuthClient`` as authlib's ClientMixin."""

    doc: OAuthClient

    @property
    def tenant_id(self) -> str:
        return self.doc.tenant_id

    @property
    def is_public(self) -> bool:
        return self.doc.kind == ClientKind.public

    def get_client_id(self) -> str:
        return self.doc.client_id

    def get_default_redirect_uri(self) -> str | None:
        # Only an unambiguous single registration may be implied (RFC 6749 §3.1.2.3).
        return self.doc.redirect_uris[0] if len(self.doc.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return " ".join(self.doc.scopes)
        return " ".join(s for s in parse_scope(scope) if s in self.doc.scopes)

    def lacks_scopes(self, scope: str | None) -> list[str]:
        return [s for s in parse_scope(scope) if s not in self.doc.scopes]

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.doc.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.doc.secret_hash is None:
            return False
        return hmac.compare_digest(digest(client_secret), self.doc.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            return method == "none"
        return method in SECRET_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.doc.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.doc.grant_types


def _check_redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.fragment or not parts.hostname or not (parts.scheme == "https" or parts.scheme == "http" and loopback):
        raise BadInput(f"redirect URI {uri!r} must be absolute https (or http on loopback) without a fragment")
    return uri


def _validated(kind: ClientKind, scopes: list[str], roles: list[Role], redirect_uris: list[str]) -> list[str]:
    scopes = list(dict.fromkeys(scopes))
    if not scopes:
        raise BadInput("a client needs at least one scope", field="scopes")
    if unknown := unknown_scopes(scopes):
        raise BadInput(f"unknown scopes: {', '.join(unknown)}", field="scopes")
    if len(redirect_uris) > MAX_REDIRECT_URIS:
        raise BadInput(f"at most {MAX_REDIRECT_URIS} redirect URIs", field="redirectUris")
    for uri in redirect_uris:
        _check_redirect_uri(uri)
    if kind == ClientKind.public:
        if not redirect_uris:
            raise BadInput("a public client needs at least one redirect URI", field="redirectUris")
        if roles:
            raise BadInput("a public client acts with its signed-in member's roles, not its own", field="roles")
        return ["authorization_code", "refresh_token"]
    if not roles:
        raise BadInput("a confidential client needs the roles its tokens act with", field="roles")
    return ["client_credentials", *(["authorization_code", "refresh_token"] if redirect_uris else [])]


def _within_caller_scopes(access: Access, scopes: list[str]) -> None:
    """A scoped token may not hand out scopes it lacks: its scopes narrow what it may do, and an OAuth client with
    more (made, or re-keyed, by it) would widen them. Tokens without scopes are bounded by their roles alone."""
    held = access.principal.scopes
    if held is not None and (lacking := [scope for scope in scopes if scope not in held]):
        raise Forbidden(f"the token lacks the scopes it would hand out: {' '.join(lacking)}")


async def create_client(
    access: Access,
    name: str,
    kind: ClientKind,
    scopes: list[str],
    roles: list[Role],
    redirect_uris: list[str],
) -> tuple[OAuthClient, str | None]:
    """Register a client; answers it and its secret (None for public clients), which is never shown again."""
    access.require(Group.administration)
    if not name.strip() or len(name) > 200:
        raise BadInput("name must be 1 to 200 characters", field="name")
    grant_types = _validated(kind, scopes, roles, redirect_uris)
    _within_caller_scopes(access, scopes)
    secret = new_secret("lpcs_") if kind == ClientKind.confidential else None
    client = OAuthClient(
        client_id=f"lpc_{secrets.token_urlsafe(12)}",
        tenant_id=access.tenant_id,
        name=name.strip(),
        kind=kind,
        secret_hash=digest(secret) if secret else None,
        scopes=list(dict.fromkeys(scopes)),
        roles=list(dict.fromkeys(roles)),
        grant_types=grant_types,
        redirect_uris=list(dict.fromkeys(redirect_uris)),
        created_by=access.principal.subject,
    )
    await client.insert()
    await audit.record(
        "client.created",
        tenant_id=access.tenant_id,
        principal=access.principal,
        target=client.client_id,
        details={"name": client.name, "kind": kind.value, "scopes": client.scopes, "roles": [r.value for r in roles]},
    )
    return client, secret


async def tenant_client(access: Access, client_id: str) -> OAuthClient:
    client = await OAuthClient.find_one({"client_id": client_id, **access.oauth_clients()})
    if client is None:
        raise NotFound("OAuth client not found")
    return client


async def rotate_secret(access: Access, client_id: str) -> tuple[OAuthClient, str]:
    """A new secret replaces the old one at once: tokens already issued stay valid until they expire."""
    access.require(Group.administration)
    client = await tenant_client(access, client_id)
    if client.kind != ClientKind.confidential:
        raise BadInput("a public client has no secret")
    _within_caller_scopes(access, client.scopes)
    secret = new_secret("lpcs_")
    client.secret_hash = digest(secret)
    client.secret_rotated_at = datetime.now(UTC)
    await client.save()
    await audit.record(
        "client.secret_rotated", tenant_id=access.tenant_id, principal=access.principal, target=client_id
    )
    return client, secret


async def delete_client(access: Access, client_id: str, revocations: RevocationList, access_ttl: int) -> None:
    """Delete a client: no new tokens at once, and every token it holds is refused from now on."""
    access.require(Group.administration)
    client = await tenant_client(access, client_id)
    await client.delete()
    await revocations.revoke(client_key(client_id), client.tenant_id, "client deleted", utc_in(access_ttl + 60))
    await RefreshToken.get_pymongo_collection().update_many({"client_id": client_id}, {"$set": {"revoked": True}})
    await audit.record("client.deleted", tenant_id=access.tenant_id, principal=access.principal, target=client_id)


async def find_client(client_id: str) -> HubClient | None:
    doc = await OAuthClient.find_one({"client_id": client_id})
    return HubClient(doc) if doc else None
