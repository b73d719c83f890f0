"""Expiry risk on real stock: the sweep, the stock-change hook, re-dated lots and the dispatch check."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from hub.dates import to_bson
from hub.models.alert import Alert
from hub.models.lot import Lot
from hub.models.stock import StockPosition
from hub.services import expiry
from tests.sensors.conftest import CREATE_LOCATION, RECORD_MOVEMENTS

ALERTS = """
query {
  alerts(first: 50) {
    nodes { id kind severity status resolvedBy title recommendation evidence occurrences subjects { kind label } }
  }
}
"""
CREATE_DISPATCH = """
mutation($input: CreateDispatchInput!) { createDispatch(input: $input) { id ref } }
"""
UPSERT_SKU = "mutation($input: SkuInput!) { upsertSku(input: $input) { sku { id } } }"


def today():
    return datetime.now(UTC).date()


async def expiry_alerts(hub, tenant: str) -> list[dict]:
    nodes = (await hub.ok(ALERTS, tenant=tenant))["alerts"]["nodes"]
    return [node for node in nodes if node["kind"] == "expiry_risk"]


async def stock_a_slow_lot(hub, cold) -> str:
    """FreshCo's DC holds 300 units of a lot expiring in 90 days and sells 2 a day: it needs 150 days (a sale 40 days
    ago is older than the 28-day window and does not count)."""
    dc = (await hub.ok(CREATE_LOCATION, {"input": {"code": "DC-1", "name": "DC", "kind": "dc"}}, tenant="freshco"))
    dc_id = dc["createLocation"]["id"]
    movements = [{
        "sku": "SALAD-1", "kind": "receipt", "quantity": 360, "idempotencyKey": "in-1", "lotCode": "SLOW-1",
        "expiresOn": (today() + timedelta(days=90)).isoformat(),
        "occurredAt": (datetime.now(UTC) - timedelta(days=45)).isoformat(),
    }] + [{
        "sku": "SALAD-1", "kind": "sale", "quantity": -4, "idempotencyKey": f"sale-{day}", "lotCode": "SLOW-1",
        "occurredAt": (datetime.now(UTC) - timedelta(days=day)).isoformat(),
    } for day in (40, *range(1, 15))]
    await hub.ok(RECORD_MOVEMENTS, {"movements": movements, "locationId": dc_id}, tenant="freshco")
    return dc_id


async def test_a_lot_three_months_from_expiry_that_needs_five_months_to_sell_is_flagged_on_stock_change(cold, hub):
    # when: the stock and its sales are recorded (the stock service re-assesses what it changed)
    await stock_a_slow_lot(hub, cold)

    # then
    [alert] = [a for a in await expiry_alerts(hub, "freshco") if "SLOW-1" in a["title"]]
    assert alert["severity"] == "warning"
    assert alert["evidence"]["reason"] == "slow"
    assert alert["evidence"]["daysLeft"] == 90 and alert["evidence"]["daysToSell"] == 150
    assert alert["evidence"]["onHand"] == 300 and alert["evidence"]["soldInWindow"] == 56
    assert alert["evidence"]["observedDays"] == 45  # since the lot's first movement there
    assert "mark down" in alert["recommendation"]
    assert await expiry_alerts(hub, "rival") == []
    # and the periodic sweep finds nothing new to say
    assert (await expiry.sweep(hub.state.database)).alerts == 0


async def test_the_sweep_does_not_page_again_for_an_unchanged_finding(cold, hub):
    await stock_a_slow_lot(hub, cold)
    await expiry.sweep(hub.state.database)

    again = await expiry.sweep(hub.state.database)

    assert again.alerts == 0
    [alert] = [a for a in await expiry_alerts(hub, "freshco") if "SLOW-1" in a["title"]]
    assert alert["occurrences"] == 1


async def test_a_lot_past_its_effective_expiry_with_stock_is_critical(cold, hub):
    # given: the lot on shelf C-3 still has 10 days on its label, but excursions have used them all up
    await Lot.get_pymongo_collection().update_one(
        {"lot_code": "L-C3"}, {"$set": {"effective_expires_on": to_bson(today() - timedelta(days=1))}}
    )

    # when
    await expiry.sweep(hub.state.database)

    # then: the holder is told (and the brand too, as the holder shares stock and alerts with it)
    for tenant in ("shopmart", "freshco"):
        [alert] = await expiry_alerts(hub, tenant)
        assert alert["severity"] == "critical" and alert["evidence"]["reason"] == "expired"
        assert alert["evidence"]["recordedExpiresOn"] == cold.lot_expires.isoformat()
        assert "quarantine" in alert["recommendation"]
    assert await expiry_alerts(hub, "rival") == []


async def test_the_stock_change_hook_assesses_the_positions_it_is_given(cold, hub):
    await Lot.get_pymongo_collection().update_one(
        {"lot_code": "L-C3"}, {"$set": {"effective_expires_on": to_bson(today() - timedelta(days=2))}}
    )
    positions = await StockPosition.find({"lot_code": "L-C3"}).to_list()

    raised = await expiry.on_stock_changed(None, positions)

    assert [a.severity.value for a in raised] == ["critical"]
    assert await Alert.find({"kind": "expiry_risk"}).count() == 1


async def test_the_lotpulse_sweep_command_raises_what_time_has_made_worse(cold, hub, tmp_path):
    # given: the slow lot (flagged as a warning) and the salads on C-3, judged 85 days from now
    await stock_a_slow_lot(hub, cold)
    later = today() + timedelta(days=85)
    env = {
        **os.environ,
        "LOTPULSE_MONGODB_URI": hub.settings.mongodb_uri,
        "LOTPULSE_DATABASE": hub.settings.database,
        "LOTPULSE_DATA_DIR": str(tmp_path),
    }

    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "sweep", "--date", later.isoformat()],
        env=env, capture_output=True, text=True, timeout=120,
    )

    # then: the slow lot is now critical (5 days left, nothing sold lately) and the salads are long expired
    assert done.returncode == 0, done.stderr
    assert "2 stock positions assessed, 2 alerts raised" in done.stdout
    severities = {a["title"].split()[1]: a["severity"] for a in await expiry_alerts(hub, "shopmart")}
    assert severities == {"L-C3": "critical"}
    [slow] = [a for a in await expiry_alerts(hub, "freshco") if "SLOW-1" in a["title"]]
    assert slow["severity"] == "critical" and slow["occurrences"] == 2


async def test_a_dispatch_arriving_below_the_minimum_remaining_shelf_life_alerts_both_parties(cold, hub):
    # given: Shopmart accepts salads only with at least 7 days left
    sku = {"code": "SALAD-1", "name": "Mixed salad 200 g", "shelfLifeDays": 10, "storage": {"tempMaxC": 20.0},
           "minRemainingShelfLifeDays": 7, "excursionSensitivity": 1.0}
    await hub.ok(UPSERT_SKU, {"input": sku}, tenant="freshco")
    shipped = today()

    # when: one line arrives with 4 days left, another with 9
    lines = [
        {"sku": "SALAD-1", "lotCode": "OLD-1", "quantity": 10, "expiresOn": (shipped + timedelta(days=5)).isoformat()},
        {"sku": "SALAD-1", "lotCode": "NEW-1", "quantity": 10, "expiresOn": (shipped + timedelta(days=10)).isoformat()},
    ]
    dispatch = {"ref": "ASN-7", "consigneeId": "shopmart", "lines": lines, "shippedOn": shipped.isoformat(),
                "expectedOn": (shipped + timedelta(days=1)).isoformat()}
    await hub.ok(CREATE_DISPATCH, {"input": dispatch}, tenant="freshco")

    # then
    for tenant in ("freshco", "shopmart"):
        [alert] = await expiry_alerts(hub, tenant)
        assert "ASN-7" in alert["title"] and alert["severity"] == "warning"
        assert [line["lotCode"] for line in alert["evidence"]["lines"]] == ["OLD-1"]
        assert alert["evidence"]["lines"][0]["daysLeftOnArrival"] == 4
    assert await expiry_alerts(hub, "rival") == []


async def test_a_dispatch_of_fresh_goods_raises_nothing(cold, hub):
    lines = [{"sku": "SALAD-1", "lotCode": "NEW-1", "quantity": 10,
              "expiresOn": (today() + timedelta(days=10)).isoformat()}]
    sku = {"code": "SALAD-1", "name": "Mixed salad 200 g", "minRemainingShelfLifeDays": 7}
    await hub.ok(UPSERT_SKU, {"input": sku}, tenant="freshco")

    await hub.ok(CREATE_DISPATCH, {"input": {"ref": "ASN-8", "consigneeId": "shopmart", "lines": lines}},
                 tenant="freshco")

    assert await expiry_alerts(hub, "freshco") == [] and await expiry_alerts(hub, "shopmart") == []


async def test_selling_the_lot_out_resolves_its_expiry_alert(cold, hub):
    dc = await stock_a_slow_lot(hub, cold)
    sale = {"sku": "SALAD-1", "kind": "sale", "quantity": -300, "idempotencyKey": "clearance", "lotCode": "SLOW-1"}

    await hub.ok(RECORD_MOVEMENTS, {"movements": [sale], "locationId": dc}, tenant="freshco")

    [alert] = [a for a in await expiry_alerts(hub, "freshco") if "SLOW-1" in a["title"]]
    assert alert["status"] == "resolved" and alert["resolvedBy"] == "system:expiry"


async def test_the_hub_sweeps_by_itself_every_interval(cold, hub, monkeypatch):
    # given: a lot whose effective expiry passed without any stock movement to notice it
    await Lot.get_pymongo_collection().update_one(
        {"lot_code": "L-C3"}, {"$set": {"effective_expires_on": to_bson(today() - timedelta(days=1))}}
    )

    async def minutes_pass_in_a_blink(seconds: float) -> None:
        await asyncio.sleep(0.05)

    monkeypatch.setattr(expiry, "pause", minutes_pass_in_a_blink)

    # when: the in-process sweeper runs (as the startup hook starts it)
    await expiry.start_sweeper(hub.state)
    for _ in range(100):
        if await expiry_alerts(hub, "shopmart"):
            break
        await asyncio.sleep(0.05)

    # then
    [alert] = await expiry_alerts(hub, "shopmart")
    assert alert["severity"] == "critical" and alert["evidence"]["reason"] == "expired"
