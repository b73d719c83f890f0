"""``/metrics``: protected by a bearer token, exposes the named series, and they move when traffic flows."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from hub.app import create_app
from hub.metrics import operation_label
from hub.models.alert import AlertKind
from tests.conftest import hub_settings
from tests.events.conftest import ALERTS_SUBSCRIPTION, Listener, alert
from tests.operability.conftest import METRICS_TOKEN

SERIES = (
    "lotpulse_graphql_request_duration_seconds",
    "lotpulse_graphql_errors_total",
    "lotpulse_event_bus_lag_seconds",
    "lotpulse_live_subscriptions",
    "lotpulse_webhook_backlog",
    "lotpulse_webhook_attempts_total",
    "lotpulse_webhook_failures_total",
    "lotpulse_webhook_endpoints_disabled",
    "lotpulse_sweep_duration_seconds",
    "lotpulse_detector_duration_seconds",
    "lotpulse_db_operation_duration_seconds",
    "lotpulse_alerts",
    "lotpulse_rate_limited_total",
    "lotpulse_alert_signal_to_action_seconds",
    "lotpulse_alert_decisions_total",
    "lotpulse_alert_decision_value_total",
)
UPSERT = 'mutation AddSku { upsertSku(input: {code: "M-1", name: "Metered"}) { created } }'


async def scrape(hub) -> tuple[str, dict[tuple[str, tuple], float]]:
    response = await hub.http.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_need_the_bearer_token(ops_hub, key_file, mongo_uri):
    assert (await ops_hub.http.get("/metrics")).status_code == 401
    wrong = await ops_hub.http.get("/metrics", headers={"authorization": "Bearer guess"})
    assert wrong.status_code == 401
    # a hub with neither a metrics token nor a metrics port shows nothing (the route answers before any database)
    app = create_app(hub_settings(key_file, mongo_uri))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as client:
        off = await client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert off.status_code == 403 and "LOTPULSE_METRICS_TOKEN" in off.text


async def test_named_series_are_exposed_and_move_with_traffic(ops_hub, suffix):
    tenant = await ops_hub.tenant(f"metered-{suffix}")
    text, before = await scrape(ops_hub)
    for name in SERIES:
        assert f"# HELP {name} " in text, name

    # when a tenant runs a named query and a mutation, gets a NOT_FOUND, and watches alerts live while one is raised
    await ops_hub.ok("query WhoAmI { me { tenant { id } } }", tenant=tenant)
    await ops_hub.ok(UPSERT, tenant=tenant)
    missing = await ops_hub.gql('{ sku(id: "000000000000000000000000") { id } }', tenant=tenant)
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    listener = Listener(ops_hub.ws_url, ops_hub.token(tenant, "viewer"), ALERTS_SUBSCRIPTION).start()
    try:
        bus = ops_hub.state.bus
        for _ in range(500):
            if bus.count(tenant):
                break
            await asyncio.sleep(0.01)
        _, live = await scrape(ops_hub)
        assert value(live, "lotpulse_live_subscriptions", tenant=tenant) == 1
        await alert(ops_hub, tenant, [tenant], f"k-{suffix}", kind=AlertKind.mismatch)
        await listener.next(timeout=20)
    finally:
        await listener.close()
    _, after = await scrape(ops_hub)

    # then each figure moved
    histogram = "lotpulse_graphql_request_duration_seconds_count"
    assert value(after, histogram, operation="WhoAmI", type="query") == value(before, histogram, operation="WhoAmI",
                                                                               type="query") + 1
    assert value(after, histogram, operation="AddSku", type="mutation") > value(before, histogram, operation="AddSku",
                                                                                type="mutation")
    assert value(after, "lotpulse_graphql_errors_total", code="NOT_FOUND") > value(
        before, "lotpulse_graphql_errors_total", code="NOT_FOUND")
    assert value(after, "lotpulse_event_bus_lag_seconds_count") > value(before, "lotpulse_event_bus_lag_seconds_count")
    assert value(after, "lotpulse_db_operation_duration_seconds_count", command="find") > value(
        before, "lotpulse_db_operation_duration_seconds_count", command="find")
    assert value(after, "lotpulse_alerts", kind="mismatch", state="open") >= 1
    # the subscription is gone from the gauge once its socket closed
    for _ in range(500):
        _, closed = await scrape(ops_hub)
        if value(closed, "lotpulse_live_subscriptions", tenant=tenant) == 0:
            break
        await asyncio.sleep(0.02)
    assert value(closed, "lotpulse_live_subscriptions", tenant=tenant) == 0


async def test_operation_names_from_clients_cannot_explode_the_label_set(ops_hub, suffix):
    tenant = await ops_hub.tenant(f"names-{suffix}")
    response = await ops_hub.post("query Ok { __typename }", token=ops_hub.token(tenant))
    assert response.status_code == 200
    _, samples = await scrape(ops_hub)
    assert value(samples, "lotpulse_graphql_request_duration_seconds_count", operation="Ok", type="query") >= 1
    assert operation_label("Ok") == "Ok"
    assert operation_label(None) == "anonymous"
    assert operation_label("x" * 65) == "other"
    assert operation_label("bad-name") == "other"


def test_the_operations_guide_describes_every_series():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    for name in SERIES:
        assert f"`{name}`" in guide, f"describe {name} in docs/operations.md"


def test_the_readme_links_only_inside_the_repository():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    targets = re.findall(r"\]\(([^)]+)\)", readme)
    assert targets, "the README links to its docs"
    for target in targets:
        assert not target.startswith(("http:", "https:", "/", "..")), target
        assert (Path(__file__).resolve().parents[2] / target.split("#")[0]).exists(), target
    assert "../" not in readme and "shared/" not in readme
