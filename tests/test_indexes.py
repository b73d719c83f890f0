"""Every hot query uses an index: the database's own query plan (``explain``) shows no collection scan.

The queries are the ones the hub runs on every write, every live delivery or every background pass, written here as
the code writes them (filter, sort, and the index hint the code passes where SecantusDB's planner would otherwise
scan: it gives up on an index when the filter has fields beyond it), so a change that loses its index fails here.
Add a query to ``HOT`` when a new hot path appears.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from hub.events.bus import REPLAY_INDEX
from hub.services.escalation import OVERDUE_INDEX
from hub.services.movements import POSITION_INDEX
from webhooks.worker import DUE_INDEX, ID_INDEX

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OID = ObjectId()

Hint = list[tuple[str, int]] | None
# (collection, filter, sort, hint): what runs it
HOT: dict[str, tuple[str, dict[str, Any], dict[str, int] | None, Hint]] = {
    "sequencer: pending events": ("events", {"pending": True}, {"_id": 1}, None),
    "sequencer: highest number": ("events", {"seq": {"$gt": 0}}, {"seq": -1}, None),
    "bus and dispatcher: events after a number": ("events", {"seq": {"$gt": 5}}, {"seq": 1}, None),
    "replay: a tenant's events after a cursor": (
        "events", {"audience": "acme", "type": {"$in": ["stock.changed"]}, "seq": {"$gt": 5}}, {"seq": 1},
        REPLAY_INDEX),
    "cursor lookup": ("events", {"_id": OID, "audience": "acme"}, None, None),
    "eventCursor: a tenant's newest event": ("events", {"audience": "acme"}, {"seq": -1}, None),
    "movements: idempotency keys of a batch": (
        "movements", {"tenant_id": "acme", "idempotency_key": {"$in": ["k1", "k2"]}}, None, None),
    "movements: positions of a batch": (
        "stock_positions", {"tenant_id": "acme", "location_id": {"$in": [OID]}, "sku_id": {"$in": [OID]}}, None,
        POSITION_INDEX),
    "webhooks: due deliveries of an endpoint": (
        "webhook_deliveries",
        {"state": "pending", "next_attempt_at": {"$lte": NOW}, "endpoint_id": OID,
         "$or": [{"lease_until": None}, {"lease_until": {"$lt": NOW}}]},
        {"next_attempt_at": 1}, DUE_INDEX),
    "webhooks: a claimed batch": ("webhook_deliveries", {"lease_token": {"$in": ["worker:token"]}}, None, None),
    "webhooks: claiming a batch": (
        "webhook_deliveries", {"_id": {"$in": [OID]}, "lease_token": {"$in": [None]}, "state": "pending"}, None,
        ID_INDEX),
    "webhooks: existing deliveries of events": ("webhook_deliveries", {"event_id": {"$in": [OID]}}, None, None),
    "escalation: overdue alerts of leased tenants": (
        "alerts",
        {"status": "open", "escalation_done_at": None, "opened_at": {"$lte": NOW}, "tenant_id": {"$in": ["acme"]}},
        None, OVERDUE_INDEX),
    "subscription limit: a tenant's live subscriptions": (
        "live_subscriptions", {"tenant_id": "acme", "expires_at": {"$gt": NOW}}, None, None),
}


def stages(plan: Any) -> list[str]:
    """Every stage name in a plan tree."""
    if isinstance(plan, dict):
        found = [plan["stage"]] if "stage" in plan else []
        for value in plan.values():
            found += stages(value)
        return found
    if isinstance(plan, list):
        return [stage for item in plan for stage in stages(item)]
    return []


async def test_every_hot_query_uses_an_index(module_hub):
    scans = {}
    for name, (collection, query, sort, hint) in HOT.items():
        command: dict[str, Any] = {"find": collection, "filter": query}
        if sort:
            command["sort"] = sort
        if hint:
            command["hint"] = dict(hint)
        explained = await module_hub.state.database.db.command("explain", command, verbosity="queryPlanner")
        winning = explained["queryPlanner"]["winningPlan"]
        if "COLLSCAN" in stages(winning) or "IXSCAN" not in stages(winning):
            scans[name] = winning
    assert scans == {}
