"""Planning signals back-tested through ``hub.replay`` (``lotpulse replay``): the real services, a virtual clock."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.config import Settings
from hub.db import Database
from hub.replay import play

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)  # a Monday
RHYTHM = (24, 26, 28, 30, 34, 40, 28)


def day(n: int) -> str:
    return (T0 + timedelta(days=n)).isoformat()


async def test_a_drop_with_a_price_rise_replayed_as_a_history_is_flagged_by_the_planning_sweep(mongo_uri: str):
    # given: 84 days at the weekly rhythm (2.00 a unit), then a week at 60 % of it (2.60 a unit)
    history: list[dict[str, Any]] = [
        {"action": "tenant", "at": day(0), "id": "shop", "kind": "retailer"},
        {"action": "tenant", "id": "rival", "kind": "retailer"},
        {"action": "sku", "tenant": "shop", "code": "SUN-50", "shelf_life_days": 730},
        {"action": "location", "tenant": "shop", "code": "ST-1", "kind": "store"},
        {"action": "movements", "tenant": "shop", "location": "ST-1", "movements": [
            {"sku": "SUN-50", "kind": "receipt", "quantity": 5000, "lot": "L-1", "expires_on": "2028-01-01",
             "occurred_at": day(0)}]},
    ]
    for n in range(1, 92):
        weekday = (T0 + timedelta(days=n)).weekday()
        late = n > 84
        units = round(RHYTHM[weekday] * (0.6 if late else 1.0))
        history.append({"action": "movements", "at": day(n), "tenant": "shop", "location": "ST-1", "movements": [
            {"sku": "SUN-50", "kind": "sale", "quantity": -units, "lot": "L-1", "occurred_at": day(n),
             "unit_price": 2.6 if late else 2.0}]})
    history.append({"action": "planning_sweep", "at": day(92)})
    database = await Database.connect(mongo_uri, f"r_{uuid.uuid4().hex[:12]}")
    try:
        # when
        report = await play(database, Settings(mongodb_uri=mongo_uri), [json.dumps(a) for a in history], T0)
    finally:
        await database.client.drop_database(database.db.name)
        await database.close()

    # then: raised on the sweep's line, for the holder only, naming the price rise
    assert report["errors"] == []
    [alert] = [a for a in report["alerts"] if a["kind"] == "velocity_drop"]
    assert alert["raisedAtLine"] == len(history) and alert["audience"] == ["shop"]
    assert alert["evidence"]["changePct"] == -40.0
    codes = [c["code"] for c in alert["evidence"]["candidateCauses"]]
    assert "price_change" in codes and "market" not in codes
    assert all("rival" not in e["audience"] for e in alert["events"])


async def test_a_regional_shortage_replayed_as_a_history_reports_its_transfer_recommendation(mongo_uri: str):
    # given: a store selling ~30 a day that has a day's stock left, and a warehouse issuing 10 a day from far more
    days = 56
    sold = [RHYTHM[(T0 + timedelta(days=n)).weekday()] for n in range(1, days + 1)]
    history: list[dict[str, Any]] = [
        {"action": "tenant", "at": day(0), "id": "shop", "kind": "retailer"},
        {"action": "sku", "tenant": "shop", "code": "SUN-50", "shelf_life_days": 730},
        {"action": "location", "tenant": "shop", "code": "ST-1", "kind": "store"},
        {"action": "location", "tenant": "shop", "code": "WH-1", "kind": "warehouse"},
        {"action": "movements", "tenant": "shop", "movements": [
            {"location": "ST-1", "sku": "SUN-50", "kind": "receipt", "quantity": sum(sold) + 30, "lot": "L-1",
             "expires_on": "2028-01-01", "occurred_at": day(0)},
            {"location": "WH-1", "sku": "SUN-50", "kind": "receipt", "quantity": 10 * days + 1500, "lot": "W-1",
             "expires_on": "2028-01-01", "occurred_at": day(0)}]},
    ]
    for n in range(1, days + 1):
        history.append({"action": "movements", "at": day(n), "tenant": "shop", "movements": [
            {"location": "ST-1", "sku": "SUN-50", "kind": "sale", "quantity": -sold[n - 1], "lot": "L-1",
             "occurred_at": day(n)},
            {"location": "WH-1", "sku": "SUN-50", "kind": "issue", "quantity": -10, "lot": "W-1",
             "occurred_at": day(n)}]})
    history.append({"action": "planning_sweep", "at": day(days + 1)})
    database = await Database.connect(mongo_uri, f"r_{uuid.uuid4().hex[:12]}")
    try:
        # when
        report = await play(database, Settings(mongodb_uri=mongo_uri), [json.dumps(a) for a in history], T0)
    finally:
        await database.client.drop_database(database.db.name)
        await database.close()

    # then: the report names the recommendation the sweep made
    assert report["errors"] == []
    [transfer] = report["transferRecommendations"]
    assert (transfer["kind"], transfer["status"], transfer["sku"]) == ("internal", "open", "SUN-50")
    assert transfer["from"] == {"holder": "shop", "location": "WH-1"}
    assert transfer["to"] == {"holder": "shop", "location": "ST-1"}
    assert transfer["quantity"] > 30 * 7 and transfer["lots"] == [{"lot": "W-1", "quantity": transfer["quantity"]}]
