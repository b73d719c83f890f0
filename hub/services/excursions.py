"""Recording excursions: the episode, what it cost each exposed lot, the ``sensor_spike`` alert, and re-dating.

Called by ingestion inside its transaction for every excursion the detector opened, extended or closed. The loss of
shelf life is recomputed from the excursion's whole dose each time (never added twice) against the effective expiry
the lot had when the excursion began, and lots only ever move earlier (``$min``), so repeated or concurrent updates
converge. The alert is raised once when the excursion opens and updated (same dedupe key) when it closes; while it
merely continues nobody is paged again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.config import Settings
from hub.dates import to_bson
from hub.detect.shelf_life import loss_fraction, shortened_expiry
from hub.detect.spikes import EpisodeUpdate
from hub.models.alert import AlertKind, Severity, SubjectRef
from hub.models.excursion import Excursion, ExcursionStatus, ExposedLot
from hub.models.location import Location
from hub.models.lot import Lot
from hub.models.sensor import Sensor
from hub.models.stock import StockPosition
from hub.services import expiry
from hub.services.alerts import raise_alert
from hub.services.sensors import Goods
from tenants.access import grantees
from tenants.models import Scope

SERIOUS_LOSS = 0.10  # an exposed lot losing this much of its remaining shelf life makes the alert critical


@dataclass(frozen=True)
class Outcome:
    excursion_id: PydanticObjectId
    opened: bool
    closed: bool


def _exposures(update: EpisodeUpdate, goods: Goods, previous: list[ExposedLot], settings: Settings) -> list[ExposedLot]:
    episode = update.episode
    before = {item.lot_id: item for item in previous}
    exposed: dict[PydanticObjectId, ExposedLot] = dict(before)
    day = episode.started_at.date()
    for lot in goods.lots:
        sku = goods.skus.get(lot.sku_id)
        if sku is None:
            continue
        limit = sku.storage.temp_max_c
        dose = episode.degree_minutes_above(limit)
        loss = loss_fraction(sku.excursion_sensitivity, dose, settings.shelf_life_loss_per_degree_minute)
        earlier = before.get(lot.id)  # type: ignore[arg-type]
        start_expiry = earlier.expires_before if earlier else lot.effective_expires_on
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
        )
    return sorted(exposed.values(), key=lambda item: item.lot_code)


async def _redate(session: AsyncClientSession, exposed: list[ExposedLot]) -> None:
    """Move effective expiry earlier on the lots and on every stock position of them (never later)."""
    for item in exposed:
        if item.expires_after is None or item.expires_after == item.expires_before:
            continue
        when = to_bson(item.expires_after)
        await Lot.get_pymongo_collection().update_one(
            {"_id": item.lot_id}, {"$min": {"effective_expires_on": when}}, session=session
        )
        await StockPosition.get_pymongo_collection().update_many(
            {"lot_id": item.lot_id}, {"$min": {"effective_expires_on": when}}, session=session
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
        "lots": [
            {
                "lotId": str(item.lot_id),
                "lotCode": item.lot_code,
                "skuCode": item.sku_code,
                "degreeMinutes": item.degree_minutes,
                "shelfLifeLossPct": round(item.loss_fraction * 100, 1),
                "expiresBefore": item.expires_before.isoformat() if item.expires_before else None,
                "expiresAfter": item.expires_after.isoformat() if item.expires_after else None,
            }
            for item in excursion.exposed_lots
        ],
    }


def _recommendation(excursion: Excursion, where: str) -> str:
    redated = [item for item in excursion.exposed_lots if item.expires_after != item.expires_before]
    if redated:
        lots = ", ".join(f"{i.lot_code} (expires {i.expires_after}, was {i.expires_before})" for i in redated)
        return f"Dispatch with priority or inspect the exposed lots at {where}: {lots}. Check the cooling at {where}."
    if excursion.exposed_lots:
        lots = ", ".join(item.lot_code for item in excursion.exposed_lots)
        return f"Inspect the goods at {where} ({lots}) and check the cooling; no shelf life lost so far."
    return f"Check the cooling at {where}; no tracked goods were exposed."


async def record(
    session: AsyncClientSession,
    sensor: Sensor,
    goods: Goods,
    updates: list[EpisodeUpdate],
    settings: Settings,
    now: datetime,
) -> list[Outcome]:
    outcomes = []
    collection = Excursion.get_pymongo_collection()
    location = await Location.find_one({"_id": sensor.location_id}, session=session)
    where = location.code if location else sensor.device_id
    limit = goods.spike_config(settings).limit_c
    for update in updates:
        episode = update.episode
        key = {"sensor_id": sensor.id, "started_at": episode.started_at}
        previous = await collection.find_one(key, session=session)
        old = [ExposedLot.model_validate(item) for item in (previous or {}).get("exposed_lots", [])]
        exposed = _exposures(update, goods, old, settings)
        fields = {
            "tenant_id": sensor.tenant_id,
            "device_id": sensor.device_id,
            "location_id": sensor.location_id,
            "status": (ExcursionStatus.closed if update.closed else ExcursionStatus.open).value,
            "cause": episode.cause,
            "opened_at": episode.opened_at,
            "ended_at": episode.ended_at,
            "limit_c": limit if limit is not None else (previous or {}).get("limit_c"),
            "peak_c": episode.peak_c,
            "peak_at": episode.peak_at,
            "degree_minutes": round(episode.degree_minutes_above(limit), 2),
            "duration_minutes": round(episode.duration_minutes, 2),
            "samples": [[s.at, s.c] for s in episode.samples],
            "exposed_lots": [item.model_dump() for item in exposed],
            "goods_owners": sorted({item.owner_id for item in exposed} - {sensor.tenant_id}),
            "updated_at": now,
        }
        for item in fields["exposed_lots"]:
            item["expires_before"] = to_bson(item["expires_before"])
            item["expires_after"] = to_bson(item["expires_after"])
        raw = await collection.find_one_and_update(
            key,
            {"$set": fields, "$setOnInsert": {**key, "created_at": now}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        excursion = Excursion.model_validate(raw)
        await _redate(session, exposed)
        new_lots = {item.lot_id for item in exposed} - {item.lot_id for item in old}
        if update.opened or update.closed or new_lots or excursion.alert_id is None:
            alert = await _alert(session, excursion, location, where)
            await collection.update_one({"_id": excursion.id}, {"$set": {"alert_id": alert.id}}, session=session)
        if exposed:
            await expiry.evaluate_lots(session, sensor.tenant_id, sensor.location_id, [i.lot_id for i in exposed])
        outcomes.append(Outcome(excursion.id, update.opened, update.closed))
    return outcomes


async def _alert(session: AsyncClientSession, excursion: Excursion, location: Location | None, where: str):
    entitled = await grantees(excursion.tenant_id, Scope.sensors)
    audience = [owner for owner in excursion.goods_owners if owner in entitled]
    worst = max((item.loss_fraction for item in excursion.exposed_lots), default=0.0)
    spoiled = any(
        item.expires_after and item.expires_after < excursion.started_at.date() for item in excursion.exposed_lots
    )
    state = "ended" if excursion.status == ExcursionStatus.closed else "ongoing"
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
        evidence=_evidence(excursion, location),
        recommendation=_recommendation(excursion, where),
    )
