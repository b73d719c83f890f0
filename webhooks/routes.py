"""The webhook catalogue over HTTP: every event type with its meaning, scope and ordering key, and the JSON Schema
of each type's body. Public like an API reference (no tenant data): partners read it before they have a token.

Absolute URLs are built on the hub's configured public URL, never on the request's Host header: the answers are
cacheable by shared caches, and a Host of a client's choosing would put its own address in them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from hub.config import Settings
from hub.events.catalogue import CATALOGUE, entry, schema_of

CACHE = {"cache-control": "public, max-age=300"}


def catalogue_routes(settings: Settings) -> list[BaseRoute]:
    base = settings.issuer

    async def catalogue(request: Request) -> JSONResponse:
        return JSONResponse({"eventTypes": [entry(name, base) for name in CATALOGUE]}, headers=CACHE)

    async def schema(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name not in CATALOGUE:
            return JSONResponse({"error": "not_found", "message": f"no event type {name!r}",
                                 "catalogue": f"{base}/webhooks/catalogue"}, status_code=404)
        return JSONResponse(schema_of(name, base), media_type="application/schema+json", headers=CACHE)

    return [
        Route("/webhooks/catalogue", catalogue, methods=["GET"]),
        Route("/webhooks/schemas/{name}.json", schema, methods=["GET"]),
    ]
