"""Per-operation observability: the operation's name in every log line, and its latency by name and type."""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from hub import logs, metrics


class Observe(SchemaExtension):
    def __init__(self, timed: bool = True) -> None:
        self.timed = timed  # LOTPULSE_METRICS

    def on_parse(self) -> Iterator[None]:
        yield
        # Known once the document is parsed (the client's operationName, else the operation's own name).
        logs.operation.set(self.execution_context.operation_name)

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        if not self.timed or context.graphql_document is None:
            return  # refused before parsing finished: counted by its error code only
        try:
            kind = context.operation_type
        except RuntimeError:
            return  # no such operation in the document
        if kind is OperationType.SUBSCRIPTION:
            return  # a subscription's "latency" is its lifetime
        metrics.graphql_duration(context.operation_name, kind.value).observe(time.perf_counter() - started)
