"""Permission classes: who may call a field at all. Row-level visibility lives in tenants/access.py."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info


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


READ = [IsAuthenticated]
WRITE = [IsAuthenticated, CanWrite]
ADMIN = [IsAuthenticated, IsAdmin]
