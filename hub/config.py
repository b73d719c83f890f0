"""Settings read from ``LOTPULSE_*`` environment variables.

One frozen dataclass, built once per process, so every module reads the same values and tests can build their own.
Every field is a setting: ``LOTPULSE_<FIELD_NAME>`` (or the name in the field's ``env`` metadata), parsed by the
field's type. Adding a setting is adding a typed field with a default.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrustedIssuer:
    """An identity provider whose tokens the hub accepts."""

    issuer: str
    jwks_url: str
    audience: str = "lotpulse"
    # When true, the issuer may assert tenant and roles in the namespaced claim; otherwise the
    # (issuer, subject) pair must be a member in the `members` collection.
    trusted_claims: bool = False
    algorithms: tuple[str, ...] = ("RS256", "ES256")


@dataclass(frozen=True)
class RateLimitOverride:
    """Limits for one tenant or one OAuth client instead of the defaults (unset numbers keep the default)."""

    tenant: str | None = None
    client_id: str | None = None
    requests_per_second: float | None = None
    requests_burst: float | None = None
    cost_per_second: float | None = None
    cost_burst: float | None = None


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str | None = None
    database: str = "lotpulse"
    # Deadlines on the database (hub/db.py Deadlines): past them a caller gets SERVICE_UNAVAILABLE, never a hang.
    db_timeout_seconds: float = 10.0  # every database operation
    db_server_selection_seconds: float = 1.0  # no reachable database server for this long: unavailable
    transaction_timeout_seconds: float = 4.0  # one transaction, all its retries included (and commit retries)
    request_timeout_seconds: float = 4.0  # all the database work of one GraphQL request over HTTP
    report_timeout_seconds: float = 60.0  # the same for a report query (inventoryHealth, alertPerformance)
    data_dir: Path = Path("lotpulse-data")
    host: str = "127.0.0.1"
    port: int = 8000
    # The hub's own issuer identity (local tokens, OAuth server); unset in the environment: http://HOST:PORT.
    public_url: str = "http://127.0.0.1:8000"
    audience: str = "lotpulse"
    signing_key_file: Path | None = None  # the former key ring file: imported into the database on first start
    signing_key_refresh_seconds: float = 5.0  # each process re-reads the key ring (rotations, retirements) this often
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    token_default_ttl_seconds: int = field(default=3600, metadata={"env": "LOTPULSE_TOKEN_TTL_SECONDS"})
    claim_namespace: str = "https://lotpulse.dev/claims"
    # GraphQL limits (DESIGN.md §6).
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_fields: int = 2000
    max_page_size: int = 500
    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = 64
    max_batch: int = 10_000
    max_string_length: int = 10_000
    max_query_chars: int = 50_000  # lexing costs ~1 ms per kB of query text, cached or not
    # EPCIS 2.0 interface (hub/epcis/).
    epcis_capture_limit: int = 10_000  # events per capture request
    epcis_max_document_bytes: int = 16 * 1024 * 1024
    epcis_max_page_size: int = 1000  # events per page of GET /epcis/events
    # Events, alerts, subscriptions.
    event_retention_days: int = 30  # the live log; older events move to monthly archives (hub/events/archive.py)
    event_archive_interval_seconds: float = 300.0
    alert_escalation_minutes: int = 240
    max_subscriptions_per_connection: int = 20
    max_subscriptions_per_tenant: int = 500
    allowed_origins: tuple[str, ...] = ()
    alert_escalation_interval_seconds: float = 60.0
    event_bus_mode: str = "auto"  # auto | change_stream | polling
    event_poll_interval_ms: int = 200
    subscriber_queue_size: int = 1000
    # A WebSocket that accepts no writes for this long (its peer stopped reading) has its live subscriptions cut off
    # with RATE_LIMITED, well before uvicorn's keepalive (20 s ping + 20 s timeout) would drop it with 1011.
    subscriber_send_timeout_seconds: float = 10.0
    # Work shared by hub processes (numbering the event log, webhook dispatch, sweep and escalation partitions) is
    # held by renewable leases: a process that dies has its share taken over after this long.
    work_lease_seconds: float = 10.0
    # Webhooks.
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = 15.0
    webhook_secret_overlap_hours: int = 24
    webhook_worker: bool = True
    # A claimed delivery returns to the pool when its worker stops renewing the claim (every third of this).
    # Seconds to wait after the 1st, 2nd, ... failed delivery attempt; after the last: failed (webhooks/retry.py).
    webhook_retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_lease_seconds: float = 15.0
    webhook_endpoint_concurrency: int = 8  # requests in flight per endpoint per worker
    webhook_poll_seconds: float = 0.5
    webhook_disable_after_days: float = 5.0
    # Detection.
    receipt_quantity_tolerance_pct: float = 0.0
    # A count that changes on-hand by more than this many units is written to the audit log (0: every change).
    audit_count_threshold: int = 0
    expiry_tolerance_days: int = 1
    sweep_interval_minutes: int = 15
    # Planning signals (velocity, obsolescence, FEFO, transfers, replenishment); README "Planning signals".
    velocity_window_days: int = 7
    velocity_drop_pct: float = 40.0
    velocity_spike_pct: float = 50.0
    velocity_min_expected_units: float = 20.0
    planning_lead_time_days: float = 7.0  # where no planning policy sets one
    planning_review_days: float = 7.0
    planning_target_days_of_supply: float = 60.0
    planning_service_z: float = 1.65
    planning_transit_days: int = 1
    obsolescence_max_days_of_supply: float = 180.0
    obsolescence_idle_days: int = 90
    obsolescence_receipt_cover_days: float = 60.0
    fefo_tolerance_days: int = 2
    fefo_tolerance_units: int = 0
    # Sensors (issue 6).
    spike_rise_c_per_10min: float = 5.0
    reading_max_future_seconds: int = 300
    reading_max_age_days: int = 90
    shelf_life_loss_per_degree_minute: float = 0.0013
    sensor_offline_minutes: int = 30  # a sensor silent this long shows offline and raises sensor_offline
    spike_hysteresis_minutes: float = 15.0  # hot readings and rise triggers this close together are one episode
    spike_rejudge_hours: float = 24.0  # late readings older than this (before now) are stored but not judged
    expiry_velocity_days: int = 28  # trailing window of sales/issues behind expiry-risk velocity verdicts
    clock: str = "wall"  # "wall", or an ISO instant where a virtual clock starts (tests, replays)
    # OAuth authorization server (hub/oauth): explicit lifetimes, failed-authentication limits.
    oauth_access_token_ttl_seconds: int = 900
    oauth_refresh_token_ttl_seconds: int = 30 * 86400
    oauth_code_ttl_seconds: int = 60
    oauth_revocation_cache_seconds: float = 30.0
    oauth_failed_auth_window_seconds: int = 300
    oauth_failed_auth_per_client: int = 10
    oauth_failed_auth_per_ip: int = 50
    # Addresses or networks of reverse proxies whose X-Forwarded-For is believed (default: none, the TCP peer is the
    # client). The client is the right-most address in the header that is not itself a trusted proxy.
    trusted_proxies: tuple[str, ...] = ()
    # Signs the short-lived sign-in cookie; derived from the hub's signing key when unset.
    session_secret: str | None = None
    log_level: str = "INFO"
    log_format: str = "auto"  # json | plain | auto (plain in a terminal, JSON lines otherwise)
    # /metrics: a bearer token on the API port, or a port of its own (no token); with neither it answers 403.
    metrics: bool = True  # off: no per-operation and per-command timing (what bench/graphql.py compares against)
    metrics_token: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    metrics_refresh_seconds: float = 15.0  # how often database-held figures (alerts, webhook backlog) are re-read
    # Token buckets per tenant and per OAuth client, shared by all hub processes (hub/ratelimit.py). Query cost
    # counts each selected field once, times the `first`/`last` of every list around it.
    rate_limits: bool = True
    rate_limit_requests_per_second: float = 100.0
    rate_limit_requests_burst: float = 500.0
    rate_limit_cost_per_second: float = 20_000.0
    rate_limit_cost_burst: float = 100_000.0
    rate_limit_overrides: tuple[RateLimitOverride, ...] = ()  # JSON list of {"tenant" or "client_id", numbers}
    # OpenTelemetry traces over OTLP/HTTP (hub/tracing.py); the endpoint defaults to OTEL_EXPORTER_OTLP_* variables.
    tracing: bool = False
    tracing_endpoint: str | None = None
    tracing_sample_ratio: float = 1.0
    tracing_service_name: str = "lotpulse"
    safelist_cache_seconds: float = 30.0  # a changed client safelist applies on other hub processes within this
    # The garbage collector of a `lotpulse serve` process (hub/gcpolicy.py, docs/operations.md "Garbage collection"):
    # what start-up made is frozen out of the collector's sight; thresholds as gc.set_threshold takes them (empty:
    # the interpreter's own; its defaults are 700, 10, 10).
    gc_freeze: bool = True
    gc_thresholds: tuple[int, ...] = (10_000, 10, 10)
    # Where `lotpulse serve` records itself so the CLI finds it from any folder ($XDG_RUNTIME_DIR/lotpulse or
    # <temp dir>/lotpulse-<uid> when unset).
    runtime_dir: Path | None = None

    @property
    def issuer(self) -> str:
        """The hub's own token issuer (its public URL)."""
        return self.public_url.rstrip("/")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment gives; a value that cannot be used raises ``SettingsError`` naming it."""
        env = os.environ if env is None else env
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            name = env_name(item)
            raw = env.get(name)
            if raw is None:
                continue
            try:
                values[item.name] = _parse(hints[item.name], raw, item.default)
            except ValueError as exc:  # JSONDecodeError is one
                shown = raw if len(raw) <= 60 else raw[:57] + "..."
                raise SettingsError(f"{name}={shown!r}: {exc}") from None
        if "public_url" not in values:
            values["public_url"] = f"http://{values.get('host', cls.host)}:{values.get('port', cls.port)}"
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Values of the right type that still cannot work: refused at start, not on first use."""
        ports = {"LOTPULSE_PORT": self.port, "LOTPULSE_METRICS_PORT": self.metrics_port}
        for name, port in ports.items():
            if port is not None and not 0 <= port <= 65535:
                raise SettingsError(f"{name}={port}: a port is a number from 0 to 65535")
        choices = {"LOTPULSE_EVENT_BUS_MODE": (self.event_bus_mode, ("auto", "change_stream", "polling")),
                   "LOTPULSE_LOG_FORMAT": (self.log_format, ("auto", "json", "plain")),
                   "LOTPULSE_LOG_LEVEL": (self.log_level.upper(), ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))}
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise SettingsError(f"{name}={value!r}: not one of {', '.join(allowed)}")
        if self.clock.strip().lower() not in ("", "wall"):
            try:
                datetime.fromisoformat(self.clock.strip())
            except ValueError:
                raise SettingsError(f"LOTPULSE_CLOCK={self.clock!r}: 'wall' or an ISO 8601 instant") from None
        if len(self.gc_thresholds) > 3 or any(t < 0 for t in self.gc_thresholds):
            raise SettingsError(f"LOTPULSE_GC_THRESHOLDS={','.join(map(str, self.gc_thresholds))!r}: "
                                "at most three whole numbers >= 0 (generations 0, 1 and 2)")


class SettingsError(ValueError):
    """A ``LOTPULSE_*`` variable that cannot be used; the message names it, so ``lotpulse`` prints one line."""


def env_name(item: dataclasses.Field[Any]) -> str:
    """The environment variable of a settings field."""
    return item.metadata.get("env", f"LOTPULSE_{item.name.upper()}")


TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _parse(kind: Any, raw: str, default: Any) -> Any:
    """One environment value as the field's type; empty means unset (None for optional fields, else the default)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if not raw.strip():
            return None
        (kind,) = [arg for arg in args if arg is not type(None)]
        args = typing.get_args(kind)
    if kind is str:
        return raw
    if not raw.strip():
        return default
    if kind is bool:
        word = raw.strip().lower()
        if word not in TRUE | FALSE:
            raise ValueError(f"not a yes/no value (use one of {', '.join(sorted(TRUE | FALSE))})")
        return word in TRUE
    if isinstance(kind, type) and issubclass(kind, Enum):
        try:
            return kind(raw.strip())
        except ValueError:
            raise ValueError(f"not one of {', '.join(str(m.value) for m in kind)}") from None
    if kind in (int, float):
        try:
            return kind(raw.strip())
        except ValueError:
            raise ValueError("not a whole number" if kind is int else "not a number") from None
    if kind is Path:
        return Path(raw.strip())
    if typing.get_origin(kind) is tuple:
        (item,) = args[:1]
        if dataclasses.is_dataclass(item):
            entries = json.loads(raw)
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ValueError("not a JSON list of objects")
            return tuple(_record(item, entry) for entry in entries)
        try:
            return tuple(item(part.strip()) for part in raw.split(",") if part.strip())
        except ValueError:
            raise ValueError(f"not a comma-separated list of {'whole numbers' if item is int else item.__name__}") \
                from None
    raise TypeError(f"no parser for settings of type {kind!r}")


def _record(kind: Any, entry: Mapping[str, Any]) -> Any:
    """A nested settings record (e.g. a trusted issuer) from a JSON object: lists become tuples, flags booleans."""
    hints = typing.get_type_hints(kind)
    required = [f.name for f in dataclasses.fields(kind)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if any(name not in entry for name in required):
        raise ValueError(f"each entry needs {', '.join(required)}")
    values = {
        name: tuple(value) if isinstance(value, list) else bool(value) if hints[name] is bool else value
        for name, value in entry.items()
        if name in hints
    }
    return kind(**values)
