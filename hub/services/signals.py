"""The planning sweep: ``velocity_drop``, ``velocity_spike`` and ``obsolescence_risk`` alerts, transfer recommendations.

Runs beside the expiry sweep (``lotpulse sweep`` and every ``sweep_interval_minutes``). It reads the daily demand
series (written with the movements, so no ledger scan), judges each, and only for what it flags gathers the
evidence of candidate and root causes from the hub's own data. Incremental: the first sweep of a day judges every
series (the windows moved); later sweeps that day judge only series that changed since the previous sweep started.

A finding already raised is never raised twice: while its figures (severity, causes, units sold in the window,
on-hand) stay the same it is left alone (no event); when they move, the open alert is updated in place
(``alert.updated``, same id); a finding that went away resolves its alert (``resolved_by`` = ``system:planning``),
and one that comes back reopens it. Open FEFO shelf alerts are brought up to date, or resolved, the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.config import Settings
from hub.dates import utcnow
from hub.db import Database
from hub.detect import demand as model
from hub.detect import obsolescence, velocity
from hub.detect.fefo import FefoRules
from hub.detect.transfers import PlanningRules
from hub.detect.velocity import CauseFacts, VelocityRules
from hub.events.log import emit
from hub.leases import tenant_ids
from hub.models.alert import Alert, AlertKind, AlertStatus, Severity, SubjectRef
from hub.models.dispatch import OPEN_STATUSES, PLANNED_STATUSES, Dispatch
from hub.models.excursion import Excursion
from hub.models.location import Location
from hub.models.lot import Lot, LotStatus
from hub.models.movement import Movement
from hub.models.planning import DemandSeries, PlanningPolicy
from hub.models.receipt import Receipt, ReceiptOutcome
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from hub.services import demand, fefo
from hub.services.alerts import SEVERITY_ORDER, alert_payload, open_alerts, raise_alert
from hub.services.planning_audience import partner_audience
from hub.sharding import Unsharded

log = logging.getLogger("lotpulse.planning")
RESOLVER = "system:planning"
HELD = (LotStatus.on_hold.value, LotStatus.quarantined.value, LotStatus.recalled.value)
NEAR_EXPIRY_DAYS = 7
STATE_ID = "planning-sweep"
STATE = "planning_state"
STATE_SHARDING = Unsharded("one document per sweep kind: when the planning sweep last ran")


@dataclass(frozen=True)
class SignalRules:
    velocity: VelocityRules = VelocityRules()
    obsolescence: obsolescence.ObsolescenceRules = obsolescence.ObsolescenceRules()
    planning: PlanningRules = PlanningRules()
    lead_time_days: float = 7.0
    review_days: float = 7.0
    target_days: float = 60.0


def rules_from(settings: Settings) -> SignalRules:
    return SignalRules(
        velocity=VelocityRules(settings.velocity_window_days, settings.velocity_drop_pct, settings.velocity_spike_pct,
                               settings.velocity_min_expected_units),
        obsolescence=obsolescence.ObsolescenceRules(
            settings.obsolescence_max_days_of_supply, settings.obsolescence_idle_days,
            settings.obsolescence_receipt_cover_days, settings.velocity_drop_pct),
        planning=PlanningRules(settings.planning_service_z, settings.planning_transit_days),
        lead_time_days=settings.planning_lead_time_days,
        review_days=settings.planning_review_days,
        target_days=settings.planning_target_days_of_supply,
    )


@dataclass
class Policy:
    """The planning parameters in force for one position (policy at the location, else for the SKU, else defaults)."""

    lead_time_days: float
    review_days: float
    target_days: float
    max_days_of_supply: float
    discontinued: bool = False
    lead_time_set: bool = False


async def policies_for(keys: list[tuple[str, Any, Any]], rules: SignalRules,
                       session: AsyncClientSession | None = None) -> dict[tuple[str, Any, Any], Policy]:
    found: dict[tuple[str, Any, Any], PlanningPolicy] = {}
    if keys:
        query = {"$or": [{"tenant_id": t, "sku_id": s} for t, s in sorted({(k[0], k[2]) for k in keys}, key=str)]}
        async for policy in PlanningPolicy.find(query, session=session):
            found[(policy.tenant_id, policy.location_id, policy.sku_id)] = policy
    answer = {}
    for tenant, location, sku in keys:
        chosen = found.get((tenant, location, sku)) or found.get((tenant, None, sku))
        general = found.get((tenant, None, sku))

        def pick(name: str, default: float, chosen: Any = chosen, general: Any = general) -> float:
            for p in (chosen, general):
                value = getattr(p, name) if p is not None else None
                if value is not None:
                    return float(value)
            return default

        lead = pick("lead_time_days", -1.0)
        answer[(tenant, location, sku)] = Policy(
            lead_time_days=lead if lead >= 0 else rules.lead_time_days,
            review_days=pick("review_days", rules.review_days),
            target_days=pick("target_days_of_supply", rules.target_days),
            max_days_of_supply=pick("max_days_of_supply", rules.obsolescence.max_days_of_supply),
            discontinued=bool((chosen and chosen.discontinued) or (general and general.discontinued)),
            lead_time_set=lead >= 0,
        )
    return answer


@dataclass(frozen=True)
class SiteFacts:
    """What transfer planning needs of one judged series."""

    location_id: Any
    rate: float  # forecast units per day
    sigma: float | None  # daily spread of the baseline's errors
    on_hand: int
    inbound: int
    sku_owner: str = ""  # a holder's stock of another tenant's SKU may move to that tenant's other partners (VMI)


@dataclass
class Judged:
    """What the sweep concluded for one series."""

    series: demand.SeriesView
    policy: Policy
    baseline: model.Baseline | None
    velocity: velocity.VelocityFinding | None = None
    window_start: date | None = None
    obsolescence: obsolescence.ObsolescenceFinding | None = None
    rate_now: float = 0.0
    current: model.Baseline | None = None
    idle_days: int | None = None
    inbound: int = 0


def judge(view: demand.SeriesView, policy: Policy, today: date, rules: SignalRules, inbound: int = 0) -> Judged:
    """Pure: the velocity and obsolescence findings of one series as of ``today``."""
    window = rules.velocity.window_days
    start = today - timedelta(days=window)
    baseline = model.fit(view.days, until=start)
    judged = Judged(view, policy, baseline, window_start=start, inbound=inbound)
    if baseline is not None:
        expected = baseline.expected(start, window)
        actual = sum(d.units for d in view.days if d.day >= start)
        stock = max(int(view.raw.get("on_hand", 0)), 0) + inbound
        judged.velocity = velocity.assess(expected, actual, rules.velocity, stock, policy.lead_time_days)
    current = model.fit(view.days, until=today)
    judged.current = current
    judged.rate_now = current.daily_mean if current is not None else 0.0
    last_sale = view.raw.get("last_sale_day")
    first = view.raw.get("first_day")
    since = last_sale or first
    # Idle means unsold while stock sat there: a shelf that was empty (a line sold out, restocked for the season)
    # counts from the last day it ended empty.
    emptied = next((d.day.isoformat() for d in reversed(view.days) if d.stockout), None)
    if emptied is not None and (since is None or emptied > since):
        since = emptied
    judged.idle_days = (today - date.fromisoformat(since)).days if since else None
    obs_rules = obsolescence.ObsolescenceRules(policy.max_days_of_supply, rules.obsolescence.idle_days,
                                               rules.obsolescence.cover_days, rules.obsolescence.drop_pct)
    on_hand = int(view.raw.get("on_hand", 0))
    if policy.discontinued and on_hand > 0:
        judged.obsolescence = obsolescence.ObsolescenceFinding(
            "discontinued", on_hand / judged.rate_now if judged.rate_now > 0 else None, judged.idle_days, "warning")
    else:
        judged.obsolescence = obsolescence.assess(on_hand, judged.rate_now, judged.idle_days, obs_rules)
    return judged


async def _moved_on(judged: list[Judged], today: date, rules: SignalRules) -> None:
    """Stock a location passes on (a warehouse feeding its stores by transfer) is not idle: a ``no_consumption``
    finding counts from the last transfer out as well. Read from the ledger for those findings alone (the index's
    equality prefix, newest first)."""
    for j in judged:
        if j.obsolescence is None or j.obsolescence.reason != "no_consumption":
            continue
        raw = j.series.raw
        last = await Movement.get_pymongo_collection().find_one(
            {"tenant_id": raw["tenant_id"], "location_id": raw["location_id"], "sku_id": raw["sku_id"],
             "kind": "transfer_out"}, {"occurred_at": 1}, sort=[("occurred_at", -1)])
        moved = (today - last["occurred_at"].date()).days if last is not None else None
        if moved is not None and j.idle_days is not None and moved < j.idle_days:
            j.idle_days = max(moved, 0)
            j.obsolescence = obsolescence.assess(
                int(raw.get("on_hand", 0)), j.rate_now, j.idle_days,
                obsolescence.ObsolescenceRules(j.policy.max_days_of_supply, rules.obsolescence.idle_days,
                                               rules.obsolescence.cover_days, rules.obsolescence.drop_pct))


@dataclass
class SignalReport:
    series: int = 0
    judged: int = 0
    raised: int = 0
    resolved: int = 0
    recommendations: int = 0
    incremental: bool = False
    seconds: float = 0.0
    findings: dict[str, int] = field(default_factory=dict)


def _key(kind: str, raw: dict[str, Any]) -> str:
    return f"{kind}:{raw['tenant_id']}:{raw['location_id']}:{raw['sku_id']}"


async def _state(today: date, key: str) -> tuple[datetime | None, datetime]:
    """When the previous sweep of ``today`` started (None: none yet today), and this sweep's start."""
    started = utcnow()
    state = DemandSeries.get_pymongo_collection().database[STATE]
    previous = await state.find_one({"_id": key})
    if previous is None or previous.get("day") != today.isoformat():
        return None, started
    return previous["started_at"].replace(tzinfo=UTC), started


async def _save_state(today: date, started: datetime, key: str) -> None:
    state = DemandSeries.get_pymongo_collection().database[STATE]
    await state.update_one({"_id": key}, {"$set": {"day": today.isoformat(), "started_at": started}}, upsert=True)


async def sweep(database: Database, today: date | None = None, rules: SignalRules | None = None,
                full: bool = False, page: int = 1000, tenants: list[str] | None = None,
                state_key: str = STATE_ID) -> SignalReport:
    """Judge the demand series (all of them, or those changed since the last sweep today) and raise, update or
    resolve their alerts; then refresh the transfer recommendations of the networks that changed.

    ``tenants``: only these holders' series (a hub process sweeps the tenants whose partitions it leases, with its
    own ``state_key``, so another process's sweep never hides a change from it).
    """
    from hub.services import transfers  # the recommendations use this module's policies and judgement

    clock = time.perf_counter()
    today = today or utcnow().date()
    rules = rules or SignalRules()
    since, started = await _state(today, state_key)
    report = SignalReport(incremental=since is not None and not full)
    collection = DemandSeries.get_pymongo_collection()
    query: dict[str, Any] = {} if tenants is None else {"tenant_id": {"$in": tenants}}
    if report.incremental:
        query["updated_at"] = {"$gte": since}
    known: dict[tuple[str, Any], dict[Any, SiteFacts]] = {}
    grid = demand.calendar(today)
    # One cursor over the series (a page per sort-and-limit query costs a scan each on some servers).
    batch: list[dict[str, Any]] = []
    async for raw in collection.find(query, batch_size=page):
        batch.append(raw)
        if len(batch) >= page:
            await _judge_page(database, batch, today, rules, grid, known, report)
            batch = []
    if batch:
        await _judge_page(database, batch, today, rules, grid, known, report)
    report.recommendations = await transfers.refresh(database, known, today, rules, complete=not report.incremental)
    updated, resolved = await fefo.refresh_open(database, today, tenants)
    report.raised += updated
    report.resolved += resolved
    await _save_state(today, started, state_key)
    report.seconds = time.perf_counter() - clock
    return report


async def _judge_page(database: Database, batch: list[dict[str, Any]], today: date, rules: SignalRules,
                      grid: list[tuple[date, str]], known: dict[tuple[str, Any], dict[Any, SiteFacts]],
                      report: SignalReport) -> None:
    report.series += len(batch)
    keys = [(r["tenant_id"], r["location_id"], r["sku_id"]) for r in batch]
    policies = await policies_for(keys, rules)
    inbound = await inbound_units(keys)
    judged = [judge(demand.view(raw, today, days_of=grid), policies[k], today, rules, inbound.get(k, 0))
              for raw, k in zip(batch, keys)]
    await _moved_on(judged, today, rules)
    report.judged += len(judged)
    for j, (tenant, location, sku) in zip(judged, keys):
        known.setdefault((tenant, sku), {})[location] = SiteFacts(
            location, j.rate_now, j.current.residual_sd if j.current else None,
            int(j.series.raw.get("on_hand", 0)), j.inbound, j.series.raw.get("sku_owner_id") or tenant)

    found = await gather([j for j in judged if j.velocity is not None or j.obsolescence is not None], today, rules)

    async def work(session: AsyncClientSession) -> tuple[int, int]:
        return await _apply(session, judged, today, rules, report, found)

    raised, resolved = await database.in_transaction(work)
    report.raised += raised
    report.resolved += resolved


async def positions_of(keys: list[tuple[str, Any, Any]]) -> dict[tuple[str, Any, Any], list[dict[str, Any]]]:
    """Stock positions with stock of each (holder, location, SKU): one indexed equality query each, a few at a
    time (on SecantusDB far cheaper than one query with a long ``$in``)."""
    found: dict[tuple[str, Any, Any], list[dict[str, Any]]] = {}
    gate = asyncio.Semaphore(16)

    async def one(key: tuple[str, Any, Any]) -> None:
        async with gate:
            docs = await StockPosition.get_pymongo_collection().find(
                {"tenant_id": key[0], "location_id": key[1], "sku_id": key[2]}).to_list(None)
        found[key] = [d for d in docs if d.get("on_hand", 0) > 0]

    await asyncio.gather(*(one(key) for key in keys))
    return found


def chunks(values: list[Any], size: int = 50) -> list[list[Any]]:
    """``$in`` lists kept short: SecantusDB answers a long one by scanning (measured: 50 ids ~10 ms, 1,000 ~4 s)."""
    return [values[start:start + size] for start in range(0, len(values), size)]


async def inbound_units(keys: list[tuple[str, Any, Any]]) -> dict[tuple[str, Any, Any], int]:
    """Units on open dispatches to each position (announced, or drafted for the shipper to confirm; not yet
    received)."""
    if not keys:
        return {}
    tenants = sorted({k[0] for k in keys})
    wanted = set(keys)
    answer: dict[tuple[str, Any, Any], int] = {}
    async for d in Dispatch.find({"consignee_id": {"$in": tenants},
                                  "status": {"$in": [s.value for s in PLANNED_STATUSES]},
                                  "to_location_id": {"$ne": None}}):
        for line in d.lines:
            key = (d.consignee_id, d.to_location_id, line.sku_id)
            if key in wanted:
                answer[key] = answer.get(key, 0) + max(line.quantity - line.received, 0)
    return answer


async def _apply(session: AsyncClientSession, judged: list[Judged], today: date, rules: SignalRules,
                 report: SignalReport, found: Evidence) -> tuple[int, int]:
    kinds = (AlertKind.velocity_drop, AlertKind.velocity_spike, AlertKind.obsolescence_risk)
    wanted: dict[str, tuple[Judged, AlertKind]] = {}
    for j in judged:
        if j.velocity is not None:
            wanted[_key(j.velocity.kind, j.series.raw)] = (j, AlertKind(j.velocity.kind))
        if j.obsolescence is not None:
            wanted[_key("obsolescence_risk", j.series.raw)] = (j, AlertKind.obsolescence_risk)
    every_key = [_key(kind.value, j.series.raw) for j in judged for kind in kinds]
    known_alerts = {a["dedupe_key"]: a async for a in Alert.get_pymongo_collection().find(
        {"dedupe_key": {"$in": every_key}},
        {"dedupe_key": 1, "status": 1, "severity": 1, "resolved_by": 1, "evidence.signature": 1, "evidence.finding": 1},
        session=session)}
    open_keys = {k for k, a in known_alerts.items() if a["status"] != AlertStatus.resolved.value}
    # A person's resolution (a decision) stands while the finding keeps its reason and causes and gets no more
    # severe; one the hub resolved itself (the finding went away) reopens when it is back.
    decided = {k: (a["severity"], a.get("evidence", {}).get("finding")) for k, a in known_alerts.items()
               if a["status"] == AlertStatus.resolved.value
               and not str(a.get("resolved_by") or "system:").startswith("system:")}
    names = await _names(session, [j for j, _ in wanted.values()])
    fresh: list[dict[str, Any]] = []
    raised = 0
    for key, (j, kind) in wanted.items():
        report.findings[kind.value] = report.findings.get(kind.value, 0) + 1
        existing = known_alerts.get(key)
        signature = (existing or {}).get("evidence", {}).get("signature") if key in open_keys else None
        if kind == AlertKind.obsolescence_risk:
            spec = await _obsolescence_alert(session, j, today, rules, key, names, signature, found, decided.get(key))
        else:
            spec = await _velocity_alert(j, today, rules, key, names, signature, found, decided.get(key))
        if spec is None:
            continue
        raised += 1
        if existing is None:
            fresh.append(spec)  # never raised before: opened together below
        else:
            await raise_alert(session, **spec)
    await open_alerts(session, fresh)
    cleared = sorted(open_keys - set(wanted))
    resolved = await _resolve(session, cleared)
    return raised, resolved


async def _names(session: AsyncClientSession | None, judged: list[Judged]) -> dict[Any, Any]:
    ids_sku = sorted({j.series.raw["sku_id"] for j in judged})
    ids_loc = sorted({j.series.raw["location_id"] for j in judged})
    names: dict[Any, Any] = {}
    if ids_sku:
        names.update({s.id: s async for s in Sku.find({"_id": {"$in": ids_sku}}, session=session)})
    if ids_loc:
        names.update({loc.id: loc async for loc in Location.find({"_id": {"$in": ids_loc}}, session=session)})
    return names


def _subjects(raw: dict[str, Any], names: dict[Any, Any]) -> tuple[list[SubjectRef], str, str]:
    sku = names.get(raw["sku_id"])
    location = names.get(raw["location_id"])
    sku_code = sku.code if sku else str(raw["sku_id"])
    where = location.code if location else str(raw["location_id"])
    return ([SubjectRef(kind="sku", id=str(raw["sku_id"]), label=sku_code),
             SubjectRef(kind="location", id=str(raw["location_id"]), label=where)], sku_code, where)


def _price_facts(view: demand.SeriesView, start: date, window: int) -> dict[str, float | None]:
    def share(days: list[date]) -> tuple[float | None, float]:
        pv = sum(view.prices[d][0] for d in days if d in view.prices)
        pu = sum(view.prices[d][1] for d in days if d in view.prices)
        promo = sum(view.prices[d][2] for d in days if d in view.prices)
        sold = sum(d.units for d in view.days if d.day in set(days))
        return (pv / pu if pu else None), (promo / sold if sold else 0.0)

    recent = [start + timedelta(days=n) for n in range(window)]
    before = [d.day for d in view.days if d.day < start and not d.stockout][-model.LEVEL_DAYS:]
    price_before, promo_before = share(before)
    price_recent, promo_recent = share(recent)
    return {"price_before": price_before, "price_recent": price_recent, "promo_share_before": promo_before,
            "promo_share_recent": promo_recent}


Place = tuple[str, Any]  # (holder, location)


@dataclass
class Evidence:
    """What the hub's other records say about the flagged positions of one sweep page (a few queries for all)."""

    positions: dict[tuple[str, Any, Any], list[dict[str, Any]]] = field(default_factory=dict)
    lots: dict[Any, Lot] = field(default_factory=dict)
    excursions: dict[Place, list[Excursion]] = field(default_factory=dict)
    late: dict[Place, list[Dispatch]] = field(default_factory=dict)
    received: dict[Place, list[Dispatch]] = field(default_factory=dict)
    mismatched: dict[Place, list[Receipt]] = field(default_factory=dict)


async def gather(flagged: list[Judged], today: date, rules: SignalRules) -> Evidence:
    """Read before the page's transaction: evidence need not be read under it."""
    found = Evidence()
    if not flagged:
        return found
    window = rules.velocity.window_days
    since = _midnight(today - timedelta(days=2 * window))
    tenants = sorted({j.series.raw["tenant_id"] for j in flagged})
    wanted = {j.series.key for j in flagged}
    found.positions = await positions_of(sorted(wanted, key=str))
    lot_ids = sorted({p["lot_id"] for ps in found.positions.values() for p in ps if p.get("lot_id")})
    for part in chunks(lot_ids):
        found.lots.update({lot.id: lot async for lot in Lot.find({"_id": {"$in": part}})})
    async for e in Excursion.find({"tenant_id": {"$in": tenants}, "started_at": {"$gte": since}}):
        found.excursions.setdefault((e.tenant_id, e.location_id), []).append(e)
    async for d in Dispatch.find({"consignee_id": {"$in": tenants}, "$or": [
            {"status": {"$in": [s.value for s in OPEN_STATUSES]}, "expected_on": {"$lt": _midnight(today)}},
            {"receipt_count": {"$gt": 0}, "updated_at": {"$gte": since}}]}):
        place = (d.consignee_id, d.to_location_id)
        if d.status in OPEN_STATUSES:
            found.late.setdefault(place, []).append(d)
        else:
            found.received.setdefault(place, []).append(d)
    async for r in Receipt.find({"tenant_id": {"$in": tenants}, "outcome": ReceiptOutcome.mismatched.value,
                                 "received_at": {"$gte": since}}):
        found.mismatched.setdefault((r.tenant_id, r.location_id), []).append(r)
    return found


def cause_facts(found: Evidence, j: Judged, today: date, rules: SignalRules) -> CauseFacts:
    """Everything the hub knows about one position over the window that could explain a change in sales."""
    raw = j.series.raw
    place = (raw["tenant_id"], raw["location_id"])
    sku = raw["sku_id"]
    start = j.window_start or today
    window = rules.velocity.window_days
    recent = [d for d in j.series.days if d.day >= start]
    closing = [j.series.closing[d.day] for d in recent if d.day in j.series.closing]
    held, near = [], []
    for p in found.positions.get(j.series.key, []):
        lot = found.lots.get(p.get("lot_id"))
        if lot is None:
            continue
        if lot.status.value in HELD:
            held.append({"lotCode": lot.lot_code, "status": lot.status.value, "reason": lot.hold_reason,
                         "onHand": p["on_hand"]})
        expires = min((d for d in (lot.expires_on, lot.effective_expires_on) if d is not None), default=None)
        if expires is not None and (expires - today).days <= max(NEAR_EXPIRY_DAYS, window):
            near.append({"lotCode": lot.lot_code, "daysLeft": (expires - today).days, "onHand": p["on_hand"]})
    excursions = [
        {"id": str(e.id), "deviceId": e.device_id, "peakC": e.peak_c, "startedAt": e.started_at.isoformat(),
         "degreeMinutes": round(e.degree_minutes, 1)}
        for e in found.excursions.get(place, [])
    ]
    late = [
        {"ref": d.ref, "dispatchId": str(d.id), "shipper": d.tenant_id,
         "expectedOn": d.expected_on.isoformat() if d.expected_on else None,
         "daysLate": (today - d.expected_on).days if d.expected_on else None}
        for d in found.late.get(place, []) if any(line.sku_id == sku for line in d.lines)
    ]
    short = []
    for d in found.received.get(place, []):
        ordered = sum(l.quantity for l in d.lines if l.sku_id == sku)
        received = sum(l.received for l in d.lines if l.sku_id == sku)
        if received < ordered:
            short.append({"ref": d.ref, "dispatchId": str(d.id), "shipper": d.tenant_id, "ordered": ordered,
                          "received": received})
    mismatches = [
        {"receiptId": str(r.id), "dispatchId": str(r.dispatch_id), "kinds": sorted({m.kind for m in r.mismatches}),
         "resolved": r.resolved_at is not None}
        for r in found.mismatched.get(place, []) if any(line.sku_id == sku for line in r.lines)
    ]
    prices = _price_facts(j.series, start, window)
    return CauseFacts(
        window_days=window,
        daily_expected=(j.baseline.expected(start, window) / window) if j.baseline else 0.0,
        stockout_days=sum(1 for d in recent if d.stockout),
        min_on_hand=min(closing) if closing else None,
        on_hand=int(raw.get("on_hand", 0)),
        held_lots=held, excursions=excursions, near_expiry=near, late_inbound=late, short_inbound=short,
        receipt_mismatches=mismatches, price_before=prices["price_before"],
        price_recent=prices["price_recent"],
        promo_share_before=prices["promo_share_before"] or 0.0,
        promo_share_recent=prices["promo_share_recent"] or 0.0,
    )


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def _decision_stands(decided: tuple[str, str | None] | None, severity: str, finding: str) -> bool:
    """A person resolved this alert (``decided``: its severity then, and its finding) and the finding is the same
    (reason and causes) and no more severe: the decision still covers it."""
    return decided is not None and decided[1] == finding \
        and SEVERITY_ORDER.index(Severity(severity)) <= SEVERITY_ORDER.index(Severity(decided[0]))


async def _velocity_alert(j: Judged, today: date, rules: SignalRules, key: str, names: dict[Any, Any],
                          signature: str | None, found: Evidence,
                          decided: tuple[str, str | None] | None = None) -> dict[str, Any] | None:
    """A velocity alert to raise, or None when the open alert already says the same (severity and causes)."""
    assert j.velocity is not None and j.baseline is not None
    raw = j.series.raw
    facts = cause_facts(found, j, today, rules)
    drop = j.velocity.kind == "velocity_drop"
    causes = velocity.drop_causes(facts) if drop else velocity.spike_causes(facts)
    # What the alert stands on (not the day it was judged): when it moves, the open alert is updated in place.
    same = "|".join([j.velocity.severity, *(c.code for c in causes), str(j.velocity.actual),
                     str(int(raw.get("on_hand", 0)))])
    finding = "|".join([j.velocity.kind, *(c.code for c in causes)])
    if same == signature or _decision_stands(decided, j.velocity.severity, finding):
        return None
    subjects, sku_code, where = _subjects(raw, names)
    window = rules.velocity.window_days
    pct = abs(j.velocity.change_pct)
    if drop:
        title = f"{sku_code} at {where} sells {pct:.0f} % below its rhythm"
        advice = {
            "stockout": "Replenish: the shelf was empty, demand is likely intact.",
            "low_on_hand": "Replenish before the shelf empties.",
            "lots_held": "Settle the held lots (release, return or write off) so stock can sell.",
            "inbound_late_or_short": "Chase the late or short inbound dispatch.",
            "receipt_mismatch": "Resolve the receipt mismatch and count the shelf.",
            "sensor_excursion": "Inspect the goods exposed to the excursion.",
            "near_expiry": "Mark down short-dated stock or move it to a faster location.",
            "price_change": "Review the price change against demand.",
            "promotion_ended": "Expect the pre-promotion rhythm; adjust orders.",
            velocity.MARKET: "Check the market (competitor launch, weather, promotion) and adjust orders.",
        }[causes[0].code]
    else:
        title = f"{sku_code} at {where} sells {pct:.0f} % above its rhythm; cover below lead time"
        advice = (f"Stock covers {j.velocity.cover_days:.1f} days at the new pace, lead time is "
                  f"{j.policy.lead_time_days:g}: expedite replenishment or transfer stock in "
                  "(see transferRecommendations).")
    evidence = {
        **j.velocity.figures(),
        "windowDays": window,
        "windowStart": (j.window_start or today).isoformat(),
        "baseline": j.baseline.figures(),
        "thresholdPct": rules.velocity.drop_pct if drop else rules.velocity.spike_pct,
        "minExpectedUnits": rules.velocity.min_expected,
        "onHand": int(raw.get("on_hand", 0)),
        "candidateCauses": [c.figures() for c in causes],
        "evaluatedOn": today.isoformat(),
        "signature": same,
        "finding": finding,
    }
    return dict(
        kind=AlertKind(j.velocity.kind), severity=Severity(j.velocity.severity), owner=raw["tenant_id"],
        audience=await partner_audience(raw["tenant_id"], raw["sku_owner_id"]), title=title, dedupe_key=key,
        subjects=subjects, evidence=evidence, recommendation=f"Most likely: {causes[0].summary}. {advice}",
    )


async def receipt_facts(session: AsyncClientSession | None, j: Judged) -> list[obsolescence.ReceiptFact]:
    """Receipts into the position, with the demand the baseline saw on the day each arrived and its supplier."""
    raw = j.series.raw
    moves = await Movement.get_pymongo_collection().find(
        {"tenant_id": raw["tenant_id"], "location_id": raw["location_id"], "sku_id": raw["sku_id"],
         "kind": {"$in": ["receipt", "transfer_in"]}},
        {"quantity": 1, "occurred_at": 1, "reference": 1, "kind": 1}, session=session,
    ).sort("occurred_at", -1).limit(200).to_list(200)
    by_receipt: dict[str, list[dict[str, Any]]] = {}
    for m in moves:
        by_receipt.setdefault(m.get("reference") or f"movement:{m['_id']}", []).append(m)
    receipt_ids = [ref.split(":", 1)[1] for ref in by_receipt if ref.startswith("receipt:")]
    receipts = {str(r.id): r async for r in Receipt.find(
        {"_id": {"$in": [ObjectId(i) for i in receipt_ids if ObjectId.is_valid(i)]}}, session=session)} \
        if receipt_ids else {}
    dispatches = {d.id: d async for d in Dispatch.find(
        {"_id": {"$in": sorted({r.dispatch_id for r in receipts.values()})}}, session=session)} if receipts else {}
    facts = []
    for ref, group in by_receipt.items():
        day = min(m["occurred_at"] for m in group).date()
        fitted = model.fit(j.series.days, until=day)
        receipt = receipts.get(ref.split(":", 1)[1]) if ref.startswith("receipt:") else None
        dispatch = dispatches.get(receipt.dispatch_id) if receipt else None
        facts.append(obsolescence.ReceiptFact(
            received_on=day.isoformat(), quantity=sum(m["quantity"] for m in group),
            rate_at_receipt=fitted.daily_mean if fitted else None,
            receipt_id=str(receipt.id) if receipt else None,
            dispatch_ref=dispatch.ref if dispatch else None,
            supplier=dispatch.tenant_id if dispatch else None,
        ))
    return facts


async def _obsolescence_alert(session: AsyncClientSession, j: Judged, today: date, rules: SignalRules, key: str,
                              names: dict[Any, Any], signature: str | None, found: Evidence,
                              decided: tuple[str, str | None] | None = None) -> dict[str, Any] | None:
    """An obsolescence alert to raise, or None when the open alert already names the same reason, severity and
    root causes."""
    assert j.obsolescence is not None
    raw = j.series.raw
    on_hand = int(raw.get("on_hand", 0))
    receipts = await receipt_facts(session, j)
    built = obsolescence.surplus_receipts(receipts, on_hand)
    first = min((date.fromisoformat(r.received_on) for r in built), default=None)
    before = model.fit(j.series.days, until=first) if first else None
    after = [d for d in j.series.days if first is not None and d.day >= first and not d.stockout]
    rate_since = sum(d.units for d in after) / len(after) if after else None
    positions = found.positions.get(j.series.key, [])
    lots = {p["lot_id"]: found.lots[p["lot_id"]] for p in positions if p.get("lot_id") in found.lots}
    lot_ids = list(lots)
    quality = {
        "held_lots": [{"lotCode": l.lot_code, "status": l.status.value, "reason": l.hold_reason}
                      for l in lots.values() if l.status.value in HELD],
        "excursions": [{"id": str(e.id), "deviceId": e.device_id, "peakC": e.peak_c}
                       async for e in Excursion.find({"exposed_lots.lot_id": {"$in": lot_ids}}, session=session)]
        if lot_ids else [],
        "receipt_mismatches": [{"receiptId": str(r.id), "kinds": sorted({m.kind for m in r.mismatches})}
                               async for r in Receipt.find({"tenant_id": raw["tenant_id"],
                                                            "outcome": ReceiptOutcome.mismatched.value,
                                                            "lines.lot_id": {"$in": lot_ids}}, session=session)]
        if lot_ids else [],
    }
    obs_rules = obsolescence.ObsolescenceRules(j.policy.max_days_of_supply, rules.obsolescence.idle_days,
                                               rules.obsolescence.cover_days, rules.obsolescence.drop_pct)
    causes = obsolescence.root_causes(on_hand, receipts, before.daily_mean if before else None, rate_since,
                                      obs_rules, discontinued=j.policy.discontinued, quality=quality)
    finding = j.obsolescence
    same = "|".join([finding.severity, finding.reason, *(c.code for c in causes), str(on_hand)])
    what_and_why = "|".join([finding.reason, *(c.code for c in causes)])
    if same == signature or _decision_stands(decided, finding.severity, what_and_why):
        return None
    subjects, sku_code, where = _subjects(raw, names)
    what = (f"{finding.days_of_supply:.0f} days of supply" if finding.days_of_supply is not None
            else "no demand") if finding.reason != "no_consumption" else f"nothing sold in {finding.idle_days} days"
    root = causes[0] if causes else None
    suppliers = sorted({r.supplier for r in built if r.supplier})
    evidence = {
        **finding.figures(),
        "onHand": on_hand,
        "ratePerDay": round(j.rate_now, 3),
        "maxDaysOfSupply": j.policy.max_days_of_supply,
        "idleDaysThreshold": rules.obsolescence.idle_days,
        "rootCause": root.code if root else "not_found",
        "rootCauses": [c.figures() for c in causes],
        "receipts": [r.figures() for r in built],
        "suppliers": suppliers,
        "evaluatedOn": today.isoformat(),
        "signature": same,
        "finding": what_and_why,
    }
    title = f"{sku_code} at {where}: {what} ({root.code.replace('_', '-') if root else 'cause not found'})"
    recommendation = (
        f"{root.summary}. " if root else "No root cause in the ledger. "
    ) + "Stop or cut orders, transfer to a location that sells it (see transferRecommendations), return to the " \
        "supplier, mark down or liquidate."
    return dict(
        kind=AlertKind.obsolescence_risk, severity=Severity(finding.severity), owner=raw["tenant_id"],
        audience=await partner_audience(raw["tenant_id"], raw["sku_owner_id"]), title=title, dedupe_key=key,
        subjects=subjects, evidence=evidence, recommendation=recommendation,
    )


async def _resolve(session: AsyncClientSession, keys: list[str]) -> int:
    """Resolve open planning alerts whose finding went away."""
    if not keys:
        return 0
    collection = Alert.get_pymongo_collection()
    now = utcnow()
    resolved = 0
    async for raw in collection.find({"dedupe_key": {"$in": keys}, "status": {"$ne": AlertStatus.resolved.value}},
                                     session=session):
        done = await collection.find_one_and_update(
            {"_id": raw["_id"], "status": raw["status"]},
            {"$set": {"status": AlertStatus.resolved.value, "resolved_at": now, "resolved_by": RESOLVER,
                      "note": "no longer found by the planning sweep", "updated_at": now}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        if done is not None:
            alert = Alert.model_validate(done)
            await emit(session, "alert.resolved", alert.tenant_id, alert.audience, alert_payload(alert))
            resolved += 1
    return resolved


async def start_planning(hub: Any) -> None:
    """Startup hook: FEFO tolerances from the settings, and the planning sweep every ``sweep_interval_minutes``
    (0 turns it off)."""
    settings = hub.settings
    fefo.configure(FefoRules(settings.fefo_tolerance_days, settings.fefo_tolerance_units))
    minutes = settings.sweep_interval_minutes
    if minutes <= 0:
        return
    rules = rules_from(settings)

    async def loop() -> None:
        while True:
            await asyncio.sleep(minutes * 60)
            try:
                partitions = hub.partitions
                # Pages of 250: each page's alerts commit in one transaction, within the hub's transaction deadline.
                report = await sweep(hub.database, rules=rules, tenants=await tenant_ids(hub.database, partitions),
                                     state_key=f"{STATE_ID}:{partitions.name}" if partitions else STATE_ID, page=250)
                log.info("planning sweep: %d series judged, %d alerts raised, %d resolved, %d recommendations",
                         report.judged, report.raised, report.resolved, report.recommendations)
            except Exception:
                log.exception("planning sweep failed; retrying next interval")

    hub.spawn("planning-sweep", loop)
