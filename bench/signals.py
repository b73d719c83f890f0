"""Back-testing the planning signals through ``lotpulse replay`` on generated histories, their forecast error, and
the sweep's time.

    python -m bench.signals [--series 100] [--positions 10000] [--seed 1] [--keep DIR]

1. **Back-test**: generates a retail network with at least ``--series`` (holder, location, SKU) series over 98 days:
   clean ones (weekly rhythm with Poisson noise, two lots sold first-expired-first-out), and ones with injected
   drops (the last week at 30-55 % of the rhythm), surges (2-3x, with stock for about two days), stockouts (the shelf
   empties 3-5 days before the end), surpluses (a receipt of 250-400 days of demand ten days ago), FEFO slips (a
   newer lot sold while an older one sits), regional shortages beside the holder's own warehouse with surplus
   (transfers), and shortages at one retailer while another holds the brand's goods in surplus (partner transfers,
   vendor-managed inventory: both share ``stock`` with the brand, the goods arrive by dispatch and receipt). The
   history is written as JSON Lines of replay actions (tenants, partnerships, SKUs, locations, dispatches, receipts,
   each day's movement uploads, then ``planning_sweep`` as of the day after) and played by one ``lotpulse replay``
   process; its report (alerts with evidence, transfer recommendations) is scored against what was injected.
   Printed: recall and precision per signal, and how often the top candidate or root cause is the injected one.
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
import json
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

from bench.harness import run_replay
from hub.config import Settings
from hub.db import Database, Deadlines, EmbeddedServer
from hub.detect import demand as model
from hub.models.planning import DemandSeries
from hub.models.stock import StockPosition
from hub.services import signals

DAYS = 98
RHYTHM = (0.8, 0.87, 0.93, 1.0, 1.13, 1.33, 0.94)  # Monday..Sunday around a mean of 1
SIGNALS = ("velocity_drop", "velocity_spike", "obsolescence_risk", "fefo_violation", "transfer", "partner_transfer")
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
    holder: str = "shop"  # who holds the main location


def day_of(n: int) -> date:
    return TODAY - timedelta(days=DAYS - n)


PARTNERS: list[dict[str, Any]] = [
    {"action": "tenant", "id": "shop", "kind": "retailer"},
    {"action": "tenant", "id": "mart", "kind": "retailer"},
    {"action": "tenant", "id": "brand", "kind": "supplier"},
    # shop and mart hold brand's goods and share their stock with it (VMI); mart receives shop's dispatches
    {"action": "partnership", "inviter": "shop", "invitee": "brand",
     "inviter_shares": ["stock", "alerts", "dispatches"], "invitee_shares": ["sku_master", "dispatches"]},
    {"action": "partnership", "inviter": "mart", "invitee": "brand", "inviter_shares": ["stock", "dispatches"],
     "invitee_shares": ["sku_master", "dispatches"]},
    {"action": "partnership", "inviter": "mart", "invitee": "shop", "inviter_shares": ["dispatches"],
     "invitee_shares": []},
]


def generate(series: int, seed: int) -> tuple[list[dict[str, Any]], list[Case]]:
    """The history as replay actions and the cases it injects."""
    rng = random.Random(seed)
    actions: list[dict[str, Any]] = list(PARTNERS)
    deliveries: list[dict[str, Any]] = []  # dispatches and receipts of the brand's goods, the day before day 0
    mix = [("clean", 0.36), ("drop", 0.12), ("surge", 0.1), ("stockout", 0.1), ("surplus", 0.1), ("fefo", 0.1),
           ("transfer", 0.06), ("partner", 0.06)]
    cases: list[Case] = []
    moves: list[dict[str, Any]] = []
    for kind, share in mix:
        for _ in range(max(1, round(series * share))):
            n = len(cases)
            sku = f"SKU-{n:04d}"
            mean = rng.uniform(12, 45)
            holder, store = ("mart", f"M-{n:04d}") if kind == "partner" else ("shop", f"S-{n:04d}")
            # the shop's own label creates its lots; the brand's goods reach the retailers by dispatch
            owner = "brand" if kind == "partner" else "shop"
            actions.append({"action": "sku", "tenant": owner, "code": sku, "shelf_life_days": 400})
            actions.append({"action": "location", "tenant": holder, "code": store, "kind": "store"})
            case = Case(kind, sku, [store], holder=holder)
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
                case.expects = {"fefo_violation"}
            elif kind in ("transfer", "partner"):
                warehouse = f"W-{n:04d}"
                actions.append({"action": "location", "tenant": "shop", "code": warehouse, "kind": "warehouse"})
                case.locations.append(warehouse)
                stock = sum(daily) + round(mean * rng.uniform(0.5, 2))  # one or two days left at the store
                lots = [("A", 160, stock // 2), ("B", 330, stock - stock // 2)]
                case.expects = {"transfer" if kind == "transfer" else "partner_transfer"}
            case.daily = daily
            cases.append(case)
            story = _story(rng, case, daily, lots, mean)
            if kind == "partner":
                deliveries += _delivered(case, [m for m in story if m["kind"] == "receipt"])
                story = [m for m in story if m["kind"] != "receipt"]
            moves += story
    moves.sort(key=lambda m: m["occurred_at"])
    by_day: dict[tuple[str, str], list[dict[str, Any]]] = {}  # each holder's system uploads each day's movements
    for move in moves:
        by_day.setdefault((move["occurred_at"][:10], move["tenant"]), []).append(move)
    timed = list(deliveries)
    for day, tenant in sorted(by_day):
        batch = by_day[(day, tenant)]
        timed.append({"action": "movements", "tenant": tenant, "at": batch[-1]["occurred_at"],
                      "movements": [{k: v for k, v in m.items() if k != "tenant"} for m in batch]})
    actions += sorted(timed, key=lambda a: a["at"])  # the clock only moves forward (a dispatch before its receipt)
    actions.append({"action": "planning_sweep", "at": noon(TODAY)})
    return actions, cases


def _delivered(case: Case, receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The brand ships each receipt's lot to its holder, who records the receipt (all the day before day 0)."""
    out: list[dict[str, Any]] = []
    for n, r in enumerate(receipts):
        line = {"sku": r["sku"], "lot": r["lot"], "quantity": r["quantity"], "expires_on": r["expires_on"]}
        ref = f"ASN-{case.sku}-{n}"
        out.append({"action": "dispatch", "tenant": "brand", "ref": ref, "consignee": r["tenant"],
                    "to_location": r["location"], "lines": [line], "at": r["occurred_at"]})
        out.append({"action": "receipt", "tenant": r["tenant"], "dispatch": ref, "location": r["location"],
                    "lines": [line], "at": r["occurred_at"]})
    return out


def _story(rng: random.Random, case: Case, daily: list[int], lots: list[tuple[str, int, int]],
           mean: float) -> list[dict[str, Any]]:
    """Movements of one case: receipts of its lots, then the sales, first-expired-first-out unless a FEFO slip."""
    store = case.locations[0]
    first = day_of(0) - timedelta(days=1)
    out: list[dict[str, Any]] = []
    for code, expires, units in lots:
        out.append(
            {
                "tenant": case.holder,
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
                out.append({"tenant": case.holder, "location": store, "sku": case.sku, "kind": "sale",
                            "quantity": -take, "lot": lot, "occurred_at": noon(day_of(d))})
                left[lot] -= take
                wanted -= take
    if case.kind == "surplus":
        out.append(
            {
                "tenant": case.holder,
                "location": store,
                "sku": case.sku,
                "kind": "receipt",
                "quantity": round(mean * rng.uniform(250, 400)),
                "lot": f"{case.sku}-C",
                "expires_on": (TODAY + timedelta(days=700)).isoformat(),
                "occurred_at": noon(TODAY - timedelta(days=10)),
            }
        )
    if case.kind in ("transfer", "partner"):
        warehouse = case.locations[1]
        rate = mean / 2
        stock = round(rate * rng.uniform(100, 150))
        lot, expires = f"{case.sku}-W", (TODAY + timedelta(days=600)).isoformat()
        out.append({"tenant": "shop", "location": warehouse, "sku": case.sku, "kind": "receipt", "quantity": stock,
                    "lot": lot, "expires_on": expires, "occurred_at": noon(first)})
        issued = 0
        for d in range(DAYS):
            units = poisson(rng, rate)
            if units and issued + units < stock:
                out.append({"tenant": "shop", "location": warehouse, "sku": case.sku, "kind": "issue",
                            "quantity": -units, "lot": lot, "occurred_at": noon(day_of(d))})
                issued += units
        # the warehouse keeps a healthy stock: top it up so its days of supply stay between target and threshold
        top_up = {"tenant": "shop", "location": warehouse, "sku": case.sku, "kind": "receipt", "quantity": issued,
                  "lot": lot, "occurred_at": noon(TODAY - timedelta(days=1))}
        if case.kind == "partner":
            top_up["expires_on"] = expires  # it arrives as a delivery of the brand's lot
        out.append(top_up)
    return out


# -- playing the history through `lotpulse replay` -----------------------------------------------------------------

def replay(actions: list[dict[str, Any]], folder: Path) -> tuple[dict[str, Any], float]:
    """Write the history, play it with ``lotpulse replay`` in its own process; answers its report and the time."""
    history = folder / "history.jsonl"
    history.write_text("".join(json.dumps(a) + "\n" for a in actions))
    return run_replay([str(history)], folder)


# -- judging the outcome -----------------------------------------------------------------------------------------

def outcome(report: dict[str, Any]) -> tuple[dict[str, set[str]], dict[str, str]]:
    """What the replay raised: per signal the SKUs it flagged, and the first-named cause per flagged SKU."""
    raised: dict[str, set[str]] = {name: set() for name in SIGNALS}
    causes: dict[str, str] = {}
    for alert in report["alerts"]:
        sku = next((s.get("label") for s in alert["subjects"] if s["kind"] == "sku"), None)
        if sku is None or alert["kind"] not in raised:
            continue
        raised[alert["kind"]].add(sku)
        evidence = alert["evidence"]
        first = (evidence.get("candidateCauses") or [{}])[0].get("code") or evidence.get("rootCause")
        if first:
            causes[f"{alert['kind']}:{sku}"] = first
    for rec in report["transferRecommendations"]:
        if rec["status"] == "open":
            raised["transfer" if rec["kind"] == "internal" else "partner_transfer"].add(rec["sku"])
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
    scratch = Path(args.keep or tempfile.mkdtemp(prefix="lotpulse-signals-"))
    scratch.mkdir(parents=True, exist_ok=True)
    if args.series:
        backtest(args, scratch)
    if args.positions:
        server = EmbeddedServer(scratch / "timing-db", log_path=scratch / "secantusd-timing.log", sync_on_commit=False)
        server.start()
        try:
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


def backtest(args: argparse.Namespace, folder: Path) -> None:
    actions, cases = generate(args.series, args.seed)
    moves = sum(len(a["movements"]) for a in actions if a["action"] == "movements")
    report, seconds = replay(actions, folder)
    raised, causes = outcome(report)
    kinds = ", ".join(f"{k} {sum(1 for c in cases if c.kind == k)}" for k in dict.fromkeys(c.kind for c in cases))
    print(f"back-test: {len(cases)} series ({kinds}), {len(actions)} actions with {moves} movements played by "
          f"`lotpulse replay` in {seconds:.0f} s; {len(report['errors'])} actions refused")
    for error in report["errors"][:5]:
        print(f"  refused: {error}")
    print(f"{'signal':<18} {'recall':>7} {'precision':>9}   tp  fp  fn   (targets ≥ 0.95 and ≥ 0.95)")
    for name, (recall, precision, tp, fp, fn) in scores(cases, raised).items():
        print(f"{name:<18} {recall:7.3f} {precision:9.3f}  {tp:3d} {fp:3d} {fn:3d}")
    named = [c for c in cases if c.cause]
    right = sum(1 for c in named for kind in c.expects if causes.get(f"{kind}:{c.sku}") == c.cause)
    print(f"first-named cause is the injected one: {right}/{len(named)}")
    ours, naive, n = forecast_error(cases)
    print(f"forecast error (14-day holdout MAE over {n} histories): baseline {ours:.2f}, naive seasonal "
          f"{naive:.2f} units/day: ratio {ours / naive:.3f} (below 1 beats it)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--positions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="write the history, the replay report and the databases' logs here")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
