"""Expiry risk in practice: evaluating stock positions, raising ``expiry_risk`` alerts, the sweep, dispatch checks.

Evaluated on stock change (``on_stock_changed``, called by the stock service in its transaction), after an excursion
re-dates lots (``evaluate_lots``), for a new dispatch (``check_dispatch_shelf_life``) and by a periodic sweep over
all stock (``sweep``: ``lotpulse sweep`` and in-process every ``settings.sweep_interval_minutes``).

Alerts are deduplicated per lot and location. A finding already raised with the same reason and severity is left
alone, so the sweep never re-pages anyone (nor reopens an alert somebody acknowledged, or resolved with a decision);
it is raised again only when it gets worse, changes reason, or comes back after the hub resolved it. When the finding
goes away (the lot sold out, or sells fast enough now) the hub resolves the alert itself (``resolved_by`` =
``system:expiry``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub import metrics
from hub.dates import from_bson, utcnow
from hub.db import IN_SLICE, Database, by_ids
from hub.detect.expiry import SEVERITY_ORDER, VELOCITY_DAYS, LotStock, arrival_shortfall, assess
from hub.events.log import emit
from hub.models.alert import Alert, AlertKind, AlertStatus, Severity, SubjectRef
from hub.models.dispatch import Dispatch
from hub.models.location import Location
from hub.models.lot import Lot
from hub.models.planning import DemandSeries
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from hub.services import audiences
from hub.services.alerts import alert_payload, raise_alert
from hub.services.sensors import refresh_goods_owners
from tenants.models import Tenant, TenantKind

log = logging.getLogger("lotpulse.expiry")
RESOLVER = "system:expiry"  # resolved_by when the hub itself sees a finding go away


def today_utc() -> date:
    return utcnow().date()


WINDOW_DAYS = VELOCITY_DAYS  # settings.expiry_velocity_days, set at startup (``set_velocity_window``)


def set_velocity_window(days: int) -> None:
    global WINDOW_DAYS
    WINDOW_DAYS = days


async def _history(
    session: AsyncClientSession | None, positions: list[dict[str, Any]], today: date
) -> dict[tuple[str, Any, Any], tuple[int, int]]:
    """Per (holder, location, SKU): units sold or issued over the trailing window, and days since its first movement
    there (how long the position has been observed), from its daily demand series (written in the same transaction
    as the movements, before this runs): one document per key, where summing the ledger read every movement the
    position ever had, on every change and every sweep. One query per holder and location, its SKUs in slices (the
    series' unique index prefix)."""
    wanted: dict[tuple[str, Any], set[Any]] = {}
    for p in positions:
        wanted.setdefault((p["tenant_id"], p["location_id"]), set()).add(p["sku_id"])
    since = (today - timedelta(days=WINDOW_DAYS - 1)).isoformat()  # today and the days before it: WINDOW_DAYS
    collection = DemandSeries.get_pymongo_collection()
    found: dict[tuple[str, Any, Any], tuple[int, int]] = {}
    for (tenant_id, location_id), sku_ids in wanted.items():
        ordered = sorted(sku_ids)
        for start in range(0, len(ordered), IN_SLICE):
            skus = ordered[start:start + IN_SLICE]
            async for d in collection.find(
                {"tenant_id": tenant_id, "location_id": location_id, "sku_id": {"$in": skus}},
                {"sku_id": 1, "first_day": 1, "days": 1}, session=session,
            ):
                sold = sum(int(entry.get("s", 0)) for day, entry in (d.get("days") or {}).items() if day >= since)
                first = date.fromisoformat(d["first_day"]) if d.get("first_day") else today
                found[(tenant_id, location_id, d["sku_id"])] = (sold, (today - first).days)
    return found


async def evaluate_positions(
    session: AsyncClientSession | None, positions: list[dict[str, Any]], today: date | None = None
) -> list[Alert]:
    """Assess raw stock positions and raise (or leave alone) their ``expiry_risk`` alerts."""
    today = today or today_utc()
    cleared = [_key(p) for p in positions if p.get("on_hand", 0) <= 0]
    positions = [p for p in positions if p.get("on_hand", 0) > 0]
    if not positions:
        await _resolve_cleared(session, cleared)
        return []
    lot_ids = sorted({p["lot_id"] for p in positions if p.get("lot_id")})
    lots = {lot.id: lot
            for lot in map(Lot.model_validate, await by_ids(Lot.get_pymongo_collection(), lot_ids, session))}
    sku_ids = sorted({p["sku_id"] for p in positions})
    skus = {s.id: s for s in map(Sku.model_validate, await by_ids(Sku.get_pymongo_collection(), sku_ids, session))}
    holders = {t.id: t async for t in Tenant.find({"_id": {"$in": sorted({p["tenant_id"] for p in positions})}})}
    locations = {
        loc.id: loc async for loc in Location.find({"_id": {"$in": sorted({p["location_id"] for p in positions})}})
    }
    history = await _history(session, positions, today)
    keys = {_key(p): p for p in positions}
    existing = {
        a["dedupe_key"]: a
        async for a in Alert.get_pymongo_collection().find({"dedupe_key": {"$in": sorted(keys)}}, session=session)
    }
    raised = []
    for key, position in keys.items():
        sku = skus.get(position["sku_id"])
        lot = lots.get(position.get("lot_id"))
        holder = holders.get(position["tenant_id"])
        recorded = (lot.expires_on if lot else None) or from_bson(position.get("expires_on"))
        effective = (lot.effective_expires_on if lot else None) or from_bson(position.get("effective_expires_on"))
        # The minimum remaining shelf life is what the holder's consignees accept: it binds stock that ships on.
        ships_on = holder is None or holder.kind != TenantKind.retailer
        key3 = (position["tenant_id"], position["location_id"], position["sku_id"])
        sold, held = history.get(key3, (0, 0))
        stock = LotStock(
            on_hand=position["on_hand"],
            expires_on=effective or recorded,
            recorded_expires_on=recorded,
            sold_in_window=sold,
            held_days=held,
            window_days=WINDOW_DAYS,
            min_remaining_days=sku.min_remaining_shelf_life_days if sku and ships_on else None,
        )
        with metrics.DETECTOR_DURATION.labels("expiry").time():
            risk = assess(stock, today)
        if risk is None:
            cleared.append(key)
            continue
        severity = Severity(risk.severity)
        previous = existing.get(key)
        same = previous is not None and previous.get("evidence", {}).get("reason") == risk.reason \
            and SEVERITY_ORDER.index(previous["severity"]) >= SEVERITY_ORDER.index(risk.severity)
        if same and previous is not None and previous["status"] == AlertStatus.resolved.value \
                and not str(previous.get("resolved_by") or "system:").startswith("system:"):
            continue  # a person decided on it (a markdown, a transfer): that stands until it gets worse
        if previous is not None and previous["status"] != AlertStatus.resolved.value:
            if same:
                # Not worse: nobody is paged again, but an alert whose figures moved (an excursion re-dated the lot,
                # stock moved) is updated in place, keeping its severity.
                if _figures(previous.get("evidence", {})) == _figures(_position_figures(position, lot, recorded)):
                    continue
                severity = Severity(previous["severity"])
        owner = position["tenant_id"]
        audience = await audiences.for_stock(owner, sku.tenant_id if sku else None)
        location = locations.get(position["location_id"])
        where = location.code if location else str(position["location_id"])
        lot_code = lot.lot_code if lot else position.get("lot_code") or "untracked"
        sku_code = sku.code if sku else str(position["sku_id"])
        title = {
            "expired": f"Lot {lot_code} of {sku_code} at {where} is past its effective expiry with stock",
            "slow": f"Lot {lot_code} of {sku_code} at {where} will not sell before it expires",
            "short_shelf_life": f"Lot {lot_code} of {sku_code} at {where} is below the consignee's minimum shelf life",
        }[risk.reason]
        raised.append(await raise_alert(
            session,
            kind=AlertKind.expiry_risk,
            severity=severity,
            owner=owner,
            audience=audience,
            title=title,
            dedupe_key=key,
            subjects=[
                *([SubjectRef(kind="lot", id=str(lot.id), label=lot_code)] if lot else []),
                SubjectRef(kind="sku", id=str(position["sku_id"]), label=sku_code),
                SubjectRef(kind="location", id=str(position["location_id"]), label=where),
            ],
            evidence={
                **risk.figures(),
                **_position_figures(position, lot, recorded),
                "soldInWindow": stock.sold_in_window,
                "windowDays": stock.window_days,
                "observedDays": stock.held_days,
                "minRemainingShelfLifeDays": stock.min_remaining_days,
                "evaluatedOn": today.isoformat(),
            },
            recommendation=risk.recommendation,
        ))
    await _resolve_cleared(session, cleared)
    return raised


def _position_figures(position: dict[str, Any], lot: Lot | None, recorded: date | None) -> dict[str, Any]:
    effective = (lot.effective_expires_on if lot else None) or from_bson(position.get("effective_expires_on"))
    effective = effective or recorded
    return {
        "onHand": position["on_hand"],
        "effectiveExpiresOn": effective.isoformat() if effective else None,
        "recordedExpiresOn": recorded.isoformat() if recorded else None,
    }


def _figures(evidence: dict[str, Any]) -> tuple[Any, ...]:
    """What an expiry alert stands on (not the day it was evaluated, which moves every day by itself)."""
    return tuple(evidence.get(k) for k in ("onHand", "effectiveExpiresOn", "recordedExpiresOn"))


async def _resolve_cleared(session: AsyncClientSession | None, keys: list[str]) -> None:
    """Resolve the open expiry alerts whose finding went away (sold out, or selling fast enough now)."""
    if not keys:
        return
    collection = Alert.get_pymongo_collection()
    query = {"dedupe_key": {"$in": sorted(keys)}, "status": {"$ne": AlertStatus.resolved.value}}
    now = utcnow()
    async for raw in collection.find(query, session=session):
        done = await collection.find_one_and_update(
            {"_id": raw["_id"], "status": raw["status"]},
            {"$set": {"status": AlertStatus.resolved.value, "resolved_at": now, "resolved_by": RESOLVER,
                      "note": "no longer at risk: sold out, or selling fast enough", "updated_at": now}},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if done is not None:
            alert = Alert.model_validate(done)
            await emit(session, "alert.resolved", alert.tenant_id, alert.audience, alert_payload(alert))


def _key(position: dict[str, Any]) -> str:
    return f"expiry_risk:{position.get('lot_id') or position['sku_id']}:{position['location_id']}"


async def on_stock_changed(
    session: AsyncClientSession | None, positions: Iterable[StockPosition | dict[str, Any]], today: date | None = None
) -> list[Alert]:
    """Hook for the stock service: re-assess the positions it just changed, in its transaction."""
    raw = [p.model_dump(by_alias=True) if isinstance(p, StockPosition) else p for p in positions]
    for p in raw:
        p.setdefault("_id", p.get("id"))
    return await evaluate_positions(session, raw, today)


async def evaluate_lots(
    session: AsyncClientSession | None,
    tenant_id: str,
    location_id: PydanticObjectId,
    lot_ids: list[PydanticObjectId],
    today: date | None = None,
) -> list[Alert]:
    """Re-assess these lots' stock at one location (after an excursion re-dated them)."""
    cursor = StockPosition.get_pymongo_collection().find(
        {"tenant_id": tenant_id, "location_id": location_id, "lot_id": {"$in": lot_ids}, "on_hand": {"$gt": 0}},
        session=session,
    )
    return await evaluate_positions(session, [p async for p in cursor], today)


@dataclass
class SweepReport:
    positions: int = 0
    alerts: int = 0
    sensors_refreshed: int = 0  # sensors whose watched brands changed (see sensors.refresh_goods_owners)


async def sweep(database: Database, today: date | None = None, page: int = 500) -> SweepReport:
    """Assess every position with stock, a page per transaction (alerts and their events commit together).

    It also refreshes which brands' goods each sensor watches, since goods may leave while a sensor is silent.
    """
    report = SweepReport(sensors_refreshed=await refresh_goods_owners())
    collection = StockPosition.get_pymongo_collection()
    last: Any = None
    while True:
        query: dict[str, Any] = {"on_hand": {"$gt": 0}}
        if last is not None:
            query["_id"] = {"$gt": last}
        batch = await collection.find(query).sort("_id", 1).limit(page).to_list(page)
        if not batch:
            return report
        last = batch[-1]["_id"]
        report.positions += len(batch)

        async def work(session: AsyncClientSession, batch: list[dict[str, Any]] = batch) -> int:
            return len(await evaluate_positions(session, batch, today))

        report.alerts += await database.in_transaction(work)


async def check_dispatch_shelf_life(
    session: AsyncClientSession | None, dispatch: Dispatch, today: date | None = None
) -> list[Alert]:
    """Flag a dispatch whose lines arrive with less than the consignee's minimum remaining shelf life.

    One ``expiry_risk`` alert for each party (shipper, consignee, carrier if any), each owning its own: every party
    hears of it whatever else they share with each other, and nobody else does.
    """
    today = today or today_utc()
    arrives = dispatch.expected_on or dispatch.shipped_on or today
    sku_ids = sorted({line.sku_id for line in dispatch.lines})
    lot_ids = sorted({line.lot_id for line in dispatch.lines})
    skus = {sku.id: sku async for sku in Sku.find({"_id": {"$in": sku_ids}}, session=session)}
    lots = {lot.id: lot async for lot in Lot.find({"_id": {"$in": lot_ids}}, session=session)}
    short: list[dict[str, Any]] = []
    for index, line in enumerate(dispatch.lines):
        sku = skus.get(line.sku_id)
        lot = lots.get(line.lot_id)
        candidates = (line.expires_on, line.effective_expires_on, lot.effective_expires_on if lot else None)
        dates = [d for d in candidates if d is not None]  # the line's own: a logger on its pallet shortened it
        expires = min(dates) if dates else None
        shortfall = arrival_shortfall(expires, arrives, sku.min_remaining_shelf_life_days if sku else None)
        if shortfall is not None:
            short.append({
                "line": index,
                "skuCode": sku.code if sku else str(line.sku_id),
                "lotCode": line.lot_code,
                "quantity": line.quantity,
                "expiresOn": expires.isoformat() if expires else None,
                "daysLeftOnArrival": shortfall.days_left_on_arrival,
                "minRemainingShelfLifeDays": shortfall.min_remaining_days,
            })
    if not short:
        return []
    expired = any(item["daysLeftOnArrival"] < 0 for item in short)
    lots_text = ", ".join(
        f"{s['lotCode']} ({s['daysLeftOnArrival']} of {s['minRemainingShelfLifeDays']} days)" for s in short
    )
    advice = {
        dispatch.tenant_id: f"Replace with fresher lots or agree acceptance with {dispatch.consignee_id}: {lots_text}.",
        dispatch.consignee_id: f"Expect short-dated goods from {dispatch.tenant_id}; accept, refuse or sell first: "
        f"{lots_text}.",
    }
    if dispatch.carrier_id:
        advice[dispatch.carrier_id] = (
            f"Short-dated goods on board for {dispatch.consignee_id}: deliver first; {lots_text}."
        )

    alerts = []
    for party, recommendation in advice.items():
        alerts.append(await raise_alert(
            session,
            kind=AlertKind.expiry_risk,
            severity=Severity.critical if expired else Severity.warning,
            owner=party,
            audience=[],
            title=f"Dispatch {dispatch.ref} arrives below the minimum remaining shelf life",
            dedupe_key=f"expiry_risk:dispatch:{dispatch.id}:{party}",
            subjects=[
                SubjectRef(kind="dispatch", id=str(dispatch.id), label=dispatch.ref),
                *[SubjectRef(kind="lot", id=str(dispatch.lines[s["line"]].lot_id), label=s["lotCode"]) for s in short],
            ],
            evidence={"reason": "short_on_arrival", "arrivesOn": arrives.isoformat(), "lines": short},
            recommendation=recommendation,
            audience_rule=audiences.DISPATCH,
        ))
    return alerts


async def pause(seconds: float) -> None:
    """The sweeper's wait between runs (a seam for tests, which cannot wait minutes)."""
    await asyncio.sleep(seconds)


async def start_sweeper(hub: Any) -> None:
    """Startup hook: sweep every ``sweep_interval_minutes`` (0 turns it off); the first run after one interval."""
    minutes = hub.settings.sweep_interval_minutes
    if minutes <= 0:
        return

    async def loop() -> None:
        while True:
            await pause(minutes * 60)
            try:
                with metrics.SWEEP_DURATION.time():
                    report = await sweep(hub.database)
                log.info("expiry sweep: %d positions, %d alerts raised", report.positions, report.alerts)
            except Exception:
                log.exception("expiry sweep failed; retrying next interval")

    hub.spawn("expiry-sweep", loop)
