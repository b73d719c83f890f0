"""Least privilege: which roles (and token scopes) may call which group of mutations.

This table is the one place that says it. The GraphQL permissions (schema/permissions.py) and the services
(``Access.require``) both ask it, and the README's role table is rendered from it (a test keeps them equal).

A token's scopes narrow what its roles allow and never widen it. The ``integration`` role is the exception by
design: a machine client has exactly the scopes its OAuth client was granted, whatever group they open. A locally
minted integration token (``lotpulse token --role integration``) carries no scopes and acts with
``LOCAL_INTEGRATION_SCOPES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.auth import Principal

ROLES = ("viewer", "operator", "planner", "admin", "integration")
LOCAL_INTEGRATION_SCOPES = frozenset({"read", "write", "sensors:ingest"})


class Group(str, Enum):
    operations = "operations"
    readings = "readings"
    acknowledge = "acknowledge"
    decisions = "decisions"
    master_data = "master_data"
    administration = "administration"
    webhooks = "webhooks"
    notifications = "notifications"


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]  # roles allowed besides ``integration`` (which is judged by its scopes)
    scopes: frozenset[str]  # any one of these scopes admits a scoped token
    mutations: tuple[str, ...]
    says: str


_MEMBER = frozenset({"viewer", "operator", "planner", "admin"})
_OPERATOR = frozenset({"operator", "planner", "admin"})
_PLANNER = frozenset({"planner", "admin"})
_ADMIN = frozenset({"admin"})

RULES: dict[Group, Rule] = {
    Group.operations: Rule(
        _OPERATOR, frozenset({"write"}),
        ("recordMovements", "recordReceipt", "createDispatch", "updateDispatchStatus", "cancelDispatch",
         "registerLot", "registerSensor"),
        "record movements, receipts, dispatches, lots and sensors",
    ),
    Group.readings: Rule(_OPERATOR, frozenset({"write", "sensors:ingest"}), ("ingestReadings",),
                         "send sensor readings"),
    Group.acknowledge: Rule(_OPERATOR, frozenset({"write"}), ("acknowledgeAlert",), "acknowledge alerts"),
    Group.decisions: Rule(
        _PLANNER, frozenset({"write"}),
        ("resolveAlert", "resolveReceipt", "acceptTransferRecommendation", "dismissTransferRecommendation"),
        "decide: resolve alerts and receipts (releasing held lots), accept or dismiss recommendations",
    ),
    Group.master_data: Rule(_PLANNER, frozenset({"write"}),
                            ("upsertSku", "setSkuAlias", "createLocation", "setPlanningPolicy", "importCsv"),
                            "maintain SKUs, aliases, locations and planning parameters; import CSV files"),
    Group.administration: Rule(
        _ADMIN, frozenset({"admin"}),
        ("invitePartner", "acceptPartnership", "revokePartnership", "addMember", "removeMember",
         "createOAuthClient", "rotateOAuthClientSecret", "deleteOAuthClient", "configureIdentityProvider",
         "registerSafelistedQuery", "removeSafelistedQuery", "enforceSafelist", "setAgingBands",
         "upsertEscalationPolicy"),
        "manage members, partnerships, OAuth clients, identity provider, safelist and policies; read the audit log",
    ),
    Group.webhooks: Rule(
        _ADMIN, frozenset({"webhooks:manage"}),
        ("createWebhookEndpoint", "updateWebhookEndpoint", "rotateWebhookSecret", "deleteWebhookEndpoint",
         "replayWebhookDeliveries"),
        "manage and replay webhook endpoints",
    ),
    Group.notifications: Rule(
        _MEMBER, frozenset({"read"}), ("markNotificationsRead", "acknowledgeNotification"),
        "read and acknowledge the notifications addressed to you",
    ),
}


def group_of(mutation: str) -> Group | None:
    return next((group for group, rule in RULES.items() if mutation in rule.mutations), None)


def allows(principal: Principal, group: Group) -> bool:
    rule = RULES[group]
    scopes = principal.scopes
    if principal.has_role("integration"):
        held = scopes if scopes is not None else LOCAL_INTEGRATION_SCOPES
        if not held.isdisjoint(rule.scopes):
            return True
    if not principal.roles & rule.roles:
        return False
    return scopes is None or not scopes.isdisjoint(rule.scopes)


def refusal(group: Group) -> str:
    rule = RULES[group]
    roles = " or ".join(sorted(rule.roles)) + " role"
    scopes = " or ".join(sorted(rule.scopes))
    return f"this needs the {roles} (or an integration client) with the scope {scopes}: {rule.says}"


def markdown_table() -> str:
    """The README's role table, rendered from ``RULES``."""
    head = "| mutation group | mutations | " + " | ".join(ROLES) + " |"
    lines = [head, "|" + "---|" * (2 + len(ROLES))]
    for group, rule in RULES.items():
        cells = ["yes" if role in rule.roles else "no" for role in ROLES[:-1]]
        cells.append("scope " + " or ".join(f"`{s}`" for s in sorted(rule.scopes)))
        mutations = ", ".join(f"`{m}`" for m in rule.mutations)
        lines.append(f"| `{group.value}` | {mutations} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
