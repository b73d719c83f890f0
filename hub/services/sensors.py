"""Sensors: registration, and the goods each one watches (what sets its limits and who may see it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from beanie import PydanticObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.config import Settings
from hub.dates import utcnow
from hub.detect.spikes import SpikeConfig
from hub.errors import BadInput, NotFound
from hub.models.dispatch import Dispatch
from hub.models.location import Location
from hub.models.lot import Lot
from hub.models.pallet import Pallet
from hub.models.sensor import Sensor
from hub.models.sku import Sku
from hub.models.stock import StockPosition
from hub.services.pallets import dispatches_carrying, goods_on, packed_goods, unshipped, validate_sscc
from hub.services.text import clean_text
from tenants.access import Access, object_id
from tenants.roles import Group


class Basis(str, Enum):
    """What a sensor's exposure is resolved to: the pallets it is attached to, the dispatch it travels with (and its
    location's stock), or the whole of each lot at its location."""

    pallet = "pallet"
    dispatch = "dispatch"
    location = "location"


def basis_of(sensor: Sensor) -> Basis:
    return Basis.pallet if sensor.ssccs else Basis.dispatch if sensor.dispatch_id else Basis.location


@dataclass
class Goods:
    """What sits with one sensor: lots in stock at its location, travelling with it or on its pallets, and SKUs."""

    lots: list[Lot] = field(default_factory=list)
    skus: dict[PydanticObjectId, Sku] = field(default_factory=dict)

    @property
    def owners(self) -> list[str]:
        return sorted({sku.tenant_id for sku in self.skus.values()})

    @property
    def limit_c(self) -> float | None:
        """The strictest storage maximum of the goods present (None: nothing here has one)."""
        return min((sku.storage.temp_max_c for sku in self.skus.values() if sku.storage.temp_max_c is not None),
                   default=None)

    def spike_config(self, settings: Settings) -> SpikeConfig:
        """Judge against the strictest goods present: lowest storage maximum, shortest minimum duration."""
        limited = [sku for sku in self.skus.values() if sku.storage.temp_max_c is not None]
        return SpikeConfig(
            limit_c=self.limit_c,
            min_minutes=min((sku.excursion_min_minutes for sku in limited), default=15),
            rise_c=settings.spike_rise_c_per_10min,
            thresholds=tuple(sorted({limit for sku in limited if (limit := sku.storage.temp_max_c) is not None})),
            hysteresis_minutes=settings.spike_hysteresis_minutes,
        )


async def goods_for(
    sensors: Iterable[Sensor], session: AsyncClientSession | None = None
) -> dict[PydanticObjectId, Goods]:
    """Goods per sensor in a handful of queries, whatever the number of sensors."""
    sensors = list(sensors)
    if not sensors:
        return {}
    on_pallets = [s for s in sensors if s.ssccs]
    carrying = await dispatches_carrying({s.tenant_id for s in on_pallets}, {u for s in on_pallets for u in s.ssccs},
                                         session)
    dispatch_ids = {s.dispatch_id for s in sensors if s.dispatch_id}
    dispatch_lots: dict[PydanticObjectId, list[PydanticObjectId]] = {}
    if dispatch_ids:
        async for dispatch in Dispatch.find({"_id": {"$in": sorted(dispatch_ids)}}, session=session):
            dispatch_lots[dispatch.id] = [line.lot_id for line in dispatch.lines]
    positions: dict[tuple[str, PydanticObjectId], list[StockPosition]] = {}
    # One flat (tenant, location) equality per place, the (tenant, location, sku, lot) index's leading fields, and
    # the stock on hand picked here: an $or of places, or on_hand in the query, made SecantusDB scan every position.
    for tenant, location in sorted({(s.tenant_id, s.location_id) for s in sensors}):
        cursor = StockPosition.get_pymongo_collection().find({"tenant_id": tenant, "location_id": location},
                                                             session=session)
        async for raw in cursor:
            if raw.get("on_hand", 0) > 0:
                positions.setdefault((tenant, location), []).append(StockPosition.model_validate(raw))
    wanted: dict[PydanticObjectId, tuple[set[PydanticObjectId], set[PydanticObjectId]]] = {}
    for sensor in sensors:
        if sensor.ssccs:  # a logger on pallets watches their goods, not the room it was registered at
            shipped = goods_on(sensor.tenant_id, sensor.ssccs, carrying)
            packed = await packed_goods(sensor.tenant_id, unshipped(sensor.ssccs, shipped), session)
            wanted[sensor.id] = ({g.lot_id for g in shipped} | {g.lot_id for g in packed}, set())  # type: ignore[index]
            continue
        here = positions.get((sensor.tenant_id, sensor.location_id), [])
        lot_ids = {p.lot_id for p in here if p.lot_id} | set(sensor.lot_ids)
        lot_ids |= set(dispatch_lots.get(sensor.dispatch_id, [])) if sensor.dispatch_id else set()
        wanted[sensor.id] = (lot_ids, {p.sku_id for p in here})  # type: ignore[index]
    all_lots = {lot_id for lots, _ in wanted.values() for lot_id in lots}
    lots = {lot.id: lot async for lot in Lot.find({"_id": {"$in": sorted(all_lots)}}, session=session)}
    sku_ids = {lot.sku_id for lot in lots.values()} | {sku for _, skus in wanted.values() for sku in skus}
    skus = {sku.id: sku async for sku in Sku.find({"_id": {"$in": sorted(sku_ids)}}, session=session)}
    result: dict[PydanticObjectId, Goods] = {}
    for sensor in sensors:
        lot_ids, stock_skus = wanted[sensor.id]  # type: ignore[index]
        present = sorted((lots[i] for i in lot_ids if i in lots), key=lambda lot: lot.lot_code)
        ids = {lot.sku_id for lot in present} | stock_skus
        result[sensor.id] = Goods(present, {i: skus[i] for i in ids if i in skus})  # type: ignore[index]
    return result


async def register_sensor(
    access: Access,
    device_id: str,
    location_id: str | None,
    name: str | None = None,
    lot_ids: list[str] | None = None,
    dispatch_id: str | None = None,
    interval_minutes: float | None = None,
    max_silence_minutes: float | None = None,
    ssccs: list[str] | None = None,
) -> tuple[Sensor, bool]:
    """Register the device, or move/re-attach it (same device id): answers (sensor, created).

    Attached to pallets or cases (``ssccs``), it watches only the goods on them: each must be on a dispatch the caller
    is a party to, or packed by the caller's own aggregation events (another tenant's pallets answer NOT_FOUND). A
    logger travelling with a dispatch or pallets may leave out its location: the caller's end of that dispatch (the
    shipper's origin, the consignee's destination) is where it reports from.
    """
    access.require(Group.operations)
    for value, setting in ((interval_minutes, "intervalMinutes"), (max_silence_minutes, "maxSilenceMinutes")):
        if value is not None and not (0 < value <= 7 * 1440):
            raise BadInput("must be more than 0 and at most 7 days in minutes", field=setting)
    device_id = clean_text(device_id, "deviceId", 200, "device id")
    lots = []
    for lot_id in dict.fromkeys(lot_ids or []):
        lots.append(await access.get(Lot, lot_id, access.lots("use"), "lot"))
    dispatch = None
    if dispatch_id is not None:
        dispatch = await access.get(Dispatch, dispatch_id, access.dispatches("read"), "dispatch")
    units = list(dict.fromkeys(validate_sscc(sscc, f"ssccs.{n}") for n, sscc in enumerate(ssccs or [])))
    carrying: list[Dispatch] = []
    for n, sscc in enumerate(units):
        found = await dispatches_carrying([access.tenant_id], [sscc])
        if not found and await Pallet.find_one({"tenant_id": access.tenant_id, "sscc": sscc}) is None:
            raise NotFound(f"ssccs.{n}: no dispatch of yours carries SSCC {sscc}, and you packed no such pallet",
                           field=f"ssccs.{n}")
        carrying += found
    if location_id is None:
        location_id = _own_end([*([dispatch] if dispatch else []), *carrying], access.tenant_id)
    location = await access.get(Location, location_id, access.locations("write"), "location")
    now = utcnow()
    key = {"tenant_id": access.tenant_id, "device_id": device_id}
    collection = Sensor.get_pymongo_collection()
    place = {"location_id": location.id, "dispatch_id": dispatch.id if dispatch else None, "ssccs": units}
    before = await collection.find_one(key)
    moved = before is not None and any((before.get(name) or None) != (value or None) for name, value in place.items())
    result = await collection.update_one(
        key,
        {
            "$set": {
                "name": name.strip() if name else None,
                **place,
                "lot_ids": [lot.id for lot in lots],
                "interval_minutes": interval_minutes,
                "max_silence_minutes": max_silence_minutes,
                "updated_at": now,
                **({"attached_at": now} if moved else {}),
            },
            "$setOnInsert": {
                **key, "goods_owners": [], "created_at": now,
            },
        },
        upsert=True,
    )
    sensor = Sensor.model_validate(await collection.find_one(key))
    goods = (await goods_for([sensor]))[sensor.id]
    owners = [owner for owner in goods.owners if owner != sensor.tenant_id]
    await Sensor.get_pymongo_collection().update_one({"_id": sensor.id}, {"$set": {"goods_owners": owners}})
    sensor.goods_owners = owners
    if moved:
        from hub.services.excursions import end_on_move  # excursions builds on this module

        await end_on_move(Sensor.model_validate(before), now)
    return sensor, result.upserted_id is not None


def _own_end(dispatches: list[Dispatch], tenant_id: str) -> str:
    for dispatch in dispatches:
        end = dispatch.from_location_id if dispatch.tenant_id == tenant_id else (
            dispatch.to_location_id if dispatch.consignee_id == tenant_id else None)
        if end is not None:
            return str(end)
    raise BadInput("say at which of your locations the sensor reports from (no dispatch it travels with names "
                   "your end)", field="locationId")


async def visible_sensor(access: Access, sensor_id: str) -> Sensor:
    return await access.get(Sensor, sensor_id, access.sensors("read"), "sensor")


def sensor_filter(access: Access, location_id: str | None = None, device_id: str | None = None) -> dict:
    clauses: list[dict] = [access.sensors("read")]
    if location_id is not None:
        clauses.append({"location_id": object_id(location_id, "location")})
    if device_id is not None:
        clauses.append({"device_id": device_id})
    return {"$and": clauses}


async def refresh_goods_owners(page: int = 500) -> int:
    """Re-derive which brands' goods every sensor watches; answers how many sensors changed.

    Ingestion refreshes this on every call, but goods also leave while a sensor is silent: the periodic sweep calls
    this so a brand stops seeing a sensor once none of its goods remain there.
    """
    changed = 0
    last = None
    while True:
        query: dict[str, Any] = {"_id": {"$gt": last}} if last is not None else {}
        sensors = await Sensor.find(query).sort("_id").limit(page).to_list()
        if not sensors:
            return changed
        last = sensors[-1].id
        goods = await goods_for(sensors)
        for sensor in sensors:
            owners = [owner for owner in goods[sensor.id].owners if owner != sensor.tenant_id]  # type: ignore[index]
            if owners != sensor.goods_owners:
                await Sensor.get_pymongo_collection().update_one({"_id": sensor.id}, {"$set": {"goods_owners": owners}})
                changed += 1
