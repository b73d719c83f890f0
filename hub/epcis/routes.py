"""The EPCIS 2.0 REST binding's routes under ``/epcis``: capture, capture jobs, event queries.

Same bearer tokens as ``/graphql``: reading needs a token that may read (scope ``read`` on OAuth tokens); capturing
needs a role that may write (scope ``write``). Errors are RFC 7807 problems (``application/problem+json``) with the
binding's exception names as ``type``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pymongo
from pymongo.errors import PyMongoError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hub.auth import Principal
from hub.dates import utcnow
from hub.db import unavailable
from hub.epcis import query as event_query
from hub.epcis.capture import CaptureRefused, capture, job_view, problem
from hub.epcis.models import CaptureJob
from hub.errors import Forbidden, HubError, ServiceUnavailable
from hub.state import hub_of
from tenants.access import Access
from tenants.roles import Group, allows, refusal

log = logging.getLogger("lotpulse.epcis")
PROBLEM = "application/problem+json"
VERSION_HEADERS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}


def _problem(kind: str, title: str, status: int, extra: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({**problem(kind, title, status), **(extra or {})}, status_code=status, media_type=PROBLEM,
                        headers={**VERSION_HEADERS, **(headers or {})})


async def _caller(request: Request, scope: str) -> Principal | JSONResponse:
    hub = hub_of(request)
    try:
        principal = await hub.validator.authenticate(request.headers.get("authorization"))
    except ServiceUnavailable:
        raise
    except (HubError, ValueError, TypeError) as exc:
        message = exc.message if isinstance(exc, HubError) else "invalid token"
        return _problem("SecurityException", message, 401, headers={"WWW-Authenticate": 'Bearer realm="lotpulse"'})
    if principal.scopes is not None and scope not in principal.scopes:
        return _problem("SecurityException", f"the token lacks the scope {scope}", 403)
    if hub.rate_limiter is not None:
        decision = await hub.rate_limiter.take("requests", principal, 1)
        if not decision.allowed:
            return _problem("CaptureLimitExceededException" if scope == "write" else "QueryTooComplexException",
                            "rate limited", 429, headers=decision.headers())
    return principal


def _guarded(handler: Any) -> Any:
    """A database that is away answers 503 with Retry-After (as /graphql does), never a 500 or a hang."""

    async def endpoint(request: Request) -> Response:
        hub = hub_of(request)
        retry = {"Retry-After": str(ServiceUnavailable.retry_after_seconds)}
        if not await hub.database.reachable():
            return _problem("ImplementationException", "the database is unavailable; retry shortly", 503,
                            headers=retry)
        try:
            response: Response = await handler(request)
            return response
        except ServiceUnavailable:
            return _problem("ImplementationException", "the database is unavailable; retry shortly", 503,
                            headers=retry)
        except PyMongoError as exc:
            if not unavailable(exc):
                raise
            log.warning("database unavailable: %s", exc)
            return _problem("ImplementationException", "the database is unavailable; retry shortly", 503,
                            headers=retry)

    return endpoint


async def capture_endpoint(request: Request) -> Response:
    hub = hub_of(request)
    principal = await _caller(request, "write")
    if isinstance(principal, JSONResponse):
        return principal
    if not allows(principal, Group.operations):
        return _problem("SecurityException", refusal(Group.operations), 403)
    limit = hub.settings.epcis_max_document_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _problem("CaptureLimitExceededException", f"documents are at most {limit} bytes", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _problem("CaptureLimitExceededException", f"documents are at most {limit} bytes", 413)
    behaviour = request.headers.get("gs1-capture-error-behaviour", "rollback").strip().lower()
    access = await Access.load(principal)
    try:
        job = await capture(access, hub.database, hub.settings, body, behaviour)
    except CaptureRefused as exc:
        errors = {"errors": [p.as_dict() for p in exc.problems]} if exc.problems else None
        return _problem(exc.kind, exc.title, exc.status, errors)
    except Forbidden as exc:
        return _problem("SecurityException", exc.message, 403)
    location = f"/epcis/capture/{job.capture_id}"
    return JSONResponse(job_view(job), status_code=202,
                        headers={**VERSION_HEADERS, "Location": location,
                                 "GS1-EPCIS-Capture-Limit": str(hub.settings.epcis_capture_limit)})


async def capture_job(request: Request) -> Response:
    principal = await _caller(request, "read")
    if isinstance(principal, JSONResponse):
        return principal
    job = await CaptureJob.find_one({"tenant_id": principal.tenant_id,
                                     "capture_id": request.path_params["capture_id"]})
    if job is None:  # another tenant's job is not found either
        return _problem("NoSuchResourceException", "capture job not found", 404)
    return JSONResponse(job_view(job), headers=VERSION_HEADERS)


async def events_endpoint(request: Request) -> Response:
    hub = hub_of(request)
    principal = await _caller(request, "read")
    if isinstance(principal, JSONResponse):
        return principal
    params = list(request.query_params.multi_items())
    try:
        parsed = event_query.parse(params, hub.settings.epcis_max_page_size)
    except event_query.QueryRefused as exc:
        return _problem("QueryParameterException", str(exc), 400)
    access = await Access.load(principal)
    with pymongo.timeout(hub.settings.request_timeout_seconds):
        page = await event_query.run(access, parsed)
    headers = dict(VERSION_HEADERS)
    if page.next_token is not None:
        kept = [(k, v) for k, v in params if k != "nextPageToken"] + [("nextPageToken", page.next_token)]
        headers["Link"] = f'<{request.url.path}?{urlencode(kept)}>; rel="next"'
    return JSONResponse(query_document(page.events, utcnow()), headers=headers)


def query_document(events: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": now.isoformat().replace("+00:00", "Z"),
        "epcisBody": {"queryResults": {"queryName": "SimpleEventQuery",
                                       "resultsBody": {"eventList": events}}},
    }


def epcis_routes() -> list[BaseRoute]:
    return [
        Route("/epcis/capture", _guarded(capture_endpoint), methods=["POST"]),
        Route("/epcis/capture/{capture_id}", _guarded(capture_job), methods=["GET"]),
        Route("/epcis/events", _guarded(events_endpoint), methods=["GET"]),
    ]
