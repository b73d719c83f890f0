"""GS1 scans from a scanner nobody configured: any text is a Scan or BAD_USER_INPUT (property tested on the parser),
and over the API a scan that cannot be read stores nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.errors import BadInput
from hub.gs1 import check_digit
from hub.scans import Scan, parse_scan
from tests.conftest import Hub

GTIN = "04006381333931"
PIECES = ["(01)", "(02)", "(10)", "(11)", "(15)", "(17)", "(00)", "(30)", "(37)", "(21)", "(8200)", "(", ")",
          "01", "02", "10", "11", "17", "00", "30", "37", GTIN, "106141411234567897", "B240315", "301231", "000000",
          "\x1d", "<GS>", "]C1", "]d2", "https://id.gs1.org", "/01/", "/10/", "?17=", "&", "=", "%", "/", "0", "9",
          "A", "\u0663", "\u00e9", " "]


def well_formed(scan: Scan) -> bool:
    gtin, quantity = scan.gtin, scan.quantity
    if gtin is not None and not (len(gtin) == 14 and gtin.isascii() and gtin.isdigit()
                                 and check_digit(gtin[:-1]) == int(gtin[-1])):
        return False
    if scan.lot_code == "":
        return False
    return quantity is None or (isinstance(quantity, int) and 0 <= quantity < 10**8)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(st.sampled_from(PIECES), max_size=10).map("".join), st.text(max_size=40)))
def test_any_text_is_a_well_formed_scan_or_bad_input(text: str) -> None:
    try:
        scan = parse_scan(text)
    except BadInput as exc:
        assert exc.code == "BAD_USER_INPUT" and exc.message
        return
    assert well_formed(scan), scan


def test_empty_elements_and_non_ascii_digits_are_refused() -> None:
    for text in ("30", f"01{GTIN}30", f"(01){GTIN}(10)", f"(01){GTIN}(30)", f"(01){GTIN}(30)\u0663",
                 f"(01){GTIN}(10)B\u00e91", f"(01){GTIN}(10)(17)301231",
                 f"https://id.gs1.org/01/{GTIN}?30=&17=301231", "https://id.gs1.org]C1", "http://[::1/01/1"):
        try:
            scan = parse_scan(text)
        except BadInput:
            continue
        raise AssertionError(f"{text!r} was read as {scan}")


async def test_unreadable_scans_are_bad_input_over_the_api_and_store_nothing(module_hub: Hub, suffix: str) -> None:
    tenant = await module_hub.tenant(f"scan-{suffix}")
    await module_hub.ok("mutation($i: SkuInput!) { upsertSku(input: $i) { created } }",
                        {"i": {"code": "S1", "name": "Soup", "gtin": GTIN}}, tenant=tenant)
    location = (await module_hub.ok("mutation { createLocation(input: {code: \"W1\", name: \"W\", kind: warehouse}) "
                                    "{ id } }", tenant=tenant))["createLocation"]["id"]
    record = "mutation($m: [MovementInput!]!, $l: ID) { recordMovements(movements: $m, locationId: $l) { accepted } }"
    for n, scan in enumerate((f"01{GTIN}30", f"(01){GTIN}(30)\u0663", f"(01){GTIN[:-1]}2(10)B1",
                              f"(01){GTIN[:-2]}", f"(01){GTIN}(9999)x", f"(01){GTIN}(17)260230",
                              f"https://id.gs1.org/01/{GTIN}/bad", f"https://id.gs1.org/01/{GTIN}?17=2602",
                              "(00)106141411234567898", "\x00")):
        movement = {"scan": scan, "kind": "receipt", "quantity": 3, "idempotencyKey": f"k{n}"}
        body = await module_hub.gql(record, {"m": [movement], "l": location}, tenant=tenant)
        assert [e["extensions"]["code"] for e in body.get("errors", [])] == ["BAD_USER_INPUT"], (scan, body)
    stored = await module_hub.ok("{ movements(first: 5) { edges { cursor } } lots(first: 5) { nodes { lotCode } } }",
                                 tenant=tenant)
    assert stored == {"movements": {"edges": []}, "lots": {"nodes": []}}
