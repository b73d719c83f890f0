"""Least privilege: one call per mutation group for every role, allowed or refused with FORBIDDEN as the table in
tenants/roles.py says, over real HTTP; the integration role is judged by its OAuth client's scopes alone."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from schema.schema import build_schema
from tenants.roles import RULES, Group, group_of, markdown_table
from tests.oauth.conftest import create_client

pytestmark = pytest.mark.anyio
NOBODY = "0" * 24
# One mutation per group, aimed at an id nobody has: a caller the table admits gets past the permission and answers
# NOT_FOUND (or BAD_USER_INPUT, or nothing to do); a refused one gets FORBIDDEN before anything is looked up.
CALLS: dict[Group, str] = {
    Group.operations: f'mutation {{ cancelDispatch(id: "{NOBODY}") {{ id }} }}',
    Group.readings: 'mutation { ingestReadings(input: [{deviceId: "nobody", readings: []}]) { accepted } }',
    Group.acknowledge: f'mutation {{ acknowledgeAlert(id: "{NOBODY}") {{ id }} }}',
    Group.decisions: f'mutation {{ resolveAlert(id: "{NOBODY}", decision: false_alarm) {{ id }} }}',
    Group.master_data: f'mutation {{ setSkuAlias(skuId: "{NOBODY}", code: null) {{ id }} }}',
    Group.administration: f'mutation {{ removeMember(id: "{NOBODY}") }}',
    Group.webhooks: f'mutation {{ deleteWebhookEndpoint(id: "{NOBODY}") }}',
    Group.notifications: f'mutation {{ acknowledgeNotification(id: "{NOBODY}") {{ id }} }}',
}
ADMITTED = {"NOT_FOUND", "BAD_USER_INPUT"}
# Every scope a client can hold, and the groups it opens to an integration client holding just that scope.
OPENS: dict[str, set[Group]] = {
    "read": {Group.notifications},
    "write": {Group.operations, Group.readings, Group.acknowledge, Group.decisions, Group.master_data},
    "sensors:ingest": {Group.readings},
    "admin": {Group.administration},
    "webhooks:manage": {Group.webhooks},
}
MEMBER_ROLES: dict[str, set[Group]] = {
    "viewer": {Group.notifications},
    "operator": {Group.operations, Group.readings, Group.acknowledge, Group.notifications},
    "planner": {Group.operations, Group.readings, Group.acknowledge, Group.decisions, Group.master_data,
                Group.notifications},
    "admin": set(Group),
}


def verdict(body: dict) -> str:
    codes = {error["extensions"]["code"] for error in body.get("errors", [])}
    if codes == {"FORBIDDEN"}:
        return "refused"
    assert codes <= ADMITTED and (codes or body["data"]), body
    return "allowed"


async def verdicts(hub, token: str) -> dict[Group, str]:
    return {group: verdict(await hub.gql(call, token=token)) for group, call in CALLS.items()}


async def client_token(hub, tenant: str, scope: str) -> str:
    client_id, secret = await create_client(hub, tenant, scopes=[scope], roles=["integration"])
    answer = await hub.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=httpx.BasicAuth(client_id, secret or ""))
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


@pytest.mark.parametrize("role", sorted(MEMBER_ROLES))
async def test_each_role_may_call_exactly_its_mutation_groups(module_hub, suffix, role):
    tenant = await module_hub.tenant(f"roles-{suffix}")
    seen = await verdicts(module_hub, module_hub.token(tenant, role))
    assert seen == {group: "allowed" if group in MEMBER_ROLES[role] else "refused" for group in Group}


@pytest.mark.parametrize("scope", sorted(OPENS))
async def test_an_integration_client_has_exactly_its_scopes(module_hub, suffix, scope):
    tenant = await module_hub.tenant(f"integ-{suffix}")
    seen = await verdicts(module_hub, await client_token(module_hub, tenant, scope))
    assert seen == {group: "allowed" if group in OPENS[scope] else "refused" for group in Group}


# What only some roles may read: the audit log, members, clients and the identity provider (administration), and
# webhook endpoints (webhooks). Every other query is open to every role with the read scope.
GUARDED_READS: dict[str, tuple[Group, str]] = {
    "auditLog": (Group.administration, "{ auditLog(first: 1) { edges { node { action } } } }"),
    "members": (Group.administration, "{ members { edges { node { id } } } }"),
    "oauthClients": (Group.administration, "{ oauthClients { edges { node { clientId } } } }"),
    "identityProvider": (Group.administration, "{ identityProvider { issuer } }"),
    "webhookEndpoints": (Group.webhooks, "{ webhookEndpoints { edges { node { id } } } }"),
}


@pytest.mark.parametrize("who", [*sorted(MEMBER_ROLES), *(f"integration:{scope}" for scope in sorted(OPENS))])
async def test_guarded_reads_follow_the_table(module_hub, suffix, who):
    tenant = await module_hub.tenant(f"reads-{suffix}")
    role, _, scope = who.partition(":")
    token = await client_token(module_hub, tenant, scope) if scope else module_hub.token(tenant, role)
    opened = OPENS[scope] if scope else MEMBER_ROLES[role]
    seen = {name: verdict(await module_hub.gql(query, token=token)) for name, (_, query) in GUARDED_READS.items()}
    assert seen == {name: "allowed" if group in opened else "refused" for name, (group, _) in GUARDED_READS.items()}


async def test_a_refused_call_changes_nothing(module_hub, suffix):
    tenant = await module_hub.tenant(f"refused-{suffix}")
    body = await module_hub.gql('mutation { createLocation(input: {code: "W1", name: "W", kind: warehouse}) { id } }',
                                tenant=tenant, roles=("operator",))
    assert verdict(body) == "refused"
    data = await module_hub.ok("{ locations { edges { node { id } } } }", tenant=tenant)
    assert data["locations"]["edges"] == []


def test_every_mutation_is_in_the_table_and_declares_its_group(settings):
    fields = build_schema(settings)._schema.mutation_type.fields  # type: ignore[union-attr]
    for name, field in fields.items():
        group = group_of(name)
        assert group is not None, f"{name} is in no group of tenants/roles.py"
        permissions = field.extensions["strawberry-definition"].permission_classes
        assert group in {getattr(p, "group", None) for p in permissions}, f"{name} lacks allowed(Group.{group.value})"
    assert {m for rule in RULES.values() for m in rule.mutations} == set(fields)


def test_the_readme_role_table_is_the_one_in_code():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert markdown_table() in readme
