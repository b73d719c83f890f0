"""Everything the hub does around one GraphQL operation, in one extension hook.

strawberry runs every hook of every extension through a context manager built per operation (about 15 µs each on
the development machine); with one extension per concern the trivial query paid for seven. So the cached parse, the
query limits and cached validation, the operation name in the logs, the query cost drawn from the rate limits, the
latency histogram and the shaping of errors run here, in ``on_operation``: strawberry then finds the document
parsed and validated and skips both. A document that does not parse is left to strawberry, which parses it again
(uncached, as a failed parse is never cached) and answers the error as usual.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from graphql import ExecutionResult, GraphQLError
from starlette.requests import Request
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from hub import logs, metrics
from schema.cost import QueryCosts
from schema.errors import ErrorShaper
from schema.limits import CheckedQueries, ParsedQueries


class HubOperation(ErrorShaper):
    """Built per operation; the caches it uses are the schema's, shared by every operation."""

    def __init__(self, parsed: ParsedQueries, checked: CheckedQueries, costs: QueryCosts, max_tokens: int,
                 timed: bool) -> None:
        super().__init__()
        self.parsed, self.checked, self.costs = parsed, checked, costs
        self.max_tokens = max_tokens
        self.timed = timed  # LOTPULSE_METRICS
        self._kind: OperationType | None = None  # the operation's type and name, once the document is known
        self._name: str | None = None

    async def on_operation(self) -> AsyncIterator[None]:  # type: ignore[override]
        started = time.perf_counter()
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens  # strawberry's MaxTokensLimiter, for its own parse too
        self._stream_result_processed = False
        if self._prepare(context):
            await self._draw_cost(context)
        yield
        if not self._stream_result_processed:  # a streamed result was shaped frame by frame (on_stream_result)
            result = context.result
            if result is not None and result.errors:
                result.errors = self._process_errors(result.errors)
        kind = self._kind
        if self.timed and kind is not None and kind is not OperationType.SUBSCRIPTION:
            # (a subscription's "latency" is its lifetime; an operation refused before parsing finished, or naming no
            # operation of its document, is counted by its error code only)
            metrics.graphql_duration(self._name, kind.value).observe(time.perf_counter() - started)

    def _prepare(self, context: ExecutionContext) -> bool:
        """Parse (cached) and validate (cached); True when the operation is valid, allowed and about to run."""
        query = context.query
        if not query or context.graphql_document is not None:
            return False
        try:
            document = self.parsed.parse(query, **context.parse_options)
        except Exception:  # strawberry parses it again and answers the error
            return False
        context.graphql_document = document
        self._name = context.operation_name  # the client's operationName, else the operation's own name
        logs.operation.set(self._name)
        try:
            self._kind = context.operation_type
        except RuntimeError:
            return False  # no such operation: strawberry answers it
        errors = self.checked.errors(context.schema._schema, document, query, context._provided_operation_name,
                                     context.validation_rules)
        context.pre_execution_errors = list(errors)  # strawberry skips its own validation
        return not errors and self._kind in context.allowed_operations

    async def _draw_cost(self, context: ExecutionContext) -> None:
        """Draws an HTTP operation's cost from the caller's cost buckets before it runs; over the limit, the operation
        is answered with RATE_LIMITED and never executed. The view sends the RateLimit headers left in the context."""
        request_context: Any = context.context
        limiter = getattr(getattr(request_context, "hub", None), "rate_limiter", None)
        if limiter is None or not isinstance(request_context.request, Request):
            return
        assert context.graphql_document is not None and context.query is not None
        amount = self.costs.cost(context.schema._schema, context.graphql_document, context.query, self._name,
                                 context.variables)
        principal = request_context.require_principal()
        decision = limiter.take_leased("cost", principal, amount) or await limiter.take("cost", principal, amount)
        request_context.rate_limit = decision.tighter(request_context.rate_limit)
        if not decision.allowed:
            message = (
                f"query cost {amount} exceeds the most one request may cost ({int(decision.limit.burst)}): "
                "ask for smaller pages"
                if amount > decision.limit.burst
                else f"query cost {amount} exceeds what is left of the rate limit; retry later"
            )
            # strawberry finds a result already there and does not execute the operation.
            context.result = ExecutionResult(data=None, errors=[GraphQLError(
                message, extensions={"code": "RATE_LIMITED", "cost": amount},
            )])
