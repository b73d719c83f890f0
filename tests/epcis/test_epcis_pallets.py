"""A pallet packed through EPCIS ships by its SSCC alone: its aggregation events say what goes on the dispatch."""

from __future__ import annotations

from hub import epc
from hub.models.dispatch import Dispatch
from tests.epcis.conftest import Chain, document

CREATE_DISPATCH = """
mutation($input: CreateDispatchInput!) {
  createDispatch(input: $input) { id lines { lotCode quantity sscc inSscc } }
}
"""
PALLET = "query($sscc: String!) { pallet(sscc: $sscc) { sscc contents { epc quantity } lines { lotCode } } }"


def _packing(parent: str, children: list[str], quantities: list[dict]) -> dict:
    return {"type": "AggregationEvent", "action": "ADD", "bizStep": "packing", "eventTime": "2030-03-16T08:00:00Z",
            "eventTimeZoneOffset": "+00:00", "parentID": parent, "childEPCs": children,
            "childQuantityList": quantities}


async def test_a_pallet_packed_through_epcis_ships_by_its_sscc_with_its_contents(chain: Chain) -> None:
    pallet_urn, case_urn = f"urn:epc:id:sscc:{chain.prefix}.0000000017", f"urn:epc:id:sscc:{chain.prefix}.0000000024"
    pallet, case = epc.parse(pallet_urn).value, epc.parse(case_urn).value  # type: ignore[union-attr]
    await chain.captured(document(_packing(case_urn, [], [{"epcClass": chain.lgtin("B240315"), "quantity": 36}]),
                                  _packing(pallet_urn, [case_urn],
                                           [{"epcClass": chain.lgtin("B240315"), "quantity": 1164}])))
    seen = (await chain.hub.ok(PALLET, {"sscc": pallet}, tenant=chain.acme))["pallet"]
    assert sorted((c["epc"], c["quantity"]) for c in seen["contents"]) == sorted([
        (f"https://id.gs1.org/00/{case}", None), (f"https://id.gs1.org/01/{chain.gtin}/10/B240315", 1164.0)])

    shipped = await chain.hub.ok(CREATE_DISPATCH, {"input": {"ref": "ASN-EPCIS-P", "consigneeId": chain.shopco,
                                                             "lines": [{"scan": f"(00){pallet}"}]}}, tenant=chain.acme)
    assert sorted((l["lotCode"], l["quantity"], l["sscc"], l["inSscc"])
                  for l in shipped["createDispatch"]["lines"]) == sorted([
        ("B240315", 1164, pallet, None), ("B240315", 36, case, pallet)])
    # the consignee sees the pallet through the dispatch, not the shipper's packing records; a stranger sees nothing
    theirs = (await chain.hub.ok(PALLET, {"sscc": pallet}, tenant=chain.shopco))["pallet"]
    assert (len(theirs["lines"]), theirs["contents"]) == (2, [])
    body = await chain.hub.gql(PALLET, {"sscc": pallet}, tenant=chain.rival)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_pallet_nobody_packed_is_refused_by_name_and_nothing_is_stored(chain: Chain) -> None:
    unknown = epc.parse(f"urn:epc:id:sscc:{chain.prefix}.0000000031").value  # type: ignore[union-attr]
    before = await Dispatch.count()
    body = await chain.hub.gql(CREATE_DISPATCH, {"input": {"ref": "ASN-EPCIS-X", "consigneeId": chain.shopco,
                                                           "lines": [{"sscc": unknown}]}}, tenant=chain.acme)
    error = body["errors"][0]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", "lines.0.sscc")
    assert "AggregationEvent" in error["message"]
    assert await Dispatch.count() == before


async def test_shipping_and_receiving_events_naming_a_pallet_ship_and_receive_its_contents(chain: Chain) -> None:
    pallet_urn = f"urn:epc:id:sscc:{chain.prefix}.0000000048"
    pallet = epc.parse(pallet_urn).value  # type: ignore[union-attr]
    await chain.captured(document(_packing(pallet_urn, [], [{"epcClass": chain.lgtin("B240315"), "quantity": 60}])))
    asn = {"type": "desadv", "bizTransaction": f"urn:epcglobal:cbv:bt:{chain.gln('00001')}:ASN-SSCC"}
    shipping = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping", "disposition": "in_transit",
                "eventTime": "2030-03-16T09:30:00Z", "eventTimeZoneOffset": "+00:00", "epcList": [pallet_urn],
                "bizLocation": {"id": chain.sgln("00011")}, "bizTransactionList": [asn],
                "destinationList": [{"type": "owning_party", "destination": chain.pgln("00002")},
                                    {"type": "location", "destination": chain.sgln("00012")}]}
    shipped = await chain.captured(document(shipping))
    assert [m["kind"] for m in shipped["outcomes"][0]["mapped"]] == ["dispatch"], shipped["outcomes"]
    [line] = (await chain.hub.ok(PALLET, {"sscc": pallet}, tenant=chain.shopco))["pallet"]["lines"]
    assert line["lotCode"] == "B240315"

    receiving = {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "receiving",
                 "disposition": "sellable_not_accessible", "eventTime": "2030-03-17T07:00:00Z",
                 "eventTimeZoneOffset": "+00:00", "epcList": [pallet_urn], "bizLocation": {"id": chain.sgln("00012")},
                 "bizTransactionList": [asn]}
    received = await chain.captured(document(receiving), tenant=chain.shopco)
    assert [m["kind"] for m in received["outcomes"][0]["mapped"]] == ["receipt", "dispatch"], received["outcomes"]
    dispatch = await Dispatch.find_one({"ref": "ASN-SSCC", "tenant_id": chain.acme})
    assert dispatch is not None
    assert (dispatch.status.value, [(l.sscc, l.quantity, l.received) for l in dispatch.lines]) == (
        "received", [(pallet, 60, 60)])
