"""What every live subscription shares: the stream's cursor, and executing one live event once for all the
subscribers that asked the same thing.

Measured with bench/fanout.py, running the selection set of every subscription for every event was the largest
share of the hub's CPU in fan-out: 80 subscribers of one alert executed the same document over the same data 80
times. Live event types whose value is the same object for every subscriber (built once per event, from the event
payload alone, marked ``_shared_per_event``) now have their result computed once per (event, document, variables)
and reused. Nothing viewer-dependent can leak through: the value is built from the payload only, every subscriber
reached it through its own entitlement check in the bus, and results with errors are never reused.

Each live event also gets an executor with memo state of its own. graphql-core builds the per-event executor as a
shallow copy of the subscription's, so its memo of collected subfields (keyed by the identity of field lists that are
built anew for every event, and kept alive with them) was shared by every event of a subscription and grew by ~3 KB
per delivered message until the subscriber left: 50 subscribers x 1,000 events took a hub from 92 to 240 MiB
(tracemalloc: graphql/execution/collect_fields.py and executor.py collect_subfields). The memo only ever pays off
within one execution (list items of one type), so it now lives and dies with the event.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import strawberry
from graphql.pyutils import RefMap
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import Info

from hub.models.event import Event
from schema.permissions import READ

CACHE_SIZE = 512


def _variables_key(variables: Any) -> str:
    return json.dumps(variables, sort_keys=True, default=str)


class SharedEventExecutor(StrawberryGraphQLCoreExecutionContext):
    # key -> (root value, result): holding the root keeps its id() from being reused while the entry lives
    results: OrderedDict[tuple[int, int, str], tuple[Any, Any]] = OrderedDict()

    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        executor._stream_usages = RefMap()
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        root = self.root_value
        if not getattr(type(root), "_shared_per_event", False):
            return super().execute_operation(serially)
        key = (id(root), id(self.operation), _variables_key(self.variable_values.coerced))
        hit = self.results.get(key)
        if hit is not None and hit[0] is root:
            return hit[1]
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            return self._store_later(key, root, result)
        self._store(key, root, result)
        return result

    async def _store_later(self, key: tuple[int, int, str], root: Any, pending: Any) -> Any:
        result = await pending
        self._store(key, root, result)
        return result

    def _store(self, key: tuple[int, int, str], root: Any, result: Any) -> None:
        if getattr(result, "errors", None):
            return
        self.results[key] = (root, result)
        if len(self.results) > CACHE_SIZE:
            self.results.popitem(last=False)


class PerEventCache:
    """One GraphQL value per event id (bounded), so every subscriber's execution sees the same object."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.values: OrderedDict[str, Any] = OrderedDict()

    def get(self, event_id: str, build: Any) -> Any:
        value = self.values.get(event_id)
        if value is None:
            value = self.values[event_id] = build()
            if len(self.values) > self.size:
                self.values.popitem(last=False)
        return value


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=READ,
        description="The newest event addressed to the caller: query the state you need, then subscribe with "
        "'after' set to this cursor to hear every change after that moment (null: nothing yet).",
    )
    async def event_cursor(self, info: Info) -> strawberry.ID | None:
        principal = info.context.require_principal()
        latest = await Event.find({"audience": principal.tenant_id}).sort("-seq").limit(1).to_list()
        return strawberry.ID(str(latest[0].id)) if latest else None
