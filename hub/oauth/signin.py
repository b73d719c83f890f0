"""Portal sign-in: the authorization endpoint and the identity provider's callback.

``/oauth/authorize`` validates the portal's request (client, exact redirect URI, ``state``, S256 PKCE, scopes),
remembers it, and sends the browser to the tenant's OpenID Connect provider. ``/oauth/callback`` validates the
provider's answer (state bound to this browser, code exchange, ID token with ``nonce``), maps (issuer, subject) to a
member of the client's tenant or refuses, and redirects back to the portal with the hub's own authorization code.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.oauth2.rfc6749.errors import OAuth2Error
from joserfc.errors import JoseError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub import audit
from hub.audit import current_origin
from hub.oauth.http import FormError, OAuthService, oauth_error, read_request, service_of, tenant_of, to_response
from hub.oauth.server import HubAuthorizationServer, HubOAuth2Request, HubRequest, error_redirect
from hub.oauth.tokens import Grantee
from hub.oauth.upstream import SIGNIN_SECONDS
from tenants.models import Member

log = logging.getLogger("lotpulse.oauth")


async def _consent_grant(server: HubAuthorizationServer, oauth_request: HubOAuth2Request) -> Any:
    return await run_in_threadpool(server.get_consent_grant, oauth_request)


async def _refuse_signin(
    service: OAuthService, tenant_id: str | None, client_id: str | None, reason: str, details: dict | None = None
) -> None:
    if tenant_id is None:
        # Anyone can send a browser here with any client id: refusals that concern no tenant are not stored (no
        # one could read them, and a flood of them would only fill the collection).
        log.info("sign-in refused before a tenant was known: %s", reason)
        return
    if not await service.limiter.audits_refusal(current_origin().ip):
        log.info("sign-in refused for tenant %s (%s); not audited: too many refusals from this address", tenant_id,
                 reason)
        return
    await audit.record(
        "signin.refused", tenant_id=tenant_id, client_id=client_id, outcome="refused", reason=reason, details=details
    )


async def authorize(request: Request) -> Response:
    """Validate the portal's request, remember it, and send the user to their tenant's identity provider."""
    service = service_of(request)
    server = service.server
    try:
        hub_request = await read_request(request, server.settings, with_form=False)
    except FormError as exc:  # never redirected: nothing of the request is trusted yet
        await _refuse_signin(service, None, None, str(exc))
        return oauth_error(400, "invalid_request", str(exc))
    oauth_request = HubOAuth2Request(hub_request)
    client_id = oauth_request.payload.client_id
    try:
        grant = await _consent_grant(server, oauth_request)
    except OAuth2Error as error:
        await _refuse_signin(
            service, await tenant_of(client_id), client_id, error.error, {"description": error.description}
        )
        return to_response(*server.handle_error_response(oauth_request, error))
    client = grant.request.client
    state = oauth_request.payload.state
    upstream = await service.upstreams.for_tenant(client.tenant_id)
    if upstream is None:
        await _refuse_signin(service, client.tenant_id, client_id, "no identity provider configured")
        return RedirectResponse(
            error_redirect(
                grant.redirect_uri, "access_denied", "sign-in is not configured", state, server.settings.issuer
            ),
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
        await _refuse_signin(service, client.tenant_id, client_id, "identity provider unreachable")
        return RedirectResponse(
            error_redirect(
                grant.redirect_uri, "temporarily_unavailable", "the identity provider is unreachable", state,
                server.settings.issuer,
            ),
            302,
        )


async def callback(request: Request) -> Response:
    """Back from the identity provider: validate its answer, map the user to a member, issue our code."""
    service = service_of(request)
    server = service.server
    pending_id = request.session.pop("pending", None)
    pending = await service.cache.pop_json(f"pending:{pending_id}") if isinstance(pending_id, str) else None
    if pending is None:
        await _refuse_signin(service, None, None, "no sign-in in progress in this browser")
        return oauth_error(400, "invalid_request", "no sign-in in progress in this browser (or it took too long)")
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
        await _refuse_signin(service, None, oauth_request.payload.client_id, error.error)
        return to_response(*server.handle_error_response(oauth_request, error))
    client = grant.request.client
    state = oauth_request.payload.state

    def refuse(description: str) -> Response:
        location = error_redirect(grant.redirect_uri, "access_denied", description, state, server.settings.issuer)
        return RedirectResponse(location, 302)

    upstream = await service.upstreams.for_tenant(client.tenant_id)
    if upstream is None:
        await _refuse_signin(service, client.tenant_id, client.get_client_id(), "no identity provider configured")
        return refuse("sign-in is not configured")
    provider, app = upstream
    try:
        upstream_token = await app.authorize_access_token(request)
        metadata = await app.load_server_metadata()
    except (OAuthError, JoseError, httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        reason = getattr(exc, "error", None) or type(exc).__name__
        await _refuse_signin(
            service, client.tenant_id, client.get_client_id(), f"identity provider answer rejected: {reason}"
        )
        return refuse("the identity provider's answer was rejected")
    userinfo = upstream_token.get("userinfo")
    if not userinfo or str(metadata.get("issuer", "")).rstrip("/") != provider.issuer:
        # No validated ID token (or a discovery document for another issuer): nothing proves who this is.
        await _refuse_signin(
            service, client.tenant_id, client.get_client_id(), "no valid ID token from the identity provider"
        )
        return refuse("the identity provider did not identify the user")
    member = await Member.find_one(
        {"tenant_id": client.tenant_id, "issuer": userinfo["iss"], "subject": str(userinfo["sub"])}
    )
    if member is None:
        await _refuse_signin(
            service, client.tenant_id, client.get_client_id(), "not a member of this tenant",
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
    return to_response(status, body, headers)
