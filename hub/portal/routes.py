"""``/portal``: the static page, its scripts and its vendored libraries, served with a strict CSP.

The page is a public OAuth client (authorization code + PKCE, the token kept in memory), so the hub only serves
files here: everything the page shows comes from ``/graphql`` with the signed-in member's token. The policy allows
scripts, styles and connections to this origin only, so an injected string can neither run nor send data away.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",  # CSP3: 'self' covers ws:/wss: to this host too
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    # The sign-in answer (code, state) arrives in the page's query: never hand it to another site.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


class PortalFiles(StaticFiles):
    """Scripts and styles with the page's headers; revalidated so an upgraded hub serves matching files."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in {**HEADERS, "Cache-Control": "no-cache"}.items()]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={**HEADERS, "Cache-Control": "no-store"})


async def to_page(request: Request) -> Response:
    query = request.url.query
    return RedirectResponse("/portal/" + (f"?{query}" if query else ""), 307)


def portal_routes() -> list[BaseRoute]:
    return [
        Route("/portal", to_page),
        Route("/portal/", page),
        Mount("/portal/static", app=PortalFiles(directory=STATIC), name="portal-static"),
    ]
