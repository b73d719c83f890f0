"""Back-testing the planning signals on generated histories, their forecast error, and the sweep's time.

    python -m bench.signals [--series 100] [--positions 10000] [--seed 1]

1. **Back-test**: generates a retail network with at least ``--series`` (holder, location, SKU) series over 98 days:
   clean ones (weekly rhythm with Poisson noise, two lots sold first-expired-first-out), and ones with injected
   drops (the last week at 30-55 % of the rhythm), surges (2-3x, with stock for about two days), stockouts (the shelf
   empties 3-5 days before the end), surpluses (a receipt of 250-400 days of demand ten days ago), FEFO slips (a
   newer lot sold while an older one sits) and regional shortages beside a warehouse with surplus (transfers). The
   history is a list of actions played through the real services with the clock set to each action's time; the
   planning sweep then judges it. Printed: recall and precision per signal, and how often the top candidate or root
   cause is the injected one.
2. **Forecast error**: the baseline's 14-day holdout MAE over the clean and pre-incident histories, as a ratio to
   the naive seasonal forecast's (same weekday last week) on the same days: below 1 beats it.
3. **Sweep time**: ``--positions`` demand series and positions (112 days each, ~5 % with an injected drop) written
   straight to the database as the movement service writes them, then one full planning sweep, timed, and an
   second full one with the findings unchanged, and an incremental one after 1 % of them changed; as a ratio to
   the floor of reading every series document once. ``--series 0`` or ``--positions 0`` skips a part.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo.errors import BulkWriteError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.config import Settings
from hub.db import Database, Deadlines, EmbeddedServer
from hub.detect import demand as model
from hub.models.alert import Alert
from hub.models.planning import DemandSeries, TransferRecommendation
from hub.models.stock import StockPosition
from hub.services import signals

DAYS = 98
RHYTHM = (0.8, 0.87, 0.93, 1.0, 1.13, 1.33, 0.94)  # Monday..Sunday around a mean of 1
SIGNALS = ("velocity_drop", "velocity_spike", "obsolescence_risk", "fefo_violation", "transfer")
TODAY = date(2026, 9, 7)  # a Monday; the history ends the day before
TOOL = Deadlines(operation=None, transaction=None)  # a shell tool, like `lotpulse sweep`: no request deadlines


def poisson(rng: random.Random, mean: float) -> int:
    """Poisson sample (Knuth for small means, normal approximation above 60)."""
    if mean <= 0:
        return 0
    if mean > 60:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def noon(day: date) -> str:
    return datetime.combine(day, dtime(12), tzinfo=UTC).isoformat()


@dataclass
class Case:
    """One injected story (or a clean one) and the signals it must raise."""

    kind: str
    sku: str
    locations: list[str]
    expects: set[str] = field(default_factory=set)
    cause: str | None = None  # the candidate or root cause the hub should put first
    daily: list[int] = field(default_factory=list)  # the main location's demand (for the forecast error)
    censored: set[int] = field(default_factory=set)  # day indexes out of stock


def day_of(n: int) -> date:
    return TODAY - timedelta(days=DAYS - n)


def generate(series: int, seed: int) -> tuple[list[dict[str, Any]], list[Case]]:
    """The history as replay actions (tenant, location, sku, movements, clock) and the cases it injects."""
    rng = random.Random(seed)
    actions: list[dict[str, Any]] = [
        {"action": "tenant", "id": "shop", "kind": "retailer"},
        {"action": "tenant", "id": "brand", "kind": "supplier"},
        {"action": "partnership", "inviter": "shop", "invitee": "brand", "inviter_shares": ["stock", "alerts"],
         "invitee_shares": ["sku_master"]},
    ]
    mix = [("clean", 0.4), ("drop", 0.12), ("surge", 0.1), ("stockout", 0.1), ("surplus", 0.1), ("fefo", 0.1),
           ("transfer", 0.08)]
    cases: list[Case] = []
    moves: list[dict[str, Any]] = []
    for kind, share in mix:
        for _ in range(max(1, round(series * share))):
            n = len(cases)
            sku = f"SKU-{n:04d}"
            mean = rng.uniform(12, 45)
            store = f"S-{n:04d}"
            actions.append(
                {"action": "sku", "tenant": "shop", "code": sku, "shelf_life_days": 400}
            )  # own label: it creates its lots
            actions.append({"action": "location", "tenant": "shop", "code": store, "kind": "store"})
            case = Case(kind, sku, [store])
            daily = [poisson(rng, mean * RHYTHM[day_of(d).weekday()]) for d in range(DAYS)]
            stock = sum(daily) + round(mean * rng.uniform(20, 40))
            lots = [("A", 160, stock // 2), ("B", 330, stock - stock // 2)]  # (code, expires in days, units)
            if kind == "drop":
                factor = rng.uniform(0.3, 0.55)
                daily[-7:] = [poisson(rng, mean * factor * RHYTHM[day_of(d).weekday()]) for d in range(DAYS - 7, DAYS)]
                case.expects, case.cause = {"velocity_drop"}, "market"
            elif kind == "surge":
                factor = rng.uniform(2.0, 3.0)
                daily[-7:] = [poisson(rng, mean * factor * RHYTHM[day_of(d).weekday()]) for d in range(DAYS - 7, DAYS)]
                stock = sum(daily) + round(mean * factor * rng.uniform(1, 3))
                lots = [("A", 160, stock // 2), ("B", 330, stock - stock // 2)]
                case.expects, case.cause = {"velocity_spike"}, "market"
            elif kind == "stockout":
                out = rng.randint(3, 5)
                stock = sum(daily[:DAYS - out])
                daily[DAYS - out:] = [0] * out
                lots = [("A", 160, stock // 2), ("B", 330, stock - stock // 2)]
                case.censored = set(range(DAYS - out, DAYS))
                case.expects, case.cause = {"velocity_drop"}, "stockout"
            elif kind == "surplus":
                case.expects, case.cause = {"obsolescence_risk"}, "over_receipt"
            elif kind == "fefo":
                older = stock - round(mean * 10)  # the older lot still holds stock when the newer one sells
                lots = [("A", 160, older), ("B", 330, stock - older)]
            elif kind == "transfer":
                warehouse = f"W-{n:04d}"
                actions.append({"action": "location", "tenant": "shop", "code": warehouse, "kind": "warehouse"})
                case.locations.append(warehouse)
                stock = sum(daily) + round(mean * rng.uniform(0.5, 2))  # one or two days left at the store
                lots = [("A", 160, stock // 2), ("B", 330, stock - stock // 2)]
                case.expects, case.cause = {"transfer"}, None
            case.daily = daily
            cases.append(case)
            moves += _story(rng, case, daily, lots, mean)
    moves.sort(key=lambda m: m["occurred_at"])
    by_day: dict[str, list[dict[str, Any]]] = {}  # the store system uploads each day's movements
    for move in moves:
        by_day.setdefault(move["occurred_at"][:10], []).append(move)
    for day in sorted(by_day):
        actions.append({"action": "movements", "tenant": "shop", "at": by_day[day][-1]["occurred_at"],
                        "movements": by_day[day]})
    actions.append({"action": "planning_sweep", "at": noon(TODAY)})
    return actions, cases


def _story(rng: random.Random, case: Case, daily: list[int], lots: list[tuple[str, int, int]],
           mean: float) -> list[dict[str, Any]]:
    """Movements of one case: receipts of its lots, then the sales, first-expired-first-out unless a FEFO slip."""
    store = case.locations[0]
    first = day_of(0) - timedelta(days=1)
    out: list[dict[str, Any]] = []
    for code, expires, units in lots:
        out.append(
            {
                "location": store,
                "sku": case.sku,
                "kind": "receipt",
                "quantity": units,
                "lot": f"{case.sku}-{code}",
                "expires_on": (TODAY + timedelta(days=expires)).isoformat(),
                "occurred_at": noon(first),
            }
        )
    left = {f"{case.sku}-{code}": units for code, _, units in lots}
    order = list(left)
    slip_from = DAYS - rng.randint(2, 5) if case.kind == "fefo" else DAYS
    for d, units in enumerate(daily):
        wanted = units
        sequence = list(reversed(order)) if d >= slip_from else order
        for lot in sequence:
            if wanted <= 0:
                break
            take = min(wanted, left[lot])
            if take > 0:
                out.append({"location": store, "sku": case.sku, "kind": "sale", "quantity": -take, "lot": lot,
                            "occurred_at": noon(day_of(d))})
                left[lot] -= take
                wanted -= take
    if case.kind == "fefo":
        case.expects, case.cause = {"fefo_violation"}, None
    if case.kind == "surplus":
        out.append(
            {
                "location": store,
                "sku": case.sku,
                "kind": "receipt",
                "quantity": round(mean * rng.uniform(250, 400)),
                "lot": f"{case.sku}-C",
                "expires_on": (TODAY + timedelta(days=700)).isoformat(),
                "occurred_at": noon(TODAY - timedelta(days=10)),
            }
        )
    if case.kind == "transfer":
        warehouse = case.locations[1]
        rate = mean / 2
        stock = round(rate * rng.uniform(100, 150))
        out.append({"location": warehouse, "sku": case.sku, "kind": "receipt", "quantity": stock,
                    "lot": f"{case.sku}-W", "expires_on": (TODAY + timedelta(days=600)).isoformat(),
                    "occurred_at": noon(first)})
        issued = 0
        for d in range(DAYS):
            units = poisson(rng, rate)
            if units and issued + units < stock:
                out.append({"location": warehouse, "sku": case.sku, "kind": "issue", "quantity": -units,
                            "lot": f"{case.sku}-W", "occurred_at": noon(day_of(d))})
                issued += units
        # the warehouse keeps a healthy stock: top it up so its days of supply stay between target and threshold
        out.append({"location": warehouse, "sku": case.sku, "kind": "receipt", "quantity": issued,
                    "lot": f"{case.sku}-W", "occurred_at": noon(TODAY - timedelta(days=1))})
    return out


# -- playing the history -----------------------------------------------------------------------------------------

async def play_through_services(database: Database, settings: Settings, actions: list[dict[str, Any]]) -> float:
    """Each action through the service a client would reach (tenants, partnership, SKUs, locations, movements), in
    order; the planning sweep as of the history's last day. Answers the seconds the movements took."""
    from hub.auth import Principal
    from hub.models.location import LocationKind
    from hub.models.movement import MovementKind
    from hub.services import movements as movement_service
    from hub.services import skus
    from hub.services.locations import create_location
    from tenants import service as tenant_service
    from tenants.access import Access
    from tenants.models import Scope

    async def access(tenant: str) -> Access:
        return await Access.load(Principal(tenant_id=tenant, subject="bench", issuer="bench",
                                           roles=frozenset({"admin"})))

    locations: dict[str, str] = {}
    spent = 0.0
    for item in actions:
        kind = item["action"]
        if kind == "tenant":
            await tenant_service.create_tenant(item["id"], item["id"], item["kind"])
        elif kind == "partnership":
            proposed = await tenant_service.invite_partner(
                await access(item["inviter"]), item["invitee"], [Scope(s) for s in item["inviter_shares"]],
                [Scope(s) for s in item["invitee_shares"]])
            await tenant_service.accept_partnership(await access(item["invitee"]), str(proposed.id))
        elif kind == "sku":
            await skus.upsert_sku(await access(item["tenant"]), skus.SkuInput(
                code=item["code"], name=item["code"], shelf_life_days=item.get("shelf_life_days")))
        elif kind == "location":
            created = await create_location(await access(item["tenant"]), item["code"], item["code"],
                                            LocationKind(item["kind"]))
            locations[item["code"]] = str(created.id)
        elif kind == "movements":
            batch = [movement_service.MovementInput(
                location_id=locations[m["location"]], sku=m["sku"], kind=MovementKind(m["kind"]),
                quantity=m["quantity"], idempotency_key=f"b-{n}-{m['occurred_at']}-{m['location']}-{m['lot']}",
                lot_code=m.get("lot"), expires_on=date.fromisoformat(m["expires_on"]) if m.get("expires_on") else None,
                occurred_at=datetime.fromisoformat(m["occurred_at"]),
            ) for n, m in enumerate(item["movements"])]
            started = time.perf_counter()
            await movement_service.record_movements(await access(item["tenant"]), database, batch)
            spent += time.perf_counter() - started
        elif kind == "planning_sweep":
            await signals.sweep(database, datetime.fromisoformat(item["at"]).date(), signals.rules_from(settings),
                                full=True)
    return spent


# -- judging the outcome -----------------------------------------------------------------------------------------

async def outcome(cases: list[Case]) -> tuple[dict[str, set[str]], dict[str, str]]:
    """What the hub raised: per signal the SKUs it flagged, and the first-named cause per flagged SKU."""
    raised: dict[str, set[str]] = {name: set() for name in SIGNALS}
    causes: dict[str, str] = {}
    async for alert in Alert.find({"kind": {"$in": list(SIGNALS)}}):
        sku = next((s.label for s in alert.subjects if s.kind == "sku"), None)
        if sku is None:
            continue
        raised[alert.kind.value].add(sku)
        first = (alert.evidence.get("candidateCauses") or [{}])[0].get("code") or alert.evidence.get("rootCause")
        if first:
            causes[f"{alert.kind.value}:{sku}"] = first
    async for rec in TransferRecommendation.find({"status": "open"}):
        raised["transfer"].add(rec.sku_code)
    return raised, causes


def scores(cases: list[Case], raised: dict[str, set[str]]) -> dict[str, tuple[float, float, int, int, int]]:
    """Per signal: recall, precision, true positives, false positives, misses."""
    out = {}
    for name in SIGNALS:
        expected = {c.sku for c in cases if name in c.expects}
        found = raised[name]
        tp, fp, fn = len(expected & found), len(found - expected), len(expected - found)
        out[name] = (tp / (tp + fn) if tp + fn else 1.0, tp / (tp + fp) if tp + fp else 1.0, tp, fp, fn)
    return out


def forecast_error(cases: list[Case]) -> tuple[float, float, int]:
    """Holdout MAE of the baseline and of the naive seasonal forecast over every case's pre-incident history."""
    ours, naive, n = 0.0, 0.0, 0
    for case in cases:
        history = [model.Day(day_of(d), units, stockout=d in case.censored) for d, units in enumerate(case.daily)]
        history = history[:-7]  # before any injected incident
        error = model.holdout_error(history)
        if error is None or math.isnan(error.naive_mae):
            continue
        ours += error.mae
        naive += error.naive_mae
        n += 1
    return ours / n, naive / n, n


# -- sweep time on many positions --------------------------------------------------------------------------------

async def seed_positions(count: int, seed: int) -> list[Any]:
    """``count`` demand series (112 days) and stock positions, as the movement service writes them."""
    rng = random.Random(seed)
    tenant_ids = [f"shop-{n}" for n in range(max(1, count // 2000))]
    series_docs, positions = [], []
    now = datetime.now(UTC)
    locations_per_sku = 10
    for n in range(count):
        tenant = tenant_ids[n % len(tenant_ids)]
        location, sku = ObjectId(), ObjectId()
        if n % locations_per_sku:
            sku = series_docs[-1]["sku_id"]  # ten locations per SKU: transfer networks of ten sites
        mean = rng.uniform(5, 40)
        drop = rng.random() < 0.05
        days: dict[str, dict[str, float]] = {}
        on_hand = round(mean * rng.uniform(15, 60))
        first = TODAY - timedelta(days=112)
        for d in range(112):
            day = first + timedelta(days=d)
            units = poisson(rng, mean * RHYTHM[day.weekday()] * (0.4 if drop and d >= 105 else 1.0))
            days[day.isoformat()] = {"s": units, "n": -units}
        total = sum(v["n"] for v in days.values())
        days[(first - timedelta(days=1)).isoformat()] = {"s": 0, "n": on_hand - total}
        series_docs.append({"_id": ObjectId(), "tenant_id": tenant, "location_id": location, "sku_id": sku,
                            "sku_owner_id": tenant, "on_hand": on_hand, "days": days,
                            "first_day": (first - timedelta(days=1)).isoformat(),
                            "last_sale_day": (TODAY - timedelta(days=1)).isoformat(), "updated_at": now})
        positions.append({"tenant_id": tenant, "location_id": location, "sku_id": sku, "sku_owner_id": tenant,
                          "lot_id": None, "lot_code": None, "on_hand": on_hand, "updated_at": now})
    for start in range(0, count, 1000):
        await _insert(DemandSeries.get_pymongo_collection(), series_docs[start:start + 1000])
        await _insert(StockPosition.get_pymongo_collection(), positions[start:start + 1000])
    return [d["_id"] for d in series_docs]


async def _insert(collection: Any, docs: list[dict[str, Any]]) -> None:
    """Insert, tolerating the duplicates of a write the driver retried after a slow first attempt succeeded."""
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
            raise


async def timing(database: Database, settings: Settings, count: int, seed: int) -> dict[str, float]:
    ids = await seed_positions(count, seed)
    started = time.perf_counter()
    read = 0
    async for _ in DemandSeries.get_pymongo_collection().find({}):
        read += 1
    floor = time.perf_counter() - started
    rules = signals.rules_from(settings)
    full = await signals.sweep(database, TODAY, rules)
    steady = await signals.sweep(database, TODAY, rules, full=True)  # same findings: nothing to raise
    touched = ids[:: 100]
    await DemandSeries.get_pymongo_collection().update_many(
        {"_id": {"$in": touched}}, {"$set": {"updated_at": datetime.now(UTC)}})
    again = await signals.sweep(database, TODAY, rules)
    return {"series": read, "floor": floor, "full": full.seconds, "full_found": sum(full.findings.values()),
            "full_recommendations": full.recommendations, "steady": steady.seconds, "steady_raised": steady.raised,
            "incremental": again.seconds,
            "incremental_judged": again.judged, "incremental_flag": again.incremental}


# -- main --------------------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> None:
    settings = Settings()
    scratch = Path(tempfile.mkdtemp(prefix="lotpulse-signals-"))
    server = EmbeddedServer(scratch / "db", log_path=scratch / "secantusd.log", sync_on_commit=False)
    server.start()
    try:
        if args.series:
            await backtest(server.uri, settings, args)
        if args.positions:
            database = await Database.connect(server.uri, f"signals_{uuid.uuid4().hex[:8]}", deadlines=TOOL)
            figures = await timing(database, settings, args.positions, args.seed)
            print(f"sweep of {figures['series']:.0f} positions: full {figures['full']:.1f} s "
                  f"({figures['full'] / figures['floor']:.1f}x the {figures['floor']:.2f} s floor of reading every "
                  f"series once; target ≤ 60 s), {figures['full_found']:.0f} findings, "
                  f"{figures['full_recommendations']:.0f} transfer recommendations; again with the findings "
                  f"unchanged: {figures['steady']:.1f} s ({figures['steady'] / figures['floor']:.1f}x, "
                  f"{figures['steady_raised']:.0f} raised); incremental after 1 % changed: "
                  f"{figures['incremental']:.1f} s ({figures['incremental_judged']:.0f} series judged)")
            await database.close()
    finally:
        server.stop()


async def backtest(uri: str, settings: Settings, args: argparse.Namespace) -> None:
    actions, cases = generate(args.series, args.seed)
    database = await Database.connect(uri, f"signals_{uuid.uuid4().hex[:8]}", deadlines=TOOL)
    try:
        moves = sum(len(a["movements"]) for a in actions if a["action"] == "movements")
        started = time.perf_counter()
        spent = await play_through_services(database, settings, actions)
        played = time.perf_counter() - started
        raised, causes = await outcome(cases)
        kinds = ", ".join(f"{k} {sum(1 for c in cases if c.kind == k)}" for k in dict.fromkeys(c.kind for c in cases))
        print(
            f"back-test: {len(cases)} series ({kinds}), "
            f"{moves} movements played through the services in {played:.0f} s ({spent:.0f} s recording movements)"
        )
        print(f"{'signal':<18} {'recall':>7} {'precision':>9}   tp  fp  fn   (targets ≥ 0.95 and ≥ 0.95)")
        for name, (recall, precision, tp, fp, fn) in scores(cases, raised).items():
            print(f"{name:<18} {recall:7.3f} {precision:9.3f}  {tp:3d} {fp:3d} {fn:3d}")
        named = [c for c in cases if c.cause]
        right = sum(1 for c in named for kind in c.expects if causes.get(f"{kind}:{c.sku}") == c.cause)
        print(f"first-named cause is the injected one: {right}/{len(named)}")
        ours, naive, n = forecast_error(cases)
        print(f"forecast error (14-day holdout MAE over {n} histories): baseline {ours:.2f}, naive seasonal "
              f"{naive:.2f} units/day: ratio {ours / naive:.3f} (below 1 beats it)")
    finally:
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
