"""The floor of bench/fanout.py's broadcast phase: a bare Starlette graphql-transport-ws broadcaster.

No schema, no authentication, no database: ``connection_init`` is acknowledged, every ``subscribe`` is registered
under its operation id, and ``POST /publish`` (its body: the ``payload`` of a ``next`` message, already serialized)
sends that payload to every registered subscription, framed with the subscription's id, in one loop. It runs under
uvicorn with the hub's own options (httptools, uvloop, the same WebSocket implementation), so what it costs is the
least any hub on this stack can cost.

    python -m uvicorn bench.broadcaster:app --port 8100
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

SUBSCRIBERS: dict[tuple[int, str], WebSocket] = {}


async def graphql(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="graphql-transport-ws")
    mine: list[tuple[int, str]] = []
    try:
        while True:
            message = json.loads(await websocket.receive_text())
            if message["type"] == "connection_init":
                await websocket.send_text('{"type":"connection_ack"}')
            elif message["type"] == "subscribe":
                key = (id(websocket), message["id"])
                SUBSCRIBERS[key] = websocket
                mine.append(key)
            elif message["type"] == "complete":
                SUBSCRIBERS.pop((id(websocket), message["id"]), None)
            elif message["type"] == "ping":
                await websocket.send_text('{"type":"pong"}')
    except WebSocketDisconnect:
        pass
    finally:
        for key in mine:
            SUBSCRIBERS.pop(key, None)


async def publish(request: Request) -> PlainTextResponse:
    payload = (await request.body()).decode()
    for (_, operation_id), websocket in list(SUBSCRIBERS.items()):
        await websocket.send_text(f'{{"id":{json.dumps(operation_id)},"type":"next","payload":{payload}}}')
    return PlainTextResponse(str(len(SUBSCRIBERS)))


async def count(request: Request) -> PlainTextResponse:
    return PlainTextResponse(str(len(SUBSCRIBERS)))


app = Starlette(routes=[WebSocketRoute("/graphql", graphql), Route("/publish", publish, methods=["POST"]),
                        Route("/count", count)])
