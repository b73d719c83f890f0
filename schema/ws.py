"""The graphql-transport-ws handler: strawberry's, hardened, and bound to the lifetime of the caller's token.

Two gaps of the stock handler are closed here. It indexes into every message it receives, so a frame that is valid
JSON but not a protocol message (a list, a string, a subscribe without a payload object) raised out of the handler
instead of closing with 4400 as the protocol says. And a socket authenticated once at ``connection_init`` would
otherwise outlive its token: here it is closed with 4403 when the token expires or is revoked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any, cast

from graphql import GraphQLError, parse
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler

from hub.auth import Principal
from schema.context import Context

if TYPE_CHECKING:
    from hub.config import Settings
    from schema.view import HubGraphQL

log = logging.getLogger("lotpulse.ws")
TOKEN_EXPIRED = 4403
BAD_MESSAGE = 4400
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


class HubTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    expiry_task: asyncio.Task[None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cancellations: set[asyncio.Task[None]] = set()
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
        if self.expiry_task is not None:
            self.expiry_task.cancel()
            with suppress(asyncio.CancelledError):
                await self.expiry_task
        tasks = [operation.task for operation in self.operations.values() if operation.task is not None]
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        for task in tasks:
            await cancel_until_done(task)
        if self.cancellations:
            await asyncio.gather(*self.cancellations, return_exceptions=True)
        await super().shutdown()
