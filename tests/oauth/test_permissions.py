"""Scope-aware permission classes, run on a small schema: a token's scopes narrow what its roles allow."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import strawberry
from strawberry.types import Info

from hub.auth import Principal
from schema.permissions import READ, RequireScope, allowed
from tenants.roles import Group


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ)
    def read(self, info: Info) -> bool | None:
        return True

    @strawberry.field(permission_classes=allowed(Group.operations))
    def write(self, info: Info) -> bool | None:
        return True

    @strawberry.field(permission_classes=allowed(Group.decisions))
    def decide(self, info: Info) -> bool | None:
        return True

    @strawberry.field(permission_classes=allowed(Group.administration))
    def admin(self, info: Info) -> bool | None:
        return True

    @strawberry.field(permission_classes=allowed(Group.webhooks))
    def webhooks(self, info: Info) -> bool | None:
        return True

    @strawberry.field(permission_classes=allowed(Group.readings))
    def ingest(self, info: Info) -> bool | None:
        return True

    @strawberry.field(permission_classes=[*READ, RequireScope("write", "sensors:ingest")])
    def either(self, info: Info) -> bool | None:
        return True


SCHEMA = strawberry.Schema(query=Query)
FIELDS = ("read", "write", "decide", "admin", "webhooks", "ingest", "either")


@dataclass
class Context:
    principal: Principal | None


def allowed_fields(roles: set[str], scopes: set[str] | None) -> set[str]:
    principal = Principal("acme", "s", "i", frozenset(roles), frozenset(scopes) if scopes is not None else None)
    result = SCHEMA.execute_sync(f"{{ {' '.join(FIELDS)} }}", context_value=Context(principal))
    refused = {error.path[0] for error in result.errors or []}
    assert all(error.extensions["code"] == "FORBIDDEN" for error in result.errors or [])
    return set(FIELDS) - refused


@pytest.mark.parametrize(
    ("roles", "scopes", "expected"),
    [
        ({"admin"}, None, set(FIELDS)),  # a CLI token: roles alone
        ({"viewer"}, None, {"read", "either"}),  # "either" checks scopes only, and this token has none
        ({"operator"}, None, {"read", "write", "ingest", "either"}),
        ({"planner"}, None, {"read", "write", "decide", "ingest", "either"}),
        ({"planner"}, {"read"}, {"read"}),  # a member signed in through a read-only client
        ({"integration"}, None, {"read", "write", "decide", "ingest", "either"}),  # local token: read write ingest
        ({"integration"}, {"read"}, {"read"}),  # read-only token cannot write
        ({"integration"}, {"read", "write"}, {"read", "write", "decide", "ingest", "either"}),
        ({"integration"}, {"sensors:ingest"}, {"ingest"}),  # an ingest-only device token
        ({"integration"}, {"webhooks:manage"}, {"webhooks"}),  # exactly its client's scopes
        ({"integration"}, {"admin"}, {"admin"}),
        ({"admin"}, {"read", "admin"}, {"read", "admin"}),  # webhook admin needs its own scope
        ({"admin"}, {"webhooks:manage"}, {"webhooks"}),
        (
            {"viewer"},
            {"read", "write", "admin", "webhooks:manage", "sensors:ingest"},
            {"read", "either"},
        ),  # never widen
        ({"operator"}, {"read", "write", "admin", "webhooks:manage"}, {"read", "write", "ingest", "either"}),
    ],
)
def test_scopes_narrow_what_roles_allow(roles, scopes, expected):
    assert allowed_fields(roles, scopes) == expected


def test_anonymous_callers_are_refused_everything():
    result = SCHEMA.execute_sync("{ read }", context_value=Context(None))
    assert result.errors and result.errors[0].extensions["code"] == "UNAUTHENTICATED"
