"""Dispatch notices: who may create, see and move them along."""

from __future__ import annotations

from hub.models.event import Event
from tests.supply.conftest import CREATE_DISPATCH, yogurt_line

UPDATE_STATUS = """
mutation($id: ID!, $status: DispatchStatus!) { updateDispatchStatus(id: $id, status: $status) { id status } }
"""
CANCEL = "mutation($id: ID!) { cancelDispatch(id: $id) { id status } }"
DISPATCHES = """
query($filter: DispatchFilter) { dispatches(filter: $filter) { nodes { id ref status } pageInfo { hasNextPage } } }
"""


def code(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"]


async def test_dispatch_creates_its_lots_and_tells_every_party(supply):
    dispatch = await supply.dispatch([yogurt_line(12)], carrier="haul", shippedOn="2030-03-16",
                                     expectedOn="2030-03-18")
    assert (dispatch["shipperId"], dispatch["consigneeId"], dispatch["carrierId"]) == ("acme", "shopco", "haul")
    assert dispatch["toLocationId"] == supply.shop_dc
    by_id = await supply.dispatch([yogurt_line(1)], toLocation=supply.shop_dc)
    assert by_id["toLocationId"] == supply.shop_dc
    line = dispatch["lines"][0]
    assert (line["sku"]["code"], line["lotCode"], line["quantity"], line["expiresOn"]) == (
        "YOG-1", "B240315", 12, "2030-04-14")
    event = await Event.find_one({"type": "dispatch.created"})
    assert event is not None and event.audience == ["acme", "haul", "shopco"]


async def test_dispatch_refs_are_unique_per_shipper(supply):
    await supply.dispatch([yogurt_line()], ref="ASN-X")
    body = await supply.hub.gql(CREATE_DISPATCH, {"input": {"ref": "ASN-X", "consigneeId": "shopco",
                                                            "lines": [yogurt_line()]}}, tenant="acme")
    assert code(body) == "CONFLICT"


async def test_dispatch_input_is_validated(supply):
    cases = [
        {"ref": "A", "consigneeId": "acme", "lines": [yogurt_line()]},
        {"ref": "B", "consigneeId": "nobody", "lines": [yogurt_line()]},
        {"ref": "C", "consigneeId": "shopco", "lines": []},
        {"ref": "D", "consigneeId": "shopco", "lines": [yogurt_line(0)]},
        {"ref": "E", "consigneeId": "shopco", "lines": [yogurt_line(producedOn="2030-05-01")]},
        {"ref": "F", "consigneeId": "shopco", "toLocation": "NOPE", "lines": [yogurt_line()]},
    ]
    for payload in cases:
        body = await supply.hub.gql(CREATE_DISPATCH, {"input": payload}, tenant="acme")
        assert code(body) in ("BAD_USER_INPUT", "NOT_FOUND"), payload
    assert (await supply.hub.ok(DISPATCHES, tenant="acme"))["dispatches"]["nodes"] == []


async def test_status_moves_forward_and_an_illegal_transition_is_a_conflict(supply):
    dispatch = await supply.dispatch([yogurt_line(5)], carrier="haul")
    moved = await supply.hub.ok(UPDATE_STATUS, {"id": dispatch["id"], "status": "in_transit"}, tenant="haul")
    assert moved["updateDispatchStatus"]["status"] == "in_transit"
    back = await supply.hub.gql(UPDATE_STATUS, {"id": dispatch["id"], "status": "dispatched"}, tenant="acme")
    assert code(back) == "CONFLICT"
    by_hand = await supply.hub.gql(UPDATE_STATUS, {"id": dispatch["id"], "status": "received"}, tenant="shopco")
    assert code(by_hand) == "CONFLICT"
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 5}])
    late_cancel = await supply.hub.gql(CANCEL, {"id": dispatch["id"]}, tenant="acme")
    assert code(late_cancel) == "CONFLICT"


async def test_only_the_shipper_cancels(supply):
    dispatch = await supply.dispatch([yogurt_line(5)])
    assert code(await supply.hub.gql(CANCEL, {"id": dispatch["id"]}, tenant="shopco")) == "FORBIDDEN"
    cancelled = await supply.hub.ok(CANCEL, {"id": dispatch["id"]}, tenant="acme")
    assert cancelled["cancelDispatch"]["status"] == "cancelled"
    body = await supply.hub.gql(
        "mutation($i: RecordReceiptInput!) { recordReceipt(input: $i) { id } }",
        {"i": {"dispatchId": dispatch["id"], "lines": [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 5}]}},
        tenant="shopco")
    assert code(body) == "CONFLICT"
    assert await Event.find({"type": "dispatch.updated"}).count() == 1


async def test_the_shipper_cannot_record_the_receipt(supply):
    dispatch = await supply.dispatch([yogurt_line(5)])
    body = await supply.hub.gql(
        "mutation($i: RecordReceiptInput!) { recordReceipt(input: $i) { id } }",
        {"i": {"dispatchId": dispatch["id"], "locationId": supply.acme_wh,
               "lines": [{"sku": "YOG-1", "lotCode": "B240315", "quantity": 5}]}}, tenant="acme")
    assert code(body) == "FORBIDDEN"


async def test_dispatches_filter_by_role_and_status(supply):
    one = await supply.dispatch([yogurt_line()], carrier="haul")
    await supply.dispatch([yogurt_line()])
    await supply.hub.ok(CANCEL, {"id": one["id"]}, tenant="acme")
    mine = await supply.hub.ok(DISPATCHES, {"filter": {"role": "carrier"}}, tenant="haul")
    assert [d["id"] for d in mine["dispatches"]["nodes"]] == [one["id"]]
    open_ = await supply.hub.ok(DISPATCHES, {"filter": {"status": ["dispatched"]}}, tenant="shopco")
    assert len(open_["dispatches"]["nodes"]) == 1
