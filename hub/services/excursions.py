"""Recording excursions: the episode, what it cost each exposed lot, the ``sensor_spike`` alert, and re-dating.

Called by ingestion inside its transaction with the excursions the judgement of a sensor's window found. Each is
reconciled with the stored excursions it overlaps (within the hysteresis): none, and it is new; one, and that one is
updated in place (same id, same alert); several (a late batch joined them), and the earliest absorbs the others,
which are marked ``merged`` and their alerts resolved.

Exposure is resolved as finely as the data allows (``Basis``): a logger attached to pallets or cases (SSCCs)
exposes only the goods the dispatches list on them, and only those dispatch lines lose shelf life (their
``effective_expires_on``), while the lot elsewhere keeps its date; a logger travelling with a dispatch, or one at a
location, exposes and re-dates the whole of each lot there.

The loss of shelf life is recomputed from the excursion's whole dose each time (never added twice) against the
effective expiry the lot had when the excursion began, and lots only ever move earlier (``$min``), so repeated or
concurrent updates converge. The alert is raised when the excursion is found and updated in place (``alert.updated``)
when its figures change (start, end, peak, cause, exposure, severity); while it merely continues nobody is told
again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.config import Settings
from hub.dates import from_bson, to_bson
from hub.detect.shelf_life import loss_fraction, shortened_expiry
from hub.detect.spikes import Episode, threshold_key
from hub.models.alert import Alert, AlertKind, Severity, SubjectRef
from hub.models.dispatch import OPEN_STATUSES, Dispatch
from hub.models.excursion import Excursion, ExcursionStatus, ExposedLot
from hub.models.location import Location
from hub.models.lot import Lot
from hub.models.pallet import Pallet
from hub.models.sensor import Sensor, states_of
from hub.models.stock import StockPosition
from hub.services import audiences, expiry, exposure_views
from hub.services.alerts import raise_alert, resolve_by_system
from hub.services.lots import lot_events
from hub.services.pallets import PackedGoods, UnitGoods, dispatches_carrying, goods_on, packed_goods, unshipped
from hub.services.sensors import Basis, Goods, basis_of

SERIOUS_LOSS = 0.10  # an exposed lot losing this much of its remaining shelf life makes the alert critical


@dataclass(frozen=True)
class Outcome:
    excursion_id: PydanticObjectId
    opened: bool  # found for the first time by this call
    closed: bool  # back in range as of this call


@dataclass
class Exposure:
    """What sits with the sensor now: units per lot, and for a logger on pallets what they are a part of."""

    basis: Basis
    units: dict[PydanticObjectId, int]
    on_units: list[UnitGoods] = field(default_factory=list)  # pallet basis: the dispatch lines on the pallets
    packed: list[PackedGoods] = field(default_factory=list)  # and the packing records of pallets not shipped yet
    totals: dict[PydanticObjectId, int] = field(default_factory=dict)
    ssccs: dict[PydanticObjectId, list[str]] = field(default_factory=dict)
    starts: dict[PydanticObjectId, date] = field(default_factory=dict)  # earliest shortened date on those lines
    # location basis: when each lot's stock first arrived at the sensor's location (goods arriving after an
    # excursion ended never saw it, though a late batch may reveal it only now)
    arrived: dict[PydanticObjectId, datetime] = field(default_factory=dict)


async def exposure_of(session: AsyncClientSession, sensor: Sensor, lot_ids: list[Any]) -> Exposure:
    basis = basis_of(sensor)
    if basis == Basis.location:
        arrived: dict[PydanticObjectId, datetime] = {}
        async for position in StockPosition.get_pymongo_collection().find(
            {"tenant_id": sensor.tenant_id, "location_id": sensor.location_id, "lot_id": {"$in": lot_ids}},
            {"lot_id": 1, "arrived_at": 1}, session=session,
        ):
            if (when := position.get("arrived_at")) is not None:
                arrived[position["lot_id"]] = min(when, arrived.get(position["lot_id"], when))
        return Exposure(basis, await exposed_units(session, sensor, lot_ids), arrived=arrived)
    if basis != Basis.pallet:
        return Exposure(basis, await exposed_units(session, sensor, lot_ids))
    carrying = await dispatches_carrying([sensor.tenant_id], sensor.ssccs, session)
    on_units = goods_on(sensor.tenant_id, sensor.ssccs, carrying)
    exposure = Exposure(basis, {}, on_units)
    by_id = {dispatch.id: dispatch for dispatch in carrying}
    for item in on_units:
        exposure.units[item.lot_id] = exposure.units.get(item.lot_id, 0) + item.units
        exposure.totals[item.lot_id] = exposure.totals.get(item.lot_id, 0) + item.dispatch_units
        exposure.ssccs[item.lot_id] = sorted({*exposure.ssccs.get(item.lot_id, []), *item.ssccs})
        for n in item.lines:
            shortened = by_id[item.dispatch_id].lines[n].effective_expires_on
            if shortened is not None:
                exposure.starts[item.lot_id] = min(shortened, exposure.starts.get(item.lot_id, shortened))
    exposure.packed = await packed_goods(sensor.tenant_id, unshipped(sensor.ssccs, on_units), session)
    here: dict[tuple[Any, Any], int] = {}  # packed units per (location, lot): part of the stock there
    for packed in exposure.packed:
        exposure.units[packed.lot_id] = exposure.units.get(packed.lot_id, 0) + packed.units
        exposure.ssccs[packed.lot_id] = sorted({*exposure.ssccs.get(packed.lot_id, []), packed.sscc})
        where = (packed.location_id or sensor.location_id, packed.lot_id)
        here[where] = here.get(where, 0) + packed.units
        if packed.effective_expires_on is not None:
            shortened = packed.effective_expires_on
            exposure.starts[packed.lot_id] = min(shortened, exposure.starts.get(packed.lot_id, shortened))
    for (location_id, lot_id), units in here.items():
        positions = await StockPosition.get_pymongo_collection().find(
            {"tenant_id": sensor.tenant_id, "location_id": location_id, "lot_id": lot_id}, {"on_hand": 1},
            session=session).to_list(None)
        on_hand = sum(max(p.get("on_hand", 0), 0) for p in positions)
        exposure.totals[lot_id] = exposure.totals.get(lot_id, 0) + max(on_hand, units)
    return exposure


def _exposures(
    episode: Episode, goods: Goods, exposure: Exposure, previous: list[ExposedLot], settings: Settings,
    redated: dict[Any, date], seen: dict[Any, date],
) -> list[ExposedLot]:
    before = {item.lot_id: item for item in previous}
    exposed: dict[PydanticObjectId, ExposedLot] = dict(before)
    day = episode.started_at.date()
    for lot in goods.lots:
        sku = goods.skus.get(lot.sku_id)
        arrived = exposure.arrived.get(lot.id)  # type: ignore[arg-type]
        if sku is None or (lot.id not in before and arrived is not None and episode.ended_at is not None
                           and arrived > episode.ended_at):
            continue
        limit = sku.storage.temp_max_c
        dose = episode.degree_minutes_above(limit)
        loss = loss_fraction(sku.excursion_sensitivity, dose, settings.shelf_life_loss_per_degree_minute)
        earlier = before.get(lot.id)  # type: ignore[arg-type]
        start_expiry = earlier.expires_before if earlier else seen.get(lot.id) or _earliest(
            exposure.starts.get(lot.id, lot.effective_expires_on), redated.get(lot.id))  # type: ignore[arg-type]
        exposed[lot.id] = ExposedLot(  # type: ignore[index]
            lot_id=lot.id,
            lot_code=lot.lot_code,
            sku_id=sku.id,
            sku_code=sku.code,
            owner_id=sku.tenant_id,
            limit_c=limit,
            degree_minutes=round(dose, 2),
            loss_fraction=round(loss, 4),
            expires_before=start_expiry,
            expires_after=shortened_expiry(start_expiry, day, loss) if start_expiry else None,
            units=exposure.units.get(lot.id, earlier.units if earlier else 0),  # type: ignore[arg-type]
            pack_size=sku.pack_size,
            total_units=exposure.totals.get(lot.id, earlier.total_units if earlier else None),  # type: ignore[arg-type]
            ssccs=exposure.ssccs.get(lot.id, earlier.ssccs if earlier else []),  # type: ignore[arg-type]
        )
    return sorted(exposed.values(), key=lambda item: item.lot_code)


def _earliest(*dates: date | None) -> date | None:
    return min((d for d in dates if d is not None), default=None)


async def exposed_units(
    session: AsyncClientSession, sensor: Sensor, lot_ids: list[Any]
) -> dict[PydanticObjectId, int]:
    """Units of each exposed lot: on the pallets the sensor is attached to; else on the dispatch it travels with,
    plus on hand at its location."""
    if sensor.ssccs:
        return (await exposure_of(session, sensor, lot_ids)).units
    units: dict[PydanticObjectId, int] = {}
    if sensor.dispatch_id is not None:
        dispatch = await Dispatch.find_one({"_id": sensor.dispatch_id}, session=session)
        for line in dispatch.lines if dispatch else []:
            units[line.lot_id] = units.get(line.lot_id, 0) + line.quantity
    cursor = StockPosition.get_pymongo_collection().find(
        {"tenant_id": sensor.tenant_id, "location_id": sensor.location_id, "lot_id": {"$in": lot_ids}},
        {"lot_id": 1, "on_hand": 1},
        session=session,
    )
    async for position in cursor:
        units[position["lot_id"]] = units.get(position["lot_id"], 0) + max(position.get("on_hand", 0), 0)
    return units


async def _redate(session: AsyncClientSession, exposed: list[ExposedLot], exposure: Exposure) -> None:
    """Move effective expiry earlier (never later): on the dispatch lines on the sensor's pallets only, else on the
    lots and on every stock position of them."""
    if exposure.basis == Basis.pallet:
        shortened = {item.lot_id: item.expires_after for item in exposed if item.expires_after != item.expires_before}
        await _redate_lines(session, shortened, exposure.on_units)
        await _redate_packed(session, shortened, exposure.packed)
        return
    for item in exposed:
        if item.expires_after is None or item.expires_after == item.expires_before:
            continue
        when = to_bson(item.expires_after)
        before = await Lot.get_pymongo_collection().find_one_and_update(
            {"_id": item.lot_id}, {"$min": {"effective_expires_on": when}}, session=session
        )
        await lot_events(session, "lot.redated", [before] if before else [], "temperature excursion")
        await StockPosition.get_pymongo_collection().update_many(
            {"lot_id": item.lot_id}, {"$min": {"effective_expires_on": when}}, session=session
        )


def _later(entry: dict[str, Any], when: date) -> bool:
    """Whether a stored line or content's effective expiry is unset or later than ``when`` (dates only move earlier)."""
    current = entry.get("effective_expires_on")
    return current is None or from_bson(current) > when  # type: ignore[operator]


async def _redate_lines(session: AsyncClientSession, shortened: dict[Any, date | None],
                        on_units: list[UnitGoods]) -> None:
    collection = Dispatch.get_pymongo_collection()
    for goods in on_units:
        when = shortened.get(goods.lot_id)
        if when is None:
            continue
        raw = await collection.find_one({"_id": goods.dispatch_id}, {"lines.effective_expires_on": 1}, session=session)
        lines = (raw or {}).get("lines", [])
        changes = {
            f"lines.{n}.effective_expires_on": to_bson(when)
            for n in goods.lines if n < len(lines) and _later(lines[n], when)
        }
        if changes:
            await collection.update_one({"_id": goods.dispatch_id}, {"$set": changes}, session=session)


async def _recheck_dispatches(session: AsyncClientSession, exposure: Exposure) -> None:
    """Pallets still on their way may now arrive below the consignee's minimum remaining shelf life."""
    ids = sorted({goods.dispatch_id for goods in exposure.on_units})
    async for dispatch in Dispatch.find({"_id": {"$in": ids}, "status": {"$in": [s.value for s in OPEN_STATUSES]}},
                                        session=session):
        await expiry.check_dispatch_shelf_life(session, dispatch)


async def _redate_packed(session: AsyncClientSession, shortened: dict[Any, date | None],
                         packed: list[PackedGoods]) -> None:
    collection = Pallet.get_pymongo_collection()
    for goods in packed:
        when = shortened.get(goods.lot_id)
        if when is None:
            continue
        raw = await collection.find_one({"_id": goods.pallet_id}, {"contents.effective_expires_on": 1},
                                        session=session)
        contents = (raw or {}).get("contents", [])
        if goods.content < len(contents) and _later(contents[goods.content], when):
            await collection.update_one(
                {"_id": goods.pallet_id},
                {"$set": {f"contents.{goods.content}.effective_expires_on": to_bson(when)}}, session=session,
            )


def _evidence(excursion: Excursion, location: Location | None) -> dict[str, Any]:
    return {
        "excursionId": str(excursion.id),
        "sensorId": str(excursion.sensor_id),
        "deviceId": excursion.device_id,
        "locationId": str(excursion.location_id),
        "locationCode": location.code if location else None,
        "cause": excursion.cause,
        "limitC": excursion.limit_c,
        "peakC": excursion.peak_c,
        "peakAt": excursion.peak_at.isoformat(),
        "startedAt": excursion.started_at.isoformat(),
        "endedAt": excursion.ended_at.isoformat() if excursion.ended_at else None,
        "durationMinutes": round(excursion.duration_minutes, 1),
        "degreeMinutes": round(excursion.degree_minutes, 1),
        "readings": [[at.isoformat(), c] for at, c in excursion.samples],
        "exposedUnits": sum(item.units for item in excursion.exposed_lots),
        "exposureBasis": excursion.exposure_basis.upper(),
        "lots": [
            {
                "lotId": str(item.lot_id),
                "ownerId": item.owner_id,  # a partner is shown its own lots only (hub/services/exposure_views.py)
                "lotCode": item.lot_code,
                "skuCode": item.sku_code,
                "units": item.units,
                "cases": item.cases,
                "packSize": item.pack_size,
                "totalUnits": item.total_units,
                "totalCases": item.total_cases,
                "ssccs": item.ssccs,
                "degreeMinutes": item.degree_minutes,
                "shelfLifeLossPct": round(item.loss_fraction * 100, 1),
                "expiresBefore": item.expires_before.isoformat() if item.expires_before else None,
                "expiresAfter": item.expires_after.isoformat() if item.expires_after else None,
            }
            for item in excursion.exposed_lots
        ],
    }


def _overlaps(doc: dict[str, Any], episode: Episode, hysteresis: timedelta) -> bool:
    end = doc.get("ended_at") or doc.get("last_mark_at") or doc["started_at"]
    episode_end = episode.ended_at or episode.last_mark_at
    return doc["started_at"] <= episode_end + hysteresis and end + hysteresis >= episode.started_at


def _alert_view(doc: dict[str, Any] | None) -> tuple[Any, ...]:
    """The figures whose change updates the alert: an excursion that merely continues does not; once it has ended,
    any change to its evidence does (a late batch extending it, or filling a hole in its readings)."""
    if doc is None:
        return ()
    lots = tuple((str(i["lot_id"]), i.get("units"), i.get("expires_after")) for i in doc.get("exposed_lots", []))
    ended = doc.get("ended_at")
    final = (doc.get("last_mark_at"), doc.get("degree_minutes"), doc.get("duration_minutes"), doc.get("samples"),
             tuple((str(i["lot_id"]), i.get("degree_minutes")) for i in doc.get("exposed_lots", [])))
    return (doc.get("status"), doc.get("started_at"), ended, ended and final, doc.get("cause"), doc.get("peak_c"),
            lots)


async def reconcile(
    session: AsyncClientSession,
    sensor: Sensor,
    goods: Goods,
    episodes: list[Episode],
    window_start: datetime,
    settings: Settings,
    now: datetime,
) -> list[Outcome]:
    """Store what the judgement of ``sensor``'s window from ``window_start`` found (see the module's docstring)."""
    collection = Excursion.get_pymongo_collection()
    hysteresis = timedelta(minutes=settings.spike_hysteresis_minutes)
    first, last = episodes[0], episodes[-1]
    stored = await collection.find(
        {
            "sensor_id": sensor.id,
            "status": {"$ne": ExcursionStatus.merged.value},
            # one found before the sensor was moved belongs to the goods where it was: never joined to a later one
            "started_at": {"$lte": (last.ended_at or last.last_mark_at) + hysteresis,
                           **({"$gte": sensor.attached_at} if sensor.attached_at is not None else {})},
            "$or": [{"ended_at": None}, {"ended_at": {"$gte": first.started_at - hysteresis}}],
        },
        session=session,
    ).sort("started_at", 1).to_list(None)
    location = await Location.find_one({"_id": sensor.location_id}, session=session)
    where = location.code if location else sensor.device_id
    limit = goods.spike_config(settings).limit_c
    exposure = await exposure_of(session, sensor, [lot.id for lot in goods.lots])
    others = await _others_here(session, sensor, episodes, now) if exposure.basis == Basis.location else []
    outcomes = []
    claimed: set[Any] = set()
    redated: dict[Any, date] = {}  # lots re-dated by this call's earlier episodes (``goods`` was read before them)
    for episode in episodes:
        matches = [doc for doc in stored if doc["_id"] not in claimed and _overlaps(doc, episode, hysteresis)]
        claimed.update(doc["_id"] for doc in matches)
        keep = matches[0] if matches else None
        if keep is not None and episode.started_at <= window_start:
            # The window cut the episode: what came before it is known only from the stored excursion.
            episode.started_at = min(episode.started_at, keep["started_at"])
            episode.cause = keep["cause"]  # what opened it lies before the window
            if keep["peak_c"] > episode.peak_c:
                episode.peak_c, episode.peak_at = keep["peak_c"], keep["peak_at"]
            doses = [(limit, keep.get("degree_minutes", 0.0)),
                     *((item.get("limit_c"), item.get("degree_minutes", 0.0)) for item in keep.get("exposed_lots", []))]
            for threshold, stored_dose in doses:  # each SKU's own limit too, not only the strictest
                if threshold is not None and stored_dose > episode.degree_minutes_above(threshold):
                    episode.degree_minutes[threshold_key(threshold)] = stored_dose
        old = [ExposedLot.model_validate(item) for doc in matches for item in doc.get("exposed_lots", [])]
        exposed = _exposures(episode, goods, exposure, old, settings, redated, _seen_by_others(others, episode))
        closed = episode.ended_at is not None
        fields = {
            "tenant_id": sensor.tenant_id,
            "sensor_id": sensor.id,
            "device_id": sensor.device_id,
            "location_id": sensor.location_id,
            "status": (ExcursionStatus.closed if closed else ExcursionStatus.open).value,
            "cause": episode.cause,
            "started_at": episode.started_at,
            "opened_at": min([episode.opened_at or episode.last_mark_at, *[d["opened_at"] for d in matches]]),
            "ended_at": episode.ended_at,
            "last_mark_at": episode.last_mark_at,
            "limit_c": limit if limit is not None else (keep or {}).get("limit_c"),
            "peak_c": episode.peak_c,
            "peak_at": episode.peak_at,
            "degree_minutes": round(episode.degree_minutes_above(limit), 2),
            "duration_minutes": round(episode.duration_minutes, 2),
            "samples": [[r.at, r.c] for r in episode.samples],
            "exposed_lots": [item.model_dump() for item in exposed],
            "exposure_basis": exposure.basis.value,
            "goods_owners": sorted({item.owner_id for item in exposed} - {sensor.tenant_id}),
            "updated_at": now,
        }
        for item in fields["exposed_lots"]:
            item["expires_before"] = to_bson(item["expires_before"])
            item["expires_after"] = to_bson(item["expires_after"])
        raw: dict[str, Any] | None
        if keep is None:
            result = await collection.insert_one({**fields, "created_at": now, "alert_id": None}, session=session)
            raw = {**fields, "_id": result.inserted_id, "created_at": now, "alert_id": None}
        else:
            raw = await collection.find_one_and_update(
                {"_id": keep["_id"]}, {"$set": fields}, return_document=ReturnDocument.AFTER, session=session
            )
        excursion = Excursion.model_validate(raw)
        for other in matches[1:]:
            await _absorb(session, other, excursion, now)
        await _redate(session, exposed, exposure)
        for item in exposed:  # a later episode of this call starts from these dates (excursions compound)
            if item.expires_after is not None and item.expires_after != item.expires_before:
                redated[item.lot_id] = _earliest(item.expires_after, redated.get(item.lot_id))  # type: ignore[assignment]
        if keep is None or len(matches) > 1 or keep.get("alert_id") is None or _alert_view(keep) != _alert_view(raw):
            alert = await _alert(session, sensor, excursion, location, where)
            await collection.update_one({"_id": excursion.id}, {"$set": {"alert_id": alert.id}}, session=session)
        if exposed and exposure.basis == Basis.pallet:  # a pallet's shortened date is on its dispatch lines
            await _recheck_dispatches(session, exposure)
        elif exposed:
            await expiry.evaluate_lots(session, sensor.tenant_id, sensor.location_id, [i.lot_id for i in exposed])
        was_closed = keep is not None and keep.get("ended_at") is not None
        outcomes.append(Outcome(excursion.id, keep is None, closed and not was_closed))
    return outcomes


async def end_on_move(sensor: Sensor, now: datetime) -> None:
    """``sensor`` (as it was) left the goods it watched during an excursion: the excursion ends with the last reading
    taken there (nothing later can be known of it; readings from the new place are never joined to it), and its
    alert says so."""
    collection = Excursion.get_pymongo_collection()
    state = (await states_of([sensor.id])).get(sensor.id)
    last = state.last_reading_at if state is not None else None
    async for doc in collection.find({"sensor_id": sensor.id, "status": ExcursionStatus.open.value}):
        ended = max(min(last or now, now), doc["started_at"])
        raw = await collection.find_one_and_update(
            {"_id": doc["_id"], "status": ExcursionStatus.open.value},
            {"$set": {"status": ExcursionStatus.closed.value, "ended_at": ended, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )
        if raw is None:
            continue
        excursion = Excursion.model_validate(raw)
        location = await Location.find_one({"_id": excursion.location_id})
        await _alert(None, sensor, excursion, location, location.code if location else sensor.device_id)  # type: ignore[arg-type]


async def _others_here(
    session: AsyncClientSession, sensor: Sensor, episodes: list[Episode], now: datetime
) -> list[dict[str, Any]]:
    """Excursions other sensors at the same location recorded over the span of ``episodes``."""
    last = episodes[-1]
    return await Excursion.get_pymongo_collection().find(
        {
            "tenant_id": sensor.tenant_id,
            "location_id": sensor.location_id,
            "sensor_id": {"$ne": sensor.id},
            "exposure_basis": Basis.location.value,
            "status": {"$ne": ExcursionStatus.merged.value},
            "started_at": {"$lte": last.ended_at or now},
            "$or": [{"ended_at": None}, {"ended_at": {"$gte": episodes[0].started_at}}],
        },
        {"started_at": 1, "ended_at": 1, "exposed_lots.lot_id": 1, "exposed_lots.expires_before": 1},
        session=session,
    ).to_list(None)


def _seen_by_others(others: list[dict[str, Any]], episode: Episode) -> dict[Any, date]:
    """Per lot, its date before the same heat as another sensor here recorded it (overlapping in time): two loggers
    on one shelf see one event, and the lot loses the worse of their two doses, not both."""
    end = episode.ended_at or datetime.max.replace(tzinfo=episode.started_at.tzinfo)
    seen: dict[Any, date] = {}
    for other in others:
        if other["started_at"] > end or (other.get("ended_at") or end) < episode.started_at:
            continue
        for item in other.get("exposed_lots", []):
            before = from_bson(item.get("expires_before"))
            if before is not None:
                seen[item["lot_id"]] = min(before, seen.get(item["lot_id"], before))
    return seen


async def _absorb(session: AsyncClientSession, other: dict[str, Any], into: Excursion, now: datetime) -> None:
    """A late batch joined ``other`` to ``into``: one episode, one alert (``other``'s is resolved, pointing there)."""
    await Excursion.get_pymongo_collection().update_one(
        {"_id": other["_id"]},
        {"$set": {"status": ExcursionStatus.merged.value, "merged_into": into.id, "updated_at": now}},
        session=session,
    )
    if other.get("alert_id") is not None:
        await resolve_by_system(
            session, other["alert_id"], "system:detection", f"merged into the alert of excursion {into.id}"
        )


async def _alert(
    session: AsyncClientSession, sensor: Sensor, excursion: Excursion, location: Location | None, where: str
) -> Alert:
    audience = await audiences.for_sensor(sensor, excursion.goods_owners, session)
    worst = max((item.loss_fraction for item in excursion.exposed_lots), default=0.0)
    spoiled = any(
        item.expires_after and item.expires_after < excursion.started_at.date() for item in excursion.exposed_lots
    )
    state = "ended" if excursion.status == ExcursionStatus.closed else "ongoing"
    evidence = _evidence(excursion, location)
    return await raise_alert(
        session,
        kind=AlertKind.sensor_spike,
        severity=Severity.critical if worst >= SERIOUS_LOSS or spoiled else Severity.warning,
        owner=excursion.tenant_id,
        audience=audience,
        title=(
            f"Temperature excursion at {where} ({state}): peak {excursion.peak_c:g} °C"
            + (f" against a {excursion.limit_c:g} °C limit" if excursion.limit_c is not None else "")
            + f", {excursion.duration_minutes:.0f} min"
        ),
        dedupe_key=f"sensor_spike:{excursion.id}",
        subjects=[
            SubjectRef(kind="excursion", id=str(excursion.id)),
            SubjectRef(kind="sensor", id=str(excursion.sensor_id), label=excursion.device_id),
            SubjectRef(kind="location", id=str(excursion.location_id), label=where),
            *[SubjectRef(kind="lot", id=str(item.lot_id), label=item.lot_code) for item in excursion.exposed_lots],
        ],
        evidence=evidence,
        recommendation=exposure_views.recommendation(evidence["lots"], where),
        audience_rule=audiences.sensor_rule(sensor),
    )
