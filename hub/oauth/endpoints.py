"""Token revocation (RFC 7009) and introspection (RFC 7662) over the hub's two kinds of token.

Access tokens are JWTs: revoking one puts its ``jti`` on the revocation list until it expires. Refresh tokens are
looked up by digest: revoking one ends its whole family, including the access tokens issued from it (RFC 7009 §2.1).
Introspection answers only confidential clients of the token's own tenant; everyone else learns ``active: false``,
as does anyone asking about a token that the hub's own API would refuse (revoked, its client deleted, its member
removed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from anyio import from_thread
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from hub import audit
from hub.errors import Unauthenticated
from hub.models.oauth import RefreshToken
from hub.oauth.revocation import client_key, family_key, token_key
from hub.oauth.tokens import digest

if TYPE_CHECKING:
    from hub.oauth.clients import HubClient
    from hub.oauth.server import HubAuthorizationServer


@dataclass
class TokenRecord:
    kind: str  # access_token | refresh_token
    tenant_id: str
    client_id: str
    scope: str
    expires_at: float
    subject: str | None = None
    jti: str | None = None
    family_id: str | None = None
    revoked: bool = False
    claims: dict[str, Any] = field(default_factory=dict)

    def check_client(self, client: HubClient) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked


async def find_token(server: HubAuthorizationServer, token: str, hint: str | None) -> TokenRecord | None:
    if len(token) > 8192:
        return None
    if token.startswith("lprt_"):
        doc = await RefreshToken.find_one({"token_hash": digest(token)})
        if doc is None:
            return None
        revoked = (
            doc.revoked or doc.rotated
            or await server.revocations.contains_any([family_key(doc.family_id), client_key(doc.client_id)])
            or not await server.validator.member_exists(doc.member_id, doc.tenant_id)
        )
        return TokenRecord(
            "refresh_token", doc.tenant_id, doc.client_id, doc.scope, doc.expires_at.timestamp(),
            family_id=doc.family_id, revoked=revoked,
        )
    try:
        claims = await server.validator.decode(token)
    except Unauthenticated:
        return None
    asserted = claims.get(server.settings.claim_namespace) or {}
    if claims["iss"] != server.settings.issuer or "client_id" not in claims or not isinstance(asserted, dict):
        return None
    keys = [token_key(str(claims.get("jti"))), client_key(claims["client_id"])]
    if asserted.get("family"):
        keys.append(family_key(asserted["family"]))
    tenant_id = str(asserted.get("tenant"))
    member_id = asserted.get("member")
    revoked = await server.revocations.contains_any(keys) or (
        isinstance(member_id, str) and not await server.validator.member_exists(member_id, tenant_id)
    )
    return TokenRecord(
        "access_token", tenant_id, claims["client_id"], claims.get("scope", ""), float(claims["exp"]),
        subject=claims["sub"], jti=claims.get("jti"), family_id=asserted.get("family"), revoked=revoked, claims=claims,
    )


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: HubAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        return from_thread.run(find_token, self.server, token_string, token_type_hint)

    def revoke_token(self, token: TokenRecord, request: Any) -> None:
        from_thread.run(self._revoke, token, request)

    async def _revoke(self, token: TokenRecord, request: Any) -> None:
        revocations = self.server.revocations
        if token.kind == "refresh_token" and token.family_id:
            await revocations.revoke_family(
                token.family_id, token.tenant_id, "revoked by client", self.server.access_ttl
            )
            target = f"family:{token.family_id}"
        else:
            expires = datetime.fromtimestamp(token.expires_at + 60, UTC)
            await revocations.revoke(token_key(str(token.jti)), token.tenant_id, "revoked by client", expires)
            target = f"jti:{token.jti}"
        await audit.record(
            "token.revoked",
            tenant_id=token.tenant_id,
            actor=token.client_id,
            actor_kind="client",
            client_id=token.client_id,
            target=target,
            details={"kind": token.kind},
            origin=request.origin,
        )


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    server: HubAuthorizationServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        return from_thread.run(find_token, self.server, token_string, token_type_hint)

    def check_permission(self, token: TokenRecord, client: HubClient, request: Any) -> bool:
        return token.tenant_id == client.tenant_id

    def introspect_token(self, token: TokenRecord) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "active": True,
            "client_id": token.client_id,
            "scope": token.scope,
            "exp": int(token.expires_at),
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "tenant": token.tenant_id,
        }
        if token.kind == "access_token":
            claims = token.claims
            payload.update(
                sub=claims.get("sub"), iss=claims.get("iss"), aud=claims.get("aud"), iat=claims.get("iat"),
                jti=claims.get("jti"),
            )
            asserted = claims.get(self.server.settings.claim_namespace) or {}
            payload["roles"] = asserted.get("roles", [])
        return payload

