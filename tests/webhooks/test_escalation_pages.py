"""A page_webhook escalation step pages the one endpoint it names, whatever that endpoint subscribed to, and no
other; the other steps reach the endpoints subscribed to alert.escalated as usual."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from hub.dates import utcnow
from hub.services.escalation import escalate_overdue
from tests.webhooks.helpers import create_endpoint, deliveries, raise_mismatch
from webhooks.clock import ManualClock
from webhooks.runtime import build

UPSERT = """
mutation($input: EscalationPolicyInput!) { upsertEscalationPolicy(input: $input) { steps { webhookEndpointId } } }
"""


async def test_a_page_reaches_the_named_endpoint_only(quiet_hub, receiver):
    # given: a pager endpoint that hears dispatches only, and an ERP endpoint that hears escalations
    await quiet_hub.tenant("acme", "supplier")
    pager, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/pager"), ["dispatch.created"])
    erp, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/erp"), ["alert.escalated"])
    steps = [{"afterMinutes": 10, "action": "page_webhook", "webhookEndpointId": pager},
             {"afterMinutes": 20, "action": "notify_role", "role": "planner"}]
    policy = await quiet_hub.ok(UPSERT, {"input": {"alertKind": "mismatch", "steps": steps}}, tenant="acme")
    assert policy["upsertEscalationPolicy"]["steps"][0]["webhookEndpointId"] == pager
    # when: both steps come due, and the dispatcher reads the log
    await raise_mismatch(quiet_hub, "acme", [])
    assert await escalate_overdue(quiet_hub.state.database, timedelta(hours=4), utcnow() + timedelta(hours=1)) == 2
    dispatcher, worker = build(quiet_hub.settings, ManualClock(datetime.now(UTC)))
    deadline = time.monotonic() + 30
    while len(await deliveries(quiet_hub, "acme")) < 2:
        assert time.monotonic() < deadline, "the escalation events were never dispatched"
        await dispatcher.run_once()
        await asyncio.sleep(0.05)
    await worker.close()
    # then: the page went to the pager alone; the ERP heard the notify step, not the page
    paged = await deliveries(quiet_hub, "acme", pager)
    heard = await deliveries(quiet_hub, "acme", erp)
    assert [(d["eventType"], action(d)) for d in paged] == [("alert.escalated", "page_webhook")]
    assert [(d["eventType"], action(d)) for d in heard] == [("alert.escalated", "notify_role")]


def action(delivery: dict) -> str:
    return json.loads(delivery["body"])["data"]["escalation"]["action"]


async def test_a_policy_cannot_page_another_tenant_s_endpoint(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "supplier")
    await quiet_hub.tenant("globex", "retailer")
    theirs, _ = await create_endpoint(quiet_hub, "globex", receiver.at("/theirs"))
    step = {"afterMinutes": 10, "action": "page_webhook", "webhookEndpointId": theirs}
    body = await quiet_hub.gql(UPSERT, {"input": {"steps": [step]}}, tenant="acme")
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in body["errors"]] == [
        ("NOT_FOUND", "steps.0.webhookEndpointId")]
