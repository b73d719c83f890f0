"""Planning alerts follow their situation in place: one alert per finding, ``alert.updated`` when its figures move,
resolved by the sweep when the situation clears."""

from __future__ import annotations

from datetime import timedelta

from hub.models.event import Event
from tests.planning.conftest import rhythm, today


async def events_of(alert_id: str) -> list[tuple[str, list[str]]]:
    return [(e.type, e.audience) async for e in Event.find({"payload.alert.id": alert_id}).sort("_id")]


async def test_a_velocity_drop_whose_figures_change_is_updated_in_place_not_raised_again(net):
    # given: the summer product 40 % below its rhythm, flagged with no cause in the data
    await net.sku("SUN-50", shelfLifeDays=730)
    daily = [rhythm(91 - i, 0.6 if 91 - i <= 7 else 1.0) for i in range(91)]
    await net.history("ST-1", "SUN-50", daily, stock=sum(daily) + 400)
    await net.sweep()
    [alert] = await net.alerts("shopco", "velocity_drop")
    assert alert["evidence"]["candidateCauses"][0]["code"] == "market" and alert["evidence"]["onHand"] == 400

    # when: a count finds the shelf nearly empty, and the sweep runs again
    await net.move("ST-1", [{"sku": "SUN-50", "kind": "adjustment", "quantity": -395, "lotCode": "L-1"}])
    await net.sweep()

    # then: the same alert, updated with the shelf as it is; Brand hears the update too
    [updated] = await net.alerts("shopco", "velocity_drop")
    assert updated["id"] == alert["id"] and updated["status"] == "open"
    assert updated["evidence"]["onHand"] == 5
    assert await events_of(alert["id"]) == [
        ("velocity_drop.detected", ["brand", "shopco"]), ("alert.updated", ["brand", "shopco"])]

    # when: nothing changes, the next sweep says nothing
    report = await net.sweep()
    assert report.raised == 0 and len(await events_of(alert["id"])) == 2


async def test_fefo_slips_on_one_shelf_update_one_alert_which_resolves_when_the_older_lot_is_gone(net):
    # given: an old lot and two newer ones on the shelf
    await net.sku("SUN-50", shelfLifeDays=730)
    receipts = [{"sku": "SUN-50", "kind": "receipt", "quantity": 50, "lotCode": code,
                 "expiresOn": (today() + timedelta(days=days)).isoformat()} for code, days in
                (("OLD", 10), ("NEW", 60), ("NEWER", 90))]
    await net.move("ST-1", receipts)
    await net.move("ST-1", [{"sku": "SUN-50", "kind": "sale", "quantity": -5, "lotCode": "NEW"}])
    [alert] = await net.alerts("shopco", "fefo_violation")

    # when: another newer lot is taken while the old one still sits
    await net.move("ST-1", [{"sku": "SUN-50", "kind": "sale", "quantity": -4, "lotCode": "NEWER"}])

    # then: the shelf's one alert is updated, not doubled
    [again] = await net.alerts("shopco", "fefo_violation")
    assert again["id"] == alert["id"]
    assert again["evidence"]["takenLots"] == ["NEW", "NEWER"] and again["evidence"]["quantity"] == 9
    assert [t for t, _ in await events_of(alert["id"])] == ["fefo_violation.detected", "alert.updated"]

    # when: part of the old lot sells, then the sweep runs
    await net.move("ST-1", [{"sku": "SUN-50", "kind": "sale", "quantity": -30, "lotCode": "OLD"}])
    await net.sweep()

    # then: its figures are current
    [current] = await net.alerts("shopco", "fefo_violation")
    assert current["status"] == "open" and current["evidence"]["olderLots"][0]["onHand"] == 20

    # when: the old lot is sold out
    await net.move("ST-1", [{"sku": "SUN-50", "kind": "sale", "quantity": -20, "lotCode": "OLD"}])
    await net.sweep()

    # then: still open, for NEWER was taken while NEW sat too
    [current] = await net.alerts("shopco", "fefo_violation")
    assert current["status"] == "open" and [l["lotCode"] for l in current["evidence"]["olderLots"]] == ["NEW"]

    # when: NEW is sold out as well
    await net.move("ST-1", [{"sku": "SUN-50", "kind": "sale", "quantity": -45, "lotCode": "NEW"}])
    await net.sweep()

    # then: the situation cleared, the hub resolves it
    [done] = await net.alerts("shopco", "fefo_violation")
    assert done["status"] == "resolved" and done["resolvedBy"] == "system:planning"
    assert [t for t, _ in await events_of(alert["id"])] == [
        "fefo_violation.detected", "alert.updated", "alert.updated", "alert.updated", "alert.resolved"]
    assert await net.alerts("rival") == []
