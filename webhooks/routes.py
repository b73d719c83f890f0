"""The webhook catalogue over HTTP: every event type with its meaning, scope and ordering key, and the JSON Schema
of each type's body. Public like an API reference (no tenant data): partners read it before they have a token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from hub.events.catalogue import CATALOGUE, entry, schema_of

CACHE = {"cache-control": "public, max-age=300"}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def catalogue(request: Request) -> JSONResponse:
    base = _base(request)
    return JSONResponse({"eventTypes": [entry(name, base) for name in CATALOGUE]}, headers=CACHE)


async def schema(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    if name not in CATALOGUE:
        return JSONResponse({"error": "not_found", "message": f"no event type {name!r}",
                             "catalogue": f"{_base(request)}/webhooks/catalogue"}, status_code=404)
    return JSONResponse(schema_of(name, _base(request)), media_type="application/schema+json", headers=CACHE)


def catalogue_routes() -> list[BaseRoute]:
    return [
        Route("/webhooks/catalogue", catalogue, methods=["GET"]),
        Route("/webhooks/schemas/{name}.json", schema, methods=["GET"]),
    ]
