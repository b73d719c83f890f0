"""Fixtures for OAuth: a small OpenID Connect provider on loopback, client registration, and a browser + portal pair.

The provider is a real HTTP server (discovery, JWKS, authorize, token) so the hub's relying-party code talks to it
exactly as it would to Entra ID or Okta. The browser is an httpx client with a cookie jar that follows redirects by
hand, so each test can stop, tamper and replay at any step.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
import uvicorn
from authlib.integrations.httpx_client import AsyncOAuth2Client
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from hub.db import free_port
from tests.conftest import hub_settings, start_hub

CREATE_CLIENT = """
mutation($input: CreateOAuthClientInput!) {
  createOAuthClient(input: $input) { clientSecret client { clientId kind scopes roles grantTypes redirectUris } }
}
"""
CONFIGURE_PROVIDER = """
mutation($input: IdentityProviderInput!) { configureIdentityProvider(input: $input) { issuer clientId scope } }
"""
ADD_MEMBER = """
mutation($input: AddMemberInput!) { addMember(input: $input) { id subject roles } }
"""
PORTAL_REDIRECT = "http://127.0.0.1:9/portal/callback"


@dataclass
class OidcProvider:
    """A minimal OpenID Connect provider: whoever ``signed_in`` is gets authenticated without a login page."""

    port: int
    client_id: str = "hub-at-idp"
    client_secret: str = field(default_factory=lambda: "idp-secret-" + secrets.token_urlsafe(16))
    signed_in: str | None = "alice"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    nonce_override: str | None = None  # answer with a wrong nonce (an injected ID token)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        async def discovery(request: Request) -> JSONResponse:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                }
            )

        async def jwks(request: Request) -> JSONResponse:
            jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return JSONResponse({"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "RS256"}]})

        async def authorize(request: Request) -> RedirectResponse:
            params = request.query_params
            assert params["client_id"] == self.client_id and params["response_type"] == "code"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "user": self.signed_in,
                "nonce": params.get("nonce"),
                "challenge": params.get("code_challenge"),
                "redirect_uri": params["redirect_uri"],
            }
            query = urlencode({"code": code, "state": params["state"]})
            return RedirectResponse(f"{params['redirect_uri']}?{query}", 302)

        async def token(request: Request) -> JSONResponse:
            form = await request.form()
            basic = request.headers.get("authorization", "")
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":") if basic else ("", "", "")
            if (client_id or form.get("client_id")) != self.client_id or (
                secret or form.get("client_secret")
            ) != self.client_secret:
                return JSONResponse({"error": "invalid_client"}, 401)
            grant = self.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if grant is None or grant["redirect_uri"] != form.get("redirect_uri") or grant["challenge"] != challenge:
                return JSONResponse({"error": "invalid_grant"}, 400)
            now = int(time.time())
            id_token = jwt.encode(
                {
                    "iss": self.issuer,
                    "sub": grant["user"],
                    "aud": self.client_id,
                    "iat": now,
                    "exp": now + 300,
                    "nonce": self.nonce_override or grant["nonce"],
                },
                self.key,
                algorithm="RS256",
                headers={"kid": "idp-1"},
            )
            access_token = "idp-at-" + secrets.token_urlsafe(16)
            return JSONResponse(
                {"access_token": access_token, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
            )

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )


@pytest.fixture(scope="module")
async def hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Any]:
    """One hub per module (starting one costs about a second); each test gets tenants of its own instead."""
    settings = hub_settings(key_file, mongo_uri, webhook_allow_private=True)
    async for running in start_hub(settings):
        yield running


def fresh_tenant_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def acme(hub: Any) -> str:
    return await hub.tenant(fresh_tenant_id("acme"), "supplier")


@pytest.fixture
async def beta(hub: Any) -> str:
    return await hub.tenant(fresh_tenant_id("beta"), "retailer")


@pytest.fixture(scope="session")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def serve_oidc(provider: OidcProvider) -> AsyncIterator[OidcProvider]:
    """Serve a provider on loopback for as long as the caller iterates (shared by the OAuth and portal tests)."""
    server = uvicorn.Server(uvicorn.Config(provider.app(), host="127.0.0.1", port=provider.port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield provider
    server.should_exit = True
    await task


@pytest.fixture
async def oidc(idp_key: rsa.RSAPrivateKey) -> AsyncIterator[OidcProvider]:
    provider = OidcProvider(port=free_port(), key=idp_key)
    async for running in serve_oidc(provider):
        yield running


async def create_client(hub: Any, tenant: str, **input: Any) -> tuple[str, str | None]:
    """Register an OAuth client as ``tenant``'s admin; answers (client id, secret)."""
    data = await hub.ok(CREATE_CLIENT, {"input": {"name": "ERP", **input}}, tenant=tenant)
    created = data["createOAuthClient"]
    return created["client"]["clientId"], created["clientSecret"]


def erp(hub: Any, client_id: str, secret: str, scope: str | None = None) -> AsyncOAuth2Client:
    """authlib's own OAuth client, as a partner ERP would use it."""
    return AsyncOAuth2Client(client_id, secret, scope=scope, token_endpoint_auth_method="client_secret_basic")


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


@dataclass
class Portal:
    """A public portal client of one tenant, and the user's browser."""

    hub: Any
    client_id: str
    tenant: str
    secret: str | None = None  # a confidential (server-side) portal authenticates at the token endpoint
    redirect_uri: str = PORTAL_REDIRECT
    browser: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))

    def oauth(self, scope: str = "read write") -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            self.client_id, self.secret, redirect_uri=self.redirect_uri, scope=scope, code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_basic" if self.secret else "none",
        )

    async def follow(self, url: str, stop_at: str | None = None, max_hops: int = 10) -> httpx.Response:
        """Follow redirects in the browser until one points at ``stop_at`` (the portal) or a page answers."""
        stop_at = stop_at or self.redirect_uri
        response = await self.browser.get(url)
        for _ in range(max_hops):
            location = response.headers.get("location")
            if response.status_code not in (302, 303, 307) or not location or location.startswith(stop_at):
                return response
            response = await self.browser.get(location)
        raise AssertionError("too many redirects")

    async def sign_in(
        self, scope: str = "read write", **overrides: str
    ) -> tuple[dict[str, str], str, AsyncOAuth2Client]:
        """Run the browser part of the flow; answers (the portal's callback query, the PKCE verifier, the client)."""
        client = self.oauth(scope)
        verifier = secrets.token_urlsafe(48)
        url, state = client.create_authorization_url(f"{self.hub.url}/oauth/authorize", code_verifier=verifier)
        if overrides:
            query = {**query_of(url), **overrides}
            url = f"{self.hub.url}/oauth/authorize?{urlencode({k: v for k, v in query.items() if v != ''})}"
        response = await self.follow(url)
        location = response.headers.get("location", "")
        return (query_of(location) if location.startswith(self.redirect_uri) else {}), verifier, client

    async def token(self, callback: dict[str, str], verifier: str, client: AsyncOAuth2Client) -> dict[str, Any]:
        return await client.fetch_token(
            f"{self.hub.url}/oauth/token",
            code=callback["code"],
            code_verifier=verifier,
            grant_type="authorization_code",
        )


async def portal_for(
    hub: Any, oidc: OidcProvider, scopes: list[str] | None = None, members: tuple[str, ...] = ("alice",)
) -> Portal:
    """A new tenant with ``oidc`` as its identity provider, ``members`` as planners, and a public portal client."""
    tenant = await hub.tenant(fresh_tenant_id("shop"), "retailer")
    await hub.ok(
        CONFIGURE_PROVIDER,
        {"input": {"issuer": oidc.issuer, "clientId": oidc.client_id, "clientSecret": oidc.client_secret}},
        tenant=tenant,
    )
    for subject in members:
        await hub.ok(
            ADD_MEMBER, {"input": {"issuer": oidc.issuer, "subject": subject, "roles": ["planner"]}}, tenant=tenant
        )
    client_id, secret = await create_client(
        hub, tenant, name="Portal", kind="public", scopes=scopes or ["read", "write"], roles=[],
        redirectUris=[PORTAL_REDIRECT],
    )
    assert secret is None
    return Portal(hub, client_id, tenant)
