"""Report queries (inventoryHealth, alertPerformance) get ``report_timeout_seconds`` of database time per request;
every other request keeps ``request_timeout_seconds``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.services.persisted import sha256_hex
from schema.reports import asks_report
from tenants import service as tenant_service
from tests.conftest import Hub, hub_settings, start_hub

REPORT = "{ inventoryHealth { onHandUnits } }"
PAGE = "{ stockPositions(first: 5) { edges { node { onHand } } } }"


@pytest.mark.parametrize(("query", "operation", "expected"), [
    (REPORT, None, True),
    ("query Perf { alertPerformance { total } }", None, True),
    ("query A { me { tenantId } } query B { inventoryHealth { onHandUnits } }", "B", True),
    ("query A { me { tenantId } } query B { inventoryHealth { onHandUnits } }", "A", False),
    ("query A { me { tenantId } } query B { inventoryHealth { onHandUnits } }", None, False),  # which one?
    ("{ ...F } fragment F on Query { inventoryHealth { onHandUnits } }", None, True),
    ("{ ... on Query { alertPerformance { total } } }", None, True),
    ("{ health: inventoryHealth { onHandUnits } }", None, True),  # an alias is still the report
    ("{ inventoryHealth: me { tenantId } }", None, False),  # ...and a report's name as an alias is not
    ('{ me { tenantId } } # inventoryHealth', None, False),
    ('{ stockPositions(filter: {lotCode: "inventoryHealth"}) { edges { cursor } } }', None, False),
    ("mutation { inventoryHealth }", None, False),
    ("{ inventoryHealth { ", None, False),  # a syntax error: execution answers it
    (None, None, False),
])
def test_a_report_is_a_report_field_at_the_root_of_the_query_that_runs(query, operation, expected):
    assert asks_report(query, operation, max_tokens=5000) is expected


@pytest.fixture(scope="module")
async def impatient_hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Hub]:
    """A request deadline no database round trip can meet, and a generous report deadline."""
    settings = hub_settings(key_file, mongo_uri, request_timeout_seconds=1e-6, report_timeout_seconds=30.0)
    async for running in start_hub(settings):
        yield running


async def test_a_report_gets_the_report_deadline_and_a_page_read_does_not(impatient_hub, suffix):
    tenant = await tenant_service.create_tenant(f"deadline-{suffix}", "Deadline", "retailer")
    token = impatient_hub.token(tenant.id, "viewer")
    page = await impatient_hub.post(PAGE, token=token)
    assert page.status_code == 503
    assert page.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    disguised = await impatient_hub.post(PAGE + " # inventoryHealth", token=token)
    assert disguised.status_code == 503
    report = await impatient_hub.post(REPORT, token=token)
    assert report.status_code == 200, report.text
    assert report.json() == {"data": {"inventoryHealth": {"onHandUnits": 0}}}
    # an Apollo client sends a report's text with its hash once, then the hash alone: the same deadline both times
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(REPORT)}}
    headers = {"authorization": f"Bearer {token}"}
    for body in ({"query": REPORT, "extensions": persisted}, {"extensions": persisted}):
        answer = await impatient_hub.http.post("/graphql", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"data": {"inventoryHealth": {"onHandUnits": 0}}}
