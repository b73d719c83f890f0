"""The graphql-transport-ws handler: strawberry's, hardened, bound to the lifetime of the caller's token, and
cutting off subscribers that fall behind.

Two gaps of the stock handler are closed here. It indexes into every message it receives, so a frame that is valid
JSON but not a protocol message (a list, a string, a subscribe without a payload object) raised out of the handler
instead of closing with 4400 as the protocol says. And a socket authenticated once at ``connection_init`` would
otherwise outlive its token: here it is closed with 4403 when the token expires or is revoked.

Each operation runs with a ``LiveSink`` (schema/subscriptions.py) through which live subscriptions write their
messages. A subscriber is cut off when it falls behind: when its queue in the bus fills, or when its socket has
accepted no writes for ``subscriber_send_timeout_seconds`` (the peer stopped reading, and the send is stuck). It gets
an ``error`` message with RATE_LIMITED and, in ``extensions.cursor``, the id of the last event written to it: a
resubscription with ``after`` set to it gets exactly what it missed. Its operation ends and its queue is released at
once. While the socket still takes writes, only that subscription ends; when it does not, the error is written past
the flow control, after what is already queued, and the socket is closed with 4420 (``SLOW_CONSUMER``) and reset if
the peer does not read that either within a grace period (hub/websocket.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any, cast

from graphql import GraphQLError, parse
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation

from hub.auth import Principal
from hub.websocket import EXTENSION, HubWebSocketProtocol
from schema.context import Context
from schema.subscriptions import LIVE_SINK, LiveSink

if TYPE_CHECKING:
    from hub.config import Settings
    from schema.view import HubGraphQL

log = logging.getLogger("lotpulse.ws")
TOKEN_EXPIRED = 4403
BAD_MESSAGE = 4400
SLOW_CONSUMER = 4420  # the peer stopped reading; not a code graphql-ws clients treat as fatal: they reconnect
MAX_REASON_BYTES = 120
REVOCATION_POLL_SECONDS = 10.0  # at most this long between revocation checks of an open socket
RECANCEL_SECONDS = 0.2


async def cancel_until_done(task: asyncio.Task[Any], attempts: int = 50) -> None:
    """Cancel ``task`` again and again until it has ended.

    One cancellation can be lost inside the database driver: seen with pymongo's operation deadlines on Python 3.11
    (whose ``asyncio.wait_for`` can swallow a cancellation that arrives as the inner wait completes). A subscription
    cancelled while it was being registered then went on to wait for events forever, holding its slot, and its
    closing connection waited for it without end (a hub stop hung).
    """
    for _ in range(attempts):
        if task.done():
            return
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
    if not task.done():
        log.warning("a subscription task ignored %d cancellations", attempts)


def _malformed(message: Any) -> str | None:
    """Why ``message`` is not a graphql-transport-ws message, or None."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "message must be an object with a string 'type'"
    if message["type"] == "connection_init" and message.get("payload") is not None:
        if not isinstance(message["payload"], dict):
            return "Invalid connection init payload"
    if message["type"] in ("subscribe", "complete") and not isinstance(message.get("id"), str):
        return f"{message['type']} needs a string 'id'"
    if message["type"] == "subscribe":
        payload = message.get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return "subscribe needs a payload with a string 'query'"
        if payload.get("variables") is not None and not isinstance(payload["variables"], dict):
            return "'variables' must be an object"
        if payload.get("operationName") is not None and not isinstance(payload["operationName"], str):
            return "'operationName' must be a string"
    return None


def _syntax_error(query: str, max_tokens: int) -> str | None:
    try:
        parse(query, max_tokens=max_tokens)
    except GraphQLError as exc:
        return exc.message
    return None


def rate_limited(operation_id: str, cursor: str | None) -> str:
    """The ``error`` message that ends a subscriber that fell behind, with where to resume from."""
    error = {
        "message": "subscriber fell behind the live stream; resubscribe with 'after' set to extensions.cursor",
        "extensions": {"code": "RATE_LIMITED", "cursor": cursor},
    }
    return json.dumps({"id": operation_id, "type": "error", "payload": [error]}, separators=(",", ":"))


class HubTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    expiry_task: asyncio.Task[None] | None = None
    writes_task: asyncio.Task[None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cancellations: set[asyncio.Task[None]] = set()
        self.sinks: dict[str, LiveSink] = {}
        self.socket = cast("ASGIWebSocketAdapter", self.websocket).ws  # Starlette's WebSocket
        self.peer: HubWebSocketProtocol | None = self.socket.scope.get("extensions", {}).get(EXTENSION)
        close = self.websocket.close

        async def capped(code: int, reason: str) -> None:
            # RFC 6455 caps a close reason at 123 bytes, and strawberry echoes client input (a message type, an
            # operation id) into some: an oversized one broke the close frame and the client got no code at all.
            await close(code, reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore"))

        self.websocket.close = capped  # type: ignore[method-assign]

    @property
    def settings(self) -> Settings:
        return cast("HubGraphQL", self.view).settings

    async def handle_message(self, message: Any) -> None:
        reason = _malformed(message)
        if reason is None and message["type"] == "subscribe" and self.connection_acknowledged:
            # With the hub's extensions a syntax error escapes strawberry's stream as an exception (logged, and the
            # client left waiting); the protocol answers it by closing with 4400, as strawberry means to.
            reason = _syntax_error(message["payload"]["query"], self.settings.max_tokens)
        if reason is not None:
            await self.handle_invalid_message(reason)
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        principal = getattr(self.context, "principal", None)
        if self.connection_acknowledged and principal is not None and self.expiry_task is None:
            self.expiry_task = asyncio.create_task(self._watch_token(principal))
            if self.peer is not None:
                self.writes_task = asyncio.create_task(self._watch_writes(self.peer))

    # -- live operations -------------------------------------------------------------------------------------------

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        websocket, peer = self.socket, self.peer

        async def send_text(text: str) -> None:
            if peer is not None:
                if not peer.accepting_writes:
                    await peer.writable.wait()
                if not (peer.close_sent or peer.disconnected):
                    peer.queue_text(text)  # written with the other subscriptions' messages of this event
                    return
            else:
                with suppress(WebSocketDisconnect):
                    await websocket.send_text(text)
                    return
            # The peer is gone or going: the connection's shutdown cancels this operation in a moment.
            raise asyncio.CancelledError

        operations = self.operations

        def write_now(text: str) -> bool:
            """Queue ``text`` for this turn's write if the socket takes writes and the operation is still on; else
            False, and its task sends it the ordinary way (waiting, or finding it has ended)."""
            if peer is None or not peer.accepting_writes or peer.close_sent or peer.disconnected:
                return False
            if operation.completed or operations.get(operation.id) is not operation:
                return False  # completed or cut off: nothing more may follow
            peer.queue_text(text)
            return True

        sink = LiveSink(
            operation.id, operation.query, operation.variables, operation.operation_name, self.schema, self.context,
            send_text, lambda: self._fell_behind([operation.id]), write_now,
        )
        self.sinks[operation.id] = sink
        LIVE_SINK.set(sink)  # this task's own context: the operation's resolvers find it there
        try:
            await super().run_operation(operation)
        finally:
            if self.sinks.get(operation.id) is sink:
                del self.sinks[operation.id]

    def _fell_behind(self, operation_ids: list[str]) -> None:
        task = asyncio.create_task(self._cut_off(operation_ids))
        self.cancellations.add(task)
        task.add_done_callback(self.cancellations.discard)

    async def _cut_off(self, operation_ids: list[str]) -> None:
        """End these operations with RATE_LIMITED and their cursors; see the module's docstring."""
        errors = []
        for operation_id in operation_ids:
            operation, sink = self.operations.get(operation_id), self.sinks.get(operation_id)
            if operation is None or sink is None or operation.task is None or operation.completed:
                continue
            operation.completed = True  # nothing more is sent for it, whatever its task is doing
            task = operation.task
            await self.cleanup_operation(operation_id)
            await cancel_until_done(task)  # no message of it can follow the error
            errors.append(rate_limited(operation_id, sink.cursor))
            log.info("subscription %s cut off: it fell behind the live stream (resume from %s)", operation_id,
                     sink.cursor)
        if not errors:
            return
        if self.peer is not None and not self.peer.accepting_writes:
            self.peer.force_close(errors, SLOW_CONSUMER, "subscriber too slow: resubscribe with the cursor")
            return
        for sent, text in enumerate(errors):
            try:
                async with asyncio.timeout(self.settings.subscriber_send_timeout_seconds):
                    await self.socket.send_text(text)
            except TimeoutError:
                if self.peer is not None:
                    self.peer.force_close(errors[sent:], SLOW_CONSUMER, "subscriber too slow: resubscribe")
                return
            except WebSocketDisconnect:
                return

    async def _watch_writes(self, peer: HubWebSocketProtocol) -> None:
        """Cut off every live subscription of a socket that has accepted no writes for the send timeout."""
        timeout = self.settings.subscriber_send_timeout_seconds
        loop = asyncio.get_running_loop()
        stuck_since: float | None = None
        while True:
            await asyncio.sleep(timeout / 4)
            if peer.accepting_writes:
                stuck_since = None
                continue
            stuck_since = stuck_since if stuck_since is not None else loop.time()
            if loop.time() - stuck_since >= timeout:
                await self._cut_off(list(self.sinks))
                return

    async def _watch_token(self, principal: Principal) -> None:
        """Close the socket when its token expires, or once it is found revoked (polled: revocation is not pushed)."""
        validator = self.context.hub.validator
        poll = max(0.5, min(REVOCATION_POLL_SECONDS, self.settings.oauth_revocation_cache_seconds))
        while True:
            remaining = principal.expires_at - time.time() if principal.expires_at is not None else poll
            if remaining <= 0:
                reason = "token expired"
                break
            await asyncio.sleep(min(remaining, poll))
            if await validator.is_revoked(principal):
                reason = "token revoked"
                break
        log.info("closing a WebSocket: %s", reason)
        with suppress(Exception):  # the client may have gone already
            await self.websocket.close(code=TOKEN_EXPIRED, reason=reason)

    async def cleanup_operation(self, operation_id: str) -> None:
        operation = self.operations.get(operation_id)
        await super().cleanup_operation(operation_id)
        if operation is not None and operation.task is not None:
            # Not awaited here, lest the socket's reader wait; tracked so that shutdown waits for it.
            follow_up = asyncio.create_task(cancel_until_done(operation.task))
            self.cancellations.add(follow_up)
            follow_up.add_done_callback(self.cancellations.discard)

    async def shutdown(self) -> None:
        for watcher in (self.expiry_task, self.writes_task):
            if watcher is not None:
                watcher.cancel()
                with suppress(asyncio.CancelledError):
                    await watcher
        tasks = [operation.task for operation in self.operations.values() if operation.task is not None]
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        for task in tasks:
            await cancel_until_done(task)
        if self.cancellations:
            await asyncio.gather(*self.cancellations, return_exceptions=True)
        await super().shutdown()
