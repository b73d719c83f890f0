"""HTTP endpoints of the authorization server: token, authorize (+ the identity provider's callback), revoke,
introspect, and the RFC 8414 / OpenID discovery metadata.

Each route reads the request completely, then hands it to authlib in a worker thread (``server.py``). Failed client
authentications are counted per client and per IP and, past the limit, answered 429 before authlib runs at all.
Every issuance, refusal and revocation is audited; the audit log and the logs only ever see identifiers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.oauth2.rfc6749.errors import OAuth2Error
from joserfc.errors import JoseError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from hub import audit
from hub.audit import current_origin
from hub.config import Settings
from hub.keys import KeyRing
from hub.oauth.clients import find_client
from hub.oauth.ratelimit import FailedAuthLimiter
from hub.oauth.scopes import SCOPES
from hub.oauth.server import HubAuthorizationServer, HubOAuth2Request, HubRequest, error_redirect
from hub.oauth.tokens import Grantee
from hub.oauth.upstream import SIGNIN_SECONDS, StateCache, Upstreams
from hub.state import HubState
from tenants.models import Member

log = logging.getLogger("lotpulse.oauth")
MAX_FORM_BYTES = 16 * 1024
FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class RedactOAuthQueries(logging.Filter):
    """Access logs print request paths with their query: on ``/oauth/`` those carry authorization codes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and args[2].startswith("/oauth/"):
            path, _, query = args[2].partition("?")
            record.args = (*args[:2], f"{path}?[redacted]" if query else path, *args[3:])
        return True


logging.getLogger("uvicorn.access").addFilter(RedactOAuthQueries())


@dataclass
class OAuthService:
    """What the routes share in one hub process (``hub.services["oauth"]``)."""

    server: HubAuthorizationServer
    limiter: FailedAuthLimiter
    cache: StateCache
    upstreams: Upstreams


async def start_oauth(hub: HubState) -> None:
    settings = hub.settings
    cache = StateCache()
    hub.services["oauth"] = OAuthService(
        server=HubAuthorizationServer(settings, hub.keyring, hub.validator),
        limiter=FailedAuthLimiter(
            settings.oauth_failed_auth_window_seconds,
            settings.oauth_failed_auth_per_client,
            settings.oauth_failed_auth_per_ip,
        ),
        cache=cache,
        upstreams=Upstreams(cache),
    )


def _service(request: Request) -> OAuthService:
    return request.app.state.hub.services["oauth"]


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status, headers={**NO_STORE, **(headers or {})})


def _to_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    content = json.dumps(body) if isinstance(body, dict) else (body or "")
    response = Response(content, status_code=status)
    for name, value in headers:
        response.headers[name] = value
    return response


class FormError(Exception):
    pass


async def _read(request: Request, settings: Settings, with_form: bool) -> HubRequest:
    form: dict[str, list[str]] = {}
    if with_form:
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
            raise FormError(f"send the request as {FORM}")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_FORM_BYTES:
                raise FormError("request body too large")
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=False, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise FormError("request body is not a valid form") from None
    query = parse_qs(request.url.query, keep_blank_values=False)
    # authlib checks transport security on the URI: use the public URL, which is https behind a TLS proxy.
    uri = f"{settings.issuer}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
    return HubRequest(
        method=request.method,
        uri=uri,
        headers=request.headers,  # case-insensitive, as authlib expects ("Authorization")
        query=query,
        form=form,
        origin=current_origin(),
    )


def _claimed_client_id(hub_request: HubRequest) -> str | None:
    """The client id a request claims (Basic header or form), for rate limiting before anything is verified."""
    authorization = hub_request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            return unquote(decoded.partition(":")[0])[:200] or None
        except (ValueError, UnicodeDecodeError):
            return None
    values = hub_request.form.get("client_id") or hub_request.query.get("client_id")
    return values[0][:200] if values else None


async def _tenant_of(client_id: str | None) -> str | None:
    client = await find_client(client_id) if client_id else None
    return client.tenant_id if client else None


async def _client_endpoint(request: Request, endpoint: str) -> Response:
    """Token, revocation and introspection: client-authenticated form posts with the same protections."""
    service = _service(request)
    settings = service.server.settings
    try:
        hub_request = await _read(request, settings, with_form=True)
    except FormError as exc:
        return _error(400, "invalid_request", str(exc))
    client_id, ip = _claimed_client_id(hub_request), hub_request.origin.ip
    grant_type = (hub_request.form.get("grant_type") or [None])[0]
    if (wait := await service.limiter.retry_after(client_id, ip)) is not None:
        # Not audited one by one (a flood of 429s would flood the log); reaching the limit was.
        return _error(429, "rate_limited", "too many failed client authentications", {"Retry-After": str(wait)})
    server = service.server
    if endpoint == "token":
        status, body, headers = await run_in_threadpool(server.create_token_response, hub_request)
    else:
        name = "revocation" if endpoint == "revocation" else "introspection"
        status, body, headers = await run_in_threadpool(server.create_endpoint_response, name, hub_request)
    if status >= 400:
        error = body.get("error") if isinstance(body, dict) else None
        tenant_id = await _tenant_of(client_id)
        description = body.get("error_description") if isinstance(body, dict) else None
        await audit.record(
            f"{endpoint}.refused", tenant_id=tenant_id, actor=client_id, actor_kind="client", client_id=client_id,
            outcome="refused", reason=error, details={"grant_type": grant_type, "description": description},
        )
        if error == "invalid_client" and (limited := await service.limiter.failed(client_id, ip)):
            await audit.record(
                "client_auth.rate_limited", tenant_id=tenant_id, actor=client_id, actor_kind="client",
                client_id=client_id, outcome="refused", reason="too many failed client authentications",
                details={"limited": limited},
            )
    return _to_response(status, body, headers)


async def token(request: Request) -> Response:
    return await _client_endpoint(request, "token")


async def revoke(request: Request) -> Response:
    return await _client_endpoint(request, "revocation")


async def introspect(request: Request) -> Response:
    return await _client_endpoint(request, "introspection")


async def _consent_grant(server: HubAuthorizationServer, oauth_request: HubOAuth2Request) -> Any:
    return await run_in_threadpool(server.get_consent_grant, oauth_request)


async def _refuse_signin(tenant_id: str | None, client_id: str | None, reason: str, details: dict | None = None) -> None:
    await audit.record(
        "signin.refused", tenant_id=tenant_id, client_id=client_id, outcome="refused", reason=reason, details=details
    )


async def authorize(request: Request) -> Response:
    """Validate the portal's request, remember it, and send the user to their tenant's identity provider."""
    service = _service(request)
    server = service.server
    hub_request = await _read(request, server.settings, with_form=False)
    oauth_request = HubOAuth2Request(hub_request)
    client_id = oauth_request.payload.client_id
    try:
        grant = await _consent_grant(server, oauth_request)
    except OAuth2Error as error:
        await _refuse_signin(await _tenant_of(client_id), client_id, error.error, {"description": error.description})
        return _to_response(*server.handle_error_response(oauth_request, error))
    client = grant.request.client
    state = oauth_request.payload.state
    upstream = await service.upstreams.for_tenant(client.tenant_id)
    if upstream is None:
        await _refuse_signin(client.tenant_id, client_id, "no identity provider configured")
        return RedirectResponse(
            error_redirect(grant.redirect_uri, "access_denied", "sign-in is not configured", state, server.settings.issuer),
            302,
        )
    _, app = upstream
    pending = secrets.token_urlsafe(24)
    await service.cache.set(f"pending:{pending}", json.dumps({"query": hub_request.query}), SIGNIN_SECONDS)
    request.session["pending"] = pending
    try:
        return await app.authorize_redirect(request, f"{server.settings.issuer}/oauth/callback")
    except (httpx.HTTPError, OAuthError, ValueError, KeyError) as exc:
        log.warning("identity provider of %s unreachable: %s", client.tenant_id, type(exc).__name__)
        await _refuse_signin(client.tenant_id, client_id, "identity provider unreachable")
        return RedirectResponse(
            error_redirect(
                grant.redirect_uri, "temporarily_unavailable", "the identity provider is unreachable", state,
                server.settings.issuer,
            ),
            302,
        )


async def callback(request: Request) -> Response:
    """Back from the identity provider: validate its answer, map the user to a member, issue our code."""
    service = _service(request)
    server = service.server
    pending_id = request.session.pop("pending", None)
    pending = await service.cache.pop_json(f"pending:{pending_id}") if isinstance(pending_id, str) else None
    if pending is None:
        await _refuse_signin(None, None, "no sign-in in progress in this browser")
        return _error(400, "invalid_request", "no sign-in in progress in this browser (or it took too long)")
    query = pending["query"]
    original = HubRequest(
        method="GET",
        uri=f"{server.settings.issuer}/oauth/authorize?{urlencode(query, doseq=True)}",
        headers=Headers(),
        query=query,
        origin=current_origin(),
    )
    oauth_request = HubOAuth2Request(original)
    try:  # again: the client may have been deleted or changed while the user was away
        grant = await _consent_grant(server, oauth_request)
    except OAuth2Error as error:
        await _refuse_signin(None, oauth_request.payload.client_id, error.error)
        return _to_response(*server.handle_error_response(oauth_request, error))
    client = grant.request.client
    state = oauth_request.payload.state

    def refuse(description: str) -> Response:
        location = error_redirect(grant.redirect_uri, "access_denied", description, state, server.settings.issuer)
        return RedirectResponse(location, 302)

    upstream = await service.upstreams.for_tenant(client.tenant_id)
    if upstream is None:
        await _refuse_signin(client.tenant_id, client.get_client_id(), "no identity provider configured")
        return refuse("sign-in is not configured")
    provider, app = upstream
    try:
        upstream_token = await app.authorize_access_token(request)
        metadata = await app.load_server_metadata()
    except (OAuthError, JoseError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        reason = getattr(exc, "error", None) or type(exc).__name__
        await _refuse_signin(client.tenant_id, client.get_client_id(), f"identity provider answer rejected: {reason}")
        return refuse("the identity provider's answer was rejected")
    userinfo = upstream_token.get("userinfo")
    if not userinfo or str(metadata.get("issuer", "")).rstrip("/") != provider.issuer:
        # No validated ID token (or a discovery document for another issuer): nothing proves who this is.
        await _refuse_signin(client.tenant_id, client.get_client_id(), "no valid ID token from the identity provider")
        return refuse("the identity provider did not identify the user")
    member = await Member.find_one(
        {"tenant_id": client.tenant_id, "issuer": userinfo["iss"], "subject": str(userinfo["sub"])}
    )
    if member is None:
        await _refuse_signin(
            client.tenant_id, client.get_client_id(), "not a member of this tenant",
            {"issuer": userinfo["iss"], "subject": str(userinfo["sub"])},
        )
        return refuse("you are not a member of this organisation")
    grantee = Grantee(member)
    status, body, headers = await run_in_threadpool(server.create_authorization_response, oauth_request, grantee, grant)
    if status == 302 and "code=" in dict(headers).get("Location", ""):
        await audit.record(
            "signin.succeeded", tenant_id=client.tenant_id, actor=member.subject, actor_kind="member",
            client_id=client.get_client_id(), target=f"family:{grantee.family_id}",
            details={"issuer": member.issuer, "scope": oauth_request.scope},
        )
    return _to_response(status, body, headers)


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
    using the same key ring, and stable across a rotation until that key retires)."""
    if settings.session_secret:
        return settings.session_secret
    oldest = keyring.keys()[0]
    return hmac.new(oldest.private_pem.encode(), b"lotpulse sign-in cookie", hashlib.sha256).hexdigest()


def oauth_routes(settings: Settings, keyring: KeyRing) -> list[BaseRoute]:
    document = metadata_document(settings)

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})

    signin = Middleware(
        SessionMiddleware,
        secret_key=session_secret(settings, keyring),
        session_cookie="lotpulse_signin",
        max_age=SIGNIN_SECONDS,
        path="/oauth",
        same_site="lax",
        https_only=settings.issuer.startswith("https://"),
    )
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
