"""GS1 scans on dispatch, receipt and movement lines: parsed by biip, checked, reconciled like typed lines."""

from __future__ import annotations

from datetime import date

import pytest

from hub.errors import BadInput
from hub.models.receipt import Receipt
from hub.scans import parse_scan
from tests.supply.conftest import RECORD_RECEIPT, YOGURT_GTIN, yogurt_line

GTIN14 = "0" + YOGURT_GTIN  # 04006381333931
SSCC = "106141411234567897"
GS = "\x1d"


@pytest.mark.parametrize("raw", [
    # element strings: with a symbology identifier, FNC1 as GS, or a written <GS>; the variable-length lot last
    f"]C101{GTIN14}11300315{GS}17301231{GS}30100{GS}10B240315",
    f"]d201{GTIN14}113003151730123130100{GS}10B240315",
    f"01{GTIN14}113003151730123130100<GS>10B240315",
    # the same in human-readable (HRI) form and as a GS1 Digital Link URI
    f"(01){GTIN14}(11)300315(17)301231(30)100(10)B240315",
    f"https://id.gs1.org/01/{GTIN14}/10/B240315?11=300315&17=301231&30=100",
])
def test_every_element_is_read_from_each_form(raw):
    scan = parse_scan(raw)
    assert (scan.gtin, scan.lot_code, scan.produced_on, scan.expires_on, scan.quantity) == (
        GTIN14, "B240315", date(2030, 3, 15), date(2030, 12, 31), 100)


def test_sscc_best_before_and_contained_trade_items():
    assert parse_scan(f"(00){SSCC}").sscc == SSCC
    assert parse_scan(f"00{SSCC}").sscc == SSCC
    pallet = parse_scan(f"(00){SSCC}(02){GTIN14}(37)12(15)301130(10)B1")
    assert (pallet.sscc, pallet.gtin, pallet.quantity, pallet.expires_on, pallet.lot_code) == (
        SSCC, GTIN14, 12, date(2030, 11, 30), "B1")
    # a GTIN-13 is kept as GTIN-14; day 00 is the month's last day
    assert parse_scan(f"https://example.com/01/{YOGURT_GTIN}?17=300200").expires_on == date(2030, 2, 28)
    assert parse_scan(f"https://example.com/01/{YOGURT_GTIN}").gtin == GTIN14


@pytest.mark.parametrize(("raw", "names"), [
    (f"(01){GTIN14[:-1]}2(10)B1", "(01)"),  # GTIN check digit
    (f"01{GTIN14[:-1]}2", "(01)"),
    (f"https://id.gs1.org/01/{GTIN14[:-1]}2/10/B1", "check digit"),
    (f"(00){SSCC[:-1]}0", "(00)"),  # SSCC check digit
    (f"(01){GTIN14}(17)301332", "(17)"),  # no such date
    (f"(02){GTIN14[:-1]}5(37)3", "(02)"),
    ("B240315", "GS1"),  # not GS1 data
    ("(10)B240315", "neither a GTIN"),
    ("", "1-300"),
])
def test_a_bad_element_is_refused_by_name(raw, names):
    with pytest.raises(BadInput) as refused:
        parse_scan(raw)
    assert names in refused.value.message


async def test_a_scanned_receipt_is_reconciled_like_typed_lines(supply):
    # the B240315 / B240314 near miss, once typed and once scanned: the same reconciliation
    results = []
    for n, line in enumerate(({"sku": YOGURT_GTIN, "lotCode": "B240314", "quantity": 100},
                              {"scan": f"]C101{GTIN14}30100{GS}10B240314"})):
        dispatch = await supply.dispatch([yogurt_line(100, "B240315")], ref=f"ASN-{n}")
        receipt = await supply.receive(dispatch["id"], [line], final=True)
        results.append((receipt["outcome"], receipt["mismatches"]))
    assert results[0] == results[1]
    assert results[1] == ("mismatched", [{"kind": "lot_code", "line": 0, "dispatchLine": 0, "expected": "B240315",
                                          "found": "B240314", "nearMiss": True, "lotCode": "B240315"}])
    # a matching scan matches
    dispatch = await supply.dispatch([yogurt_line(40, "B240316")], ref="ASN-2")
    receipt = await supply.receive(dispatch["id"], [{"scan": f"(01){GTIN14}(10)B240316", "quantity": 40}])
    assert receipt["outcome"] == "matched"


async def test_scan_and_typed_fields_must_agree_and_nothing_is_stored_otherwise(supply):
    dispatch = await supply.dispatch([yogurt_line(100, "B240315")])
    before = await Receipt.count()
    for line, says in (
        ({"scan": f"(01){GTIN14}(10)B240314", "lotCode": "B240315", "quantity": 100}, "lot"),
        ({"scan": f"(01){GTIN14}(10)B240315(30)90", "quantity": 100}, "quantity"),
        ({"scan": f"(01){GTIN14}(10)B240315", "sku": "MLK-1", "quantity": 100}, "SKU"),
        ({"scan": f"(01){GTIN14[:-1]}2(10)B240315", "quantity": 100}, "(01)"),
        ({"scan": f"(01){GTIN14}", "quantity": 100}, "lot code"),
        ({"scan": f"(01){GTIN14}(10)B240315"}, "quantity"),
        ({"scan": f"(00){SSCC}", "quantity": 100}, "SSCC"),
        ({"lotCode": "B240315", "quantity": 100}, "SKU"),
    ):
        body = await supply.hub.gql(RECORD_RECEIPT, {"input": {"dispatchId": dispatch["id"], "lines": [line]}},
                                    tenant="shopco")
        error = body["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (line, error)
        assert says in error["message"], (line, error["message"])
    assert await Receipt.count() == before


async def test_movements_and_dispatch_lines_take_scans_and_strangers_reach_nothing(supply):
    dispatch = await supply.dispatch([{"scan": f"(01){GTIN14}(10)B77(30)25(11)300315(17)300414"}], ref="ASN-S")
    assert [(l["lotCode"], l["quantity"], l["expiresOn"], l["producedOn"]) for l in dispatch["lines"]] == [
        ("B77", 25, "2030-04-14", "2030-03-15")]
    received = await supply.receive(dispatch["id"], [{"scan": f"(01){GTIN14}(10)B77(30)25"}])
    assert received["outcome"] == "matched", received["mismatches"]
    sold = await supply.movements([{"scan": f"(01){GTIN14}(10)B77", "kind": "sale", "quantity": -5,
                                    "idempotencyKey": "scan-sale"}])
    assert "errors" not in sold, sold["errors"]
    assert sold["data"]["recordMovements"]["positions"][0]["onHand"] == 20
    # a stranger scanning the same label reaches no SKU of Acme's
    rival = await supply.movements([{"scan": f"(01){GTIN14}(10)B77", "kind": "receipt", "quantity": 5,
                                     "idempotencyKey": "rival-scan"}], tenant="rival", location=supply.rival_store)
    assert rival["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert [p["onHand"] for p in await supply.stock(tenant="rival")] == []
