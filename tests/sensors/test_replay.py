"""Histories played through ``hub.replay`` (the real services, a virtual clock): audiences per rule, each with a
tenant that must not hear, and the verdicts that need evidence or must stay true."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.auth import Principal
from hub.config import Settings
from hub.db import Database
from hub.models.alert import Alert
from hub.replay import play
from tenants.access import Access, may_hear

T0 = datetime(2026, 10, 5, 6, 0, tzinfo=UTC)


def at(minutes: float = 0, days: float = 0) -> str:
    return (T0 + timedelta(minutes=minutes, days=days)).isoformat()


def chain(carrier: bool = True, retailer_shares: tuple[str, ...] = ("sensors", "alerts"), shelf_life: int = 30,
          expires_days: int = 30, min_remaining: int | None = None, limit: float = 8.0) -> list[dict[str, Any]]:
    """FreshCo ships lot B1 of SALAD to Shopmart (through carrier Haul if ``carrier``). Bystanders: Trux, a 3PL
    partner of FreshCo that is not this dispatch's carrier, and Otherco, FreshCo's other customer."""
    expires = (T0 + timedelta(days=expires_days)).date()
    history: list[dict[str, Any]] = [{"action": "clock", "at": at()}]
    for tenant, kind in (("freshco", "supplier"), ("shopmart", "retailer"), ("haul", "logistics"),
                         ("trux", "logistics"), ("otherco", "retailer")):
        history.append({"action": "tenant", "id": tenant, "kind": kind})
    history.append({"action": "partnership", "inviter": "freshco", "invitee": "shopmart",
                    "inviter_shares": ["sku_master", "dispatches"],
                    "invitee_shares": ["dispatches", *retailer_shares]})
    for other in ("haul", "trux", "otherco"):
        history.append({"action": "partnership", "inviter": "freshco", "invitee": other,
                        "inviter_shares": ["sku_master", "dispatches"],
                        "invitee_shares": ["dispatches", "sensors", "alerts", "stock"]})
    history += [
        {"action": "sku", "tenant": "freshco", "code": "SALAD", "shelf_life_days": shelf_life, "temp_max_c": limit,
         "pack_size": 6, "excursion_sensitivity": 0.2, "min_remaining_shelf_life_days": min_remaining},
        {"action": "location", "tenant": "shopmart", "code": "C-3", "kind": "store"},
        {"action": "location", "tenant": "haul", "code": "TRUCK", "kind": "dc"},
        {"action": "dispatch", "at": at(60), "tenant": "freshco", "ref": "ASN-1", "consignee": "shopmart",
         "to_location": "C-3", **({"carrier": "haul"} if carrier else {}),
         "lines": [{"sku": "SALAD", "lot": "B1", "quantity": 60, "expires_on": expires.isoformat(),
                    "produced_on": (expires - timedelta(days=shelf_life)).isoformat()}]},
    ]
    return history


def receipt(minutes: float, **line: Any) -> dict[str, Any]:
    return {"action": "receipt", "at": at(minutes), "tenant": "shopmart", "dispatch": "ASN-1", "location": "C-3",
            "lines": [{"sku": "SALAD", "lot": "B1", "quantity": 60, **line}]}


def samples(start: float, temps: list[float], every: float = 5) -> list[list[Any]]:
    return [[at(start + i * every), c] for i, c in enumerate(temps)]


@pytest.fixture
async def replay(mongo_uri: str):
    databases: list[Database] = []

    async def run(history: list[dict[str, Any]]) -> dict[str, Any]:
        database = await Database.connect(mongo_uri, f"r_{uuid.uuid4().hex[:12]}")
        databases.append(database)
        return await play(database, Settings(mongodb_uri=mongo_uri), [json.dumps(a) for a in history], T0)

    yield run
    for database in databases:
        await database.client.drop_database(database.db.name)
        await database.close()


def heard_by(alert: dict[str, Any]) -> set[str]:
    """Everyone the alert or any event about it was addressed to."""
    return set(alert["audience"]).union(*(set(e["audience"]) for e in alert["events"]))


def of_kind(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [a for a in report["alerts"] if a["kind"] == kind]


async def visible_alerts(tenant: str) -> list[Alert]:
    principal = Principal(tenant_id=tenant, subject="t", issuer="t", roles=frozenset({"viewer"}))
    return await Alert.find((await Access.load(principal)).alerts()).to_list()


async def test_a_mismatch_reaches_shipper_consignee_and_carrier_and_no_other_partner(replay):
    report = await replay([*chain(carrier=True), receipt(180, lot="B2")])

    [mismatch] = of_kind(report, "mismatch")
    assert heard_by(mismatch) == {"freshco", "shopmart", "haul"}  # not Trux (not this carrier), not Otherco
    assert report["errors"] == []
    # The carrier has no partnership with Shopmart (the alert's owner): it hears it by being a party of the dispatch,
    # in its alert list and on the live stream and webhooks alike.
    event = mismatch["events"][0]
    payload = {"alert": {"audienceRule": "dispatch"}}
    assert await may_hear("haul", "shopmart", event["type"], payload)
    assert [str(a.id) for a in await visible_alerts("haul")] == [mismatch["id"]]
    assert await visible_alerts("trux") == [] and await visible_alerts("otherco") == []


async def test_a_mismatch_of_a_dispatch_without_carrier_reaches_only_shipper_and_consignee(replay):
    report = await replay([*chain(carrier=False), receipt(180, quantity=50)])

    [mismatch] = of_kind(report, "mismatch")
    assert heard_by(mismatch) == {"freshco", "shopmart"}  # Haul carries other dispatches, not this one


async def test_a_short_dated_dispatch_alerts_each_party_including_the_carrier_and_nobody_else(replay):
    report = await replay(chain(carrier=True, expires_days=10, min_remaining=20))

    alerts = of_kind(report, "expiry_risk")
    assert sorted(a["owner"] for a in alerts) == ["freshco", "haul", "shopmart"]
    assert all(heard_by(a) == {a["owner"]} for a in alerts)


async def test_a_logger_travelling_with_the_dispatch_alerts_the_dispatch_parties(replay):
    history = [
        *chain(carrier=True),
        {"action": "sensor", "at": at(61), "tenant": "haul", "device": "logger", "location": "TRUCK",
         "dispatch": "ASN-1"},
        {"action": "readings", "at": at(130), "tenant": "haul", "device": "logger",
         "samples": samples(65, [6.0] * 4 + [9.5] * 5 + [6.0] * 4)},
    ]
    report = await replay(history)

    [spike] = of_kind(report, "sensor_spike")
    assert heard_by(spike) == {"freshco", "shopmart", "haul"}  # not Trux, not Otherco
    assert spike["evidence"]["lots"][0]["units"] == 60 and spike["evidence"]["lots"][0]["cases"] == 10


def shelf_history(retailer_shares: tuple[str, ...] = ("sensors", "alerts")) -> list[dict[str, Any]]:
    return [
        *chain(retailer_shares=retailer_shares),
        receipt(180),
        {"action": "sensor", "at": at(181), "tenant": "shopmart", "device": "probe", "location": "C-3"},
    ]


async def test_two_excursions_ninety_minutes_apart_are_two_alerts_for_the_shelf_owner_and_the_brand(replay):
    temps = [6.0] * 3 + [9.5] * 4 + [6.0] * 18 + [9.5] * 4 + [6.0] * 3
    report = await replay([*shelf_history(), {"action": "readings", "at": at(400), "tenant": "shopmart",
                                              "device": "probe", "samples": samples(190, temps)}])

    spikes = of_kind(report, "sensor_spike")
    assert len(spikes) == 2
    assert all(heard_by(s) == {"shopmart", "freshco"} for s in spikes)  # not Otherco nor the 3PLs


async def test_a_brand_sharing_sensors_without_alerts_does_not_hear_the_shelf_spike(replay):
    temps = [6.0] * 3 + [9.5] * 4 + [6.0] * 3
    report = await replay([*shelf_history(retailer_shares=("sensors",)),
                           {"action": "readings", "at": at(300), "tenant": "shopmart", "device": "probe",
                            "samples": samples(190, temps)}])

    [spike] = of_kind(report, "sensor_spike")
    assert heard_by(spike) == {"shopmart"}
    assert spike["evidence"]["lots"][0]["lotCode"] == "B1"  # FreshCo's goods, yet FreshCo is not told
    assert await visible_alerts("freshco") == []


async def test_a_silent_shelf_sensor_alerts_the_spike_audience_once_and_resolves_when_it_speaks_again(replay):
    history = [
        *shelf_history(),
        {"action": "readings", "at": at(200), "tenant": "shopmart", "device": "probe",
         "samples": samples(185, [5.0] * 4)},
        {"action": "clock", "at": at(220)},
        {"action": "clock", "at": at(260)},
        {"action": "clock", "at": at(300)},
        {"action": "readings", "at": at(310), "tenant": "shopmart", "device": "probe",
         "samples": samples(305, [5.0] * 2)},
    ]
    report = await replay(history)

    [offline] = of_kind(report, "sensor_offline")
    assert offline["raisedAtLine"] == len(history) - 2  # 260: more than 30 minutes after the 200 reading
    assert offline["status"] == "resolved" and heard_by(offline) == {"shopmart", "freshco"}


def sale(days: float, n: int) -> dict[str, Any]:
    return {"sku": "SALAD", "kind": "sale", "quantity": -1, "lot": "B1", "key": f"sale-{n}",
            "occurred_at": at(days=days)}


async def test_a_fresh_receipt_without_sales_is_no_slow_mover(replay):
    history = [*chain(expires_days=12), receipt(180),
               {"action": "sweep", "at": at(days=1)}, {"action": "sweep", "at": at(days=5)}]

    report = await replay(history)

    assert of_kind(report, "expiry_risk") == []


async def test_a_slow_mover_alerts_the_holder_and_the_brand_that_is_shared_alerts_but_not_one_shared_only_stock(
    replay
):
    def slow(shares: tuple[str, ...]) -> list[dict[str, Any]]:
        return [*chain(expires_days=20, retailer_shares=shares), receipt(180),
                {"action": "movements", "at": at(days=12), "tenant": "shopmart", "location": "C-3",
                 "movements": [sale(3 + i, i) for i in range(4)]}]

    [shared] = of_kind(await replay(slow(("stock", "alerts"))), "expiry_risk")
    [not_shared] = of_kind(await replay(slow(("stock",))), "expiry_risk")

    assert shared["evidence"]["reason"] == "slow" and shared["evidence"]["soldInWindow"] == 4
    assert heard_by(shared) == {"shopmart", "freshco"}
    assert heard_by(not_shared) == {"shopmart"}  # FreshCo sees Shopmart's stock, but is not shared alerts


async def test_an_excursion_that_re_dates_a_lot_refreshes_its_open_expiry_alert_in_place(replay):
    history = [
        *chain(expires_days=20), receipt(180),
        {"action": "movements", "at": at(days=12), "tenant": "shopmart", "location": "C-3",
         "movements": [sale(3 + i, i) for i in range(4)]},
        {"action": "sensor", "at": at(days=12, minutes=1), "tenant": "shopmart", "device": "probe",
         "location": "C-3"},
        {"action": "readings", "at": at(days=12, minutes=200), "tenant": "shopmart", "device": "probe",
         "samples": [[at(days=12, minutes=5 + 5 * i), c] for i, c in enumerate([6.0] * 3 + [12.0] * 24 + [6.0] * 3)]},
    ]

    report = await replay(history)

    [risk] = of_kind(report, "expiry_risk")
    types = [e["type"] for e in risk["events"]]
    assert types[0] == "expiry_risk.detected" and "alert.updated" in types
    assert risk["evidence"]["effectiveExpiresOn"] < risk["evidence"]["recordedExpiresOn"]
    assert len(of_kind(report, "sensor_spike")) == 1


async def test_refused_actions_are_listed_and_the_rest_still_plays(replay):
    report = await replay([*chain(), {"action": "teleport"}, receipt(180, lot="B2")])

    assert [e["line"] for e in report["errors"]] == [len(chain()) + 1]
    assert len(of_kind(report, "mismatch")) == 1


def test_the_replay_command_prints_every_alert_and_writes_the_report(tmp_path: Path, mongo_uri: str):
    history = tmp_path / "history.jsonl"
    history.write_text("".join(json.dumps(a) + "\n" for a in [*chain(), receipt(180, lot="B2")]))
    out = tmp_path / "report.json"

    done = subprocess.run(
        [sys.executable, "-m", "hub.cli", "replay", str(history), "--report", str(out)],
        capture_output=True, text=True, timeout=300, env={"LOTPULSE_MONGODB_URI": mongo_uri, "PATH": "/usr/bin"},
    )

    assert done.returncode == 0, done.stderr
    assert "mismatch" in done.stdout and "freshco, haul, shopmart" in done.stdout
    assert [a["kind"] for a in json.loads(out.read_text())["alerts"]] == ["mismatch"]
