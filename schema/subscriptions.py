"""What every live subscription shares: the stream's cursor, and each live event rendered once per audience.

A live event used to go through the whole per-result pipeline once per subscriber: graphql-core's execution of the
selection set, strawberry's result handling and extension hooks, a JSON encoding of the same result, all repeated
for every one of 2,000 subscribers of a broadcast (bench/fanout.py: p99 731 ms against 85 ms for a bare broadcaster).
Now an event is *rendered* (executed and serialized to the bytes of a ``next`` payload) once per audience: the
subscriptions of one tenant, with the same roles and scopes, asking the same document with the same variables and
operation name. Those are everything a subscriber's message depends on (the bus has already decided, per tenant,
whether it hears the event; the value is built from the event and the subscription's arguments only), so an audience
gets one rendering and no rendering crosses tenants. What is left per subscriber is framing those bytes with its
operation id and writing them to its socket (``LiveSink``), which is all a bare broadcaster does too.

Every rendering is a fresh execution, so no execution state outlives its event: graphql-core's memo of collected
subfields, kept by an executor reused for every event of a subscription, once grew by ~3 KB per delivered message
(tests/events/test_memory.py).

The generator of a live field yields nothing to strawberry: its messages leave through the sink, and it ends when
the operation does (``complete``, disconnect, or a cut-off for falling behind: schema/ws.py).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextvars import ContextVar
from functools import lru_cache
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import DocumentNode, ExecutionResult, execute, parse
from strawberry.schema import BaseSchema
from strawberry.types import Info

from hub.auth import Principal
from hub.events.bus import LiveEvent
from schema.errors import shape_error
from schema.permissions import READ

CACHE_SIZE = 1024  # renderings kept: (event, audience) pairs


class Audience:
    """Who gets the same bytes for the same event. Hashed once: it is looked up once per subscriber and event."""

    __slots__ = ("_hash", "parts")

    def __init__(self, principal: Principal | None, query: str, variables: dict[str, Any] | None,
                 operation_name: str | None) -> None:
        viewer = (
            (principal.tenant_id, tuple(sorted(principal.roles)),
             tuple(sorted(principal.scopes)) if principal.scopes is not None else None)
            if principal is not None else None
        )
        self.parts = (viewer, query, json.dumps(variables, sort_keys=True, default=str), operation_name)
        self._hash = hash(self.parts)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Audience) and self.parts == other.parts)


@lru_cache(maxsize=256)
def _document(query: str) -> DocumentNode:
    return parse(query)  # already parsed, validated and limited once when the operation was accepted


class Renderings:
    """``next`` payloads by (event id, audience), the newest ``size`` kept."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.payloads: OrderedDict[tuple[str, Audience], str] = OrderedDict()

    def keep(self, key: tuple[str, Audience], payload: str) -> None:
        self.payloads[key] = payload
        if len(self.payloads) > self.size:
            self.payloads.popitem(last=False)


RENDERINGS = Renderings()


class LiveSink:
    """One live operation's way out: what it asked, who asked, how its messages are framed, and how far it got.

    ``cursor`` is the id of the last event written to the socket (or the ``after`` it started from): the exact point
    to resume from, given with RATE_LIMITED when the subscriber is cut off.
    """

    def __init__(
        self,
        operation_id: str,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        schema: BaseSchema,
        context: Any,
        send_text: Callable[[str], Awaitable[None]],
        cut_off: Callable[[], None],
    ) -> None:
        self.operation_id = operation_id
        self.query = query
        self.variables = variables
        self.operation_name = operation_name
        self.schema = schema
        self.context = context
        self.audience = Audience(getattr(context, "principal", None), query, variables, operation_name)
        self.prefix = f'{{"id":{json.dumps(operation_id)},"type":"next","payload":'
        self.send_text = send_text
        self.overflowed = cut_off  # called by the bus when this subscriber's queue is full
        self.cursor: str | None = None

    async def deliver(self, event: LiveEvent, build: Callable[[LiveEvent], Any]) -> None:
        key = (event.id, self.audience)
        payload = RENDERINGS.payloads.get(key)
        if payload is None:
            rendered = self.render(build(event))
            payload, shareable = await rendered if isawaitable(rendered) else rendered
            if shareable:
                RENDERINGS.keep(key, payload)
        await self.send_text(self.prefix + payload + "}")
        self.cursor = event.id

    def render(self, root: Any) -> tuple[str, bool] | Awaitable[tuple[str, bool]]:
        """The ``next`` payload of this operation for ``root``, and whether it may be shared (not when it failed)."""
        result = execute(
            self.schema._schema,  # type: ignore[attr-defined]
            _document(self.query),
            root_value=root,
            context_value=self.context,
            variable_values=self.variables,
            operation_name=self.operation_name,
        )
        if isawaitable(result):
            return self._serialize_later(result)
        return self._serialize(result)

    async def _serialize_later(self, pending: Awaitable[ExecutionResult]) -> tuple[str, bool]:
        return self._serialize(await pending)

    def _serialize(self, result: ExecutionResult) -> tuple[str, bool]:
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            errors = [shape_error(error) for error in result.errors]
            self.schema.process_errors(errors)
            body["errors"] = [error.formatted for error in errors]
        return json.dumps(body, separators=(",", ":")), not result.errors


# Set by the graphql-transport-ws handler in each operation's task (schema/ws.py).
LIVE_SINK: ContextVar[LiveSink | None] = ContextVar("live_sink", default=None)


async def live(
    info: Info,
    types: Iterable[str],
    predicate: Callable[[LiveEvent], bool] | None,
    after: str | None,
    build: Callable[[LiveEvent], Any],
) -> AsyncGenerator[Any, None]:
    """The body of every live subscription field: the caller's events from the bus (replayed from ``after``, then
    live), each turned into the field's value by ``build``, rendered once per audience and written by the sink."""
    sink = LIVE_SINK.get()
    if sink is None:
        raise RuntimeError("live subscriptions are served over graphql-transport-ws only")
    principal = info.context.require_principal()
    sink.cursor = after
    bus = info.context.hub.bus
    async with bus.subscribe(principal.tenant_id, types, predicate, after, on_overflow=sink.overflowed) as events:
        async for event in events:
            await sink.deliver(event, build)
    return
    yield  # an async generator, as strawberry wants of a subscription; its messages go out through the sink


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=READ,
        description="The newest event addressed to the caller: query the state you need, then subscribe with "
        "'after' set to this cursor to hear every change after that moment (null: nothing yet).",
    )
    async def event_cursor(self, info: Info) -> strawberry.ID | None:
        principal = info.context.require_principal()
        newest = await info.context.hub.bus.newest(principal.tenant_id)
        return strawberry.ID(str(newest)) if newest is not None else None
