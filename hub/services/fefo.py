"""First-expired-first-out slips, raised as ``fefo_violation`` alerts in the transaction that booked the slip.

- A sale or issue of a lot while an older-expiring sellable lot of the same SKU sits at the same location: the
  holder hears it (and the SKU owner where the holder shares ``alerts`` with it).
- A dispatch of a lot while the shipper keeps older-expiring lots of that SKU (at the dispatch's source location, or
  anywhere when none is named): the consignee's shelf life suffers. The shipper hears it, and the consignee where the
  shipper shares ``alerts`` with it.

One alert per shelf (location and SKU) or dispatch. While it is open, further slips there update it in place
(``alert.updated``: the units taken out of order add up, the lots taken are listed) instead of raising another; the
planning sweep keeps its older lots' figures current and resolves it (``system:planning``) once no older lot sits
there any more (sold, moved, held or past expiry).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.dates import utcnow
from hub.db import Database
from hub.detect.fefo import FefoRules, FefoViolation, LotAtHand, check
from hub.events.log import emit
from hub.models.alert import Alert, AlertKind, AlertStatus, Severity, SubjectRef
from hub.models.dispatch import Dispatch
from hub.models.location import Location
from hub.models.lot import Lot, LotStatus
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from hub.services.alerts import UPDATED_EVENT, alert_payload, raise_alert, resolve_by_system
from hub.services.planning_audience import partner_audience

CONSUMING = ("sale", "issue")
RESOLVER = "system:planning"
RULES = FefoRules()


def configure(rules: FefoRules) -> None:
    """Set at startup from the settings (``fefo_tolerance_days``, ``fefo_tolerance_units``)."""
    global RULES
    RULES = rules


def _lot_at_hand(lot: Lot | None, code: str | None, on_hand: int) -> LotAtHand:
    expires = None
    if lot is not None:
        expires = min(d for d in (lot.expires_on, lot.effective_expires_on, date.max) if d is not None)
        expires = None if expires == date.max else expires
    return LotAtHand(code or (lot.lot_code if lot else "untracked"), expires, on_hand,
                     sellable=lot is None or lot.status == LotStatus.released)


async def _lots(session: AsyncClientSession | None, ids: set[Any]) -> dict[Any, Lot]:
    return {lot.id: lot async for lot in Lot.find({"_id": {"$in": sorted(ids)}}, session=session)}


async def _so_far(session: AsyncClientSession | None, key: str) -> dict[str, Any] | None:
    """The evidence of the shelf's open alert, if it has one (a new slip adds to it)."""
    raw = await Alert.get_pymongo_collection().find_one(
        {"dedupe_key": key, "status": {"$ne": AlertStatus.resolved.value}}, {"evidence": 1}, session=session)
    return raw.get("evidence") if raw else None


def _merged(figures: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    if before is None:
        return {**figures, "takenLots": [figures["takenLot"]]}
    taken = sorted({*before.get("takenLots", [before.get("takenLot")]), figures["takenLot"]} - {None})
    return {**figures, "quantity": int(before.get("quantity", 0)) + figures["quantity"], "takenLots": taken}


async def on_movements(session: AsyncClientSession | None, tenant_id: str, docs: list[dict[str, Any]]) -> list[Alert]:
    """Judge the sales and issues of a batch just written (positions already hold the batch's result)."""
    taken: dict[tuple[Any, Any], dict[Any, int]] = defaultdict(lambda: defaultdict(int))
    when: dict[tuple[Any, Any], date] = {}
    for doc in docs:
        if doc["kind"] in CONSUMING and doc.get("lot_id") is not None:
            key = (doc["location_id"], doc["sku_id"])
            taken[key][doc["lot_id"]] += -doc["quantity"]
            when[key] = max(when.get(key, date.min), doc["occurred_at"].date())
    if not taken:
        return []
    # Per location, the position index's prefix (a top-level $or made SecantusDB read every position).
    skus_at: dict[Any, set[Any]] = defaultdict(set)
    for loc, sku in taken:
        skus_at[loc].add(sku)
    positions: list[dict[str, Any]] = []
    for loc, skus in sorted(skus_at.items()):
        positions += await StockPosition.get_pymongo_collection().find(
            {"tenant_id": tenant_id, "location_id": loc, "sku_id": {"$in": sorted(skus)}},
            {"location_id": 1, "sku_id": 1, "lot_id": 1, "lot_code": 1, "on_hand": 1}, session=session).to_list()
    lots = await _lots(session, {p["lot_id"] for p in positions if p.get("lot_id")}
                       | {lot for group in taken.values() for lot in group})
    raised: list[Alert] = []
    for (location_id, sku_id), by_lot in taken.items():
        here = [p for p in positions if p["location_id"] == location_id and p["sku_id"] == sku_id]
        others = [_lot_at_hand(lots.get(p.get("lot_id")), p.get("lot_code"), p["on_hand"])
                  for p in here if p["on_hand"] > 0]
        for lot_id, quantity in by_lot.items():
            lot = lots.get(lot_id)
            violation = check(_lot_at_hand(lot, None, 0), quantity, others, when[(location_id, sku_id)], RULES)
            if violation is None or lot is None:
                continue
            dedupe_key = f"fefo_violation:{location_id}:{sku_id}"
            before = await _so_far(session, dedupe_key)
            raised.append(await _raise_at_location(session, tenant_id, location_id, sku_id, lot, violation,
                                                   dedupe_key, before))
    return raised


async def _raise_at_location(session: AsyncClientSession | None, holder: str, location_id: ObjectId,
                             sku_id: ObjectId, lot: Lot, violation: FefoViolation, key: str,
                             before: dict[str, Any] | None) -> Alert:
    sku = await Sku.find_one({"_id": sku_id}, session=session)
    location = await Location.find_one({"_id": location_id}, session=session)
    where = location.code if location else str(location_id)
    sku_code = sku.code if sku else str(sku_id)
    older = violation.older[0]
    return await raise_alert(
        session,
        kind=AlertKind.fefo_violation,
        severity=Severity.warning,
        owner=holder,
        audience=await partner_audience(holder, sku.tenant_id if sku else holder),
        title=f"{sku_code} at {where}: lot {lot.lot_code} taken while older lot {older.lot_code} sits",
        dedupe_key=key,
        subjects=[
            SubjectRef(kind="lot", id=str(lot.id), label=lot.lot_code),
            SubjectRef(kind="sku", id=str(sku_id), label=sku_code),
            SubjectRef(kind="location", id=str(location_id), label=where),
        ],
        evidence={**_merged(violation.figures(), before), "toleranceDays": RULES.tolerance_days,
                  "toleranceUnits": RULES.tolerance_units},
        recommendation=f"Sell or issue lot {older.lot_code} (expires {older.expires_on}) first: "
        f"{sum(l.on_hand for l in violation.older)} older units risk expiring behind {lot.lot_code}. "
        "Check shelf rotation and the picking rule at this location.",
    )


async def on_dispatch(session: AsyncClientSession | None, dispatch: Dispatch) -> list[Alert]:
    """The shipper sends lots newer than lots it keeps of the same SKU."""
    sku_ids = sorted({line.sku_id for line in dispatch.lines})
    query: dict[str, Any] = {"tenant_id": dispatch.tenant_id, "sku_id": {"$in": sku_ids}, "on_hand": {"$gt": 0}}
    if dispatch.from_location_id is not None:
        query["location_id"] = dispatch.from_location_id
    positions = [p async for p in StockPosition.get_pymongo_collection().find(query, session=session)]
    shipped = {line.lot_id for line in dispatch.lines}
    lots = await _lots(session, {p["lot_id"] for p in positions if p.get("lot_id")} | shipped)
    today = dispatch.shipped_on or dispatch.created_at.date()
    slips: list[tuple[Any, FefoViolation]] = []
    for line in dispatch.lines:
        lot = lots.get(line.lot_id)
        others = [_lot_at_hand(lots.get(p.get("lot_id")), p.get("lot_code"), p["on_hand"]) for p in positions
                  if p["sku_id"] == line.sku_id and p.get("lot_id") not in shipped]
        violation = check(_lot_at_hand(lot, line.lot_code, 0), line.quantity, others, today, RULES)
        if violation is not None:
            slips.append((line, violation))
    if not slips:
        return []
    skus = {s.id: s async for s in Sku.find({"_id": {"$in": sku_ids}}, session=session)}
    def older(v: FefoViolation) -> str:
        return ", ".join(f"{o.lot_code} (expires {o.expires_on}, {o.on_hand} units)" for o in v.older)

    text = "; ".join(
        f"{skus[line.sku_id].code if line.sku_id in skus else line.sku_id} lot {v.taken.lot_code} "
        f"(expires {v.taken.expires_on}) while {older(v)} stay"
        for line, v in slips
    )
    alert = await raise_alert(
        session,
        kind=AlertKind.fefo_violation,
        severity=Severity.warning,
        owner=dispatch.tenant_id,
        audience=await partner_audience(dispatch.tenant_id, dispatch.consignee_id),
        title=f"Dispatch {dispatch.ref} ships newer lots than the shipper keeps",
        dedupe_key=f"fefo_violation:dispatch:{dispatch.id}",
        subjects=[
            SubjectRef(kind="dispatch", id=str(dispatch.id), label=dispatch.ref),
            *[SubjectRef(kind="lot", id=str(line.lot_id), label=line.lot_code) for line, _ in slips],
        ],
        evidence={"dispatchRef": dispatch.ref, "consigneeId": dispatch.consignee_id,
                  "lines": [{**v.figures(), "skuId": str(line.sku_id)} for line, v in slips],
                  "toleranceDays": RULES.tolerance_days, "toleranceUnits": RULES.tolerance_units},
        recommendation=f"Ship the older lots first, or agree it with {dispatch.consignee_id}: their remaining shelf "
        f"life suffers and your older stock ages. {text}.",
    )
    return [alert]


async def refresh_open(database: Database, today: date, tenants: list[str] | None = None,
                       page: int = 100) -> tuple[int, int]:
    """Bring the open shelf alerts up to date: the older lots' on-hand as it is now (``alert.updated``), or resolved
    when none of them still sits there sellable and unexpired. Answers (updated, resolved)."""
    query: dict[str, Any] = {"kind": AlertKind.fefo_violation.value,
                             "status": {"$in": [AlertStatus.open.value, AlertStatus.acknowledged.value]},
                             "subjects.kind": "location"}
    if tenants is not None:
        query["tenant_id"] = {"$in": tenants}
    found = await Alert.get_pymongo_collection().find(query).to_list(None)
    updated = resolved = 0
    for start in range(0, len(found), page):

        async def work(session: AsyncClientSession, batch: list[dict[str, Any]] = found[start:start + page]
                       ) -> tuple[int, int]:
            return await _refresh(session, batch, today)

        done = await database.in_transaction(work)
        updated, resolved = updated + done[0], resolved + done[1]
    return updated, resolved


async def _refresh(session: AsyncClientSession, found: list[dict[str, Any]], today: date) -> tuple[int, int]:
    collection = Alert.get_pymongo_collection()
    updated = resolved = 0
    for raw in found:
        subjects = {s["kind"]: s["id"] for s in raw.get("subjects", [])}
        codes = [lot["lotCode"] for lot in raw.get("evidence", {}).get("olderLots", [])]
        positions = await StockPosition.get_pymongo_collection().find(
            {"tenant_id": raw["tenant_id"], "location_id": ObjectId(subjects["location"]),
             "sku_id": ObjectId(subjects["sku"]), "lot_code": {"$in": codes}}, session=session).to_list(None)
        lots = await _lots(session, {p["lot_id"] for p in positions if p.get("lot_id")})
        still = []
        for p in sorted(positions, key=lambda p: codes.index(p["lot_code"])):
            here = _lot_at_hand(lots.get(p.get("lot_id")), p["lot_code"], p["on_hand"])
            if here.sellable and here.expires_on is not None and here.expires_on >= today \
                    and here.on_hand > RULES.tolerance_units:
                still.append({"lotCode": here.lot_code, "expiresOn": here.expires_on.isoformat(),
                              "onHand": here.on_hand})
        if not still:
            if await resolve_by_system(session, raw["_id"], RESOLVER,
                                       "no older lot sits there any more (sold, moved, held or past expiry)"):
                resolved += 1
            continue
        if still == raw["evidence"].get("olderLots"):
            continue
        done = await collection.find_one_and_update(
            {"_id": raw["_id"], "status": {"$ne": AlertStatus.resolved.value}},
            {"$set": {"evidence.olderLots": still, "evidence.olderUnits": sum(l["onHand"] for l in still),
                      "evidence.evaluatedOn": today.isoformat(), "updated_at": utcnow()}},
            return_document=ReturnDocument.AFTER, session=session)
        if done is not None:
            alert = Alert.model_validate(done)
            await emit(session, UPDATED_EVENT, alert.tenant_id, alert.audience, alert_payload(alert))
            updated += 1
    return updated, resolved
