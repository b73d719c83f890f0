"""The catalogue of event types: one entry per type, the single source of what the hub says about its events.

Each entry names the type, what it means, the partnership scope a partner needs to hear it, the ordering key
(``subject``) its events carry, and the payload model its JSON Schema is generated from. The event log
(``hub.models.event.EVENT_TYPES``/``EVENT_SCOPE``), the webhook endpoints' event-type check, ``GET
/webhooks/catalogue`` and ``GET /webhooks/schemas/<type>.json`` all read it.

The subject is the ordering key of webhook delivery: deliveries of one endpoint about one subject are sent in the
log's order, each after the one before succeeded or was given up; other subjects are not held up (webhooks/worker.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from hub.events import payloads
from tenants.models import Scope

Payload = Mapping[str, Any]
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    payload: type[BaseModel]
    subject: str  # how the ordering key is made, for the documentation: "alert:<alert id>"
    key: Callable[[str, Payload], str]  # (owner, payload) -> the ordering key
    # A partner (an audience member other than the owner) needs this share to hear it, checked when it is
    # delivered; None: the audience written with the event is authoritative (the parties of a dispatch, a lot's
    # dispatch parties).
    scope: Scope | None = None
    audience: str = ""  # who hears it, in words


def _alert(owner: str, payload: Payload) -> str:
    return f"alert:{payload['alert']['id']}"


def _dispatch(owner: str, payload: Payload) -> str:
    return f"dispatch:{payload['dispatch']['id']}"


def _receipt(owner: str, payload: Payload) -> str:
    return f"dispatch:{payload['receipt']['dispatchId']}"


def _stock(owner: str, payload: Payload) -> str:
    return f"stock:{owner}"


def _of(kind: str, field: str) -> Callable[[str, Payload], str]:
    def key(owner: str, payload: Payload) -> str:
        return f"{kind}:{payload[field]['id']}"

    return key


ALERT_AUDIENCE = ("the alert's owner, and partners it concerns while they share `alerts` (or, for alerts about a "
                  "dispatch, its parties)")

_DETECTED = {
    "mismatch": "A receipt differs from its dispatch (lot code, SKU or quantity).",
    "expiry_risk": "Stock is likely to expire before it sells (or before it reaches the consignee).",
    "sensor_spike": "A sensor reported a temperature or humidity excursion beyond the SKU's storage limits.",
    "velocity_drop": "A SKU sells markedly slower than its usual rate at a location.",
    "velocity_spike": "A SKU sells markedly faster than its usual rate at a location.",
    "obsolescence_risk": "Stock is unlikely to sell within its maximum days of supply.",
    "fefo_violation": "Stock was picked or shipped out of first-expiry-first-out order.",
    "sensor_offline": "A sensor has been silent longer than allowed (the alert; see also sensor.offline).",
}


def _alert_types() -> list[EventType]:
    detected = [
        EventType(f"{kind}.detected", f"A new {kind} alert was raised. {text}", payloads.AlertPayload,
                  "alert:<alert id>", _alert, Scope.alerts, ALERT_AUDIENCE)
        for kind, text in _DETECTED.items()
    ]
    changes = {
        "alert.updated": ("An open alert changed: it happened again, its evidence or severity changed.",
                          payloads.AlertPayload),
        "alert.acknowledged": ("Someone acknowledged an alert.", payloads.AlertPayload),
        "alert.resolved": ("An alert was resolved, by a person or by the hub when the finding went away.",
                           payloads.AlertPayload),
        "alert.escalated": ("An alert stayed open past a step of its escalation policy; `escalation` says which.",
                            payloads.EscalatedPayload),
    }
    return detected + [
        EventType(name, text, model, "alert:<alert id>", _alert, Scope.alerts, ALERT_AUDIENCE)
        for name, (text, model) in changes.items()
    ]


PARTIES = "the dispatch's parties (shipper, consignee, carrier)"

CATALOGUE: dict[str, EventType] = {
    event.name: event
    for event in [
        *_alert_types(),
        EventType("dispatch.created", "A dispatch (advance ship notice) was created.", payloads.DispatchPayload,
                  "dispatch:<dispatch id>", _dispatch, None, PARTIES),
        EventType("dispatch.updated", "A dispatch changed status (picked, in transit, cancelled, ...).",
                  payloads.DispatchPayload, "dispatch:<dispatch id>", _dispatch, None, PARTIES),
        EventType("dispatch.received", "A dispatch was received in full or closed by its last receipt.",
                  payloads.DispatchPayload, "dispatch:<dispatch id>", _dispatch, None, PARTIES),
        EventType("receipt.recorded", "A receipt against a dispatch was recorded (lines, outcome, held lots).",
                  payloads.ReceiptPayload, "dispatch:<dispatch id>", _receipt, None, PARTIES),
        EventType("stock.changed", "Stock positions changed (up to 500 positions per event).",
                  payloads.StockChangedPayload, "stock:<holder id>", _stock, Scope.stock,
                  "the holder, and each SKU owner the holder shares `stock` with (only its SKUs' positions)"),
        EventType("movements.recorded",
                  "A batch of movements was recorded: one event per batch, counted per kind and per SKU.",
                  payloads.MovementsPayload, "stock:<holder id>", _stock, Scope.stock,
                  "the holder, and each SKU owner the holder shares `stock` with (only its SKUs' movements)"),
        EventType("sku.created", "A SKU was created.", payloads.SkuPayload, "sku:<sku id>", _of("sku", "sku"),
                  Scope.sku_master, "the SKU's owner, and partners it shares `sku_master` with"),
        EventType("sku.updated", "A SKU's master data changed.", payloads.SkuPayload, "sku:<sku id>",
                  _of("sku", "sku"), Scope.sku_master, "the SKU's owner, and partners it shares `sku_master` with"),
        EventType("lot.held", "A lot was put on hold (e.g. a receipt found it where another lot was expected).",
                  payloads.LotPayload, "lot:<lot id>", _of("lot", "lot"), None,
                  "the lot's owner and the parties of dispatches that carried it"),
        EventType("lot.released", "A held lot was released.", payloads.LotPayload, "lot:<lot id>",
                  _of("lot", "lot"), None, "the lot's owner and the parties of dispatches that carried it"),
        EventType("lot.redated", "A lot's expiry changed (its effective expiry after a temperature excursion).",
                  payloads.LotPayload, "lot:<lot id>", _of("lot", "lot"), None,
                  "the lot's owner and the parties of dispatches that carried it"),
        EventType("sensor.offline", "A sensor went silent for longer than allowed.", payloads.SensorPayload,
                  "sensor:<sensor id>", _of("sensor", "sensor"), Scope.sensors,
                  "the sensor's owner, and partners it shares `sensors` with"),
        EventType("sensor.online", "A silent sensor reported again.", payloads.SensorPayload,
                  "sensor:<sensor id>", _of("sensor", "sensor"), Scope.sensors,
                  "the sensor's owner, and partners it shares `sensors` with"),
        EventType("recommendation.created", "A transfer recommendation was made (or refreshed with new figures).",
                  payloads.RecommendationPayload, "recommendation:<recommendation id>",
                  _of("recommendation", "recommendation"), Scope.stock,
                  "the holder, and the SKU owner while the holder shares `stock` with it"),
        EventType("recommendation.accepted", "A transfer recommendation was accepted (movements or a draft "
                  "dispatch were booked).", payloads.RecommendationPayload, "recommendation:<recommendation id>",
                  _of("recommendation", "recommendation"), Scope.stock,
                  "the holder, and the SKU owner while the holder shares `stock` with it"),
        EventType("recommendation.dismissed", "A transfer recommendation was dismissed or expired.",
                  payloads.RecommendationPayload, "recommendation:<recommendation id>",
                  _of("recommendation", "recommendation"), Scope.stock,
                  "the holder, and the SKU owner while the holder shares `stock` with it"),
    ]
}

EVENT_TYPES: tuple[str, ...] = tuple(CATALOGUE)
EVENT_SCOPE: dict[str, Scope] = {name: event.scope for name, event in CATALOGUE.items() if event.scope is not None}


def subject_of(event_type: str, owner: str, payload: Payload) -> str:
    return CATALOGUE[event_type].key(owner, payload)


def _envelope_fields() -> dict[str, Any]:
    return {
        "eventId": {"type": "string", "description": "the event's id; also the webhook-id header, the same on "
                                                     "every retry: dedupe on it"},
        "ownerId": {"type": "string", "description": "the tenant whose change it is"},
        "subject": {"type": "string", "description": "the ordering key: deliveries about one subject arrive in "
                                                     "`seq` order"},
        "seq": {"type": "integer", "description": "the event's position in the hub's log (increasing)"},
    }


def schema_of(name: str, base_url: str = "") -> dict[str, Any]:
    """The JSON Schema of a webhook body of type ``name``: ``{type, timestamp, data}``, data holding the payload."""
    event = CATALOGUE[name]
    data = event.payload.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs = data.pop("$defs", {})
    data["properties"] = {**_envelope_fields(), **data.get("properties", {})}
    data["required"] = ["eventId", "ownerId", "subject", "seq", *data.get("required", [])]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{base_url}/webhooks/schemas/{name}.json",
        "title": name,
        "description": event.description,
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"const": name},
            "timestamp": {"type": "string", "format": "date-time"},
            "data": data,
        },
        **({"$defs": defs} if defs else {}),
    }


def entry(name: str, base_url: str = "") -> dict[str, Any]:
    """One line of the catalogue as ``GET /webhooks/catalogue`` answers it."""
    event = CATALOGUE[name]
    return {
        "type": name,
        "description": event.description,
        "scope": event.scope.value if event.scope is not None else None,
        "audience": event.audience,
        "orderingKey": event.subject,
        "schema": f"{base_url}/webhooks/schemas/{name}.json",
    }
