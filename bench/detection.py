"""Detection truth on labelled scenarios: recall, precision, leaks and detection latency, through ``lotpulse replay``.

Generates N random supply chains (a supplier, a retailer, a carrier, and two bystanders: a 3PL that is not this
dispatch's carrier and another customer of the supplier), each with one injected fault or none: a lot swap, a
quantity delta, a wrong expiry date, a short-dated dispatch, temperature excursions of varied length seen by varied
sampling (with a one-reading dip, or two of them 90 minutes apart), one-reading glitches up and down, batches
uploaded late, out of order or twice, a buffered upload after a coverage gap, a logger travelling with the dispatch,
a silent sensor, a slow mover, a fresh receipt and clean runs. Every scenario is written as a history and all of
them are played by one ``lotpulse replay`` call (each on its own scratch database); its report is scored against the
labels:

- recall: labelled alerts raised / labelled alerts; precision: raised alerts that match a label / raised alerts;
- leaks: (alert or event, tenant) pairs reaching a tenant outside the alert's audience rule;
- audience misses: labelled alerts that did not reach every tenant their rule names;
- latency: virtual minutes from the moment the truth became detectable to the alert (p50 / p99).

Labels come from what was injected, never from the detector. Excursion lengths are whole multiples of the sampling
interval, so each is unambiguously above or below the SKU's minimum duration, and temperature steps stay under the
fast-rise threshold unless the scenario is about a fast rise.

    python bench/detection.py [--scenarios 240] [--seed 11] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, run_replay

MIN_MINUTES = 15
RISE_C = 5.0
SILENCE = 30  # LOTPULSE_SENSOR_OFFLINE_MINUTES (the default)


@dataclass
class Label:
    kind: str
    key: str  # dispatch ref, sensor device, or lot code
    audience: set[str]
    step_at: datetime  # when the truth became detectable
    owner: str | None = None
    started_at: datetime | None = None  # excursions: the injected start


@dataclass
class Scenario:
    name: str
    kind: str
    actions: list[dict[str, Any]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    rules: dict[str, set[str]] = field(default_factory=dict)  # alert key -> who may hear it
    outsiders: set[str] = field(default_factory=set)

    def add(self, action: str, at: datetime | None = None, **fields: Any) -> None:
        item: dict[str, Any] = {"action": action, **fields}
        if at is not None:
            item["at"] = at.isoformat()
        self.actions.append(item)


def iso(at: datetime) -> str:
    return at.isoformat()


class Chain:
    """One random supply chain and the history that builds it."""

    def __init__(self, rng: random.Random, n: int, kind: str) -> None:
        self.rng = rng
        self.t0 = datetime(2026, 10, 1, 6, 0, tzinfo=UTC) + timedelta(days=rng.randint(0, 30))
        self.sup, self.ret, self.tpl, self.out, self.cus = (f"{p}{n}" for p in ("sup", "ret", "tpl", "out", "cus"))
        self.carrier = rng.random() < 0.7
        self.share = rng.choice(["both", "both", "sensors", "alerts", "none"])  # retailer -> supplier
        self.limit = rng.choice([4.0, 8.0, 25.0])
        self.pack = rng.choice([1, 6, 12])
        self.quantity = self.pack * rng.randint(2, 20)
        self.lot = f"B{rng.randint(100000, 999999)}"
        self.ref = f"ASN-{n}"
        self.expires = (self.t0 + timedelta(days=30)).date()
        self.s = Scenario(f"s{n:03d}-{kind}", kind, outsiders={self.out, self.cus})
        self.parties = {self.sup, self.ret, *([self.tpl] if self.carrier else [])}

    def setup(self, min_remaining: int | None = None, expires_days: int = 30) -> None:
        s, t0 = self.s, self.t0
        self.parties = {self.sup, self.ret, *([self.tpl] if self.carrier else [])}
        self.shelf = 30
        self.expires = (t0 + timedelta(days=expires_days)).date()
        s.add("clock", t0)
        kinds = {self.sup: "supplier", self.ret: "retailer", self.tpl: "logistics", self.out: "logistics",
                 self.cus: "retailer"}
        for tenant, kind in kinds.items():
            s.add("tenant", id=tenant, kind=kind)
        back = {"both": ["sensors", "alerts"], "sensors": ["sensors"], "alerts": ["alerts"], "none": []}[self.share]
        s.add("partnership", inviter=self.sup, invitee=self.ret, inviter_shares=["sku_master", "dispatches"],
              invitee_shares=["dispatches", "stock", *back])
        for other in (self.tpl, self.out):
            s.add("partnership", inviter=self.sup, invitee=other, inviter_shares=["sku_master", "dispatches"],
                  invitee_shares=["dispatches", "sensors", "alerts"])
        s.add("partnership", inviter=self.sup, invitee=self.cus, inviter_shares=["sku_master", "dispatches"],
              invitee_shares=["dispatches", "sensors", "alerts", "stock"])
        s.add("sku", tenant=self.sup, code="SKU-A", shelf_life_days=self.shelf, temp_max_c=self.limit,
              pack_size=self.pack, excursion_sensitivity=0.2, excursion_min_minutes=MIN_MINUTES,
              min_remaining_shelf_life_days=min_remaining)
        s.add("location", tenant=self.ret, code="STORE-1", kind="store")
        s.add("location", tenant=self.sup, code="DC-1", kind="dc")
        s.add("location", tenant=self.tpl, code="TRUCK-1", kind="dc")
        s.add("location", tenant=self.cus, code="SHOP-9", kind="store")
        # The bystander customer's own shelf holds the same SKU: it must never hear of the retailer's findings.
        s.rules = {
            "mismatch": set(self.parties),
            "dispatch_expiry": set(self.parties),
            "store_sensor": {self.ret} | ({self.sup} if self.share == "both" else set()),
            "truck_sensor": set(self.parties),
            "stock_expiry": {self.ret} | ({self.sup} if self.share in ("both", "alerts") else set()),
        }

    def dispatch(self, at: datetime) -> None:
        line = {"sku": "SKU-A", "lot": self.lot, "quantity": self.quantity, "expires_on": self.expires.isoformat(),
                "produced_on": (self.expires - timedelta(days=self.shelf)).isoformat()}
        self.s.add("dispatch", at, tenant=self.sup, ref=self.ref, consignee=self.ret, to_location="STORE-1",
                   carrier=self.tpl if self.carrier else None, lines=[line], expected_on=at.date().isoformat())

    def receive(self, at: datetime, lot: str | None = None, quantity: int | None = None,
                expires: str | None = None) -> None:
        line = {"sku": "SKU-A", "lot": lot or self.lot, "quantity": self.quantity if quantity is None else quantity,
                "expires_on": expires or self.expires.isoformat()}
        self.s.add("receipt", at, tenant=self.ret, dispatch=self.ref, location="STORE-1", lines=[line], final=True)

    def label(self, kind: str, key: str, rule: str, step_at: datetime, **extra: Any) -> None:
        self.s.labels.append(Label(kind, key, set(self.s.rules[rule]), step_at, **extra))


def temps_series(rng: random.Random, start: datetime, minutes: int, every: int, base: float,
                 hot: list[tuple[datetime, int, float]]) -> list[list[Any]]:
    """Samples every ``every`` minutes; inside each (start, length, temperature) of ``hot`` the temperature."""
    samples = []
    at = start
    while at < start + timedelta(minutes=minutes):
        c = base + rng.uniform(-0.3, 0.3)
        for h_start, length, h_c in hot:
            if h_start <= at < h_start + timedelta(minutes=length):
                c = h_c + rng.uniform(-0.3, 0.3)
        samples.append([iso(at), round(c, 2)])
        at += timedelta(minutes=every)
    return samples


def uploads(samples: list[list[Any]], every: int, delay: int = 1) -> list[tuple[datetime, list[list[Any]]]]:
    """Gateway uploads of ``every`` minutes of samples, each ``delay`` minutes after its last sample."""
    batches: list[tuple[datetime, list[list[Any]]]] = []
    current: list[list[Any]] = []
    window_end: datetime | None = None
    for sample in samples:
        at = datetime.fromisoformat(sample[0])
        if window_end is None:
            window_end = at + timedelta(minutes=every)
        if at >= window_end:
            batches.append((window_end + timedelta(minutes=delay), current))
            current, window_end = [], window_end + timedelta(minutes=every)
            while at >= window_end:
                window_end += timedelta(minutes=every)
        current.append(sample)
    if current and window_end is not None:
        batches.append((window_end + timedelta(minutes=delay), current))
    return batches


def scenario(rng: random.Random, n: int, kind: str) -> Scenario:
    c = Chain(rng, n, kind)
    s = c.s
    if kind == "truck_excursion":
        c.carrier = True  # the logger belongs to the carrier
    if kind == "slow_mover":
        c.quantity = c.pack * 20
    if kind == "short_dated_dispatch":
        c.setup(min_remaining=20, expires_days=10)
    else:
        c.setup()
    t = c.t0 + timedelta(hours=1)
    c.dispatch(t)
    if kind == "short_dated_dispatch":
        for party in c.parties:
            s.labels.append(Label("expiry_risk", c.ref, set(s.rules["dispatch_expiry"]), t, owner=party))
    rec = t + timedelta(hours=rng.randint(2, 8))
    if kind == "lot_swap":
        swapped = c.lot[:-1] + str((int(c.lot[-1]) + 1) % 10)
        c.receive(rec, lot=swapped)
        c.label("mismatch", c.ref, "mismatch", rec)
        return s
    if kind == "quantity_delta":
        c.receive(rec, quantity=c.quantity - rng.randint(1, c.quantity - 1))
        c.label("mismatch", c.ref, "mismatch", rec)
        return s
    if kind == "wrong_date":
        c.receive(rec, expires=(c.expires + timedelta(days=rng.choice([-9, 7, 30]))).isoformat())
        c.label("mismatch", c.ref, "mismatch", rec)
        return s
    if kind == "truck_excursion":
        # The carrier's logger travels with the dispatch; the truck warms up before delivery.
        every = rng.choice([1, 2, 5])
        s.add("sensor", t, tenant=c.tpl, device="logger", location="TRUCK-1", dispatch=c.ref)
        start = t + timedelta(minutes=5)
        m = rng.randint(-(-MIN_MINUTES // every), 60 // every)
        hot_at = start + timedelta(minutes=every * rng.randint(6, 12))
        base = c.limit - rng.uniform(1.2, 2.0)
        samples = temps_series(rng, start, every * (m + 12) + 60, every, base, [(hot_at, every * m, c.limit + 1.5)])
        _play_uploads(s, "logger", c.tpl, uploads(samples, 15))
        c.label("sensor_spike", "logger", "truck_sensor", hot_at + timedelta(minutes=MIN_MINUTES - every),
                started_at=hot_at)
        c.receive(datetime.fromisoformat(samples[-1][0]) + timedelta(minutes=2))
        return s
    if kind == "slow_mover":
        c.receive(rec)
        sold = rng.randint(3, 10)
        day = rec + timedelta(days=2)
        moves = [{"sku": "SKU-A", "kind": "sale", "quantity": -1, "lot": c.lot,
                  "occurred_at": iso(day + timedelta(days=i))} for i in range(sold)]
        late = c.t0 + timedelta(days=22)  # 8 days left, hundreds of days to sell at this pace
        s.add("movements", late, tenant=c.ret, location="STORE-1", movements=moves)
        c.label("expiry_risk", c.lot, "stock_expiry", late, owner=c.ret)
        return s
    if kind == "fresh_receipt":
        c.receive(rec)
        s.add("sweep", rec + timedelta(days=1))
        s.add("sweep", rec + timedelta(days=3))
        return s
    c.receive(rec)
    if kind in ("clean_receipt",):
        return s
    # Everything below watches the retailer's shelf with its sensor.
    every = rng.choice([1, 2, 3, 5, 10]) if kind not in ("dip", "glitch_up", "glitch_down") else rng.choice([1, 5])
    silence = 240 if kind == "buffered" else None
    start = rec + timedelta(minutes=10)
    s.add("sensor", start, tenant=c.ret, device="probe", location="STORE-1", interval_minutes=None,
          max_silence_minutes=silence)
    # Steps from normal to hot stay under the fast-rise threshold (noise included), so only duration decides.
    base = c.limit - rng.uniform(1.2, 2.0)
    hot_c = c.limit + rng.uniform(1.0, 1.8)
    hot: list[tuple[datetime, int, float]] = []
    positives: list[datetime] = []

    def excursion(at: datetime, m: int) -> None:
        hot.append((at, every * m, hot_c))
        if every * m >= MIN_MINUTES:
            positives.append(at)

    first = start + timedelta(minutes=every * rng.randint(8, 12))
    if kind in ("excursion", "late_batch", "out_of_order", "resent", "buffered"):
        excursion(first, rng.randint(-(-MIN_MINUTES // every), 90 // every))
    elif kind == "short_excursion":
        excursion(first, rng.randint(1, (MIN_MINUTES - 1) // every) if every < MIN_MINUTES else 1)
    elif kind == "dip":
        m = rng.randint(-(-MIN_MINUTES // every) + 2, 60 // every)
        half = m // 2
        excursion(first, half)
        hot.append((first + timedelta(minutes=every * (half + 1)), every * (m - half - 1), hot_c))
        positives[:] = [first]
    elif kind == "two_excursions":
        m = rng.randint(-(-MIN_MINUTES // every), 30 // every)
        excursion(first, m)
        excursion(first + timedelta(minutes=every * m + 90), m)
    elif kind == "fast_rise":
        # A jump of more than the rise threshold, confirmed by a second reading, alerts before the minimum duration.
        every = rng.choice([1, 2, 5])
        hot_c = base + RISE_C + rng.uniform(1.5, 3.0)
        hot.append((first, every * 2, hot_c))
        positives.append(first)
    end = max((h_start + timedelta(minutes=length) for h_start, length, _ in hot), default=start)
    span = max(240, int((end - start).total_seconds() // 60) + 60)
    samples = temps_series(rng, start, span, every, base, hot)
    if kind in ("glitch_up", "glitch_down"):
        i = rng.randint(10, len(samples) - 10)
        samples[i][1] = round(base + (15 if kind == "glitch_up" else -20), 2)
    batches = uploads(samples, rng.choice([5, 15, 30]) if kind != "buffered" else 15)
    if kind == "late_batch":
        # The batch holding the excursion's first readings reaches the hub after every other one.
        hit = next(i for i, (_, b) in enumerate(batches) if any(datetime.fromisoformat(x[0]) >= first for x in b))
        late = batches.pop(hit)
        batches.append((batches[-1][0] + timedelta(minutes=5), late[1]))
    elif kind == "out_of_order":
        # Pairs of uploads arrive together, the later one first.
        for i in range(0, len(batches) - 1, 2):
            (_, a), (b_at, b) = batches[i], batches[i + 1]
            batches[i], batches[i + 1] = (b_at, b), (b_at + timedelta(minutes=1), a)
    elif kind == "resent":
        batches = [b for batch in batches for b in ([batch, (batch[0] + timedelta(minutes=1), batch[1])]
                                                    if rng.random() < 0.5 else [batch])]
    elif kind == "buffered":
        # Out of coverage for two hours: everything from the excursion on arrives in one upload afterwards.
        cut = next(i for i, (_, b) in enumerate(batches) if any(datetime.fromisoformat(x[0]) >= first for x in b))
        held = [x for _, b in batches[cut:] for x in b]
        batches = batches[:cut] + [(datetime.fromisoformat(held[-1][0]) + timedelta(minutes=3), held)]
    for at in positives:
        step = at + timedelta(minutes=-(-MIN_MINUTES // every) * every - every)
        if kind == "fast_rise":
            step = at + timedelta(minutes=every)
        c.label("sensor_spike", "probe", "store_sensor", step, started_at=at)
    if kind == "silent":
        # The sensor stops after two hours; the clock keeps moving.
        stop = start + timedelta(minutes=120)
        batches = [(at, [x for x in b if datetime.fromisoformat(x[0]) < stop]) for at, b in batches]
        batches = [(at, b) for at, b in batches if b]
        last = max(datetime.fromisoformat(x[0]) for _, b in batches for x in b)
        c.label("sensor_offline", "probe", "store_sensor", last + timedelta(minutes=SILENCE))
        _play_uploads(s, "probe", c.ret, batches)
        for k in range(1, 9):
            s.add("clock", batches[-1][0] + timedelta(minutes=10 * k))
        return s
    _play_uploads(s, "probe", c.ret, batches)
    return s


def _play_uploads(s: Scenario, device: str, tenant: str, batches: list[tuple[datetime, list[list[Any]]]]) -> None:
    for at, samples in batches:
        s.add("readings", at, tenant=tenant, device=device, samples=samples)


KINDS = [
    "clean_receipt", "lot_swap", "quantity_delta", "wrong_date", "short_dated_dispatch", "excursion",
    "short_excursion", "dip", "two_excursions", "fast_rise", "glitch_up", "glitch_down", "late_batch",
    "out_of_order", "resent", "buffered", "truck_excursion", "silent", "slow_mover", "fresh_receipt", "clean_run",
]


LATE_KINDS = {"late_batch", "out_of_order", "buffered"}  # the hub cannot know before the readings arrive


def alert_key(alert: dict[str, Any]) -> str:
    kinds = {s["kind"]: s.get("label") or s["id"] for s in alert["subjects"]}
    if alert["kind"] in ("sensor_spike", "sensor_offline"):
        return kinds.get("sensor", "")
    if alert["kind"] == "mismatch" or "dispatch" in kinds:
        return kinds.get("dispatch", "")
    return kinds.get("lot", "")


def rule_of(s: Scenario, alert: dict[str, Any]) -> set[str]:
    kinds = {sub["kind"] for sub in alert["subjects"]}
    if alert["kind"] == "mismatch" or (alert["kind"] == "expiry_risk" and "dispatch" in kinds):
        return s.rules["mismatch"]
    if alert["kind"] in ("sensor_spike", "sensor_offline"):
        return s.rules["truck_sensor" if alert_key(alert) == "logger" else "store_sensor"]
    return s.rules["stock_expiry"]


@dataclass
class Score:
    labels: int = 0
    found: int = 0
    raised: int = 0
    true: int = 0
    leaks: int = 0
    audience_misses: int = 0
    events: int = 0  # events about the alerts, each checked for leaks
    silent_alerts: int = 0  # alerts with no event in the report (their delivery could not be checked)
    latencies: list[float] = field(default_factory=list)
    timely: list[float] = field(default_factory=list)  # scenarios whose readings arrive in time
    misses: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)


def score(scenarios: list[Scenario], reports: dict[str, Any]) -> Score:
    result = Score()
    for s in scenarios:
        report = reports[s.name]
        alerts = report["alerts"]
        used: set[str] = set()
        for label in s.labels:
            result.labels += 1
            match = None
            for alert in alerts:
                if alert["id"] in used or alert["kind"] != label.kind or alert_key(alert) != label.key:
                    continue
                if label.owner is not None and alert["owner"] != label.owner:
                    continue
                if label.started_at is not None:
                    started = datetime.fromisoformat(alert["evidence"]["startedAt"])
                    if abs((started - label.started_at).total_seconds()) > 20 * 60:
                        continue
                match = alert
                break
            if match is None:
                result.misses.append(f"{s.name}: {label.kind} {label.key}")
                continue
            used.add(match["id"])
            result.found += 1
            raised = datetime.fromisoformat(match["raisedAt"])
            minutes = max((raised - label.step_at).total_seconds() / 60, 0.0)
            result.latencies.append(minutes)
            if s.kind not in LATE_KINDS:
                result.timely.append(minutes)
            heard = set(match["audience"])
            if label.owner is None and heard != label.audience:
                result.audience_misses += len(label.audience - heard)
        for alert in alerts:
            result.raised += 1
            if alert["id"] in used:
                result.true += 1
            else:
                result.false.append(f"{s.name}: {alert['kind']} {alert_key(alert)} {alert['title']}")
            allowed = rule_of(s, alert)
            result.leaks += len(set(alert["audience"]) - allowed)
            result.silent_alerts += not alert["events"]
            for event in alert["events"]:
                result.events += 1
                result.leaks += len(set(event["audience"]) - allowed)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", type=int, default=240)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", help="write the histories and the report to this folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    scenarios = [scenario(rng, n, KINDS[n % len(KINDS)]) for n in range(args.scenarios)]
    folder = Path(args.keep or tempfile.mkdtemp(prefix="lotpulse-detection-"))
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for s in scenarios:
        path = folder / f"{s.name}.jsonl"
        path.write_text("".join(json.dumps(a) + "\n" for a in s.actions))
        files.append(str(path))
    raw, elapsed = run_replay(files, folder)
    reports = {Path(path).stem: report for path, report in raw.items()}
    errors = [(name, e) for name, r in reports.items() for e in r["errors"]]
    result = score(scenarios, reports)
    recall = result.found / result.labels if result.labels else 1.0
    precision = result.true / result.raised if result.raised else 1.0
    lat = result.latencies or [0.0]
    print(f"scenarios {len(scenarios)} ({len(KINDS)} kinds), labelled alerts {result.labels}, raised {result.raised}")
    print(f"recall {recall:.4f}  precision {precision:.4f}  leaks {result.leaks} (over {result.raised} alerts and "
          f"{result.events} events; {result.silent_alerts} alerts without events)  "
          f"audience misses {result.audience_misses}")
    timely = result.timely or [0.0]
    print(f"detection latency (virtual minutes, step -> alert) p50 {percentile(lat, 0.5):.1f}  "
          f"p99 {percentile(lat, 0.99):.1f}; without late-arriving data p50 {percentile(timely, 0.5):.1f}  "
          f"p99 {percentile(timely, 0.99):.1f}")
    print(f"replay wall time {elapsed:.0f} s ({elapsed / len(scenarios):.2f} s per scenario)")
    for line in (result.misses + result.false)[:30]:
        print("  " + line)
    for name, error in errors[:10]:
        print(f"  refused in {name}: {error}")
    ok = recall == 1.0 and precision >= 0.99 and result.leaks == 0 and result.silent_alerts == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
