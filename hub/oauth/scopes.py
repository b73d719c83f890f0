"""The scopes an OAuth client may be granted, and what each lets a token do.

A token's scopes narrow what its roles allow; they never widen it: a ``write`` scope on a ``viewer`` still reads only.
"""

from __future__ import annotations

SCOPES: dict[str, str] = {
    "read": "read the tenant's data and what partners share with it",
    "write": "change data (with a role that may write)",
    "admin": "manage members, partnerships, OAuth clients and read the audit log (with the admin role)",
    "webhooks:manage": "create, change and replay webhook endpoints (with the admin role)",
    "sensors:ingest": "send sensor readings",
}


def parse_scope(text: str | None) -> list[str]:
    """Scopes in a space-separated string, de-duplicated in a stable order."""
    return list(dict.fromkeys((text or "").split()))


def unknown_scopes(scopes: list[str]) -> list[str]:
    return [scope for scope in scopes if scope not in SCOPES]
