"""Bad input answers BAD_USER_INPUT and stores nothing; good input is normalised and idempotent."""

from __future__ import annotations

import base64

from tests.catalog.conftest import (
    APPLE,
    CREATE_LOCATION,
    LOCATIONS,
    REGISTER_LOT,
    SKU,
    SKUS,
    UPSERT_SKU,
    codes,
    fresh_gtin,
    sku_codes,
    upsert_sku,
)

BAD_SKUS = {
    "negative shelf life": {"shelfLifeDays": -5},
    "zero shelf life": {"shelfLifeDays": 0},
    "bad GTIN check digit": {"gtin": "4006381333932"},  # 4006381333931 is valid
    "GTIN with letters": {"gtin": "40063813339A1"},
    "GTIN of the wrong length": {"gtin": "123456789"},
    "empty code": {"code": "   "},
    "code over 64 characters": {"code": "C" * 65},
    "name over 200 characters": {"name": "N" * 201},
    "control character in code": {"code": "APL\x00-1"},
    "newline in name": {"name": "Apple\nPie"},
    "zero pack size": {"packSize": 0},
    "minimum remaining shelf life above the shelf life": {"minRemainingShelfLifeDays": 31},
    "negative minimum remaining shelf life": {"minRemainingShelfLifeDays": -1},
    "storage minimum above maximum": {"storage": {"tempMinC": 8, "tempMaxC": 2}},
    "absurd storage temperature": {"storage": {"tempMaxC": 1000}},
    "humidity over 100 %": {"storage": {"humidityMaxPct": 101}},
    "sensitivity above 1": {"excursionSensitivity": 1.5},
    "operator injection as the code": {"code": {"$gt": ""}},
    "operator injection as the name": {"name": {"$ne": None}},
    "shelf life beyond Int": {"shelfLifeDays": 2**40},
    "shelf life as a string": {"shelfLifeDays": "30"},
}


async def test_each_bad_sku_is_refused_and_nothing_is_stored(hub, tenants):
    acme, globex = tenants
    for label, change in BAD_SKUS.items():
        body = await hub.gql(UPSERT_SKU, {"input": {**APPLE, **change}}, tenant=acme)
        assert codes(body) == ["BAD_USER_INPUT"], (label, body)
    assert await sku_codes(hub, acme) == []


async def test_codes_and_names_at_their_limits_are_accepted(hub, tenants):
    acme, globex = tenants
    sku = await upsert_sku(hub, acme, code="C" * 64, name="N" * 200, gtin=None)
    assert sku["code"] == "C" * 64


async def test_upsert_is_idempotent_on_the_owners_code(hub, tenants):
    acme, globex = tenants
    first = await hub.ok(UPSERT_SKU, {"input": APPLE}, tenant=acme)
    again = await hub.ok(UPSERT_SKU, {"input": {**APPLE, "name": "Apple (Gala)", "code": "  APL-1 "}}, tenant=acme)
    assert first["upsertSku"]["created"] is True and again["upsertSku"]["created"] is False
    assert again["upsertSku"]["sku"]["id"] == first["upsertSku"]["sku"]["id"]
    assert again["upsertSku"]["sku"]["name"] == "Apple (Gala)"
    assert await sku_codes(hub, acme) == ["APL-1"]


async def test_gtins_are_stored_as_gtin14_and_found_by_any_length(hub, tenants):
    acme, globex = tenants
    gtin13 = fresh_gtin()
    sku = await upsert_sku(hub, acme, gtin=gtin13)
    assert sku["gtin"] == "0" + gtin13
    assert await sku_codes(hub, acme, {"gtin": gtin13}) == ["APL-1"]
    assert await sku_codes(hub, acme, {"gtin": "0" + gtin13}) == ["APL-1"]


async def test_operator_injection_in_a_string_filter_is_refused(hub, tenants):
    acme, globex = tenants
    await upsert_sku(hub, acme)
    for field in ("code", "codePrefix", "gtin", "nameContains"):
        for injected in ({"$gt": ""}, {"$ne": None}, ["APL-1"]):
            body = await hub.gql(SKUS, {"filter": {field: injected}}, tenant=acme)
            assert codes(body) == ["BAD_USER_INPUT"], (field, injected)
            assert "data" not in body


async def test_operator_like_strings_match_only_literally(hub, tenants):
    acme, globex = tenants
    await upsert_sku(hub, acme)
    assert await sku_codes(hub, acme, {"code": '{"$gt": ""}'}) == []
    assert await sku_codes(hub, acme, {"code": "$gt"}) == []
    assert await sku_codes(hub, acme, {"codePrefix": ".*"}) == []
    assert await sku_codes(hub, acme, {"nameContains": ".*"}) == []
    assert await sku_codes(hub, acme, {"codePrefix": "APL"}) == ["APL-1"]
    assert await sku_codes(hub, acme, {"nameContains": "PPL"}) == ["APL-1"]


async def test_unknown_enum_value_is_refused(hub, tenants):
    acme, globex = tenants
    body = await hub.gql(CREATE_LOCATION, {"input": {"code": "G1", "name": "Garage", "kind": "garage"}}, tenant=acme)
    assert codes(body) == ["BAD_USER_INPUT"]
    literal = await hub.gql(
        'mutation { createLocation(input: {code: "G1", name: "G", kind: garage}) { id } }', tenant=acme
    )
    assert codes(literal) == ["BAD_USER_INPUT"]
    assert (await hub.ok(LOCATIONS, tenant=acme))["locations"]["edges"] == []


async def test_bad_locations_are_refused_and_nothing_is_stored(hub, tenants):
    acme, globex = tenants
    bad = [
        {"code": "L" * 65, "name": "Too long", "kind": "dc"},
        {"code": "DC1", "name": "N" * 201, "kind": "dc"},
        {"code": "", "name": "Empty code", "kind": "dc"},
        {"code": "DC1", "name": "Bad GLN", "kind": "dc", "gln": "4006381333932"},
        {"code": "DC1", "name": "Bad parent", "kind": "dc", "parentId": {"$gt": ""}},
    ]
    for location in bad:
        assert codes(await hub.gql(CREATE_LOCATION, {"input": location}, tenant=acme)) == ["BAD_USER_INPUT"], location
    assert (await hub.ok(LOCATIONS, tenant=acme))["locations"]["edges"] == []


async def test_duplicate_location_code_is_a_conflict(hub, tenants):
    acme, globex = tenants
    location = {"code": "DC1", "name": "Main DC", "kind": "dc", "gln": "4006381333931"}
    await hub.ok(CREATE_LOCATION, {"input": location}, tenant=acme)
    assert codes(await hub.gql(CREATE_LOCATION, {"input": location}, tenant=acme)) == ["CONFLICT"]


async def test_bad_lots_are_refused(hub, tenants):
    acme, globex = tenants
    sku = await upsert_sku(hub, acme)
    bad = [
        {"lotCode": "L" * 65},
        {"lotCode": " "},
        {"lotCode": "B1", "producedOn": "2026-11-10", "expiresOn": "2026-11-01"},
        {"lotCode": "B1", "producedOn": "not-a-date"},
    ]
    for lot in bad:
        body = await hub.gql(REGISTER_LOT, {"input": {"skuId": sku["id"], **lot}}, tenant=acme)
        assert codes(body) == ["BAD_USER_INPUT"], lot


async def test_pages_follow_cursors_to_the_end(hub, tenants):
    acme, globex = tenants
    for index in range(7):
        await upsert_sku(hub, acme, code=f"S{index}", gtin=None)
    seen, after, pages = [], None, 0
    while True:
        page = (await hub.ok(SKUS, {"first": 3, "after": after}, tenant=acme))["skus"]
        seen += [edge["node"]["code"] for edge in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"S{index}" for index in range(7)]
    assert pages == 3


async def test_page_size_is_bounded(hub, tenants):
    acme, globex = tenants
    for first in (0, -1, 501, 10**6):
        assert codes(await hub.gql(SKUS, {"first": first}, tenant=acme)) == ["BAD_USER_INPUT"], first
    assert "errors" not in await hub.gql(SKUS, {"first": 500}, tenant=acme)


async def test_invalid_cursors_are_refused(hub, tenants):
    acme, globex = tenants
    forged = [
        "garbage!!",
        base64.urlsafe_b64encode(b"id:not-an-object-id").decode(),
        base64.urlsafe_b64encode(b'{"$gt": ""}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "",
    ]
    for cursor in forged:
        assert codes(await hub.gql(SKUS, {"after": cursor}, tenant=acme)) == ["BAD_USER_INPUT"], cursor


async def test_one_gtin_cannot_name_two_skus_of_the_same_owner(hub, tenants):
    acme, globex = tenants
    gtin = fresh_gtin()
    await upsert_sku(hub, acme, code="APL-1", gtin=gtin)
    body = await hub.gql(UPSERT_SKU, {"input": {**APPLE, "code": "APL-2", "gtin": gtin}}, tenant=acme)
    assert codes(body) == ["CONFLICT"]
    assert await sku_codes(hub, acme) == ["APL-1"]


async def test_set_sku_alias_without_code_is_bad_input_and_changes_nothing(hub, tenants):
    acme, _ = tenants
    sku = await upsert_sku(hub, acme)
    body = await hub.gql("mutation ($id: ID!) { setSkuAlias(skuId: $id) { id myAlias } }", {"id": sku["id"]},
                         tenant=acme)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "code" in body["errors"][0]["message"]
    assert (await hub.ok(SKU, {"id": sku["id"]}, tenant=acme))["sku"]["aliases"] == []
