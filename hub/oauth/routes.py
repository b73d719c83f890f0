"""HTTP endpoints of the authorization server: token, revoke, introspect (client-authenticated form posts), the
portal sign-in routes (``signin.py``), and the RFC 8414 / OpenID discovery metadata.

Each route reads the request completely, then hands it to authlib in a worker thread (``server.py``). Failed client
authentications are counted per client and per IP and, past the limit, answered 429 before authlib runs at all.
Every issuance, refusal and revocation is audited; the audit log and the logs only ever see identifiers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from authlib.oauth2.rfc6749.util import extract_basic_authorization
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub import audit
from hub.config import Settings
from hub.keys import KeyRing
from hub.oauth.clients import find_client
from hub.oauth.http import NO_STORE, FormError, oauth_error, read_request, service_of, tenant_of, to_response
from hub.oauth.scopes import SCOPES
from hub.oauth.server import HubRequest
from hub.oauth.signin import authorize, callback
from hub.oauth.upstream import SIGNIN_SECONDS


class RedactOAuthQueries(logging.Filter):
    """Access logs print request paths with their query: on ``/oauth/`` those carry authorization codes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and args[2].startswith("/oauth/"):
            path, _, query = args[2].partition("?")
            record.args = (*args[:2], f"{path}?[redacted]" if query else path, *args[3:])
        return True


logging.getLogger("uvicorn.access").addFilter(RedactOAuthQueries())
log = logging.getLogger("lotpulse.oauth")

MALFORMED_BASIC = "the Basic credentials are not UTF-8"


def _claimed_client_ids(hub_request: HubRequest) -> list[str]:
    """Every client id a request names (Basic header, form, query), read as authlib reads them, for rate limiting
    before anything is verified: a guess is counted against each client it could be aimed at. Raises ValueError for
    a Basic header authlib cannot read (credentials that are not UTF-8)."""
    basic_id, _ = extract_basic_authorization(hub_request.headers)
    named = [basic_id, *(hub_request.form.get("client_id") or [])[:1], *(hub_request.query.get("client_id") or [])[:1]]
    return list(dict.fromkeys(client_id[:200] for client_id in named if client_id))


async def _has_secret(client_id: str) -> bool:
    client = await find_client(client_id)
    return client is not None and not client.is_public


async def _client_endpoint(request: Request, endpoint: str) -> Response:
    """Token, revocation and introspection: client-authenticated form posts with the same protections."""
    service = service_of(request)
    settings = service.server.settings
    try:
        hub_request = await read_request(request, settings, with_form=True)
    except FormError as exc:
        return oauth_error(400, "invalid_request", str(exc))
    try:
        client_ids = _claimed_client_ids(hub_request)
    except ValueError:
        client_ids = None
    # Limits are keyed on the client ids first: a registered client is judged by its own failures only, so clients
    # sharing an address (a NAT, a load balancer) are not locked out by a guesser there; unknown ids by address. A
    # public client has no secret to guess and its id is public: failures naming it count against the address only,
    # or anyone could lock every user of a portal out of signing in.
    guarded = [client_id for client_id in client_ids or [] if await _has_secret(client_id)]
    ip = None if client_ids and len(guarded) == len(client_ids) else hub_request.origin.ip
    client_id = client_ids[0] if client_ids else None
    grant_type = next(iter(hub_request.form.get("grant_type") or []), None)
    if (wait := await service.limiter.retry_after(guarded, ip)) is not None:
        # Not audited one by one (a flood of 429s would flood the log); reaching the limit was.
        return oauth_error(429, "rate_limited", "too many failed client authentications", {"Retry-After": str(wait)})
    server = service.server
    if client_ids is None:
        status, headers = 401, [*NO_STORE.items()]
        body = {"error": "invalid_client", "error_description": MALFORMED_BASIC}
    elif endpoint == "token":
        status, body, headers = await run_in_threadpool(server.create_token_response, hub_request)
    else:
        name = "revocation" if endpoint == "revocation" else "introspection"
        status, body, headers = await run_in_threadpool(server.create_endpoint_response, name, hub_request)
    if status >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        tenant_id = await tenant_of(client_id)
        description = body.get("error_description") if isinstance(body, dict) else None
        limited = await service.limiter.failed(guarded, ip) if error == "invalid_client" else []
        if tenant_id is None:
            # No client of any tenant: no one could read the entry, and anyone could post refusals to fill the
            # collection (as the sign-in routes, these are only logged).
            log.info("%s request refused before a tenant was known: %s%s", endpoint, error,
                     f" (limit reached: {', '.join(limited)})" if limited else "")
            return to_response(status, body, headers)
        if await service.limiter.audits_refusal(hub_request.origin.ip):
            await audit.record(
                f"{endpoint}.refused", tenant_id=tenant_id, actor=client_id, actor_kind="client", client_id=client_id,
                outcome="refused", reason=error, details={"grant_type": grant_type, "description": description},
            )
        else:
            log.info("%s request refused for tenant %s (%s); not audited: too many refusals from this address",
                     endpoint, tenant_id, error)
        if limited:
            await audit.record(
                "client_auth.rate_limited", tenant_id=tenant_id, actor=client_id, actor_kind="client",
                client_id=client_id, outcome="refused", reason="too many failed client authentications",
                details={"limited": limited},
            )
    return to_response(status, body, headers)


async def token(request: Request) -> Response:
    return await _client_endpoint(request, "token")


async def revoke(request: Request) -> Response:
    return await _client_endpoint(request, "revocation")


async def introspect(request: Request) -> Response:
    return await _client_endpoint(request, "introspection")

def metadata_document(settings: Settings) -> dict[str, Any]:
    base = settings.issuer
    auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "access_token_signing_alg_values_supported": ["RS256"],
    }


def session_secret(settings: Settings, keyring: KeyRing) -> str:
    """The sign-in cookie's key: configured, or derived from the oldest live signing key (shared by every process
    using the same key ring, and stable across a rotation until that key retires: then every process moves to the
    next one at the same instant, since retirement is a time written in the ring)."""
    if settings.session_secret:
        return settings.session_secret
    oldest = keyring.keys()[0]
    return hmac.new(oldest.private_pem.encode(), b"lotpulse sign-in cookie", hashlib.sha256).hexdigest()


class SignInSession:
    """The sign-in cookie's ``SessionMiddleware``, built at the first request (its key derives from the key ring,
    which is read from the database at startup, after the routes are built) and again whenever that key changes: a
    process that kept the key of its first request would, once that signing key retired, no longer read the cookies
    of processes started since, and sign-ins moving between them would fail."""

    def __init__(self, app: ASGIApp, settings: Settings, keyring: KeyRing) -> None:
        self.app = app
        self.settings = settings
        self.keyring = keyring
        self.secret: str | None = None
        self.inner: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secret = session_secret(self.settings, self.keyring)
        if self.inner is None or secret != self.secret:
            self.secret = secret
            self.inner = SessionMiddleware(
                self.app,
                secret_key=secret,
                session_cookie="lotpulse_signin",
                max_age=SIGNIN_SECONDS,
                path="/oauth",
                same_site="lax",
                https_only=self.settings.issuer.startswith("https://"),
            )
        await self.inner(scope, receive, send)


def oauth_routes(settings: Settings, keyring: KeyRing) -> list[BaseRoute]:
    document = metadata_document(settings)

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})

    signin = Middleware(SignInSession, settings=settings, keyring=keyring)
    return [
        Mount(
            "/oauth",
            routes=[
                Route("/token", token, methods=["POST"]),
                Route("/revoke", revoke, methods=["POST"]),
                Route("/introspect", introspect, methods=["POST"]),
                Route("/authorize", authorize, methods=["GET"]),
                Route("/callback", callback, methods=["GET"]),
            ],
            middleware=[signin],
        ),
        Route("/.well-known/oauth-authorization-server", metadata),
        Route("/.well-known/openid-configuration", metadata),
    ]
