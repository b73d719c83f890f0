"""Federated sign-in: each tenant's portal users authenticate at that tenant's OpenID Connect provider.

authlib's Starlette client does the relying-party work (discovery, PKCE and ``nonce`` towards the provider, code
exchange, ID-token signature and claims validation). Its per-flow state lives in MongoDB (``StateCache``), not in
the cookie, so any hub process can finish a sign-in another one started; the signed cookie only binds the callback
to the browser that began it (RFC 6749 §10.12).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

with warnings.catch_warnings():
    # authlib warns on import when its optional `httpx2` is absent and it falls back to `httpx`, which is the client
    # this project pins and tests against; every `lotpulse` command imports this module, so the warning is noise.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.starlette_client import StarletteOAuth2App
    from authlib.integrations.starlette_client.integration import StarletteIntegration

from hub import audit
from hub.errors import BadInput
from hub.models.oauth import IdentityProvider, SignInState
from hub.oauth.tokens import digest, utc_in
from tenants.access import Access
from tenants.roles import Group

SIGNIN_SECONDS = 600  # how long a user may take at their identity provider


class StateCache:
    """authlib's async cache interface over the ``oauth_signin_state`` collection."""

    async def get(self, key: str) -> str | None:
        doc = await SignInState.find_one({"key": key, "expires_at": {"$gt": datetime.now(UTC)}})
        return doc.value if doc else None

    async def set(self, key: str, value: str, expires_in: int | None = None) -> None:
        await SignInState.get_pymongo_collection().update_one(
            {"key": key},
            {"$set": {"value": value, "expires_at": utc_in(expires_in or SIGNIN_SECONDS)}},
            upsert=True,
        )

    async def delete(self, key: str) -> None:
        await SignInState.get_pymongo_collection().delete_one({"key": key})

    async def pop_json(self, key: str) -> Any:
        """Read and delete in one step: a pending sign-in completes at most once."""
        doc = await SignInState.get_pymongo_collection().find_one_and_delete(
            {"key": key, "expires_at": {"$gt": datetime.now(UTC)}}
        )
        return json.loads(doc["value"]) if doc else None


@dataclass
class _Registered:
    fingerprint: str
    app: StarletteOAuth2App


class Upstreams:
    """One authlib client per tenant, rebuilt when the tenant changes its provider settings."""

    def __init__(self, cache: StateCache) -> None:
        self.cache = cache
        self._apps: dict[str, _Registered] = {}

    async def for_tenant(self, tenant_id: str) -> tuple[IdentityProvider, StarletteOAuth2App] | None:
        provider = await IdentityProvider.find_one({"tenant_id": tenant_id})
        if provider is None:
            return None
        fingerprint = digest(f"{provider.issuer}|{provider.client_id}|{provider.client_secret}|{provider.scope}")
        registered = self._apps.get(tenant_id)
        if registered is None or registered.fingerprint != fingerprint:
            name = f"idp_{tenant_id}"
            app = StarletteOAuth2App(
                StarletteIntegration(name, cache=self.cache),
                name=name,
                client_id=provider.client_id,
                client_secret=provider.client_secret,
                server_metadata_url=f"{provider.issuer.rstrip('/')}/.well-known/openid-configuration",
                client_kwargs={"scope": provider.scope, "code_challenge_method": "S256", "timeout": 10},
            )
            registered = self._apps[tenant_id] = _Registered(fingerprint, app)
        return provider, registered.app


def _check_issuer(issuer: str) -> str:
    issuer = issuer.strip().rstrip("/")
    if not (issuer.startswith("https://") or issuer.startswith("http://127.0.0.1") or issuer.startswith("http://localhost")):
        raise BadInput("the issuer must be an https URL", field="issuer")
    return issuer


async def configure_provider(
    access: Access, issuer: str, client_id: str, client_secret: str, scope: str | None = None
) -> IdentityProvider:
    """Set the tenant's identity provider (replacing any previous one)."""
    access.require(Group.administration)
    scope = scope or "openid email profile"
    if "openid" not in scope.split():
        raise BadInput("the scope must include openid", field="scope")
    if not client_id or not client_secret:
        raise BadInput("client id and secret are required")
    fields = {
        "issuer": _check_issuer(issuer),
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": scope,
        "updated_at": datetime.now(UTC),
    }
    await IdentityProvider.get_pymongo_collection().update_one(
        {"tenant_id": access.tenant_id}, {"$set": fields}, upsert=True
    )
    await audit.record(
        "identity_provider.configured",
        tenant_id=access.tenant_id,
        principal=access.principal,
        target=str(fields["issuer"]),
        details={"client_id": client_id, "scope": scope},
    )
    provider = await IdentityProvider.find_one({"tenant_id": access.tenant_id})
    assert provider is not None
    return provider
