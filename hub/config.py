"""Settings read from ``LOTPULSE_*`` environment variables.

One frozen dataclass, built once per process, so every module reads the same values and tests can build their own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class TrustedIssuer:
    """An identity provider whose tokens the hub accepts."""

    issuer: str
    audience: str
    jwks_url: str
    # When true, the issuer may assert tenant and roles in the namespaced claim; otherwise the
    # (issuer, subject) pair must be a member in the `members` collection.
    trusted_claims: bool = False
    algorithms: tuple[str, ...] = ("RS256", "ES256")


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    return int(raw) if raw not in (None, "") else default


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    return float(raw) if raw not in (None, "") else default


def _list(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    raw = env.get(key, "")
    return tuple(part.strip() for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    mongodb_uri: str | None = None
    database: str = "lotpulse"
    data_dir: Path = Path("lotpulse-data")
    host: str = "127.0.0.1"
    port: int = 8000
    # The hub's own issuer identity (local tokens, OAuth server).
    public_url: str = "http://127.0.0.1:8000"
    audience: str = "lotpulse"
    signing_key_file: Path | None = None
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    token_default_ttl_seconds: int = 3600
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
    # Events, alerts, subscriptions.
    event_retention_days: int = 30
    alert_escalation_minutes: int = 240
    max_subscriptions_per_connection: int = 20
    max_subscriptions_per_tenant: int = 500
    allowed_origins: tuple[str, ...] = ()
    alert_escalation_interval_seconds: float = 60.0
    event_bus_mode: str = "auto"  # auto | change_stream | polling
    event_poll_interval_ms: int = 200
    subscriber_queue_size: int = 1000
    # Webhooks.
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = 15.0
    webhook_secret_overlap_hours: int = 24
    webhook_worker: bool = True
    webhook_lease_seconds: float = 120.0  # a claimed delivery returns to the pool if unfinished after this
    webhook_endpoint_concurrency: int = 8  # requests in flight per endpoint per worker
    webhook_poll_seconds: float = 0.5
    webhook_disable_after_days: float = 5.0
    # Detection.
    receipt_quantity_tolerance_pct: float = 0.0
    expiry_tolerance_days: int = 1
    sweep_interval_minutes: int = 15
    # Sensors (issue 6).
    spike_rise_c_per_10min: float = 5.0
    reading_max_future_seconds: int = 300
    reading_max_age_days: int = 90
    shelf_life_loss_per_degree_minute: float = 0.0013
    sensor_offline_minutes: int = 30
    # OAuth authorization server (hub/oauth): explicit lifetimes, failed-authentication limits.
    oauth_access_token_ttl_seconds: int = 900
    oauth_refresh_token_ttl_seconds: int = 30 * 86400
    oauth_code_ttl_seconds: int = 60
    oauth_revocation_cache_seconds: float = 30.0
    oauth_failed_auth_window_seconds: int = 300
    oauth_failed_auth_per_client: int = 10
    oauth_failed_auth_per_ip: int = 50
    # Signs the short-lived sign-in cookie; derived from the hub's signing key when unset.
    session_secret: str | None = None
    log_level: str = "INFO"

    @property
    def issuer(self) -> str:
        """The hub's own token issuer (its public URL)."""
        return self.public_url.rstrip("/")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        host = env.get("LOTPULSE_HOST", cls.host)
        port = _int(env, "LOTPULSE_PORT", cls.port)
        issuers = tuple(
            TrustedIssuer(
                issuer=item["issuer"],
                audience=item.get("audience", "lotpulse"),
                jwks_url=item["jwks_url"],
                trusted_claims=bool(item.get("trusted_claims", False)),
                algorithms=tuple(item.get("algorithms", ("RS256", "ES256"))),
            )
            for item in json.loads(env.get("LOTPULSE_TRUSTED_ISSUERS", "[]"))
        )
        key_file = env.get("LOTPULSE_SIGNING_KEY_FILE")
        return cls(
            mongodb_uri=env.get("LOTPULSE_MONGODB_URI") or None,
            database=env.get("LOTPULSE_DATABASE", cls.database),
            data_dir=Path(env.get("LOTPULSE_DATA_DIR", str(cls.data_dir))),
            host=host,
            port=port,
            public_url=env.get("LOTPULSE_PUBLIC_URL", f"http://{host}:{port}"),
            audience=env.get("LOTPULSE_AUDIENCE", cls.audience),
            signing_key_file=Path(key_file) if key_file else None,
            trusted_issuers=issuers,
            token_default_ttl_seconds=_int(env, "LOTPULSE_TOKEN_TTL_SECONDS", cls.token_default_ttl_seconds),
            max_depth=_int(env, "LOTPULSE_MAX_DEPTH", cls.max_depth),
            max_aliases=_int(env, "LOTPULSE_MAX_ALIASES", cls.max_aliases),
            max_tokens=_int(env, "LOTPULSE_MAX_TOKENS", cls.max_tokens),
            max_fields=_int(env, "LOTPULSE_MAX_FIELDS", cls.max_fields),
            max_page_size=_int(env, "LOTPULSE_MAX_PAGE_SIZE", cls.max_page_size),
            max_body_bytes=_int(env, "LOTPULSE_MAX_BODY_BYTES", cls.max_body_bytes),
            max_batch=_int(env, "LOTPULSE_MAX_BATCH", cls.max_batch),
            max_query_chars=_int(env, "LOTPULSE_MAX_QUERY_CHARS", cls.max_query_chars),
            event_retention_days=_int(env, "LOTPULSE_EVENT_RETENTION_DAYS", cls.event_retention_days),
            alert_escalation_minutes=_int(env, "LOTPULSE_ALERT_ESCALATION_MINUTES", cls.alert_escalation_minutes),
            max_subscriptions_per_connection=_int(
                env, "LOTPULSE_MAX_SUBSCRIPTIONS_PER_CONNECTION", cls.max_subscriptions_per_connection
            ),
            max_subscriptions_per_tenant=_int(
                env, "LOTPULSE_MAX_SUBSCRIPTIONS_PER_TENANT", cls.max_subscriptions_per_tenant
            ),
            allowed_origins=_list(env, "LOTPULSE_ALLOWED_ORIGINS"),
            alert_escalation_interval_seconds=_float(
                env, "LOTPULSE_ALERT_ESCALATION_INTERVAL_SECONDS", cls.alert_escalation_interval_seconds
            ),
            event_bus_mode=env.get("LOTPULSE_EVENT_BUS_MODE", cls.event_bus_mode),
            event_poll_interval_ms=_int(env, "LOTPULSE_EVENT_POLL_INTERVAL_MS", cls.event_poll_interval_ms),
            subscriber_queue_size=_int(env, "LOTPULSE_SUBSCRIBER_QUEUE_SIZE", cls.subscriber_queue_size),
            webhook_allow_private=_bool(env.get("LOTPULSE_WEBHOOK_ALLOW_PRIVATE"), False),
            webhook_timeout_seconds=_float(env, "LOTPULSE_WEBHOOK_TIMEOUT_SECONDS", cls.webhook_timeout_seconds),
            webhook_secret_overlap_hours=_int(
                env, "LOTPULSE_WEBHOOK_SECRET_OVERLAP_HOURS", cls.webhook_secret_overlap_hours
            ),
            webhook_worker=_bool(env.get("LOTPULSE_WEBHOOK_WORKER"), True),
            webhook_lease_seconds=_float(env, "LOTPULSE_WEBHOOK_LEASE_SECONDS", cls.webhook_lease_seconds),
            webhook_endpoint_concurrency=_int(
                env, "LOTPULSE_WEBHOOK_ENDPOINT_CONCURRENCY", cls.webhook_endpoint_concurrency
            ),
            webhook_poll_seconds=_float(env, "LOTPULSE_WEBHOOK_POLL_SECONDS", cls.webhook_poll_seconds),
            webhook_disable_after_days=_float(
                env, "LOTPULSE_WEBHOOK_DISABLE_AFTER_DAYS", cls.webhook_disable_after_days
            ),
            receipt_quantity_tolerance_pct=_float(
                env, "LOTPULSE_RECEIPT_QUANTITY_TOLERANCE_PCT", cls.receipt_quantity_tolerance_pct
            ),
            expiry_tolerance_days=_int(env, "LOTPULSE_EXPIRY_TOLERANCE_DAYS", cls.expiry_tolerance_days),
            sweep_interval_minutes=_int(env, "LOTPULSE_SWEEP_INTERVAL_MINUTES", cls.sweep_interval_minutes),
            spike_rise_c_per_10min=_float(env, "LOTPULSE_SPIKE_RISE_C_PER_10MIN", cls.spike_rise_c_per_10min),
            reading_max_future_seconds=_int(env, "LOTPULSE_READING_MAX_FUTURE_SECONDS", cls.reading_max_future_seconds),
            reading_max_age_days=_int(env, "LOTPULSE_READING_MAX_AGE_DAYS", cls.reading_max_age_days),
            shelf_life_loss_per_degree_minute=_float(
                env, "LOTPULSE_SHELF_LIFE_LOSS_PER_DEGREE_MINUTE", cls.shelf_life_loss_per_degree_minute
            ),
            sensor_offline_minutes=_int(env, "LOTPULSE_SENSOR_OFFLINE_MINUTES", cls.sensor_offline_minutes),
            oauth_access_token_ttl_seconds=_int(
                env, "LOTPULSE_OAUTH_ACCESS_TOKEN_TTL_SECONDS", cls.oauth_access_token_ttl_seconds
            ),
            oauth_refresh_token_ttl_seconds=_int(
                env, "LOTPULSE_OAUTH_REFRESH_TOKEN_TTL_SECONDS", cls.oauth_refresh_token_ttl_seconds
            ),
            oauth_code_ttl_seconds=_int(env, "LOTPULSE_OAUTH_CODE_TTL_SECONDS", cls.oauth_code_ttl_seconds),
            oauth_revocation_cache_seconds=_float(
                env, "LOTPULSE_OAUTH_REVOCATION_CACHE_SECONDS", cls.oauth_revocation_cache_seconds
            ),
            oauth_failed_auth_window_seconds=_int(
                env, "LOTPULSE_OAUTH_FAILED_AUTH_WINDOW_SECONDS", cls.oauth_failed_auth_window_seconds
            ),
            oauth_failed_auth_per_client=_int(
                env, "LOTPULSE_OAUTH_FAILED_AUTH_PER_CLIENT", cls.oauth_failed_auth_per_client
            ),
            oauth_failed_auth_per_ip=_int(env, "LOTPULSE_OAUTH_FAILED_AUTH_PER_IP", cls.oauth_failed_auth_per_ip),
            session_secret=env.get("LOTPULSE_SESSION_SECRET") or None,
            log_level=env.get("LOTPULSE_LOG_LEVEL", cls.log_level),
        )
