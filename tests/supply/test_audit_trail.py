"""The movement ledger over the API (who, what, why) and overrides in the audit log (before -> after, no secret)."""

from __future__ import annotations

import json

from tests.supply.conftest import yogurt_line

MOVEMENTS = """
query($filter: MovementFilter, $first: Int, $after: String) {
  movements(filter: $filter, first: $first, after: $after) {
    nodes { id holderId locationId lotCode kind quantity counted reference actor actorKind clientId reason }
    pageInfo { hasNextPage endCursor }
  }
}
"""
AUDIT = """
query($filter: AuditFilter) {
  auditLog(filter: $filter, first: 100) { nodes { action actor actorKind target reason ip details } }
}
"""
RESOLVE_RECEIPT = """
mutation($id: ID!, $note: String, $decision: AlertDecision) {
  resolveReceipt(id: $id, note: $note, decision: $decision) { id }
}
"""


async def audit(supply, tenant: str, action: str) -> list[dict]:
    return (await supply.hub.ok(AUDIT, {"filter": {"action": action}}, tenant=tenant))["auditLog"]["nodes"]


async def ledger(supply, tenant: str = "shopco", **filter) -> list[dict]:
    body = await supply.hub.ok(MOVEMENTS, {"filter": filter or None, "first": 100}, tenant=tenant)
    return body["movements"]["nodes"]


async def test_the_ledger_answers_who_booked_what_and_why_and_only_to_those_who_may_see_it(supply):
    await supply.ship_lots(("YOG-1", "L1", "2030-05-01"), ("YOG-1", "L2", "2030-06-01"))
    booked = await supply.movements([
        {"sku": "YOG-1", "lotCode": "L1", "kind": "receipt", "quantity": 40, "idempotencyKey": "m1",
         "reference": "po:7", "occurredAt": "2030-04-01T08:00:00Z"},
        {"sku": "YOG-1", "lotCode": "L2", "kind": "receipt", "quantity": 10, "idempotencyKey": "m2",
         "occurredAt": "2030-04-02T08:00:00Z"},
        {"sku": "YOG-1", "lotCode": "L1", "kind": "count", "quantity": 31, "idempotencyKey": "m3",
         "reason": "shelf recount after breakage", "occurredAt": "2030-04-03T08:00:00Z"},
    ])
    assert booked["data"]["recordMovements"]["accepted"] == 3, booked
    # newest first, with the actor and the reason
    every = await ledger(supply)
    assert [(m["kind"], m["lotCode"], m["quantity"]) for m in every[:3]] == [
        ("count", "L1", -9), ("receipt", "L2", 10), ("receipt", "L1", 40)]
    count = every[0]
    assert count["counted"] == 31 and count["reason"] == "shelf recount after breakage"
    assert count["actor"] == "local:shopco" and count["actorKind"] == "member" and count["clientId"] is None
    assert every[2]["reason"] is None and every[2]["reference"] == "po:7"
    # each filter narrows it
    assert [m["lotCode"] for m in await ledger(supply, kinds=["count"])] == ["L1"]
    assert [m["kind"] for m in await ledger(supply, reference="po:7")] == ["receipt"]
    window = await ledger(supply, since="2030-04-02T00:00:00Z", until="2030-04-03T00:00:00Z")
    assert [m["lotCode"] for m in window] == ["L2"]
    assert {m["locationId"] for m in await ledger(supply, locationId=supply.shop_dc)} == {supply.shop_dc}
    # a stranger sees none of it, also when naming Shopco's location or SKU
    assert await ledger(supply, tenant="rival") == []
    assert await ledger(supply, tenant="rival", locationId=supply.shop_dc) == []
    # the brand owner sees its SKU's movements once Shopco shares stock with it (VMI), but not who booked them
    assert all(m["holderId"] != "shopco" for m in await ledger(supply, tenant="acme"))
    await supply.partner("shopco", "acme", ["stock"])
    seen = [m for m in await ledger(supply, tenant="acme") if m["holderId"] == "shopco"]
    assert len(seen) >= 3 and all(m["actor"] is None and m["reason"] is None for m in seen)
    # a page at a time
    first = (await supply.hub.ok(MOVEMENTS, {"first": 2}, tenant="shopco"))["movements"]
    rest = (await supply.hub.ok(MOVEMENTS, {"first": 100, "after": first["pageInfo"]["endCursor"]},
                                tenant="shopco"))["movements"]
    assert first["pageInfo"]["hasNextPage"]
    assert [m["id"] for m in first["nodes"] + rest["nodes"]] == [m["id"] for m in every]


async def test_a_count_correction_is_audited_with_before_and_after(supply):
    await supply.ship_lots(("YOG-1", "L1", "2030-05-01"))
    await supply.movements([{"sku": "YOG-1", "lotCode": "L1", "kind": "receipt", "quantity": 40,
                             "idempotencyKey": "c1"}])
    assert await audit(supply, "shopco", "stock.count_corrected") == []  # a receipt is no override
    await supply.movements([{"sku": "YOG-1", "lotCode": "L1", "kind": "count", "quantity": 25,
                             "idempotencyKey": "c2", "reason": "damaged pallet"}])
    [entry] = await audit(supply, "shopco", "stock.count_corrected")
    assert entry["details"]["before"] == {"onHand": 40} and entry["details"]["after"] == {"onHand": 25}
    assert entry["reason"] == "damaged pallet" and entry["actor"] == "local:shopco"
    assert entry["details"]["sku"] == "YOG-1" and entry["details"]["lot"] == "L1"
    # a count that finds what the books say changes nothing and is no override
    await supply.movements([{"sku": "YOG-1", "lotCode": "L1", "kind": "count", "quantity": 25,
                             "idempotencyKey": "c3"}])
    assert len(await audit(supply, "shopco", "stock.count_corrected")) == 1
    assert await audit(supply, "rival", "stock.count_corrected") == []


async def test_resolving_a_receipt_audits_the_release_the_receipt_and_the_decision(supply):
    dispatch = await supply.dispatch([yogurt_line(10)])
    receipt = await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240314", "quantity": 10}])
    await supply.hub.ok(RESOLVE_RECEIPT, {"id": receipt["id"], "note": "label misprint",
                                          "decision": "accept_risk"}, tenant="shopco")
    [released] = await audit(supply, "shopco", "lot.released")
    assert released["details"]["before"]["status"] == "on_hold" and released["details"]["after"] == {
        "status": "released"}
    assert released["reason"] == "label misprint" and released["actor"] == "local:shopco"
    [resolved] = await audit(supply, "shopco", "receipt.resolved")
    assert resolved["target"] == receipt["id"] and resolved["details"]["decision"] == "accept_risk"
    assert resolved["details"]["before"]["resolved"] is False and resolved["details"]["after"]["resolved"] is True
    [decided] = await audit(supply, "shopco", "alert.decided")
    assert decided["target"] == receipt["alertId"]
    assert decided["details"]["before"]["status"] == "open"
    assert decided["details"]["after"] == {"status": "resolved", "decision": "accept_risk"}
    # Acme (the shipper, in the alert's audience) did not decide: its log has none of Shopco's overrides
    for action in ("lot.released", "receipt.resolved", "alert.decided"):
        assert await audit(supply, "acme", action) == []
        assert await audit(supply, "rival", action) == []


async def test_partnership_changes_are_audited_with_before_and_after_and_no_secret(supply):
    pid = await supply.partner("shopco", "rival", ["alerts"])
    [accepted] = await audit(supply, "rival", "partnership.accepted")
    assert accepted["details"]["before"] == {"status": "invited"} and accepted["details"]["after"] == {
        "status": "active"}
    await supply.hub.ok("mutation($id: ID!) { revokePartnership(id: $id) { id } }", {"id": pid}, tenant="shopco")
    revoked = [e for e in await audit(supply, "shopco", "partnership.revoked") if e["target"] == pid]
    assert revoked[0]["details"]["before"] == {"status": "active"}
    assert revoked[0]["details"]["after"] == {"status": "revoked"}
    # nothing in any entry is a credential: not the caller's token, nor any part of it
    entries = (await supply.hub.ok("{ auditLog(first: 200) { nodes { details reason target actor } } }",
                                   tenant="shopco"))["auditLog"]["nodes"]
    text = json.dumps(entries)
    token = supply.hub.token("shopco", "admin")
    assert token.split(".")[2] not in text and "Bearer" not in text
