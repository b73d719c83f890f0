"""Permission classes: who may call a field at all. Row-level visibility lives in tenants/access.py."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

Permissions = list[type[BasePermission]]


class IsAuthenticated(BasePermission):
    message = "authentication required"
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal is not None


class CanWrite(BasePermission):
    """Every role but ``viewer`` may change data."""

    message = "your role may not change data"
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and principal.can_write


class IsAdmin(BasePermission):
    message = "only tenant admins may do this"
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and principal.has_role("admin")


class _ScopePermission(BasePermission):
    scopes: tuple[str, ...] = ()
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        # Tokens without scopes (local CLI tokens, external issuers) are bounded by their roles alone.
        return principal is not None and (principal.scopes is None or not principal.scopes.isdisjoint(self.scopes))


def RequireScope(*scopes: str) -> type[BasePermission]:
    """A permission class admitting tokens that carry any of ``scopes``: ``[*WRITE, RequireScope("x")]``."""
    return type(
        f"RequireScope_{'_'.join(scopes)}",
        (_ScopePermission,),
        {"scopes": scopes, "message": f"the token lacks the scope {' or '.join(scopes)}"},
    )


READ: Permissions = [IsAuthenticated, RequireScope("read")]
WRITE: Permissions = [IsAuthenticated, CanWrite, RequireScope("write")]
ADMIN: Permissions = [IsAuthenticated, IsAdmin, RequireScope("admin")]
# Webhook administration and sensor ingestion have their own scopes, so an ERP can hold just that one right.
WEBHOOK_ADMIN: Permissions = [IsAuthenticated, IsAdmin, RequireScope("webhooks:manage")]
SENSOR_INGEST: Permissions = [IsAuthenticated, CanWrite, RequireScope("sensors:ingest")]
