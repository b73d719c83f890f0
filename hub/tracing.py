"""OpenTelemetry tracing, off unless ``LOTPULSE_TRACING`` is on.

One mutation then shows as HTTP (the ASGI instrumentation) → GraphQL operation, parse, validate and resolvers
(strawberry's OpenTelemetryExtension) → MongoDB commands (the pymongo instrumentation), with the tenant on the request
span and the id of every event written on the span that wrote it. Live subscriptions get one span per event
delivered. Spans leave over OTLP/HTTP (``LOTPULSE_TRACING_ENDPOINT``, else the standard ``OTEL_EXPORTER_OTLP_*``
variables), sampled at ``LOTPULSE_TRACING_SAMPLE_RATIO`` (children follow their parent's decision).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from starlette.types import ASGIApp
from strawberry.extensions import LifecycleStep
from strawberry.extensions.tracing import OpenTelemetryExtension

from hub.config import Settings

if TYPE_CHECKING:
    from graphql import GraphQLResolveInfo

    from hub.models.event import Event

tracer = trace.get_tracer("lotpulse")
active = False  # set once this process traces: the hot paths skip even no-op span calls otherwise


class GraphQLTracing(OpenTelemetryExtension):
    """strawberry's OpenTelemetry extension without the query text and resolver arguments it records by default:
    literals and variables may hold secrets (an identity provider's client secret, say)."""

    def on_operation(self) -> Generator[None, None, None]:
        name = self.execution_context.operation_name
        span = self._tracer.start_span(f"GraphQL Query: {name}" if name else "GraphQL Query", kind=SpanKind.SERVER)
        span.set_attribute("component", "graphql")
        self._span_holder[LifecycleStep.OPERATION] = span
        yield
        if not name and self.execution_context.operation_name:
            span.update_name(f"GraphQL Query: {self.execution_context.operation_name}")
        if self.execution_context.operation_name:
            span.set_attribute("graphql.operation.name", self.execution_context.operation_name)
        span.end()

    def filter_resolver_args(self, args: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any]:
        return {}


def provider_for(settings: Settings) -> TracerProvider:
    """The process's tracer provider, exporting over OTLP/HTTP."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.tracing_service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)),
    )
    exporter = OTLPSpanExporter(endpoint=settings.tracing_endpoint) if settings.tracing_endpoint else OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def instrument(app: ASGIApp, provider: TracerProvider) -> ASGIApp:
    """Wrap the app in the ASGI instrumentation and trace every MongoDB command of clients created from now on."""
    global tracer, active
    tracer, active = provider.get_tracer("lotpulse"), True
    instrumentor = PymongoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    # The per-message "http send/receive" spans only repeat the request span.
    return OpenTelemetryMiddleware(app, tracer_provider=provider, exclude_spans=["receive", "send"])


def tag(**attributes: str | int) -> None:
    """Attributes on the current span (a no-op when tracing is off)."""
    if not active:
        return
    span = trace.get_current_span()
    if span.is_recording():
        for key, value in attributes.items():
            span.set_attribute(f"lotpulse.{key}", value)


def events_written(events: Iterable[Event]) -> None:
    """Each event written, as a span event on the span that wrote it; the last id also as an attribute."""
    if not active:
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for event in events:
        attributes = {"lotpulse.event_id": str(event.id), "lotpulse.event_type": event.type,
                      "lotpulse.tenant": event.tenant_id}
        span.add_event("lotpulse.event", attributes)
        span.set_attribute("lotpulse.event_id", str(event.id))


@contextmanager
def delivering(event_id: str, event_type: str, tenant_id: str) -> Iterator[None]:
    """One span per event handed to a live subscriber, until the subscriber asks for the next one."""
    if not active:
        yield
        return
    span = tracer.start_span(
        "lotpulse.subscription.deliver",
        kind=trace.SpanKind.PRODUCER,
        attributes={"lotpulse.event_id": event_id, "lotpulse.event_type": event_type, "lotpulse.tenant": tenant_id},
    )
    try:
        yield
    finally:
        span.end()
