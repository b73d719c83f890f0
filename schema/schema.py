"""The root schema, composed from one folder per domain (queries, mutations, subscriptions)."""

from __future__ import annotations

import importlib
from datetime import date, datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from hub.config import Settings
from hub.tracing import GraphQLTracing
from schema.cost import QueryCosts
from schema.errors import log_errors
from schema.instants import DATE, DATETIME
from schema.limits import CheckedQueries, Limits, ParsedQueries
from schema.operation import HubOperation
from schema.pagination import BackwardPaging, is_connection
from schema.subscriptions import Query as CursorQuery

# Each domain folder may define queries.Query, mutations.Mutation and subscriptions.Subscription.
DOMAINS = (
    "tenants", "catalog", "supply", "webhooks", "alerts", "sensors", "oauth", "planning", "persisted", "relay",
    "health", "escalation", "imports", "notifications",
)


def _roots(kind: str, attr: str) -> tuple[type, ...]:
    roots = []
    for domain in DOMAINS:
        try:
            module = importlib.import_module(f"schema.{domain}.{kind}")
        except ModuleNotFoundError as exc:
            if exc.name != f"schema.{domain}.{kind}":
                raise
            continue
        roots.append(getattr(module, attr))
    return tuple(roots)


class HubSchema(strawberry.Schema):
    """strawberry's schema, logging errors by whose fault they are (strawberry logs every one with a traceback)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        log_errors(errors)


def build_schema(settings: Settings, tracer_provider: Any = None) -> strawberry.Schema:
    """The schema; with a ``tracer_provider`` (tracing on) every operation, phase and resolver is a span."""
    limits = Limits(
        max_depth=settings.max_depth,
        max_aliases=settings.max_aliases,
        max_fields=settings.max_fields,
        max_string_length=settings.max_string_length,
    )
    parsed, checked, costs = ParsedQueries(), CheckedQueries(limits), QueryCosts(settings.max_page_size)
    queries = (*_roots("queries", "Query"), CursorQuery)  # eventCursor: where every live stream starts
    query = merge_types("Query", queries)
    for field in query.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        # Fields are shared by every schema built in this process: extend each once.
        if is_connection(field) and not any(isinstance(e, BackwardPaging) for e in field.extensions):
            field.extensions.append(BackwardPaging())
    mutations, subscriptions = _roots("mutations", "Mutation"), _roots("subscriptions", "Subscription")
    return HubSchema(
        query=query,
        mutation=merge_types("Mutation", mutations) if mutations else None,
        subscription=merge_types("Subscription", subscriptions) if subscriptions else None,
        scalar_overrides={datetime: DATETIME, date: DATE},
        extensions=[
            lambda: HubOperation(parsed, checked, costs, settings.max_tokens, timed=settings.metrics),
            *([lambda: GraphQLTracing(tracer_provider=tracer_provider)] if tracer_provider else []),
        ],
    )
