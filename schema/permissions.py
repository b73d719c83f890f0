"""Permission classes: who may call a field at all. Row-level visibility lives in tenants/access.py.

What each role may change is one table, ``tenants/roles.py``; ``allowed(group)`` turns a row of it into the
permission list a mutation declares.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info

from tenants.roles import Group, allows, refusal

Permissions = list[type[BasePermission]]


class IsAuthenticated(BasePermission):
    message = "authentication required"
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.principal is not None


class _GroupPermission(BasePermission):
    group: Group
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and allows(principal, self.group)


class _ScopePermission(BasePermission):
    scopes: tuple[str, ...] = ()
    error_extensions = {"code": "FORBIDDEN"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        # Tokens without scopes (local CLI tokens, external issuers) are bounded by their roles alone.
        return principal is not None and (principal.scopes is None or not principal.scopes.isdisjoint(self.scopes))


def RequireScope(*scopes: str) -> type[BasePermission]:
    """A permission class admitting tokens that carry any of ``scopes``: ``[*READ, RequireScope("x")]``."""
    return type(
        f"RequireScope_{'_'.join(scopes)}",
        (_ScopePermission,),
        {"scopes": scopes, "message": f"the token lacks the scope {' or '.join(scopes)}"},
    )


@cache
def allowed(group: Group) -> Permissions:
    """The permissions of one mutation group (also used by the admin-only and webhook queries)."""
    permission = type(f"Allowed_{group.value}", (_GroupPermission,), {"group": group, "message": refusal(group)})
    return [IsAuthenticated, permission]


READ: Permissions = [IsAuthenticated, RequireScope("read")]
