"""Transfers across partners (vendor-managed inventory): Brand sees Shopco's warehouse surplus and Marto's coming
stockout of its SKU (both share ``stock`` with it); accepting drafts a dispatch Shopco confirms."""

from __future__ import annotations

from beanie import PydanticObjectId

from hub.models.planning import TransferRecommendation
from tests.planning.conftest import partner, rhythm

RECOMMENDATIONS = """
query {
  transferRecommendations(first: 50) {
    nodes {
      id kind status holderId toHolderId fromLocationCode toLocationCode quantity dispatchId dispatchRef
      lots { lotCode quantity } evidence
    }
  }
}
"""
ACCEPT = """
mutation($id: ID!) { acceptTransferRecommendation(id: $id) { id status dispatchId dispatchRef decidedBy } }
"""
DISMISS = "mutation($id: ID!) { dismissTransferRecommendation(id: $id, reason: \"no\") { status } }"
DISPATCH = """
query($id: ID!) {
  dispatch(id: $id) { id ref status shipperId consigneeId requestedBy lines { lotCode quantity } }
}
"""
DISPATCHES = "query { dispatches(first: 100) { nodes { id ref status } } }"
SET_STATUS = """
mutation($id: ID!, $status: DispatchStatus!) { updateDispatchStatus(id: $id, status: $status) { status } }
"""


async def recommendations(hub, tenant: str) -> list[dict]:
    return (await hub.ok(RECOMMENDATIONS, tenant=tenant))["transferRecommendations"]["nodes"]


async def test_a_partners_surplus_is_recommended_to_the_sku_owner_and_accepting_drafts_one_dispatch(net, hub):
    # given: Marto, a second retailer of Brand's SKU sharing its stock with Brand, will run out within its lead time;
    # Shopco's warehouse holds far more than it needs
    await hub.tenant("marto", "retailer")
    await partner(hub, "marto", "brand", ["stock", "dispatches"], ["sku_master", "dispatches"])
    await net.location("M-1", "store", tenant="marto")
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i) for i in range(91)]
    await net.history("M-1", "SUN-50", daily, stock=sum(daily) + 40, lot="M-LOT", expires_in=300, tenant="marto")
    await net.history("WH-1", "SUN-50", [10] * 91, stock=910 + 1500, lot="WH-A", expires_in=300, kind="issue")

    # when: Marto has not agreed to receive Shopco's dispatches
    await net.sweep()

    # then: nothing can be proposed between them
    assert await recommendations(hub, "brand") == []

    # when: Marto accepts Shopco's dispatches
    await partner(hub, "marto", "shopco", ["dispatches"], [])
    report = await net.sweep()

    # then: Brand alone sees a partner transfer from Shopco's warehouse to Marto's store
    assert report.recommendations == 1
    [rec] = await recommendations(hub, "brand")
    assert (rec["kind"], rec["status"], rec["holderId"], rec["toHolderId"]) == ("partner", "open", "shopco", "marto")
    assert (rec["fromLocationCode"], rec["toLocationCode"]) == ("WH-1", "M-1")
    assert rec["lots"] == [{"lotCode": "WH-A", "quantity": rec["quantity"]}] and rec["quantity"] >= 30 * 14 - 40
    assert rec["evidence"]["destination"]["onHand"] == 40 and rec["evidence"]["source"]["holderId"] == "shopco"
    for outsider in ("shopco", "marto", "rival"):
        assert await recommendations(hub, outsider) == []
        body = await hub.gql(ACCEPT, {"id": rec["id"]}, tenant=outsider)
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    warehouse = await net.on_hand("WH-1")

    # when: Brand accepts it twice
    first = (await hub.ok(ACCEPT, {"id": rec["id"]}, tenant="brand"))["acceptTransferRecommendation"]
    second = (await hub.ok(ACCEPT, {"id": rec["id"]}, tenant="brand"))["acceptTransferRecommendation"]

    # then: one draft dispatch from Shopco to Marto, seen by both and by Brand, by nobody else
    assert first == second and first["status"] == "accepted" and first["dispatchId"]
    draft = (await hub.ok(DISPATCH, {"id": first["dispatchId"]}, tenant="shopco"))["dispatch"]
    assert (draft["status"], draft["shipperId"], draft["consigneeId"], draft["requestedBy"]) == (
        "draft", "shopco", "marto", "brand")
    assert draft["ref"] == first["dispatchRef"] and draft["lines"] == [{"lotCode": "WH-A", "quantity": rec["quantity"]}]
    assert (await hub.ok(DISPATCH, {"id": draft["id"]}, tenant="marto"))["dispatch"]["status"] == "draft"
    body = await hub.gql(DISPATCH, {"id": draft["id"]}, tenant="rival")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    shopco_refs = [d["ref"] for d in (await hub.ok(DISPATCHES, tenant="shopco"))["dispatches"]["nodes"]]
    assert shopco_refs.count(first["dispatchRef"]) == 1
    assert await net.on_hand("WH-1") == warehouse  # a draft books nothing

    # when: the next sweep runs, the draft counts as inbound: nothing more is proposed
    assert (await net.sweep()).recommendations == 0
    assert [r["status"] for r in await recommendations(hub, "brand")] == ["accepted"]

    # then: only the shipper confirms the draft
    body = await hub.gql(SET_STATUS, {"id": draft["id"], "status": "dispatched"}, tenant="marto")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await hub.gql(SET_STATUS, {"id": draft["id"], "status": "in_transit"}, tenant="shopco")
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    confirmed = await hub.ok(SET_STATUS, {"id": draft["id"], "status": "dispatched"}, tenant="shopco")
    assert confirmed["updateDispatchStatus"]["status"] == "dispatched"


async def test_a_partner_transfer_disappears_when_a_holder_stops_sharing_stock(net, hub):
    await hub.tenant("marto", "retailer")
    await partner(hub, "marto", "brand", ["stock", "dispatches"], ["sku_master", "dispatches"])
    await partner(hub, "marto", "shopco", ["dispatches"], [])
    await net.location("M-1", "store", tenant="marto")
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i) for i in range(91)]
    await net.history("M-1", "SUN-50", daily, stock=sum(daily) + 40, lot="M-LOT", expires_in=300, tenant="marto")
    await net.history("WH-1", "SUN-50", [10] * 91, stock=910 + 1500, lot="WH-A", expires_in=300, kind="issue")
    await net.sweep()
    [rec] = await recommendations(hub, "brand")

    # when: Shopco revokes its partnership with Brand
    found = await hub.ok("query { partners { nodes { id partnerId } } }", tenant="shopco")
    [link] = [p for p in found["partners"]["nodes"] if p["partnerId"] == "brand"]
    await hub.ok("mutation($id: ID!) { revokePartnership(id: $id) { status } }", {"id": link["id"]}, tenant="shopco")

    # then: Brand no longer sees it nor can accept it, and the next sweep expires it
    assert await recommendations(hub, "brand") == []
    body = await hub.gql(ACCEPT, {"id": rec["id"]}, tenant="brand")
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    await net.sweep()
    stored = await TransferRecommendation.get(PydanticObjectId(rec["id"]))
    assert stored is not None and stored.status.value == "expired"


async def test_units_already_drafted_are_not_offered_again_to_another_shortage(net, hub):
    # given: two of Marto's stores will run out; Shopco's warehouse can spare less than both need
    await hub.tenant("marto", "retailer")
    await partner(hub, "marto", "brand", ["stock", "dispatches"], ["sku_master", "dispatches"])
    await partner(hub, "marto", "shopco", ["dispatches"], [])
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i) for i in range(91)]
    for store in ("M-1", "M-2"):
        await net.location(store, "store", tenant="marto")
        await net.history(store, "SUN-50", daily, stock=sum(daily) + 40, lot="M-LOT", expires_in=300, tenant="marto")
    await net.history("WH-1", "SUN-50", [10] * 91, stock=910 + 1100, lot="WH-A", expires_in=300, kind="issue")
    await net.sweep()
    before = {r["toLocationCode"]: r for r in await recommendations(hub, "brand")}
    assert set(before) == {"M-1", "M-2"}
    first, second = sorted(before.values(), key=lambda r: -r["quantity"])

    # when: the larger one is accepted (a draft), and the next sweep plans again
    await hub.ok(ACCEPT, {"id": first["id"]}, tenant="brand")
    await net.sweep()

    # then: the other one still gets only what is left, not the drafted units a second time
    [still] = [r for r in await recommendations(hub, "brand") if r["status"] == "open"]
    assert still["toLocationCode"] == second["toLocationCode"] and still["quantity"] == second["quantity"]
