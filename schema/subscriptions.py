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

import asyncio
import json
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from contextvars import ContextVar
from functools import lru_cache, partial
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

    An event reaches it one of two ways. Usually the bus offers it from the fan-out's own turn (``deliver_now``): the
    payload is taken from the renderings (or rendered, if this is the audience's first subscriber and the execution
    needs no waiting), framed with the operation id and queued for the socket's write at the end of the turn, with no
    task woken for it. When that would have to wait (the socket is not taking writes, the execution awaits something,
    or events are already queued for this operation), the bus queues the event and the operation's task delivers it
    (``deliver``), awaiting what it must. Either way one rendering per event and audience, and the events leave in
    ``seq`` order.

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
        write_now: Callable[[str], bool] | None = None,
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
        # Queues a message for the socket's next write if it can be taken without waiting (False: it cannot).
        self.write_now = write_now
        self.overflowed = cut_off  # called by the bus when this subscriber's queue is full
        self.cursor: str | None = None
        # An execution started by ``deliver_now`` that had to await: finished by ``deliver``, not run twice.
        self.pending: tuple[str, asyncio.Future[ExecutionResult]] | None = None

    def deliver_now(self, event: LiveEvent, build: Callable[[LiveEvent], Any]) -> bool:
        """Write ``event`` now, from the caller's turn, if nothing has to be awaited; answers whether it was written."""
        if self.write_now is None:
            return False
        key = (event.id, self.audience)
        payload = RENDERINGS.payloads.get(key)
        if payload is None:
            try:
                result = self.render(build(event))
            except Exception:  # raised again by ``deliver``, in the operation's task, which it ends as before
                return False
            if isawaitable(result):
                self.pending = (event.id, asyncio.ensure_future(result))
                return False
            payload = self._keep(key, result)
        if not self.write_now(self.prefix + payload + "}"):
            return False
        self.cursor = event.id
        return True

    async def deliver(self, event: LiveEvent, build: Callable[[LiveEvent], Any]) -> None:
        key = (event.id, self.audience)
        payload = RENDERINGS.payloads.get(key)
        if payload is None:
            pending, self.pending = self.pending, None
            if pending is not None and pending[0] == event.id:
                result: Any = await pending[1]
            else:
                result = self.render(build(event))
                if isawaitable(result):
                    result = await result
            payload = self._keep(key, result)
        await self.send_text(self.prefix + payload + "}")
        self.cursor = event.id

    def render(self, root: Any) -> ExecutionResult | Awaitable[ExecutionResult]:
        """This operation's execution for ``root`` (the value of its live field for one event)."""
        return execute(
            self.schema._schema,  # type: ignore[attr-defined]
            _document(self.query),
            root_value=root,
            context_value=self.context,
            variable_values=self.variables,
            operation_name=self.operation_name,
        )

    def _keep(self, key: tuple[str, Audience], result: ExecutionResult) -> str:
        """The ``next`` payload of ``result``, kept for the rest of the audience unless it failed."""
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            errors = [shape_error(error) for error in result.errors]
            self.schema.process_errors(errors)
            body["errors"] = [error.formatted for error in errors]
        payload = json.dumps(body, separators=(",", ":"))
        if not result.errors:
            RENDERINGS.keep(key, payload)
        return payload


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
    async with bus.subscribe(principal.tenant_id, types, predicate, after, on_overflow=sink.overflowed,
                             direct=partial(sink.deliver_now, build=build)) as events:
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
