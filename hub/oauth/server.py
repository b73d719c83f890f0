"""authlib's framework-agnostic AuthorizationServer, adapted to Starlette.

authlib is synchronous. Routes read the whole request first (``HubRequest``: no I/O left for authlib to do), then
call the server through ``run_in_threadpool``; the server's storage hooks reach the async database with
``anyio.from_thread.run``, which runs a coroutine on the event loop the worker thread was started from. Responses come
back as ``(status, body, headers)`` and the route turns them into Starlette responses.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlencode

from anyio import from_thread
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidScopeError

from hub import audit
from hub.audit import Origin
from hub.auth import TokenValidator
from hub.config import Settings
from hub.keys import KeyRing
from hub.oauth.clients import HubClient, find_client
from hub.oauth.endpoints import IntrospectionEndpoint, RevocationEndpoint
from hub.oauth.grants import AuthorizationCodeGrant, ClientCredentialsGrant, RefreshTokenGrant, S256Challenge
from hub.oauth.revocation import RevocationList
from hub.oauth.scopes import SCOPES, parse_scope, unknown_scopes
from hub.oauth.tokens import Grantee, access_token_claims, sign_access_token, store_refresh_token

# Credentials must never reach a log, whatever the level: authlib logs issued tokens and PKCE verifiers at DEBUG,
# and pymongo's command log prints documents (the upstream identity provider's client secret among them).
logging.getLogger("authlib").setLevel(logging.INFO)
logging.getLogger("pymongo.command").setLevel(logging.INFO)


@dataclass
class HubRequest:
    """A request as authlib needs it, read completely in async code beforehand."""

    method: str
    uri: str
    headers: Mapping[str, str]
    query: dict[str, list[str]] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)
    origin: Origin = field(default_factory=Origin)


class _Payload(OAuth2Payload):
    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    @property
    def data(self) -> dict[str, str]:
        return {key: values[0] for key, values in self._values.items() if values}

    @property
    def datalist(self) -> defaultdict[str, list]:
        return defaultdict(list, self._values)


class HubOAuth2Request(OAuth2Request):
    def __init__(self, request: HubRequest) -> None:
        super().__init__(request.method, request.uri, headers=request.headers)
        merged: dict[str, list[str]] = defaultdict(list)
        for source in (request.query, request.form):
            for key, values in source.items():
                merged[key].extend(values)
        self.payload = _Payload(dict(merged))
        self._query = {key: values[0] for key, values in request.query.items() if values}
        self._form = {key: values[0] for key, values in request.form.items() if values}
        self.origin = request.origin

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class HubAuthorizationServer(AuthorizationServer):
    def __init__(self, settings: Settings, keyring: KeyRing, validator: TokenValidator) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.settings = settings
        self.keyring = keyring
        self.validator = validator
        self.revocations: RevocationList = validator.revocations
        self.register_token_generator("default", self._generate_token)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(AuthorizationCodeGrant, [S256Challenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)

    @property
    def access_ttl(self) -> int:
        return self.settings.oauth_access_token_ttl_seconds

    # -- storage hooks (run in a worker thread) ---------------------------------------------------------------------

    def query_client(self, client_id: str) -> HubClient | None:
        if not isinstance(client_id, str) or len(client_id) > 200:
            return None
        return from_thread.run(find_client, client_id)

    def validate_requested_scope(self, scope: str | None) -> None:
        if unknown := unknown_scopes(parse_scope(scope)):
            raise InvalidScopeError(f"unknown scopes: {' '.join(unknown)}")

    def _generate_token(
        self,
        grant_type: str,
        client: HubClient,
        user: Grantee | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        scopes = parse_scope(client.get_allowed_scope(scope))
        ttl = expires_in or self.access_ttl
        claims = access_token_claims(self.settings, client.doc, user, scopes, ttl)
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": sign_access_token(self.keyring, claims),
            "expires_in": ttl,
            "scope": " ".join(scopes),
        }
        if include_refresh_token and user is not None and client.check_grant_type("refresh_token"):
            token["refresh_token"] = from_thread.run(
                store_refresh_token, self.settings, client.doc, user,
                token["scope"] if user.refresh_scope is None else user.refresh_scope,
            )
        return token

    def save_token(self, token: dict[str, Any], request: HubOAuth2Request) -> None:
        """Refresh tokens are stored when generated; here every issuance is audited (identifiers only)."""
        client: HubClient = request.client
        grantee: Grantee | None = request.user
        from_thread.run(
            partial(
                audit.record,
                "token.issued",
                tenant_id=client.tenant_id,
                actor=grantee.member.subject if grantee else client.get_client_id(),
                actor_kind="member" if grantee else "client",
                client_id=client.get_client_id(),
                target=f"family:{grantee.family_id}" if grantee else None,
                details={
                    "grant_type": request.payload.grant_type,
                    "scope": token.get("scope", ""),
                    "expires_in": token.get("expires_in"),
                    "refresh": "refresh_token" in token,
                },
                origin=request.origin,
            )
        )

    # -- framework adapter -----------------------------------------------------------------------------------------

    def create_oauth2_request(self, request: HubRequest | OAuth2Request) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else HubOAuth2Request(request)

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("the hub has no JSON-bodied OAuth endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, list(headers.items() if isinstance(headers, dict) else headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """authlib's signals (client authenticated, token revoked): the hub audits at the point of effect instead."""


def error_redirect(redirect_uri: str, error: str, description: str, state: str | None, issuer: str) -> str:
    params = {"error": error, "error_description": description, "iss": issuer}
    if state:
        params["state"] = state
    separator = "&" if "?" in redirect_uri else "?"
    return f"{redirect_uri}{separator}{urlencode(params)}"
