"""``stock rebuild`` recomputes positions from the ledger and reports where they drifted."""

from __future__ import annotations

from hub.models.stock import StockPosition
from hub.services.stock import rebuild


async def test_rebuild_reports_and_repairs_drift(supply):
    await supply.partner("acme", "shopco", ["sku_master"])
    await supply.ship_lots(("YOG-1", "B1", None), ("YOG-1", "B2", "2030-09-01"))
    await supply.movements([
        {"sku": "YOG-1", "lotCode": "B1", "kind": "receipt", "quantity": 30, "idempotencyKey": "r1"},
        {"sku": "YOG-1", "lotCode": "B2", "kind": "receipt", "quantity": 8, "idempotencyKey": "r2",
         "expiresOn": "2030-09-01"},
        {"sku": "YOG-1", "lotCode": "B1", "kind": "sale", "quantity": -4, "idempotencyKey": "s1"},
    ])
    assert not (await rebuild("shopco", repair=False)).drift
    # given: one position tampered with and one lost (a bad restore)
    positions = StockPosition.get_pymongo_collection()
    await positions.update_one({"lot_code": "B1"}, {"$set": {"on_hand": 999}})
    await positions.delete_one({"lot_code": "B2"})
    # when
    checked = await rebuild("shopco", repair=False)
    # then: both reported, nothing changed by a check
    assert sorted(((d.recorded, d.derived) for d in checked.drift), key=lambda pair: pair[1]) == [(None, 8), (999, 26)]
    assert not checked.repaired and (await StockPosition.find_one({"lot_code": "B1"})).on_hand == 999
    repaired = await rebuild("shopco")
    assert repaired.repaired and repaired.movements == 3 and repaired.positions == 2
    restored = {p["lotCode"]: (p["onHand"], p["expiresOn"]) for p in await supply.stock()}
    assert restored == {"B1": (26, None), "B2": (8, "2030-09-01")}
    assert not (await rebuild(repair=False)).drift


async def test_rebuild_of_one_tenant_leaves_others_alone(supply):
    await supply.partner("acme", "shopco", ["sku_master"])
    await supply.ship_lots(("YOG-1", "B1", None))
    await supply.movements([{"sku": "YOG-1", "lotCode": "B1", "kind": "receipt", "quantity": 3, "idempotencyKey": "a"}])
    await StockPosition.get_pymongo_collection().update_one({"tenant_id": "shopco"}, {"$set": {"on_hand": 5}})
    assert not (await rebuild("acme")).drift
    assert (await StockPosition.find_one({"tenant_id": "shopco"})).on_hand == 5
