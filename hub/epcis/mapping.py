"""From captured EPCIS events to the hub's domain, through the same services the GraphQL mutations use.

* ILMD (lot number, expiry, production date) with class-level LGTINs or instance SGTINs → the producer's lots;
* ``shipping`` ObjectEvents → a dispatch to the partner the destination list names (an SSCC in ``epcList`` ships
  what the shipper's aggregation events packed on it);
* ``receiving`` ObjectEvents → a receipt against the dispatch the business transaction names (same
  reconciliation, mismatch alerts and holds as ``recordReceipt``; an SSCC receives what the dispatch lists on it);
* AggregationEvents with an SSCC parent → the pallet's contents;
* ``sensorElementList`` temperature reports → readings of the sensor with that device id (spike rules apply).

Each mapper answers what it changed (``Mapped``) or why it changed nothing (``Unmapped``): the event is stored
either way. Every write goes through a service that checks the caller's rights, so an event can do nothing a
mutation could not. Re-capturing changes nothing twice: dispatch refs, receipt refs (from the event id), lots and
readings are all idempotent.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument, UpdateOne

from hub import epc
from hub.config import Settings
from hub.dates import utcnow
from hub.db import Database
from hub.epcis.models import EpcisLink, Mapped
from hub.epcis.validation import bare
from hub.errors import Conflict, HubError
from hub.models.dispatch import Dispatch
from hub.models.location import Location
from hub.models.pallet import Pallet
from hub.models.sensor import Sensor
from hub.services import dispatches, readings, receipts
from hub.services.lots import ensure_lot
from hub.services.pallets import UnitLine
from hub.services.skus import resolve_skus
from tenants.access import Access
from tenants.models import Tenant

REF_MAX = 100
# Business transaction types that name a shipment, most specific first.
SHIPMENT_TYPES = ("desadv", "bol", "inv", "po")
TEMPERATURE_UOM = {"CEL": lambda v: v, "FAH": lambda v: (v - 32) * 5 / 9, "KEL": lambda v: v - 273.15}


class Unmapped(Exception):
    """Why an event changed nothing in the domain (it is stored and queryable all the same)."""


@dataclass
class Item:
    """A trade item an event names: GTIN and lot, and how many (instances count one each)."""

    gtin: str
    lot: str | None
    quantity: float


def _ilmd_value(ilmd: Mapping[str, Any], *names: str) -> Any:
    for key, value in ilmd.items():
        if key.rpartition(":")[2] in names:
            return value
    return None


def ilmd_date(value: Any) -> date | None:
    """An ILMD date (a date, or the date of a date-time), None if it is neither."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def ilmd_dates(event: Mapping[str, Any]) -> tuple[str | None, date | None, date | None]:
    """(lot number, production date, expiry) from the event's ILMD (CBV master data attributes, any prefix)."""
    ilmd = event.get("ilmd")
    if not isinstance(ilmd, Mapping):
        return None, None, None
    lot = _ilmd_value(ilmd, "lotNumber")
    produced = ilmd_date(_ilmd_value(ilmd, "productionDate", "manufacturingDate"))
    expires = ilmd_date(_ilmd_value(ilmd, "itemExpirationDate", "bestBeforeDate", "sellByDate"))
    return (str(lot) if lot is not None else None), produced, expires


async def _instance_lots(access: Access, serials: Iterable[str]) -> dict[str, str]:
    """The lots of instance EPCs (SGTINs), as the caller's commissioning events gave them (``EpcisLink``)."""
    prefix = f"instance:{access.tenant_id}|"
    links = [prefix + serial for serial in sorted(set(serials))]
    if not links:
        return {}
    found = EpcisLink.get_pymongo_collection().find({"_id": {"$in": links}, "lot": {"$type": "string"}})
    return {doc["_id"][len(prefix):]: doc["lot"] async for doc in found}


async def _remember_lots(access: Access, event: Mapping[str, Any], lot: str) -> None:
    """Commissioned instances keep their lot, for later events that name them without one."""
    operations = []
    for uri in event.get("epcList") or []:
        key = epc.parse(uri)
        if key is not None and key.kind == "sgtin":
            link = f"instance:{access.tenant_id}|{key.digital_link}"
            operations.append(UpdateOne({"_id": link}, {"$set": {"lot": lot}}, upsert=True))
    if operations:
        await EpcisLink.get_pymongo_collection().bulk_write(operations, ordered=False)


async def items(access: Access, event: Mapping[str, Any], epc_key: str = "epcList",
                quantity_key: str = "quantityList") -> list[Item]:
    """The trade items an event names: instances (SGTIN: lot from ILMD or earlier commissioning) and classes
    (LGTIN with lot, GTIN pattern without)."""
    ilmd_lot, _, _ = ilmd_dates(event)
    found: list[Item] = []
    instances: list[epc.Key] = []
    for uri in event.get(epc_key) or []:
        key = epc.parse(uri)
        if key is not None and key.kind == "sgtin":
            instances.append(key)
    lots = {} if ilmd_lot else await _instance_lots(access, [k.digital_link for k in instances])
    for (gtin, lot), count in Counter((k.value, ilmd_lot or lots.get(k.digital_link)) for k in instances).items():
        found.append(Item(gtin, lot, count))
    for element in event.get(quantity_key) or []:
        parsed = epc.parse(element.get("epcClass", ""))
        if parsed is not None and parsed.gtin and isinstance(element.get("quantity", 0), int | float):
            found.append(Item(parsed.value, parsed.lot or ilmd_lot, float(element.get("quantity", 0))))
    return found


def pallets_named(event: Mapping[str, Any]) -> list[UnitLine]:
    """SSCCs in the event's epcList: a shipped pallet carries what its packing aggregated, a received one what the
    dispatch lists on it (hub/services/pallets.py)."""
    keys = [epc.parse(uri) for uri in event.get("epcList") or [] if isinstance(uri, str)]
    return [UnitLine(key.value, "epcList") for key in keys if key is not None and key.kind == "sscc"]


def shipment_ref(event: Mapping[str, Any]) -> str | None:
    """The shipment an event belongs to: its despatch advice (else bill of lading, invoice, order). A CBV
    transaction URN ``urn:epcglobal:cbv:bt:<GLN>:<id>`` gives ``<id>``; longer references are hashed."""
    by_type: dict[str, str] = {}
    for item in event.get("bizTransactionList") or []:
        word = bare("bizTransaction-type", item.get("type", "")) if item.get("type") else None
        by_type.setdefault(word or "", item["bizTransaction"])
    for kind in SHIPMENT_TYPES:
        if kind in by_type:
            value = by_type[kind]
            if value.startswith("urn:epcglobal:cbv:bt:") and value.count(":") >= 5:
                value = value.split(":", 5)[5]
            return value if len(value) <= REF_MAX else "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:40]
    return None


def _parties(event: Mapping[str, Any], key: str, role: str) -> list[epc.Key]:
    found = []
    for item in event.get(key) or []:
        if bare("source-dest-type", item.get("type", "")) == role:
            parsed = epc.parse(item.get(key.removesuffix("List"), ""))
            if parsed is not None:
                found.append(parsed)
    return found


async def _own_location(access: Access, uri: Any) -> Location | None:
    key = epc.parse(uri) if isinstance(uri, str) else None
    if key is None or key.kind != "sgln":
        return None
    return await Location.find_one({**access.locations("write"), "gln": key.value})


def _location_id(event: Mapping[str, Any], field: str) -> Any:
    value = event.get(field)
    return value.get("id") if isinstance(value, Mapping) else None


async def _consignee(access: Access, event: Mapping[str, Any]) -> tuple[str, Location | None]:
    """The partner the destination list names (owning party, else the owner of the destination location) and its
    location; a tenant that does not take the caller's dispatches is answered like an unknown one."""
    owners = [k.value for k in _parties(event, "destinationList", "owning_party") if k.kind in ("pgln", "sgln")]
    places = [k.value for k in _parties(event, "destinationList", "location") if k.kind == "sgln"]
    for gln in owners:
        tenant = await Tenant.find_one({"gln": gln})
        if tenant is not None and access.may_dispatch_to(str(tenant.id)):
            consignee = str(tenant.id)
            location = await Location.find_one({**access.receiving_locations(consignee), "gln": {"$in": places}})
            return consignee, location
    for gln in places:
        for location in await Location.find({"gln": gln}).to_list(10):
            if access.may_dispatch_to(location.tenant_id):
                return location.tenant_id, location
    raise Unmapped("the destination list names no partner that takes your dispatches (owning_party PGLN or "
                   "location SGLN)")


def _whole(quantity: float) -> int:
    if quantity <= 0 or quantity != int(quantity):
        raise Unmapped(f"quantity {quantity:g} is not a whole number of units")
    return int(quantity)


async def ship(access: Access, database: Database, event: Mapping[str, Any], event_id: str) -> list[Mapped]:
    ref = shipment_ref(event) or "epcis:" + event_id.rpartition(";")[2][:40]
    consignee, to_location = await _consignee(access, event)
    goods = await items(access, event)
    units = pallets_named(event)
    if not goods and not units:
        raise Unmapped("a shipping event without trade items (SGTIN, LGTIN) or pallets (SSCC) makes no dispatch")
    _, produced, expires = ilmd_dates(event)
    lines: list[dispatches.DispatchLineInput | UnitLine] = list(units)
    for item in goods:
        if item.lot is None:
            raise Unmapped(f"no lot known for GTIN {item.gtin}: give an LGTIN, ILMD lotNumber, or commission the "
                           "instances first")
        lines.append(dispatches.DispatchLineInput(item.gtin, item.lot, _whole(item.quantity), produced, expires))
    from_location = await _own_location(access, _location_id(event, "bizLocation") or _location_id(event, "readPoint"))
    source_time = ilmd_date(event.get("eventTime"))
    data = dispatches.DispatchInput(
        ref=ref, consignee_id=consignee, lines=lines, to_location=str(to_location.id) if to_location else None,
        from_location_id=str(from_location.id) if from_location else None, shipped_on=source_time,
    )
    try:
        dispatch = await dispatches.create_dispatch(access, database, data)
    except Conflict:
        existing = await Dispatch.find_one({"tenant_id": access.tenant_id, "ref": ref})
        if existing is None:
            raise
        dispatch = existing
    return [Mapped(kind="dispatch", id=str(dispatch.id), ref=dispatch.ref)]


async def receive(access: Access, database: Database, settings: Settings, event: Mapping[str, Any],
                  event_id: str) -> tuple[list[Mapped], list[str]]:
    ref = shipment_ref(event)
    if ref is None:
        raise Unmapped("a receiving event names its shipment with a bizTransaction (desadv, bol, inv or po)")
    dispatch = await Dispatch.find_one({**access.dispatches("read"), "ref": ref,
                                        "$or": [{"consignee_id": access.tenant_id}, {"carrier_id": access.tenant_id}]})
    if dispatch is None:
        raise Unmapped(f"no dispatch {ref!r} to you to receive against")
    goods = await items(access, event)
    units = pallets_named(event)
    if not goods and not units:
        raise Unmapped("a receiving event without trade items (SGTIN, LGTIN) or pallets (SSCC) makes no receipt")
    lines: list[receipts.ReceiptLineInput | UnitLine] = list(units)
    for item in goods:
        lot = item.lot or await _only_lot(access, dispatch, item.gtin)
        if lot is None:
            raise Unmapped(f"no lot known for GTIN {item.gtin}")
        lines.append(receipts.ReceiptLineInput(item.gtin, lot, _whole(item.quantity)))
    location = await _own_location(access, _location_id(event, "bizLocation") or _location_id(event, "readPoint"))
    data = receipts.ReceiptInput(
        dispatch_id=str(dispatch.id), lines=lines, location_id=str(location.id) if location else None,
        final=bare("disposition", event.get("disposition") or "") != "in_progress",
        ref="epcis:" + event_id.rpartition(";")[2][:40],
    )
    receipt = await receipts.record_receipt(access, database, settings, data)
    return [Mapped(kind="receipt", id=str(receipt.id), ref=receipt.ref),
            Mapped(kind="dispatch", id=str(dispatch.id), ref=dispatch.ref)], dispatch.parties


async def _only_lot(access: Access, dispatch: Dispatch, gtin: str) -> str | None:
    """An instance without a known lot takes the dispatch's lot of its GTIN, when the dispatch has only one."""
    sku = (await resolve_skus(access, [gtin], context=[line.sku_id for line in dispatch.lines])).get(gtin)
    lots = {line.lot_code for line in dispatch.lines if sku is not None and line.sku_id == sku.id}
    return lots.pop() if len(lots) == 1 else None


async def commission(access: Access, event: Mapping[str, Any]) -> list[Mapped]:
    """ILMD → lots of the caller's own SKUs (only a SKU's owner creates its lots)."""
    ilmd_lot, produced, expires = ilmd_dates(event)
    goods = [item for item in await items(access, event) if item.lot]
    if not goods:
        raise Unmapped("ILMD without a lot number or lot-level class (LGTIN)")
    if ilmd_lot:
        await _remember_lots(access, event, ilmd_lot)
    skus = await resolve_skus(access, {item.gtin for item in goods})
    mapped: list[Mapped] = []
    for item in goods:
        sku = skus.get(item.gtin)
        if sku is None or sku.tenant_id != access.tenant_id:
            raise Unmapped(f"GTIN {item.gtin} is not a SKU of yours: only its owner records its lots")
        lot = await ensure_lot(sku, item.lot or "", produced, expires)
        if all(m.id != str(lot.id) for m in mapped):
            mapped.append(Mapped(kind="lot", id=str(lot.id), ref=lot.lot_code))
    return mapped


def _contents(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    contents = []
    for uri in event.get("childEPCs") or []:
        key = epc.parse(uri)
        contents.append({"epc": key.digital_link if key else uri, "gtin": key.gtin if key else None,
                         "lot_code": key.lot if key else None, "serial": key.serial if key else None})
    for element in event.get("childQuantityList") or []:
        key = epc.parse(element.get("epcClass", ""))
        contents.append({"epc": key.digital_link if key else element.get("epcClass"),
                         "gtin": key.gtin if key else None, "lot_code": key.lot if key else None,
                         "quantity": element.get("quantity"), "uom": element.get("uom")})
    return contents


async def aggregate(access: Access, event: Mapping[str, Any], event_id: str) -> list[Mapped]:
    """ADD and OBSERVE put the children on the pallet; DELETE takes them off (all of them when none is named)."""
    parent = epc.parse(event.get("parentID") or "")
    if parent is None or parent.kind != "sscc":
        raise Unmapped("only aggregations onto an SSCC (pallet or case) are kept as pallets")
    contents = _contents(event)
    location = await _own_location(access, _location_id(event, "bizLocation"))
    collection = Pallet.get_pymongo_collection()
    keys = [c["epc"] for c in contents]
    if event.get("action") == "DELETE":
        change: dict[str, Any] = {"$pull": {"contents": {"epc": {"$in": keys}}}} if keys else {"$set": {"contents": []}}
    else:
        await collection.update_one({"tenant_id": access.tenant_id, "sscc": parent.value},
                                    {"$pull": {"contents": {"epc": {"$in": keys}}}})
        change = {"$push": {"contents": {"$each": contents}}}
    change.setdefault("$set", {}).update({"last_event_id": event_id, "updated_at": utcnow()})
    if location is not None:
        change["$set"]["location_id"] = location.id
    raw = await collection.find_one_and_update({"tenant_id": access.tenant_id, "sscc": parent.value}, change,
                                               upsert=True, return_document=ReturnDocument.AFTER)
    return [Mapped(kind="pallet", id=str(raw["_id"]) if raw else "", ref=parent.value)]


def _temperature(report: Mapping[str, Any]) -> float | None:
    kind = str(report.get("type", "")).rpartition("/")[2].rpartition(":")[2]
    value = report.get("value", report.get("meanValue"))
    convert = TEMPERATURE_UOM.get(str(report.get("uom", "CEL")))
    if kind != "Temperature" or not isinstance(value, int | float) or convert is None:
        return None
    return round(float(convert(value)), 3)


async def sense(access: Access, database: Database, settings: Settings, event: Mapping[str, Any]) -> list[Mapped]:
    """Temperature reports → readings of the sensor whose device id is the report's (or the element's) deviceID,
    as given or as its GS1 key; the time is the report's, else the element's, else the event's."""
    by_device: dict[str, list[readings.ReadingIn]] = {}
    for element in event.get("sensorElementList") or []:
        metadata = element.get("sensorMetadata") or {}
        for report in element.get("sensorReport") or []:
            celsius = _temperature(report)
            device = report.get("deviceID") or metadata.get("deviceID")
            when = report.get("time") or metadata.get("time") or metadata.get("endTime") or event.get("eventTime")
            if celsius is None or not device or not isinstance(when, str):
                continue
            by_device.setdefault(device, []).append(readings.ReadingIn(datetime.fromisoformat(when.upper()), celsius))
    if not by_device:
        raise Unmapped("no temperature report with a deviceID")
    mapped: list[Mapped] = []
    for device, found in by_device.items():
        key = epc.parse(device)
        names = [device, *([key.value, key.digital_link] if key else [])]
        sensor = await Sensor.find_one({**access.sensors("write"), "device_id": {"$in": names}})
        if sensor is None:
            raise Unmapped(f"no sensor of yours has device id {device!r}")
        report = await readings.ingest(access, database, settings,
                                       [readings.SensorReadingsIn(readings=found, sensor_id=str(sensor.id))])
        if report.rejected and not report.accepted and not report.duplicates:
            raise Unmapped(f"readings of {device!r} refused: {report.rejected[0].reason}")
        mapped.append(Mapped(kind="sensor", id=str(sensor.id), ref=sensor.device_id))
    return mapped


def _steps_of(event: Mapping[str, Any]) -> tuple[str, ...]:
    kind = event.get("type")
    step = bare("bizStep", event.get("bizStep") or "")
    observed = kind == "ObjectEvent" and event.get("action") == "OBSERVE"
    steps = (
        ("commission", kind == "ObjectEvent" and bool(event.get("ilmd")) and event.get("action") == "ADD"),
        ("ship", observed and step == "shipping"),
        ("aggregate", kind == "AggregationEvent"),
        ("sense", bool(event.get("sensorElementList"))),
        ("receive", observed and step == "receiving"),
    )
    return tuple(name for name, applies in steps if applies)


def stored_only(event: Mapping[str, Any]) -> str:
    """The note of an event no mapper takes."""
    step = event.get("bizStep")
    word = (bare("bizStep", step) or step) if isinstance(step, str) else "no bizStep"
    return f"stored only: the hub maps no {event.get('type')} with {word}"


def has_mapping(event: Mapping[str, Any]) -> bool:
    """Whether the event may change the domain (else it is only stored)."""
    return bool(_steps_of(event))


async def map_event(access: Access, database: Database, settings: Settings, event: Mapping[str, Any],
                    event_id: str) -> tuple[list[Mapped], list[str], str | None]:
    """What the event became: (mapped objects, tenants that may read the event besides the caller, note)."""
    mapped: list[Mapped] = []
    audience: list[str] = []
    notes: list[str] = []
    steps = _steps_of(event)
    for step in steps:
        try:
            if step == "commission":
                mapped.extend(await commission(access, event))
            elif step == "ship":
                mapped.extend(await ship(access, database, event, event_id))
            elif step == "aggregate":
                mapped.extend(await aggregate(access, event, event_id))
            elif step == "sense":
                mapped.extend(await sense(access, database, settings, event))
            else:
                done, parties = await receive(access, database, settings, event, event_id)
                mapped.extend(done)
                audience.extend(parties)
        except Unmapped as exc:
            notes.append(str(exc))
        except HubError as exc:
            notes.append(f"{exc.code}: {exc.message}")
    dispatch_ids = [ObjectId(m.id) for m in mapped if m.kind == "dispatch"]
    if dispatch_ids:
        async for dispatch in Dispatch.find({"_id": {"$in": dispatch_ids}}):
            audience.extend(dispatch.parties)
    if not steps:
        notes.append(stored_only(event))
    return mapped, sorted(set(audience) - {access.tenant_id}), "; ".join(notes) or None
