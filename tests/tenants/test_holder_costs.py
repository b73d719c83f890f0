"""What a holder paid for its stock is its own: a brand reading its goods at a partner (VMI) values them at its own
standard cost, never at the holder's receipt costs (what the holder paid, perhaps to another supplier)."""

from __future__ import annotations

from datetime import date

from hub.services import health as health_service

INVITE = "mutation($i: InvitePartnerInput!) { invitePartner(input: $i) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id } }"
HEALTH = """query($f: HealthFilter) { inventoryHealth(filter: $f) {
  onHandUnits value { currency amount } trend { source value { currency amount } } } }"""


async def test_a_brand_values_its_goods_at_a_partner_at_standard_cost_not_at_what_the_partner_paid(hub, acme, globex):
    invited = await hub.ok(INVITE, {"i": {"partnerId": globex, "weShare": ["sku_master"],
                                          "theyShare": ["dispatches", "stock"]}}, tenant=acme)
    await hub.ok(ACCEPT, {"id": invited["invitePartner"]["id"]}, tenant=globex)
    await hub.ok("mutation($i: SkuInput!) { upsertSku(input: $i) { created } }",
                 {"i": {"code": "YOG", "name": "Yogurt", "unitCost": 2.5, "currency": "EUR"}}, tenant=acme)
    dc = (await hub.ok("mutation { createLocation(input: {code: \"DC\", name: \"dc\", kind: dc}) { id } }",
                       tenant=globex))["createLocation"]["id"]
    line = {"sku": "YOG", "lotCode": "L1", "quantity": 10}
    dispatch = await hub.ok("mutation($i: CreateDispatchInput!) { createDispatch(input: $i) { id } }",
                            {"i": {"ref": "ASN-1", "consigneeId": globex, "toLocation": "DC", "lines": [line]}},
                            tenant=acme)
    await hub.ok("mutation($i: RecordReceiptInput!) { recordReceipt(input: $i) { id } }",
                 {"i": {"dispatchId": dispatch["createDispatch"]["id"], "locationId": dc, "final": True,
                        "lines": [{**line, "unitCost": 1.83, "currency": "EUR"}]}}, tenant=globex)
    today = date.today()
    await health_service.snapshot(globex, date.fromordinal(today.toordinal() - 30))

    holder = (await hub.ok(HEALTH, tenant=globex))["inventoryHealth"]
    brand = (await hub.ok(HEALTH, {"f": {"holderId": globex}}, tenant=acme))["inventoryHealth"]

    assert holder["value"] == [{"currency": "EUR", "amount": 18.3}]  # the holder's own view: what it paid
    assert holder["trend"]["value"] == [{"currency": "EUR", "amount": 18.3}]
    assert brand["onHandUnits"] == 10 and brand["value"] == [{"currency": "EUR", "amount": 25.0}]
    assert "1.83" not in str(brand) and "18.3" not in str(brand)
