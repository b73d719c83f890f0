"""What the OAuth routes share: the per-process service, reading a request completely, shaping responses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.audit import current_origin
from hub.config import Settings
from hub.oauth.clients import find_client
from hub.oauth.ratelimit import FailedAuthLimiter
from hub.oauth.server import HubAuthorizationServer, HubRequest
from hub.oauth.upstream import StateCache, Upstreams
from hub.state import HubState, hub_of

MAX_FORM_BYTES = 16 * 1024
FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class OAuthService:
    """What the routes share in one hub process (``HubState.oauth``)."""

    server: HubAuthorizationServer
    limiter: FailedAuthLimiter
    cache: StateCache
    upstreams: Upstreams


async def start_oauth(hub: HubState) -> None:
    settings = hub.settings
    cache = StateCache()
    hub.oauth = OAuthService(
        server=HubAuthorizationServer(settings, hub.keyring, hub.validator),
        limiter=FailedAuthLimiter(
            settings.oauth_failed_auth_window_seconds,
            settings.oauth_failed_auth_per_client,
            settings.oauth_failed_auth_per_ip,
        ),
        cache=cache,
        upstreams=Upstreams(cache),
    )


def service_of(request: Request) -> OAuthService:
    return hub_of(request).oauth


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description}, status, headers={**NO_STORE, **(headers or {})}
    )


def to_response(status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
    content = json.dumps(body) if isinstance(body, dict) else (body or "")
    response = Response(content, status_code=status)
    for name, value in headers:
        response.headers[name] = value
    return response


class FormError(Exception):
    pass


_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def _printable(params: dict[str, list[str]]) -> bool:
    return all(_PRINTABLE.fullmatch(key) and all(_PRINTABLE.fullmatch(v) for v in values)
               for key, values in params.items())


async def read_request(request: Request, settings: Settings, with_form: bool) -> HubRequest:
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
    if not (_printable(form) and _printable(query)):
        # authlib cannot build an error description holding anything else: echoing one in a refusal raised a 500
        raise FormError("OAuth parameters are printable ASCII (RFC 6749, appendix A)")
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


async def tenant_of(client_id: str | None) -> str | None:
    client = await find_client(client_id) if client_id else None
    return client.tenant_id if client else None
