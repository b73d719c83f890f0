"""Movements are an immutable ledger applied exactly once per key; stock positions follow them."""

from __future__ import annotations

import asyncio

from hub.models.event import Event
from hub.models.lot import Lot
from hub.models.movement import Movement
from hub.models.planning import DemandSeries
from hub.models.stock import StockPosition
from hub.services import demand
from hub.services.position_locks import positions
from hub.services.stock import rebuild
from tests.supply.conftest import CREATE_LOCATION, UPSERT_SKU

SET_ALIAS = "mutation ($id: ID!, $code: String) { setSkuAlias(skuId: $id, code: $code) { id myAlias } }"


def sale(key: str, quantity: int = -1, lot: str = "B1", sku: str = "YOG-1") -> dict:
    return {"sku": sku, "lotCode": lot, "kind": "sale", "quantity": quantity, "idempotencyKey": key}


def receipt(key: str, quantity: int, lot: str = "B1", sku: str = "YOG-1") -> dict:
    return {"sku": sku, "lotCode": lot, "kind": "receipt", "quantity": quantity, "idempotencyKey": key}


async def own_yogurt(supply) -> None:
    """Shopco sells Acme's yogurt: Acme shares its SKU master and has shipped it the lots these tests name."""
    await supply.partner("acme", "shopco", ["sku_master"])
    await supply.ship_lots(("YOG-1", "B1", None), ("YOG-1", "EARLY", "2030-01-10"), ("YOG-1", "LATE", "2030-06-10"),
                           ("MLK-1", "M1", None))


def on_hand(positions: list[dict]) -> dict[str, int]:
    return {p["lotCode"]: p["onHand"] for p in positions}


async def test_movements_update_positions_and_emit_stock_changed(supply):
    await own_yogurt(supply)
    body = await supply.movements([receipt("r1", 50), sale("s1", -5), sale("s2", -3, lot="B1")])
    result = body["data"]["recordMovements"]
    assert (result["accepted"], result["duplicates"]) == (3, 0)
    assert [(p["lotCode"], p["onHand"], p["delta"]) for p in result["positions"]] == [("B1", 42, 42)]
    assert on_hand(await supply.stock()) == {"B1": 42}
    events = await Event.find({"type": "stock.changed"}).to_list()
    assert len(events) == 1 and events[0].audience == ["shopco"]
    assert events[0].payload["positions"][0]["onHand"] == 42


async def test_replaying_a_batch_changes_nothing_twice(supply):
    await own_yogurt(supply)
    batch = [receipt("r1", 10), sale("s1", -2)]
    first = (await supply.movements(batch))["data"]["recordMovements"]
    again = (await supply.movements(batch))["data"]["recordMovements"]
    partial = (await supply.movements([sale("s1", -2), sale("s2", -1)]))["data"]["recordMovements"]
    assert (first["accepted"], again["accepted"], again["duplicates"]) == (2, 0, 2)
    assert (partial["accepted"], partial["duplicates"]) == (1, 1)
    assert on_hand(await supply.stock()) == {"B1": 7}
    assert await Movement.find({"tenant_id": "shopco"}).count() == 3
    assert await Event.find({"type": "stock.changed"}).count() == 2  # a pure replay announces nothing


async def test_the_same_batch_from_two_clients_at_once_applies_once(supply):
    await own_yogurt(supply)
    await supply.movements([receipt("r0", 1000)])
    batch = [sale(f"s{i}", -1) for i in range(200)]
    bodies = await asyncio.gather(*(supply.movements(batch) for _ in range(4)))
    results = [b["data"]["recordMovements"] for b in bodies]
    assert sum(r["accepted"] for r in results) == 200
    assert sum(r["duplicates"] for r in results) == 600
    assert on_hand(await supply.stock()) == {"B1": 800}
    assert not (await rebuild("shopco", repair=False)).drift


async def test_a_batch_after_the_demand_series_were_rebuilt_adds_to_the_new_ones(supply):
    """The hub remembers the ids of the series it wrote; a rebuild replaces every series, and the next batch, which
    finds its remembered series gone, starts over and adds to the new one."""
    await own_yogurt(supply)
    await supply.movements([receipt("r1", 10)])
    await supply.movements([sale("s1", -1)])  # written through the remembered series
    old = await DemandSeries.find({"tenant_id": "shopco"}).to_list()
    assert [s.on_hand for s in old] == [9]
    await demand.rebuild("shopco")
    body = await supply.movements([sale("s2", -4)])
    assert body["data"]["recordMovements"]["accepted"] == 1
    series = await DemandSeries.find({"tenant_id": "shopco"}).to_list()
    assert len(series) == 1 and series[0].id != old[0].id
    assert series[0].on_hand == 5 and sum(day.get("s", 0) for day in series[0].days.values()) == 5


async def test_the_callers_alias_wins_over_its_own_code_and_another_tenants_alias_does_not(supply):
    """Precedence (hub/services/skus.py): an alias of the caller before a code. Shopco's own SKUs are OWN-1 and
    OWN-2; Shopco calls Acme's yogurt OWN-1 too, and Acme gave the yogurt an alias OWN-2 of its own."""
    await own_yogurt(supply)
    await supply.hub.ok(SET_ALIAS, {"id": supply.yogurt, "code": "OWN-1"}, tenant="shopco")
    await supply.hub.ok(SET_ALIAS, {"id": supply.yogurt, "code": "OWN-2"}, tenant="acme")
    own = {}
    for code in ("OWN-1", "OWN-2"):
        data = await supply.hub.ok(UPSERT_SKU, {"input": {"code": code, "name": code}}, tenant="shopco")
        own[code] = data["upsertSku"]["sku"]["id"]
    body = await supply.movements([
        {"sku": "OWN-1", "lotCode": "B1", "kind": "receipt", "quantity": 3, "idempotencyKey": "a1"},
        {"sku": "OWN-2", "kind": "receipt", "quantity": 4, "idempotencyKey": "a2"},
    ])
    booked = {p["skuId"]: p["onHand"] for p in body["data"]["recordMovements"]["positions"]}
    assert booked == {supply.yogurt: 3, own["OWN-2"]: 4}, body
    # OWN-2 alone: the yogurt carries Shopco's alias and the value OWN-2, but not as Shopco's alias
    body = await supply.movements([{"sku": "OWN-2", "kind": "receipt", "quantity": 1, "idempotencyKey": "a3"}])
    assert [(p["skuId"], p["onHand"]) for p in body["data"]["recordMovements"]["positions"]] == [(own["OWN-2"], 5)]


async def test_reusing_a_key_for_a_different_movement_is_a_conflict(supply):
    await own_yogurt(supply)
    await supply.movements([receipt("r1", 10)])
    body = await supply.movements([receipt("r1", 11)])
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert on_hand(await supply.stock()) == {"B1": 10}


async def test_going_below_zero_rejects_the_whole_batch(supply):
    await own_yogurt(supply)
    await supply.movements([receipt("r1", 5)])
    body = await supply.movements([receipt("r2", 1), sale("s1", -3), sale("s2", -4)])
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["index"] == 2
    assert "to -1" in error["message"]
    assert on_hand(await supply.stock()) == {"B1": 5}
    assert await Movement.find({"tenant_id": "shopco"}).count() == 1  # a rejected batch stores nothing


async def test_a_position_another_process_changed_is_read_again_not_assumed(supply):
    # given a position this process wrote last (it remembers on-hand 5, hub/services/known_positions.py)
    await own_yogurt(supply)
    await supply.movements([receipt("r1", 5)])
    # when another hub process books 2 more on it (written here straight to the database, as that process would)
    changed = await StockPosition.get_pymongo_collection().update_one(
        {"tenant_id": "shopco", "lot_code": "B1", "on_hand": 5}, {"$set": {"on_hand": 7}})
    assert changed.modified_count == 1
    # then a sale of 6 is judged on the 7 in the database, not the 5 remembered, and on-hand 1 is announced
    body = await supply.movements([sale("s1", -6)])
    assert body["data"]["recordMovements"]["positions"][0]["onHand"] == 1, body
    assert on_hand(await supply.stock()) == {"B1": 1}
    # and going below zero is still refused on the true figure
    refused = await supply.movements([sale("s2", -2)])
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "on hand 1" in refused["errors"][0]["message"]


async def test_a_count_sets_on_hand_and_may_correct_downwards(supply):
    await own_yogurt(supply)
    await supply.movements([receipt("r1", 20)])
    body = await supply.movements([{"sku": "YOG-1", "lotCode": "B1", "kind": "count", "quantity": 17,
                                    "idempotencyKey": "c1"}])
    assert body["data"]["recordMovements"]["positions"][0]["delta"] == -3
    assert on_hand(await supply.stock()) == {"B1": 17}
    counted = await Movement.find_one({"idempotency_key": "c1"})
    assert counted is not None and (counted.quantity, counted.counted) == (-3, 17)


async def test_signs_must_fit_the_kind(supply):
    await own_yogurt(supply)
    for bad in (sale("x", 5), receipt("y", -5), {**sale("z"), "quantity": 0}):
        body = await supply.movements([bad])
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", bad


async def test_batches_are_capped(supply):
    await own_yogurt(supply)
    hub = supply.hub
    hub.state.settings = hub.state.settings.with_(max_batch=50)  # the cap is a setting (10,000 by default)
    body = await supply.movements([receipt(f"k{i}", 1) for i in range(51)])
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at most 50 movements" in body["errors"][0]["message"]
    assert await Movement.find({}).count() == 0
    at_cap = await supply.movements([receipt(f"k{i}", 1) for i in range(50)])
    assert at_cap["data"]["recordMovements"]["accepted"] == 50


async def test_movements_at_another_tenants_location_are_not_found(supply):
    await own_yogurt(supply)
    body = await supply.movements([receipt("r1", 5)], location=supply.rival_store)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_sku_nobody_shared_is_not_found(supply):
    body = await supply.movements([receipt("r1", 5)], tenant="rival", location=supply.rival_store)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_viewers_cannot_record_movements(supply):
    await own_yogurt(supply)
    body = await supply.hub.gql(
        "mutation($m: [MovementInput!]!, $l: ID) { recordMovements(movements: $m, locationId: $l) { accepted } }",
        {"m": [receipt("r1", 1)], "l": supply.shop_dc}, tenant="shopco", roles=("viewer",))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_received_goods_can_be_sold_without_the_sku_master(supply):
    from tests.supply.conftest import yogurt_line

    dispatch = await supply.dispatch([yogurt_line(10, "B9")])
    await supply.receive(dispatch["id"], [{"sku": "YOG-1", "lotCode": "B9", "quantity": 10}])
    body = await supply.movements([sale("s1", -4, lot="B9")])
    assert body["data"]["recordMovements"]["positions"][0]["onHand"] == 6


async def test_stock_filters_by_sku_location_lot_and_expiry(supply):
    await own_yogurt(supply)
    await supply.movements([
        {**receipt("r1", 5, lot="EARLY"), "expiresOn": "2030-01-10"},
        {**receipt("r2", 7, lot="LATE"), "expiresOn": "2030-06-10"},
        receipt("r3", 2, lot="M1", sku="MLK-1"),
    ])
    assert on_hand(await supply.stock(skuId=supply.milk)) == {"M1": 2}
    assert on_hand(await supply.stock(lotCode="LATE")) == {"LATE": 7}
    assert on_hand(await supply.stock(expiringBefore="2030-02-01")) == {"EARLY": 5}
    assert len(await supply.stock(locationId=supply.shop_dc)) == 3
    await supply.movements([sale("s1", -5, lot="EARLY")])
    assert "EARLY" not in on_hand(await supply.stock())
    assert on_hand(await supply.stock(lotCode="EARLY", includeEmpty=True)) == {"EARLY": 0}


async def test_batches_on_the_same_positions_at_once_are_all_booked(supply):
    """Overlapping batches from several clients at once: each booked once, none refused (they take turns)."""
    await own_yogurt(supply)
    await supply.movements([receipt("r0", 100), receipt("r1", 100, lot="EARLY")])
    batches = [[sale(f"b{n}-{i}", -1, lot="B1" if (n + i) % 2 else "EARLY") for i in range(5)] for n in range(6)]
    bodies = await asyncio.gather(*(supply.movements(batch) for batch in batches))
    assert [b.get("errors") for b in bodies] == [None] * 6
    assert sum(b["data"]["recordMovements"]["accepted"] for b in bodies) == 30
    assert on_hand(await supply.stock()) == {"B1": 85, "EARLY": 85}
    assert len(positions) == 0


async def test_batches_creating_the_same_new_lot_at_once_share_it(supply):
    """Batches at two of the owner's warehouses naming the same new lots at once (different positions: they do not
    take turns): however their transactions meet (a write conflict, or the unique key refusing the later insert and
    the batch starting over), each lot exists once and every batch is booked."""
    second = await supply.hub.ok(CREATE_LOCATION, {"input": {"code": "WH-2", "name": "WH-2", "kind": "warehouse"}},
                                 tenant="acme")
    places = [supply.acme_wh, second["createLocation"]["id"]] * 2
    bodies = await asyncio.gather(*(
        supply.movements([receipt(f"new-{n}-{i}", 10, lot=f"NEW{i}") for i in range(3)], tenant="acme", location=where)
        for n, where in enumerate(places)))
    assert [b.get("errors") for b in bodies] == [None] * 4
    assert sorted(await Lot.get_pymongo_collection().distinct("lot_code", {"lot_code": {"$regex": "^NEW"}})) == [
        "NEW0", "NEW1", "NEW2"]
    assert await Lot.get_pymongo_collection().count_documents({"lot_code": {"$regex": "^NEW"}}) == 3
    assert sorted(p["onHand"] for p in await supply.stock(tenant="acme")) == [20] * 6
