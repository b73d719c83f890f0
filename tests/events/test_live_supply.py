"""Live supply flow: dispatch updates reach the parties, stock changes reach the holder and its VMI partner."""

from __future__ import annotations

from hub.events.log import emit
from tests.events.conftest import REVOKE
from tests.supply.conftest import supply, yogurt_line  # noqa: F401 - the supply chain fixture

DISPATCH_UPDATED = """
subscription($filter: DispatchUpdatedFilter, $after: ID) {
  dispatchUpdated(filter: $filter, after: $after) {
    cursor type dispatch { id ref status shipperId consigneeId hasMismatch lines { lotCode quantity received } }
  }
}
"""
STOCK_CHANGED = """
subscription($filter: StockChangedFilter) {
  stockChanged(filter: $filter) { cursor positions { holderId locationId skuId skuOwnerId lotCode onHand delta } }
}
"""


async def test_dispatch_parties_hear_its_updates_and_a_stranger_does_not(supply, listen):
    acme = await listen("acme", DISPATCH_UPDATED)
    shopco = await listen("shopco", DISPATCH_UPDATED)
    rival = await listen("rival", DISPATCH_UPDATED)
    dispatch = await supply.dispatch([yogurt_line(100)], ref="ASN-LIVE")
    for listener in (acme, shopco):
        created = (await listener.next())["dispatchUpdated"]
        assert created["type"] == "dispatch.created"
        assert created["dispatch"]["ref"] == "ASN-LIVE" and created["dispatch"]["status"] == "dispatched"
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 100}])
    for listener in (acme, shopco):
        received = (await listener.next())["dispatchUpdated"]
        assert received["type"] == "dispatch.received"
        assert received["dispatch"]["lines"] == [{"lotCode": "B240315", "quantity": 100, "received": 100}]
    assert await rival.silent_for(0.3)


async def test_dispatch_updates_filter_by_role_and_id(supply, listen):
    as_consignee = await listen("acme", DISPATCH_UPDATED, {"filter": {"role": "consignee"}})
    first = await supply.dispatch([yogurt_line(10)], ref="ASN-A")
    only_first = await listen("shopco", DISPATCH_UPDATED, {"filter": {"dispatchIds": [first["id"]]}})
    await supply.dispatch([yogurt_line(10)], ref="ASN-B")
    await supply.receive(first["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 10}])
    message = (await only_first.next())["dispatchUpdated"]
    assert (message["type"], message["dispatch"]["ref"]) == ("dispatch.received", "ASN-A")
    assert await only_first.silent_for(0.3)
    assert await as_consignee.silent_for(0.1)  # Acme only ships here


async def test_stock_changes_reach_the_holder_and_the_sku_owner_it_shares_stock_with(supply, listen):
    # given: Shopco shares its stock of Acme's SKUs with Acme (vendor-managed inventory); Rival watches
    await supply.partner("shopco", "acme", ["stock"])
    shopco = await listen("shopco", STOCK_CHANGED)
    acme = await listen("acme", STOCK_CHANGED, {"filter": {"skuIds": [supply.yogurt]}})
    rival = await listen("rival", STOCK_CHANGED)
    # when: Shopco receives yogurt
    dispatch = await supply.dispatch([yogurt_line(40)])
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 40}])
    # then
    for listener in (shopco, acme):
        [position] = (await listener.next())["stockChanged"]["positions"]
        assert position["holderId"] == "shopco" and position["skuOwnerId"] == "acme"
        assert (position["skuId"], position["lotCode"], position["onHand"]) == (supply.yogurt, "B240315", 40)
    assert await rival.silent_for(0.3)


async def test_stock_changes_stop_reaching_the_sku_owner_once_stock_sharing_is_revoked(supply, listen):
    partnership = await supply.partner("shopco", "acme", ["stock"])
    acme = await listen("acme", STOCK_CHANGED)
    dispatch = await supply.dispatch([yogurt_line(40)])
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 20}])
    assert (await acme.next())["stockChanged"]["positions"][0]["onHand"] == 20
    await supply.hub.ok(REVOKE, {"id": partnership}, tenant="acme")
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 20}])
    # an event whose audience was computed just before the revocation committed is held back too
    position = {"tenantId": "shopco", "locationId": supply.shop_dc, "skuId": supply.yogurt, "skuOwnerId": "acme",
                "lotCode": "B240315", "onHand": 40, "delta": 0}
    await emit(None, "stock.changed", "shopco", ["acme"], {"positions": [position]})
    assert await acme.silent_for(0.5)
