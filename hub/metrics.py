"""Prometheus metrics (prometheus-client): what an operator watches, and the ``/metrics`` endpoint.

Counters and histograms are updated where things happen (GraphQL operations, the event bus, webhook attempts, sweeps,
detectors, every MongoDB command). Figures that live in the database (open alerts by kind and state, the webhook
backlog, disabled endpoints) are read by the scrape itself, at most every ``metrics_refresh_seconds``, so they are
the cluster's figures whichever hub process is scraped. ``/metrics`` needs ``LOTPULSE_METRICS_TOKEN`` as a bearer
token, or is served on its own ``LOTPULSE_METRICS_PORT`` (bind it to a private interface) instead; with neither it
refuses (403).
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import hmac
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from pymongo import monitoring
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.config import Settings

if TYPE_CHECKING:
    from hub.state import HubState

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

GRAPHQL_DURATION = Histogram(
    "lotpulse_graphql_request_duration_seconds", "GraphQL operations by operation name and type",
    ["operation", "type"], buckets=LATENCY_BUCKETS,
)
GRAPHQL_ERRORS = Counter("lotpulse_graphql_errors_total", "GraphQL errors answered, by extensions.code", ["code"])
BUS_LAG = Histogram(
    "lotpulse_event_bus_lag_seconds", "From an event's commit to its dispatch to this process's subscribers",
    buckets=LATENCY_BUCKETS,
)
LIVE_SUBSCRIPTIONS = Gauge("lotpulse_live_subscriptions", "Open GraphQL subscriptions on this process", ["tenant"])
WEBHOOK_BACKLOG = Gauge("lotpulse_webhook_backlog", "Webhook deliveries waiting for an attempt (whole cluster)")
WEBHOOK_ATTEMPTS = Counter("lotpulse_webhook_attempts_total", "Webhook delivery attempts by outcome", ["outcome"])
WEBHOOK_FAILURES = Counter(
    "lotpulse_webhook_failures_total", "Webhook deliveries given up (retries exhausted or endpoint disabled)"
)
WEBHOOK_DISABLED = Gauge("lotpulse_webhook_endpoints_disabled", "Disabled webhook endpoints (whole cluster)")
SWEEP_DURATION = Histogram(
    "lotpulse_sweep_duration_seconds", "Periodic expiry-risk sweeps", buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 300.0)
)
DETECTOR_DURATION = Histogram(
    "lotpulse_detector_duration_seconds", "Detector runs (mismatch, spikes, expiry) including their reads and writes",
    ["detector"], buckets=LATENCY_BUCKETS,
)
DB_DURATION = Histogram(
    "lotpulse_db_operation_duration_seconds", "MongoDB commands by name", ["command"], buckets=LATENCY_BUCKETS
)
ALERTS = Gauge("lotpulse_alerts", "Alerts by kind and state (whole cluster)", ["kind", "state"])
RATE_LIMITED = Counter("lotpulse_rate_limited_total", "Requests refused by a rate limit, by bucket", ["bucket"])
# Signal to action, as alertPerformance reports it: a histogram gives the median and p90 (histogram_quantile).
SIGNAL_TO_ACTION = Histogram(
    "lotpulse_alert_signal_to_action_seconds", "Seconds from an alert opening to a person acknowledging or deciding",
    ["step", "kind", "severity"], buckets=(60, 300, 900, 1800, 3600, 14400, 43200, 86400, 259200, 604800),
)
DECISIONS = Counter("lotpulse_alert_decisions_total", "Alerts resolved with a decision, by decision and escalation",
                    ["decision", "escalated"])
DECISION_VALUE = Counter("lotpulse_alert_decision_value_total", "Value of the stock decided on, by decision",
                         ["decision", "currency"])

GC_PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)


class GcPauses:
    """How long each garbage collection held the process, by generation, and how many objects each generation
    holds (what a collection of it walks). A full collection stops everything, a live broadcast included, for a
    time in proportion to the objects it walks (docs/operations.md, "Garbage collection").

    The pauses are timed by a ``gc.callbacks`` hook that only adds to plain lists: it runs inside whatever code
    allocated when the collection started, which may hold a metric's (non-reentrant) lock, so observing a
    prometheus-client histogram from it could deadlock (prometheus/client_python#363). The histogram and the
    object counts are built when scraped."""

    def __init__(self, buckets: tuple[float, ...] = GC_PAUSE_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [[0] * (len(buckets) + 1) for _ in range(3)]  # per generation, per bucket (+Inf last)
        self.sums = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        elapsed = time.perf_counter() - self.started
        generation = info["generation"]
        self.counts[generation][bisect.bisect_left(self.buckets, elapsed)] += 1
        self.sums[generation] += elapsed
        if elapsed > self.longest[generation]:
            self.longest[generation] = elapsed

    def collect(self) -> Iterator[Any]:
        pauses = HistogramMetricFamily("lotpulse_gc_pause_seconds", "Garbage collection pauses by generation "
                                       "(2: full collections)", labels=["generation"])
        longest = GaugeMetricFamily("lotpulse_gc_pause_longest_seconds", "The longest garbage collection pause of "
                                    "each generation since the process started", labels=["generation"])
        for generation in range(3):
            total, buckets = 0, []
            for bound, count in zip((*self.buckets, float("inf")), self.counts[generation], strict=True):
                total += count
                buckets.append((floatToGoString(bound), total))
            pauses.add_metric([str(generation)], buckets, self.sums[generation])
            longest.add_metric([str(generation)], self.longest[generation])
        tracked = GaugeMetricFamily("lotpulse_gc_tracked_objects", "Objects the garbage collector tracks, by "
                                    "generation (permanent: frozen at start-up, never walked)", labels=["generation"])
        for generation in range(3):
            tracked.add_metric([str(generation)], len(gc.get_objects(generation)))
        tracked.add_metric(["permanent"], gc.get_freeze_count())
        thresholds = GaugeMetricFamily("lotpulse_gc_threshold", "The collector's thresholds (gc.get_threshold; "
                                       "LOTPULSE_GC_THRESHOLDS)", labels=["generation"])
        for generation, threshold in enumerate(gc.get_threshold()):
            thresholds.add_metric([str(generation)], threshold)
        yield from (pauses, longest, tracked, thresholds)


GC_PAUSES = GcPauses()
gc.callbacks.append(GC_PAUSES)
REGISTRY.register(GC_PAUSES)

# Operation names come from clients: only well-formed ones become labels, and only so many distinct ones.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_OPERATION_LABELS = 500
_seen_operations: set[str] = set()


def operation_label(name: str | None) -> str:
    if not name:
        return "anonymous"
    if name in _seen_operations:
        return name
    if not _NAME.fullmatch(name) or len(_seen_operations) >= MAX_OPERATION_LABELS:
        return "other"
    _seen_operations.add(name)
    return name


_durations: dict[tuple[str, str], Any] = {}  # bounded like the labels: MAX_OPERATION_LABELS + 2, times 3 types


def graphql_duration(name: str | None, kind: str) -> Any:
    """The latency histogram of one operation name and type, looked up once (``labels()`` takes a lock and
    checks its arguments on every call, a noticeable share of a trivial query)."""
    label = operation_label(name)
    child = _durations.get((label, kind))
    if child is None:
        child = _durations[(label, kind)] = GRAPHQL_DURATION.labels(label, kind)
    return child


def error_code(error: dict[str, Any]) -> str:
    code = (error.get("extensions") or {}).get("code")
    return code if isinstance(code, str) and code.isupper() and len(code) <= 40 else "OTHER"


_labelled: dict[tuple[int, str], Any] = {}  # (metric, label) -> child, for the few labels known to be bounded


def child(metric: Any, label: str) -> Any:
    """``metric.labels(label)`` looked up once (``labels()`` takes a lock and checks its arguments on every call).
    Only for labels from a small fixed set (command names, error codes)."""
    key = (id(metric), label)
    found = _labelled.get(key)
    if found is None:
        found = _labelled[key] = metric.labels(label)
    return found


class CommandTimer(monitoring.CommandListener):
    """Every MongoDB command's latency, as pymongo measured it (registered on the hub's client)."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        child(DB_DURATION, event.command_name).observe(event.duration_micros / 1e6)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        child(DB_DURATION, event.command_name).observe(event.duration_micros / 1e6)


class Refresher:
    """Reads the database-held figures for a scrape, at most once per interval."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = float("-inf")

    async def __call__(self, hub: HubState) -> None:
        if time.monotonic() - self.last < self.interval:
            return
        self.last = time.monotonic()
        db = hub.database.db
        ALERTS.clear()
        async for row in await db["alerts"].aggregate(
            [{"$group": {"_id": {"kind": "$kind", "state": "$status"}, "n": {"$sum": 1}}}]
        ):
            ALERTS.labels(str(row["_id"]["kind"]), str(row["_id"]["state"])).set(row["n"])
        WEBHOOK_BACKLOG.set(await db["webhook_deliveries"].count_documents({"state": "pending"}))
        WEBHOOK_DISABLED.set(await db["webhook_endpoints"].count_documents({"enabled": False}))


def _authorized(request: Request, token: str | None) -> bool:
    if token is None:
        return False
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def endpoint(settings: Settings) -> Callable[[Request], Awaitable[Response]]:
    """The ``/metrics`` route of the API port: bearer ``metrics_token`` required."""
    refresh = Refresher(settings.metrics_refresh_seconds)
    token = settings.metrics_token

    async def metrics(request: Request) -> Response:
        if settings.metrics_port is not None:
            return JSONResponse({"error": f"metrics are served on port {settings.metrics_port}"}, 404)
        if token is None:
            return JSONResponse(
                {"error": "metrics are off on this port: set LOTPULSE_METRICS_TOKEN or LOTPULSE_METRICS_PORT"}, 403
            )
        if not _authorized(request, token):
            return JSONResponse({"error": "bearer token required"}, 401, {"WWW-Authenticate": 'Bearer realm="metrics"'})
        hub: HubState | None = getattr(request.app.state, "hub", None)
        if hub is not None:
            await refresh(hub)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return metrics


async def start_metrics_port(hub: HubState) -> None:
    """Startup hook: with ``metrics_port``, prometheus-client's own server (a thread) serves the metrics, and a loop
    keeps the database-held figures fresh in the absence of scrape-driven reads."""
    settings = hub.settings
    if settings.metrics_port is None:
        return
    start_http_server(settings.metrics_port, addr=settings.metrics_host)
    refresh = Refresher(settings.metrics_refresh_seconds)

    async def loop() -> None:
        while True:
            await refresh(hub)
            await asyncio.sleep(settings.metrics_refresh_seconds)

    hub.spawn("metrics-refresh", loop)
