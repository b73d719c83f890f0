"""The ASGI application: ``create_app`` builds it, its lifespan connects the database and starts background work."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from hub import clock, gcpolicy, logs, metrics, tracing
from hub.audit import OriginMiddleware, proxy_networks
from hub.auth import TokenValidator
from hub.config import Settings
from hub.db import Database, Deadlines
from hub.epcis.routes import epcis_routes
from hub.events import log as event_log
from hub.events.archive import start_archiver
from hub.events.bus import start_event_bus
from hub.keys import COLLECTION as KEYS
from hub.leases import start_partitions
from hub.oauth.http import start_oauth
from hub.oauth.routes import oauth_routes
from hub.portal.routes import portal_routes
from hub.ratelimit import start_rate_limits
from hub.services import expiry, health
from hub.services.escalation import start_escalation
from hub.services.expiry import start_sweeper
from hub.services.heartbeat import start_heartbeat
from hub.services.persisted import start_persisted_queries
from hub.services.signals import start_planning
from hub.state import HubState, keyring_for
from hub.websocket import HubWebSocketProtocol
from schema.schema import build_schema
from schema.view import GRAPHIQL_DIR, HubGraphQL
from webhooks.routes import catalogue_routes
from webhooks.runtime import start_webhooks

log = logging.getLogger("lotpulse")

# Startup hooks other packages register (event bus, webhook worker, sweeps); each may spawn background tasks.
StartupHook = Callable[[HubState], Awaitable[None]]
STARTUP_HOOKS: list[StartupHook] = []
STARTUP_HOOKS.append(start_partitions)  # first: the periodic jobs below do the work of the tenants leased here
STARTUP_HOOKS.append(start_sweeper)
STARTUP_HOOKS.append(start_planning)
STARTUP_HOOKS.append(health.start_snapshots)
STARTUP_HOOKS.append(start_heartbeat)
STARTUP_HOOKS.append(start_oauth)
STARTUP_HOOKS.append(start_event_bus)
STARTUP_HOOKS.append(start_escalation)
STARTUP_HOOKS.append(start_archiver)
STARTUP_HOOKS.append(start_webhooks)
STARTUP_HOOKS.append(metrics.start_metrics_port)
STARTUP_HOOKS.append(start_rate_limits)
STARTUP_HOOKS.append(start_persisted_queries)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How ``lotpulse serve`` (and the tests) run uvicorn. Its proxy-header handling is off: by default it believes
    X-Forwarded-For from loopback, which would let a client behind a local proxy pick its own address.
    ``OriginMiddleware`` honours the header from ``LOTPULSE_TRUSTED_PROXIES`` only. WebSockets use uvicorn's own
    protocol with a way to cut off a subscriber that stopped reading (hub/websocket.py)."""
    return {"host": settings.host, "port": settings.port, "ws": HubWebSocketProtocol, "proxy_headers": False,
            "forwarded_allow_ips": ""}


def create_app(settings: Settings, mongodb_uri: str | None = None, tracer_provider: Any = None) -> Starlette:
    """The hub as an ASGI app. ``mongodb_uri`` overrides the settings (the CLI passes the embedded server's);
    ``tracer_provider`` replaces the OTLP exporter when tracing is on (tests keep spans in memory)."""
    uri = mongodb_uri or settings.mongodb_uri
    if uri is None:
        raise ValueError("no MongoDB URI: set LOTPULSE_MONGODB_URI or run `lotpulse serve` for the embedded one")
    keyring = keyring_for(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        event_log.set_retention(settings.event_retention_days)
        expiry.set_velocity_window(settings.expiry_velocity_days)
        previous_clock = clock.use(clock.from_setting(settings.clock)) if settings.clock != "wall" else None
        deadlines = Deadlines(
            operation=settings.db_timeout_seconds,
            server_selection=settings.db_server_selection_seconds,
            transaction=settings.transaction_timeout_seconds,
        )
        database = await Database.connect(uri, settings.database, timed=settings.metrics, deadlines=deadlines)
        await keyring.load(database.db[KEYS])
        hub = HubState(settings, database, keyring, TokenValidator(settings, keyring))
        app.state.hub = hub
        hub.spawn("signing key ring", lambda: keyring.refresh_forever(settings.signing_key_refresh_seconds))
        for hook in STARTUP_HOOKS:
            await hook(hub)
        gcpolicy.started()  # what start-up made is frozen (lotpulse serve only)
        log.info("hub ready on database %r", settings.database)
        try:
            yield
        finally:
            await hub.stop_tasks()
            await database.close()
            logs.flush_access_lines()
            if previous_clock is not None:
                clock.use(previous_clock)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        hub: HubState | None = getattr(request.app.state, "hub", None)
        if hub is None or not await hub.database.ping():
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})

    if settings.tracing:
        tracer_provider = tracer_provider or tracing.provider_for(settings)
    else:
        tracer_provider = None
    schema = build_schema(settings, tracer_provider)
    graphql = HubGraphQL(schema, settings)
    middleware = [
        *([Middleware(tracing.instrument, provider=tracer_provider)] if tracer_provider else []),
        Middleware(logs.RequestContext),  # request id in and out, one access line per request
        # Who is calling from where, for the audit log and the failed-authentication limits.
        Middleware(OriginMiddleware, trusted_proxies=proxy_networks(settings.trusted_proxies)),
    ]
    if settings.allowed_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.allowed_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["authorization", "content-type", "accept"],
                max_age=600,
            )
        )
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics.endpoint(settings)),
            Route("/.well-known/jwks.json", jwks),
            Mount("/graphiql", StaticFiles(directory=GRAPHIQL_DIR), name="graphiql"),
            *oauth_routes(settings, keyring),
            *portal_routes(),
            *epcis_routes(),
            *catalogue_routes(settings),
        ],
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: routing_refusal},
    )


async def routing_refusal(request: Request, exc: Exception) -> Response:
    """No such path or method: a JSON body like every other refusal (an RFC 7807 problem, named as the EPCIS binding
    names its own under /epcis; a GraphQL error on /graphql), never Starlette's plain text."""
    assert isinstance(exc, HTTPException)
    status, headers = exc.status_code, dict(exc.headers or {})
    if request.url.path == "/graphql":
        body = {"errors": [{"message": exc.detail, "extensions": {"code": "BAD_USER_INPUT"}}]}
        return JSONResponse(body, status_code=status, headers=headers)
    kind = "epcisException:NoSuchResourceException" if status == 404 and request.url.path.startswith("/epcis") \
        else "about:blank"
    return JSONResponse({"type": kind, "title": exc.detail, "status": status}, status_code=status, headers=headers,
                        media_type="application/problem+json")
