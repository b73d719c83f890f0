"""OpenTelemetry: one mutation's spans, HTTP → GraphQL → resolver → MongoDB, reach an in-memory exporter, with the
tenant and the event id as attributes; a live subscription gets a span per event delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub import tracing
from tests.conftest import Hub, hub_settings, start_hub
from tests.events.conftest import Listener

SKU = 'mutation { upsertSku(input: {code: "TR-1", name: "Traced"}) { sku { id } } }'
LOCATION = 'mutation { createLocation(input: {code: "TR-WH", name: "Traced", kind: warehouse}) { id } }'
MOVE = """
mutation Move($location: ID!) {
  recordMovements(locationId: $location, movements: [{sku: "TR-1", kind: receipt, quantity: 5, idempotencyKey: "tr-1"}])
  { accepted }
}
"""
STOCK_CHANGED = "subscription { stockChanged { cursor occurredAt } }"


@pytest.fixture(scope="module")
async def traced(key_file: Path, mongo_uri: str) -> AsyncIterator[tuple[Hub, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = hub_settings(key_file, mongo_uri, tracing=True)
    try:
        async for running in start_hub(settings, tracer_provider=provider):
            yield running, exporter
    finally:
        # pymongo's instrumentation is process-wide: later hubs of this test run stay untraced
        PymongoInstrumentor().uninstrument()
        tracing.active, tracing.tracer = False, trace.get_tracer("lotpulse")


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names, current = [], span
    while current.parent is not None and current.parent.span_id in by_id:
        current = by_id[current.parent.span_id]
        names.append(current.name)
    return names


async def test_one_mutation_is_traced_from_http_to_mongodb(traced, suffix):
    hub, exporter = traced
    tenant = await hub.tenant(f"traced-{suffix}")
    await hub.ok(SKU, tenant=tenant)
    location = (await hub.ok(LOCATION, tenant=tenant))["createLocation"]["id"]
    exporter.clear()

    assert (await hub.ok(MOVE, {"location": location}, tenant=tenant))["recordMovements"]["accepted"] == 1

    spans = exporter.get_finished_spans()
    by_id = {span.context.span_id: span for span in spans}
    (http,) = [s for s in spans if s.name == "POST /graphql"]
    assert http.attributes["lotpulse.tenant"] == tenant
    spans = [s for s in spans if s.context.trace_id == http.context.trace_id]  # not the background loops' traces
    (operation,) = [s for s in spans if s.attributes.get("graphql.operation.name") == "Move"]
    (resolver,) = [s for s in spans if s.attributes.get("graphql.path") == "recordMovements"]
    mongo = [s for s in spans if s.kind == trace.SpanKind.CLIENT and s.attributes.get("db.system") == "mongodb"]
    assert mongo, [s.name for s in spans]
    # HTTP → GraphQL operation → resolver → MongoDB commands
    assert http.name in ancestors(operation, by_id)
    assert operation.name in ancestors(resolver, by_id)
    inside = [s for s in mongo if resolver.name in ancestors(s, by_id)]
    assert any(s.name.endswith(".insert") for s in inside), [s.name for s in inside]
    # no query text or argument values (they may hold secrets) are recorded
    assert not [s for s in spans if "query" in s.attributes or any(k.startswith("graphql.param") for k in s.attributes)]
    # the events the mutation wrote (the stock change and the batch's summary) are on the span that wrote them
    written = [e for s in spans for e in s.events if e.name == "lotpulse.event"]
    assert sorted(e.attributes["lotpulse.event_type"] for e in written) == ["movements.recorded", "stock.changed"]
    assert {e.attributes["lotpulse.tenant"] for e in written} == {tenant}


async def test_a_subscription_has_a_span_per_event_delivered(traced, suffix):
    hub, exporter = traced
    tenant = await hub.tenant(f"live-{suffix}")
    await hub.ok(SKU, tenant=tenant)
    location = (await hub.ok(LOCATION, tenant=tenant))["createLocation"]["id"]
    listener = Listener(hub.ws_url, hub.token(tenant, "viewer"), STOCK_CHANGED).start()
    try:
        for _ in range(500):
            if hub.state.bus.count(tenant):
                break
            await asyncio.sleep(0.01)
        exporter.clear()
        await hub.ok(MOVE, {"location": location}, tenant=tenant)
        received = await listener.next(timeout=20)
        for _ in range(500):  # the span ends once the subscriber asks for the next event
            delivered = [s for s in exporter.get_finished_spans() if s.name == "lotpulse.subscription.deliver"]
            if delivered:
                break
            await asyncio.sleep(0.01)
    finally:
        await listener.close()
    assert [s.attributes["lotpulse.event_id"] for s in delivered] == [received["stockChanged"]["cursor"]]
    assert delivered[0].attributes["lotpulse.tenant"] == tenant
