"""GraphQL documents and small steps the webhook tests share."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hub.models.alert import Alert, AlertKind, Severity
from hub.services.alerts import raise_alert
from tests.conftest import Hub

CREATE_ENDPOINT = """
mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) {
    secret
    endpoint { id url eventTypes enabled disabledReason failingSince secretRotationEndsAt }
  }
}"""

UPDATE_ENDPOINT = """
mutation($input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(input: $input) { id url eventTypes enabled disabledReason description }
}"""

ROTATE_SECRET = """
mutation($id: ID!, $overlap: Int) {
  rotateWebhookSecret(id: $id, overlapHours: $overlap) { secret endpoint { id secretRotationEndsAt } }
}"""

DELETE_ENDPOINT = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }"

REPLAY = """
mutation($id: ID!, $since: DateTime!, $onlyFailed: Boolean! = false) {
  replayWebhookDeliveries(endpointId: $id, since: $since, onlyFailed: $onlyFailed) { queued }
}"""

ENDPOINTS = "{ webhookEndpoints { edges { node { id url enabled disabledReason eventTypes } } } }"

DELIVERIES = """
query($filter: WebhookDeliveryFilter) {
  webhookDeliveries(filter: $filter) {
    edges { node {
      id endpointId webhookId eventType subject body state attemptCount nextAttemptAt lastError deliveredAt
      attempts { at statusCode durationMs responseExcerpt error }
    } }
  }
}"""

INVITE = """
mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }"""
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id status } }"
REVOKE = "mutation($id: ID!) { revokePartnership(id: $id) { id status } }"


async def create_endpoint(hub: Hub, tenant: str, url: str, event_types: list[str] | None = None) -> tuple[str, str]:
    """Answers (endpoint id, secret)."""
    data = await hub.ok(CREATE_ENDPOINT, {"input": {"url": url, "eventTypes": event_types or []}}, tenant=tenant)
    created = data["createWebhookEndpoint"]
    return created["endpoint"]["id"], created["secret"]


async def deliveries(hub: Hub, tenant: str, endpoint_id: str | None = None) -> list[dict[str, Any]]:
    variables = {"filter": {"endpointId": endpoint_id}} if endpoint_id else {}
    data = await hub.ok(DELIVERIES, variables, tenant=tenant)
    return [edge["node"] for edge in data["webhookDeliveries"]["edges"]]


async def partners(hub: Hub, inviter: str, invitee: str, inviter_shares: list[str]) -> str:
    """An active partnership where ``inviter`` shares ``inviter_shares`` with ``invitee``; answers its id."""
    data = await hub.ok(INVITE, {"input": {"partnerId": invitee, "weShare": inviter_shares}}, tenant=inviter)
    partnership = data["invitePartner"]["id"]
    await hub.ok(ACCEPT, {"id": partnership}, tenant=invitee)
    return partnership


async def raise_mismatch(hub: Hub, owner: str, audience: list[str], key: str = "mismatch-1") -> Alert:
    async def work(session: Any) -> Alert:
        return await raise_alert(
            session,
            kind=AlertKind.mismatch,
            severity=Severity.warning,
            owner=owner,
            audience=audience,
            title="Lot code differs from the advance ship notice",
            dedupe_key=key,
            evidence={"expected": "B240315", "scanned": "B240314"},
            recommendation="Hold the lot and confirm with the supplier",
        )

    return await hub.state.database.in_transaction(work)


async def settled(hub: Hub, tenant: str, endpoint_id: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The endpoint's deliveries once none is pending (the log is written just after the receiver answers)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await deliveries(hub, tenant, endpoint_id)
        if all(d["state"] != "pending" for d in found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)
