"""Tenant isolation of SKUs, locations and lots: another tenant's objects are invisible and unchangeable.

Ids of invisible objects answer NOT_FOUND (never FORBIDDEN), so nobody learns that they exist.
"""

from __future__ import annotations

from tests.catalog.conftest import (
    ACCEPT,
    CREATE_LOCATION,
    INVITE,
    LOCATIONS,
    LOTS,
    REGISTER_LOT,
    REVOKE,
    SET_ALIAS,
    SKU,
    SKUS,
    UPSERT_SKU,
    codes,
    fresh_gtin,
    partner,
    sku_codes,
    upsert_sku,
)


async def test_stranger_cannot_list_or_filter_for_another_tenants_skus(hub, tenants):
    acme, globex = tenants
    gtin = fresh_gtin()
    await upsert_sku(hub, acme, gtin=gtin)
    assert await sku_codes(hub, acme) == ["APL-1"]
    assert await sku_codes(hub, globex) == []
    assert await sku_codes(hub, globex, {"code": "APL-1"}) == []
    assert await sku_codes(hub, globex, {"ownerId": acme}) == []
    assert await sku_codes(hub, globex, {"gtin": gtin}) == []
    assert await sku_codes(hub, globex, {"codePrefix": "A"}) == []


async def test_stranger_guessing_a_sku_id_gets_not_found(hub, tenants):
    acme, globex = tenants
    sku = await upsert_sku(hub, acme)
    body = await hub.gql(SKU, {"id": sku["id"]}, tenant=globex)
    assert codes(body) == ["NOT_FOUND"]
    assert body["data"] is None
    assert codes(await hub.gql(SKU, {"id": "not-an-id"}, tenant=globex)) == ["NOT_FOUND"]


async def test_stranger_cannot_change_another_tenants_sku(hub, tenants):
    acme, globex = tenants
    sku = await upsert_sku(hub, acme)
    # The same code under globex is globex's own SKU; acme's stays as it was.
    theirs = await upsert_sku(hub, globex, name="Hijacked", gtin=None)
    assert theirs["id"] != sku["id"] and theirs["ownerId"] == globex
    assert (await hub.ok(SKU, {"id": sku["id"]}, tenant=acme))["sku"]["name"] == "Apple"
    assert codes(await hub.gql(SET_ALIAS, {"id": sku["id"], "code": "G-1"}, tenant=globex)) == ["NOT_FOUND"]
    lot = {"skuId": sku["id"], "lotCode": "L1"}
    assert codes(await hub.gql(REGISTER_LOT, {"input": lot}, tenant=globex)) == ["NOT_FOUND"]


async def test_a_gtin_belongs_to_one_brand_owner(hub, tenants):
    acme, globex = tenants
    gtin = fresh_gtin()
    await upsert_sku(hub, acme, gtin=gtin)
    body = await hub.gql(UPSERT_SKU, {"input": {"code": "X", "name": "Copy", "gtin": gtin}}, tenant=globex)
    assert codes(body) == ["CONFLICT"]


async def test_stranger_cannot_see_or_use_another_tenants_locations(hub, tenants):
    acme, globex = tenants
    created = await hub.ok(CREATE_LOCATION, {"input": {"code": "DC1", "name": "Main DC", "kind": "dc"}}, tenant=acme)
    location_id = created["createLocation"]["id"]
    assert (await hub.ok(LOCATIONS, tenant=globex))["locations"]["edges"] == []
    child = {"code": "Z1", "name": "Zone", "kind": "zone", "parentId": location_id}
    assert codes(await hub.gql(CREATE_LOCATION, {"input": child}, tenant=globex)) == ["NOT_FOUND"]
    own = await hub.ok(CREATE_LOCATION, {"input": {**child, "parentId": None, "code": "DC1"}}, tenant=globex)
    assert own["createLocation"]["code"] == "DC1"  # codes are unique per tenant, not globally
    mine = (await hub.ok(LOCATIONS, tenant=acme))["locations"]["edges"]
    assert [edge["node"]["id"] for edge in mine] == [location_id]


async def test_stranger_cannot_see_or_register_another_tenants_lots(hub, tenants):
    acme, globex = tenants
    sku = await upsert_sku(hub, acme)
    lot = await hub.ok(REGISTER_LOT, {"input": {"skuId": sku["id"], "lotCode": "B240315", "producedOn": "2026-11-01"}},
                       tenant=acme)
    assert lot["registerLot"]["expiresOn"] == "2026-12-01"  # produced + shelf life
    assert len((await hub.ok(LOTS, tenant=acme))["lots"]["edges"]) == 1
    assert (await hub.ok(LOTS, tenant=globex))["lots"]["edges"] == []
    assert (await hub.ok(LOTS, {"filter": {"skuId": sku["id"]}}, tenant=globex))["lots"]["edges"] == []
    assert (await hub.ok(LOTS, {"filter": {"lotCode": "B240315"}}, tenant=globex))["lots"]["edges"] == []


async def test_sku_master_partner_reads_but_cannot_change_the_owners_skus(hub, tenants):
    acme, globex = tenants
    # given acme shares its SKU master with globex
    sku = await upsert_sku(hub, acme)
    await partner(hub, acme, globex, ["sku_master"])
    # then globex reads acme's SKU, marked read-only
    assert await sku_codes(hub, globex) == ["APL-1"]
    read = (await hub.ok(SKU, {"id": sku["id"]}, tenant=globex))["sku"]
    assert read["ownerId"] == acme and read["editable"] is False
    # and cannot change it: an upsert of the same code creates globex's own SKU, lots stay the owner's
    await upsert_sku(hub, globex, name="Renamed", gtin=None)
    assert (await hub.ok(SKU, {"id": sku["id"]}, tenant=acme))["sku"]["name"] == "Apple"
    lot = {"skuId": sku["id"], "lotCode": "L1"}
    assert codes(await hub.gql(REGISTER_LOT, {"input": lot}, tenant=globex)) == ["NOT_FOUND"]
    # but it may record its own item code for it, which only it and the owner see
    assert (await hub.ok(SET_ALIAS, {"id": sku["id"], "code": "G-778"}, tenant=globex))["setSkuAlias"][
        "myAlias"
    ] == "G-778"
    assert (await hub.ok(SKU, {"id": sku["id"]}, tenant=acme))["sku"]["aliases"] == [f"{globex}:G-778"]


async def test_sharing_is_one_way(hub, tenants):
    acme, globex = tenants
    await upsert_sku(hub, acme)
    await upsert_sku(hub, globex, code="GLX-1", gtin=None)
    await partner(hub, acme, globex, ["sku_master"])
    assert sorted(await sku_codes(hub, globex)) == ["APL-1", "GLX-1"]
    assert await sku_codes(hub, acme) == ["APL-1"]


async def test_other_scopes_do_not_reveal_skus(hub, tenants):
    acme, globex = tenants
    await upsert_sku(hub, acme)
    await partner(hub, acme, globex, ["stock", "dispatches", "alerts", "sensors"])
    assert await sku_codes(hub, globex) == []


async def test_an_invitation_not_yet_accepted_reveals_nothing(hub, tenants):
    acme, globex = tenants
    await upsert_sku(hub, acme)
    await hub.ok(INVITE, {"partner": globex, "we": ["sku_master"], "they": []}, tenant=acme)
    assert await sku_codes(hub, globex) == []


async def test_after_revocation_the_partner_can_no_longer_read_the_skus(hub, tenants):
    acme, globex = tenants
    sku = await upsert_sku(hub, acme)
    partnership = await partner(hub, acme, globex, ["sku_master"])
    assert await sku_codes(hub, globex) == ["APL-1"]
    await hub.ok(REVOKE, {"id": partnership}, tenant=acme)
    assert await sku_codes(hub, globex) == []
    assert codes(await hub.gql(SKU, {"id": sku["id"]}, tenant=globex)) == ["NOT_FOUND"]


async def test_a_third_tenant_sees_neither_skus_nor_another_partners_aliases(hub, tenants, third):
    acme, globex = tenants
    initech = third
    sku = await upsert_sku(hub, acme)
    await partner(hub, acme, globex, ["sku_master"])
    await partner(hub, acme, initech, ["sku_master"])
    await hub.ok(SET_ALIAS, {"id": sku["id"], "code": "G-778"}, tenant=globex)
    seen = (await hub.ok(SKU, {"id": sku["id"]}, tenant=initech))["sku"]
    assert seen["myAlias"] is None and seen["aliases"] == []
    assert (await hub.ok(SKUS, {"filter": {"code": "G-778"}}, tenant=initech))["skus"]["edges"] == []


async def test_the_partner_cannot_accept_on_behalf_of_the_invitee(hub, tenants, third):
    acme, globex = tenants
    initech = third
    invited = await hub.ok(INVITE, {"partner": globex, "we": ["sku_master"], "they": []}, tenant=acme)
    body = await hub.gql(ACCEPT, {"id": invited["invitePartner"]["id"]}, tenant=initech)
    assert codes(body) == ["NOT_FOUND"]


SKU_FIELDS = """
id ownerId code gtin name unit packSize shelfLifeDays storage { tempMinC tempMaxC humidityMaxPct }
minRemainingShelfLifeDays excursionSensitivity excursionMinMinutes unitCost currency category editable myAlias aliases
updatedAt
"""


async def test_a_page_of_skus_shows_each_viewer_what_the_sku_itself_shows(hub, tenants, third):
    """``skus`` builds its nodes from the stored documents, ``sku`` from the model: every field agrees, for the owner,
    a partner with an alias and a partner without one."""
    acme, globex = tenants
    initech = third
    full = await upsert_sku(hub, acme, code="FULL-1", gtin=fresh_gtin(), unit="kg", packSize=6, shelfLifeDays=12,
                            storage={"tempMinC": 2.0, "tempMaxC": 7.5, "humidityMaxPct": 80.0},
                            minRemainingShelfLifeDays=4, excursionSensitivity=0.5, excursionMinMinutes=30,
                            unitCost=1.25, currency="EUR", category="dairy")
    bare = await upsert_sku(hub, acme, code="BARE-1")
    await partner(hub, acme, globex, ["sku_master"])
    await partner(hub, acme, initech, ["sku_master"])
    await hub.ok(SET_ALIAS, {"id": full["id"], "code": "G-1"}, tenant=globex)
    page = f"query {{ skus(first: 10) {{ edges {{ node {{ {SKU_FIELDS} }} }} }} }}"
    one = f"query ($id: ID!) {{ sku(id: $id) {{ {SKU_FIELDS} }} }}"
    for viewer in (acme, globex, initech):
        nodes = {edge["node"]["id"]: edge["node"] for edge in (await hub.ok(page, tenant=viewer))["skus"]["edges"]}
        assert set(nodes) == {full["id"], bare["id"]}
        for sku_id, node in nodes.items():
            assert node == (await hub.ok(one, {"id": sku_id}, tenant=viewer))["sku"]
        assert nodes[full["id"]]["myAlias"] == ("G-1" if viewer == globex else None)
        assert nodes[full["id"]]["aliases"] == ([f"{globex}:G-1"] if viewer == acme else [])
        assert nodes[full["id"]]["storage"]["tempMaxC"] == 7.5
