"""The hub's own records as EPCIS 2.0 events, for ``GET /epcis/events``.

Dispatches are shipping ObjectEvents, receipts receiving ones, ledger movements ObjectEvents with the CBV step of
their kind, and sensor excursions ``sensor_reporting`` events whose sensor report carries the standard's alarm
fields (``exception: ALARM_CONDITION`` with the peak as ``maxValue`` and the limit as ``minValue``... see
``excursion_event``). Identifiers are GS1 keys where the hub knows them (GTIN → LGTIN class, GLN → SGLN/PGLN) and
otherwise the hub's own URNs (``urn:lotpulse:...``). Each event's ``eventID`` is its CBV event hash, so an export is
the same id every time it is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId

from hub.epcis.hashing import event_hash
from hub.models.dispatch import Dispatch
from hub.models.excursion import Excursion
from hub.models.location import Location
from hub.models.movement import Movement
from hub.models.receipt import Receipt
from hub.models.sku import Sku
from hub.services import exposure_views
from tenants.models import Tenant

EXTENSIONS = "https://lotpulse.dev/epcis/"
CONTEXT: list[Any] = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"lotpulse": EXTENSIONS}]
MOVEMENT_STEPS = {"receipt": "receiving", "issue": "picking", "sale": "retail_selling", "adjustment": "stock_taking",
                  "transfer_in": "arriving", "transfer_out": "departing", "return": "accepting",
                  "count": "cycle_counting"}


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z") if at.tzinfo else at.isoformat() + "Z"


@dataclass
class Names:
    """GS1 keys of the SKUs, locations and tenants a page of records names (loaded once per page)."""

    gtins: dict[ObjectId, str | None] = field(default_factory=dict)
    glns: dict[ObjectId, str | None] = field(default_factory=dict)
    parties: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    async def load(cls, skus: Iterable[Any], locations: Iterable[Any], tenants: Iterable[str]) -> Names:
        names = cls()
        sku_ids, location_ids = {s for s in skus if s}, {loc for loc in locations if loc}
        if sku_ids:
            async for sku in Sku.find({"_id": {"$in": list(sku_ids)}}):
                names.gtins[sku.id] = sku.gtin
        if location_ids:
            async for location in Location.find({"_id": {"$in": list(location_ids)}}):
                names.glns[location.id] = location.gln
        if tenants:
            async for tenant in Tenant.find({"_id": {"$in": sorted(set(tenants))}}):
                names.parties[str(tenant.id)] = tenant.gln
        return names

    def lot_class(self, sku_id: ObjectId, lot_code: str | None) -> str:
        gtin = self.gtins.get(sku_id)
        if gtin and lot_code:
            return f"https://id.gs1.org/01/{gtin}/10/{lot_code}"
        if gtin:
            return f"https://id.gs1.org/01/{gtin}"
        return f"urn:lotpulse:sku:{sku_id}" + (f":lot:{lot_code}" if lot_code else "")

    def place(self, location_id: ObjectId | None) -> dict[str, str] | None:
        if location_id is None:
            return None
        gln = self.glns.get(location_id)
        return {"id": f"https://id.gs1.org/414/{gln}" if gln else f"urn:lotpulse:location:{location_id}"}

    def party(self, tenant: str) -> str:
        gln = self.parties.get(tenant)
        return f"https://id.gs1.org/417/{gln}" if gln else f"urn:lotpulse:tenant:{tenant}"


def _finish(event: dict[str, Any]) -> dict[str, Any]:
    event = {"@context": CONTEXT, **{k: v for k, v in event.items() if v not in (None, [], {})}}
    event["eventID"] = event_hash(event)
    return event


def _at(at: datetime, **fields: Any) -> dict[str, Any]:
    return {"eventTime": _iso(at), "eventTimeZoneOffset": "+00:00", "recordTime": _iso(at), **fields}


def dispatch_event(dispatch: Dispatch, names: Names, viewer: str) -> dict[str, Any]:
    """The shipping event as ``viewer`` reads it: the shipper's own origin is named to the shipper only (as
    ``Dispatch.fromLocationId`` in GraphQL); the consignee's destination is on the notice for every party."""
    return _finish({
        "type": "ObjectEvent", **_at(dispatch.created_at), "action": "OBSERVE", "bizStep": "shipping",
        "disposition": "in_transit",
        "quantityList": [{"epcClass": names.lot_class(line.sku_id, line.lot_code), "quantity": line.quantity}
                         for line in dispatch.lines],
        "bizLocation": names.place(dispatch.from_location_id) if viewer == dispatch.tenant_id else None,
        "bizTransactionList": [{"type": "desadv", "bizTransaction": f"urn:lotpulse:dispatch:{dispatch.tenant_id}:"
                                                                   f"{dispatch.ref}"}],
        "sourceList": [{"type": "owning_party", "source": names.party(dispatch.tenant_id)}],
        "destinationList": [{"type": "owning_party", "destination": names.party(dispatch.consignee_id)},
                            *([{"type": "location", "destination": destination["id"]}]
                              if (destination := names.place(dispatch.to_location_id)) else [])],
    })


def receipt_event(receipt: Receipt, dispatch: Dispatch | None, names: Names, viewer: str) -> dict[str, Any]:
    """The receiving event as ``viewer`` reads it: where it was received is named to the receiver only."""
    matched = receipt.outcome.value == "matched"
    return _finish({
        "type": "ObjectEvent", **_at(receipt.received_at), "action": "OBSERVE", "bizStep": "receiving",
        "disposition": ("sellable_not_accessible" if matched else "non_conformant") if receipt.final
        else "in_progress",
        "quantityList": [{"epcClass": names.lot_class(line.sku_id, line.lot_code) if line.sku_id
                          else f"urn:lotpulse:item:{line.sku_ref}", "quantity": line.quantity}
                         for line in receipt.lines],
        "bizLocation": names.place(receipt.location_id) if viewer == receipt.tenant_id else None,
        "bizTransactionList": [{"type": "desadv", "bizTransaction": f"urn:lotpulse:dispatch:{dispatch.tenant_id}:"
                                                                   f"{dispatch.ref}"}] if dispatch else [],
        "destinationList": [{"type": "owning_party", "destination": names.party(receipt.tenant_id)}],
    })


def movement_event(movement: Movement, names: Names) -> dict[str, Any]:
    return _finish({
        "type": "ObjectEvent", **_at(movement.occurred_at), "action": "OBSERVE",
        "bizStep": MOVEMENT_STEPS.get(movement.kind.value, "other"),
        "quantityList": [{"epcClass": names.lot_class(movement.sku_id, movement.lot_code),
                          "quantity": abs(movement.quantity)}],
        "bizLocation": names.place(movement.location_id),
        "readPoint": names.place(movement.location_id),
    }) | {"recordTime": _iso(movement.recorded_at)}


def excursion_event(excursion: Excursion, names: Names, viewer: str) -> dict[str, Any]:
    """The standard's alarm form: one sensor report with ``exception: ALARM_CONDITION`` over the episode
    (``startTime``/``endTime`` in its metadata) and the peak as ``maxValue`` at ``time``; the exposed lots as the
    quantity list, and the exposed pallets (a logger on pallets) as the EPC list. The limit that was crossed and the
    degree-minutes above it have no standard field: they travel as the hub's extension fields ``lotpulse:limitC``
    and ``lotpulse:degreeMinutes``. A partner (``viewer`` other than the sensor's owner) is told of its own exposed
    lots only (hub/services/exposure_views.py)."""
    exposed = exposure_views.exposed_for(excursion.tenant_id, viewer, excursion.exposed_lots)
    report: dict[str, Any] = {"type": "Temperature", "exception": "ALARM_CONDITION", "maxValue": excursion.peak_c,
                              "time": _iso(excursion.peak_at), "uom": "CEL"}
    metadata: dict[str, Any] = {"startTime": _iso(excursion.started_at), "deviceID": f"urn:lotpulse:sensor:"
                                                                                   f"{excursion.sensor_id}"}
    if excursion.ended_at is not None:
        metadata["endTime"] = _iso(excursion.ended_at)
    event = _finish({
        "type": "ObjectEvent", **_at(excursion.started_at), "action": "OBSERVE", "bizStep": "sensor_reporting",
        "quantityList": [{"epcClass": names.lot_class(lot.sku_id, lot.lot_code), "quantity": lot.units}
                         for lot in exposed if lot.units > 0],
        # A logger on pallets: the pallets/cases whose goods were exposed (GS1 Digital Link of each SSCC).
        "epcList": [f"https://id.gs1.org/00/{unit}" for unit in sorted({u for lot in exposed for u in lot.ssccs})]
        or ([] if exposed else [f"urn:lotpulse:sensor:{excursion.sensor_id}"]),
        "readPoint": names.place(excursion.location_id),
        "sensorElementList": [{"sensorMetadata": metadata, "sensorReport": [report]}],
        "lotpulse:limitC": excursion.limit_c,
        "lotpulse:degreeMinutes": round(excursion.degree_minutes, 2),
    })
    return event | {"recordTime": _iso(excursion.created_at)}
