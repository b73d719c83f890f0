"""Bearer-token validation (resource-server side) and the Principal a token maps to.

Tokens are checked for signature, ``exp``, ``nbf``, ``iss`` and ``aud`` against an explicit algorithm allow-list per
issuer, so ``alg: none`` and HS/RS confusion can never pass. The hub's own tokens are verified against its key ring
directly; other issuers' keys come from their JWKS through ``PyJWKClient`` (sync, so it runs in a thread).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from beanie import PydanticObjectId
from bson.errors import InvalidId
from starlette.concurrency import run_in_threadpool

from hub import audit
from hub.config import Settings, TrustedIssuer
from hub.errors import Unauthenticated
from hub.keys import ALGORITHM, KeyRing
from hub.oauth.revocation import RevocationList, client_key, family_key, token_key
from tenants.models import Member, Role, Tenant

log = logging.getLogger("lotpulse.auth")
VERIFIED_KEPT = 10_000  # validated tokens remembered (by hash) until they expire
MEMBER_CACHE_SECONDS = 30.0  # removed members are refused within this window (or the revocation cache's, if shorter)
# The hub's own tokens: RFC 9068 access tokens from the OAuth server, and plain JWTs minted by `lotpulse token`.
HUB_TOKEN_TYPES = ("at+jwt", "JWT")


@dataclass(frozen=True)
class Principal:
    """Who is calling: one tenant, its roles, and (for OAuth tokens) the scopes the token carries."""

    tenant_id: str
    subject: str
    issuer: str
    roles: frozenset[str]
    scopes: frozenset[str] | None = None  # None: no scope restriction beyond the roles
    expires_at: float | None = None
    token_id: str | None = None
    client_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


def _text(value: Any) -> str | None:
    """A claim that names something (client_id): ignored unless it is a string."""
    return value if isinstance(value, str) else None


def _principal_from_claim(claims: dict[str, Any], namespace: str, issuer: str, own: bool) -> Principal | None:
    asserted = claims.get(namespace)
    if not isinstance(asserted, dict):
        return None
    tenant = asserted.get("tenant")
    roles = asserted.get("roles", [])
    if not isinstance(tenant, str) or not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthenticated("malformed tenant claim")
    valid_roles = {role.value for role in Role}
    scope = claims.get("scope")
    # A scope narrows the roles: one this hub cannot read must not read as "no restriction" (RFC 9068 sends a
    # space-separated string; some issuers a list).
    if isinstance(scope, list) and all(isinstance(s, str) for s in scope):
        scope = " ".join(scope)
    if scope is not None and not isinstance(scope, str):
        raise Unauthenticated("malformed scope claim")
    # The hub's OAuth sign-ins name the member (and the identity provider that vouched for them) and their refresh
    # family. Only the hub says so: another issuer trusted with tenant and roles does not speak for other identities.
    said = asserted if own else {}
    extra = {key: str(said[key]) for key in ("member", "family") if isinstance(said.get(key), str)}
    return Principal(
        tenant_id=tenant,
        subject=str(said.get("idp_sub") or claims.get("sub", "")),
        issuer=str(said.get("idp") or issuer),
        roles=frozenset(r for r in roles if r in valid_roles),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else None,
        expires_at=float(claims["exp"]) if "exp" in claims else None,
        token_id=claims.get("jti"),  # pyjwt refuses a jti that is not a string
        client_id=_text(claims.get("client_id")),
        extra={("member_id" if key == "member" else "family_id"): value for key, value in extra.items()},
    )


class TokenValidator:
    """Turns a bearer token into a Principal, or raises Unauthenticated."""

    def __init__(self, settings: Settings, keyring: KeyRing) -> None:
        self.settings = settings
        self.keyring = keyring
        self.issuers: dict[str, TrustedIssuer] = {item.issuer: item for item in settings.trusted_issuers}
        self._jwks: dict[str, jwt.PyJWKClient] = {}
        self._members: dict[tuple[str, str], tuple[float, Member | None]] = {}
        self._tenants: dict[str, float] = {}
        self._member_ids: dict[str, tuple[float, bool]] = {}
        self._public_keys: dict[str, Any] = {}
        self._revoked_seen: set[str] = set()
        self.revocations = RevocationList(settings.oauth_revocation_cache_seconds)
        # A client sends the same token on every request: its signature and claims were checked once and do not
        # change, so they are kept (by the token's hash) until it expires. Revocation is still checked per request.
        self._verified: dict[bytes, tuple[float, str | None, dict[str, Any]]] = {}

    def _issuer_key(self, token: str, issuer: str) -> tuple[Any, list[str], str]:
        """Key, allowed algorithms and audience for one issuer (blocking: JWKS may be fetched)."""
        if issuer == self.settings.issuer:
            header = jwt.get_unverified_header(token)
            if header.get("typ", "JWT") not in HUB_TOKEN_TYPES:
                raise Unauthenticated("not an access token")
            kid = header.get("kid")
            key = self.keyring.find(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unauthenticated("unknown signing key")
            # Parsing the PEM costs milliseconds; every request pays it unless the public key is kept (kid is a
            # thumbprint, so it names one key for good).
            public = self._public_keys.get(key.kid)
            if public is None:
                public = self._public_keys[key.kid] = key.private_key.public_key()
            return public, [ALGORITHM], self.settings.audience
        trusted = self.issuers.get(issuer)
        if trusted is None:
            raise Unauthenticated("untrusted issuer")
        client = self._jwks.setdefault(issuer, jwt.PyJWKClient(trusted.jwks_url, cache_keys=True, lifespan=300))
        return client.get_signing_key_from_jwt(token).key, list(trusted.algorithms), trusted.audience

    async def decode(self, token: str) -> dict[str, Any]:
        digest = hashlib.sha256(token.encode()).digest()
        kept = self._verified.get(digest)
        if kept is not None:
            until, kid, claims = kept
            # The hub's own key may be retired early (``lotpulse keys rotate --keep``): its tokens stop at once.
            if until > time.time() and (kid is None or self.keyring.find(kid) is not None):
                return claims
            del self._verified[digest]
        claims = await self._decode(token)
        own = claims["iss"] == self.settings.issuer
        kid = jwt.get_unverified_header(token).get("kid") if own else None
        # Another issuer's key can leave its JWKS: kept no longer than its JWKS is (300 s).
        until = float(claims["exp"]) if own else min(float(claims["exp"]), time.time() + 300)
        if len(self._verified) >= VERIFIED_KEPT:
            self._verified.pop(next(iter(self._verified)))  # the oldest
        self._verified[digest] = (until, kid if isinstance(kid, str) else None, claims)
        return claims

    async def _know_kid(self, token: str) -> None:
        """A hub token naming a key this process does not hold: another process may have rotated; look again."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return  # refused by _decode, with its reason
        if isinstance(kid, str) and self.keyring.find(kid) is None:
            await self.keyring.unknown_kid(kid)

    async def _decode(self, token: str) -> dict[str, Any]:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            issuer = unverified.get("iss")
            if not isinstance(issuer, str):
                raise Unauthenticated("token has no issuer")
            if issuer == self.settings.issuer:
                await self._know_kid(token)
            key, algorithms, audience = await run_in_threadpool(self._issuer_key, token, issuer)
            return jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=audience,
                issuer=issuer,
                leeway=30,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except Unauthenticated:
            raise
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired") from None
        except (jwt.PyJWTError, ValueError, TypeError) as exc:  # TypeError: e.g. an EC signature on an RSA kid
            raise Unauthenticated(f"invalid token: {type(exc).__name__}") from None

    async def _member(self, issuer: str, subject: str) -> Member | None:
        now = time.monotonic()
        cached = self._members.get((issuer, subject))
        if cached and cached[0] > now:
            return cached[1]
        member = await Member.find_one({"issuer": issuer, "subject": subject})
        self._members[(issuer, subject)] = (now + self._member_cache_seconds(), member)
        return member

    def _member_cache_seconds(self) -> float:
        return min(MEMBER_CACHE_SECONDS, self.settings.oauth_revocation_cache_seconds)

    def forget_member(self, member: Member) -> None:
        """A member added or removed by this process counts here at once (elsewhere within the member cache's
        window)."""
        self._members.pop((member.issuer, member.subject), None)
        self._member_ids.pop(str(member.id), None)

    async def _tenant_exists(self, tenant_id: str) -> bool:
        now = time.monotonic()
        if self._tenants.get(tenant_id, 0.0) > now:
            return True
        if await Tenant.find_one({"_id": tenant_id}) is None:
            return False
        self._tenants[tenant_id] = now + MEMBER_CACHE_SECONDS
        return True

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("expected 'Authorization: Bearer <token>'")
        claims = await self.decode(token.strip())
        issuer = claims["iss"]
        own = issuer == self.settings.issuer
        trusted_claims = own or self.issuers[issuer].trusted_claims
        namespace = self.settings.claim_namespace
        principal = _principal_from_claim(claims, namespace, issuer, own) if trusted_claims else None
        if principal is None:
            member = await self._member(issuer, str(claims["sub"]))
            if member is None:
                raise Unauthenticated("no member for this identity")
            principal = Principal(
                tenant_id=member.tenant_id,
                subject=member.subject,
                issuer=issuer,
                roles=frozenset(role.value for role in member.roles),
                expires_at=float(claims["exp"]),
                token_id=claims.get("jti"),
            )
        if not principal.roles:
            # The claim named a tenant but no role this hub knows: least privilege leaves nothing, not even reading.
            raise Unauthenticated("the token names no role")
        if not await self._tenant_exists(principal.tenant_id):
            raise Unauthenticated("unknown tenant")
        if await self.is_revoked(principal):
            await self._audit_revoked_use(principal)
            raise Unauthenticated("token revoked")
        return principal

    async def _audit_revoked_use(self, principal: Principal) -> None:
        """A revoked token coming back is worth an audit entry, once per token (a retrying client is no news)."""
        key = principal.token_id or f"{principal.client_id}|{principal.subject}"
        if key in self._revoked_seen:
            return
        if len(self._revoked_seen) > 10_000:
            self._revoked_seen.clear()
        self._revoked_seen.add(key)
        await audit.record(
            "token.refused", tenant_id=principal.tenant_id, principal=principal, outcome="refused",
            reason="revoked token presented", target=f"jti:{principal.token_id}" if principal.token_id else None,
        )

    async def member_exists(self, member_id: str, tenant_id: str) -> bool:
        now = time.monotonic()
        cached = self._member_ids.get(member_id)
        if cached and cached[0] > now:
            return cached[1]
        try:
            exists = await Member.find_one({"_id": PydanticObjectId(member_id), "tenant_id": tenant_id}) is not None
        except (InvalidId, TypeError):
            exists = False
        self._member_ids[member_id] = (now + self._member_cache_seconds(), exists)
        return exists

    async def is_revoked(self, principal: Principal) -> bool:
        """Whether a principal's token was revoked, its OAuth client deleted or its member removed since it was
        issued. Answers within ``oauth_revocation_cache_seconds`` of the change (at once
        on the process that made it); long-lived connections poll it."""
        keys = [token_key(principal.token_id)] if principal.token_id else []
        if principal.client_id:
            keys.append(client_key(principal.client_id))
        if "family_id" in principal.extra:
            keys.append(family_key(principal.extra["family_id"]))
        if keys and await self.revocations.contains_any(keys):
            return True
        member_id = principal.extra.get("member_id")
        return member_id is not None and not await self.member_exists(member_id, principal.tenant_id)


def mint_local_token(
    settings: Settings,
    keyring: KeyRing,
    tenant: str,
    roles: list[str],
    ttl_seconds: int,
    subject: str | None = None,
) -> str:
    """A token signed by the hub's own key, for local use and tests."""
    now = int(time.time())
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": subject or f"local:{tenant}",
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        settings.claim_namespace: {"tenant": tenant, "roles": roles},
    }
    return keyring.sign(claims)
