"""Every hot query uses an index: the database's own query plan (``explain``) shows no collection scan.

The queries are the ones the hub runs on every write, every live delivery or every background pass, written here as
the code writes them (filter and sort), so a change that loses its index fails here. Add a query to ``HOT`` when a new
hot path appears.

Two rules come from SecantusDB, the database of the tests and of ``lotpulse serve``, measured with bench/growth.py
(each query timed at N and 10 x N documents), because its plan is not the whole story:

- no hint: a hinted query walks the *whole* hinted index (every event a tenant ever heard, every delivery ever made)
  and explain still says IXSCAN; unhinted, the planner reads an index within bounds when the filter is the index's
  equality prefix plus at most one range or list, or when its first indexed clause narrows enough;
- no top-level ``$or``: it makes the planner scan the collection.

The cost of every query here stayed flat from 1,000 to 10,000 documents per collection in bench/growth.py, except
where noted there. SecantusDB's explain can also report a COLLSCAN for a filter it actually serves through one
clause's index (``{_id: {$in: ...}, state: ...}`` updates, for example); such filters are timed in bench/growth.py,
not listed here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OID = ObjectId()

# (collection, filter, sort): what runs it
HOT: dict[str, tuple[str, dict[str, Any], dict[str, int] | None]] = {
    "sequencer: pending events": ("events", {"pending": True}, {"_id": 1}),
    "sequencer and bus: highest number above the mark": ("events", {"seq": {"$gt": 5}}, {"seq": -1}),
    "bus and dispatcher: events after a number": ("events", {"seq": {"$gt": 5}}, {"seq": 1}),
    "cursor lookup": ("events", {"_id": OID, "audience": "acme"}, None),
    "eventCursor: a tenant's newest event in a window": (
        "events", {"audience": "acme", "seq": {"$gt": 5, "$lte": 500}}, {"seq": -1}),
    "replay: a tenant's events after a cursor": ("events", {"audience": "acme", "seq": {"$gt": 5}}, {"seq": 1}),
    "escalation: overdue alerts": (
        "alerts", {"status": "open", "escalation_done_at": None, "opened_at": {"$lte": NOW}}, None),
    "movements: idempotency keys of a batch": (
        "movements", {"tenant_id": "acme", "idempotency_key": {"$in": ["k1", "k2"]}}, None),
    "movements: the caller's SKUs a batch names by code": ("skus", {"tenant_id": "acme", "code": {"$in": ["A", "B"]}},
                                                            None),
    "movements: the caller's aliases spelt like those codes": (
        "skus", {"aliases.tenant_id": "acme", "aliases.code": {"$in": ["A", "B"]}}, None),
    "movements: positions of a batch at a location": (
        "stock_positions", {"tenant_id": "acme", "location_id": OID, "sku_id": {"$in": [OID]}}, None),
    "webhooks: endpoints with due deliveries": (
        "webhook_deliveries", {"state": "pending", "next_attempt_at": {"$lte": NOW}}, None),
    "webhooks: an endpoint's pending deliveries in order": (
        "webhook_deliveries", {"endpoint_id": OID, "state": "pending", "seq": {"$gt": 5}}, {"seq": 1}),
    "webhooks: a claimed batch": ("webhook_deliveries", {"lease_token": {"$in": ["worker:token"]}}, None),
    "webhooks: existing deliveries of events": ("webhook_deliveries", {"event_id": {"$in": [OID]}}, None),
    "retention: the oldest deliveries past the window": (
        "webhook_deliveries", {"created_at": {"$lt": NOW}}, {"created_at": 1, "_id": 1}),
    "ingestion: the dispatches carrying a logger's pallets": (
        "dispatches", {"ssccs": {"$in": ["106141411234567897"]}}, None),
    "ingestion: the packing records of a logger's pallets": (
        "pallets", {"tenant_id": "acme", "sscc": {"$in": ["106141411234567897"]}}, None),
    "ingestion: the lots of a pallet record's SKUs": ("lots", {"sku_id": {"$in": [OID, ObjectId()]}}, None),
    "ingestion: who holds them": ("stock_positions", {"lot_id": {"$in": [OID, ObjectId()]}}, None),
    "ingestion: a call's sensors by id": ("sensors", {"_id": {"$in": [OID, ObjectId()]}}, None),
    "ingestion: a call's sensors by device": (
        "sensors", {"tenant_id": "acme", "device_id": {"$in": ["probe-1"]}}, None),
    "ingestion: the stock where a sensor is": ("stock_positions", {"tenant_id": "acme", "location_id": OID}, None),
    "ingestion: hour buckets by id": ("readings", {"_id": {"$in": [f"{OID}:2026010100", f"{OID}:2026010101"]}}, None),
    "subscription limit: a tenant's live subscriptions": (
        "live_subscriptions", {"tenant_id": "acme", "expires_at": {"$gt": NOW}}, None),
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
    for name, (collection, query, sort) in HOT.items():
        command: dict[str, Any] = {"find": collection, "filter": query}
        if sort:
            command["sort"] = sort
        explained = await module_hub.state.database.db.command("explain", command, verbosity="queryPlanner")
        winning = explained["queryPlanner"]["winningPlan"]
        if "COLLSCAN" in stages(winning) or "IXSCAN" not in stages(winning):
            scans[name] = winning
    assert scans == {}
