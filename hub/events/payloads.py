"""The shapes of event payloads, as webhooks and subscriptions carry them (camelCase, ids as strings).

The JSON Schema of each event type (hub/events/catalogue.py) is generated from these models; the services build
the payloads themselves, and tests/webhooks/test_catalogue.py checks what is really delivered against the schema
served, so the two cannot drift apart unnoticed. Receivers must ignore fields they do not know: new ones may be
added, none are removed or change meaning without a new event type.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Shape(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


# -- alerts -----------------------------------------------------------------------------------------------------------


class AlertSubject(Shape):
    kind: str = Field(description="what the alert is about: dispatch, lot, sensor, location, sku, ...")
    id: str
    label: str | None = None


class AlertBody(Shape):
    id: str
    kind: str = Field(description="mismatch, expiry_risk, sensor_spike, velocity_drop, ...")
    severity: str
    status: str = Field(description="open, acknowledged or resolved")
    owner_id: str
    audience_rule: str = Field(description="sharing: partners hear it through their `alerts` share; "
                                           "dispatch: the dispatch's parties hear it")
    title: str
    subjects: list[AlertSubject]
    evidence: dict[str, Any]
    recommendation: str | None
    occurrences: int
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    note: str | None
    decision: str | None
    escalated_at: datetime | None


class AlertPayload(Shape):
    alert: AlertBody


class EscalationNotice(Shape):
    model_config = ConfigDict(extra="allow")
    at: datetime
    step: int | None = None


class EscalatedPayload(AlertPayload):
    escalation: EscalationNotice = Field(description="the escalation step that was taken")


# -- dispatches and receipts ------------------------------------------------------------------------------------------


class DispatchLineBody(Shape):
    sku_id: str
    lot_code: str
    quantity: int
    received: int = Field(description="units received so far, over every receipt")
    sscc: str | None = Field(default=None, description="the pallet or case (SSCC) these goods travel on")
    in_sscc: str | None = Field(default=None, description="the pallet that unit is stacked on")


class DispatchBody(Shape):
    id: str
    ref: str
    shipper_id: str
    consignee_id: str
    carrier_id: str | None
    status: str
    has_mismatch: bool
    lines: list[DispatchLineBody]
    updated_at: datetime


class DispatchPayload(Shape):
    dispatch: DispatchBody


class ReceiptLineBody(Shape):
    sku_id: str | None = Field(description="null when the scanned reference names no SKU the receiver can see")
    sku_ref: str
    lot_id: str | None
    lot_code: str
    quantity: int
    expires_on: date | None
    sscc: str | None = Field(default=None, description="the pallet or case (SSCC) it came on")


class ReceiptBody(Shape):
    id: str
    dispatch_id: str
    dispatch_ref: str
    receiver_id: str
    location_id: str | None = Field(description="the receiving location: to the receiver only (null for the other "
                                                "parties)")
    ref: str | None
    final: bool
    outcome: str = Field(description="matched or mismatched")
    mismatches: int = Field(description="how many differences from the dispatch were found")
    held_lot_ids: list[str]
    lines: list[ReceiptLineBody]
    received_at: datetime


class ReceiptPayload(Shape):
    receipt: ReceiptBody


# -- stock ------------------------------------------------------------------------------------------------------------


class PositionBody(Shape):
    tenant_id: str = Field(description="the stock holder")
    location_id: str
    sku_id: str
    sku_owner_id: str
    lot_id: str | None
    lot_code: str | None
    on_hand: int
    delta: int | None
    expires_on: date | None


class StockChangedPayload(Shape):
    positions: list[PositionBody]


class SkuMovements(Shape):
    sku_id: str
    sku_owner_id: str
    movements: int
    quantity: int = Field(description="net units moved (negative: out)")


class MovementBatchBody(Shape):
    holder_id: str
    movements: int = Field(description="movements of the batch in this event: the holder hears one event per batch "
                                       "and SKU owner it shares `stock` with, each SKU owner only its own")
    by_kind: dict[str, int] = Field(description="movements per kind: receipt, sale, adjustment, count, ...")
    skus: list[SkuMovements]
    location_ids: list[str]
    first_occurred_at: datetime
    last_occurred_at: datetime


class MovementsPayload(Shape):
    batch: MovementBatchBody


# -- master data ------------------------------------------------------------------------------------------------------


class SkuBody(Shape):
    id: str
    owner_id: str
    code: str
    gtin: str | None
    name: str
    unit: str
    pack_size: int
    shelf_life_days: int | None
    category: str | None
    updated_at: datetime


class SkuPayload(Shape):
    sku: SkuBody


class LotBody(Shape):
    id: str
    owner_id: str
    sku_id: str
    lot_code: str
    status: str = Field(description="released, on_hold, quarantined, expired or recalled")
    hold_reason: str | None
    produced_on: date | None
    expires_on: date | None
    effective_expires_on: date | None = Field(description="after temperature excursions")
    updated_at: datetime


class LotChange(Shape):
    status: str | None = Field(default=None, description="the status before the change")
    expires_on: date | None = None
    effective_expires_on: date | None = None


class LotPayload(Shape):
    lot: LotBody
    previous: LotChange = Field(description="the fields that changed, as they were before")
    reason: str | None = Field(default=None, description="why: a receipt mismatch, a temperature excursion, ...")


# -- sensors and planning ---------------------------------------------------------------------------------------------


class SensorBody(Shape):
    id: str
    owner_id: str
    device_id: str
    name: str | None
    location_id: str
    last_reading_at: datetime | None = Field(description="offline: the last reading heard; online: the first "
                                                        "reading after the silence, as it arrived")
    silent_minutes: float | None = Field(description="minutes without readings when it went offline")


class SensorPayload(Shape):
    sensor: SensorBody


class RecommendationLot(Shape):
    lot_id: str | None
    lot_code: str | None
    quantity: int
    expires_on: date | None


class RecommendationBody(Shape):
    id: str
    owner_id: str
    kind: str = Field(description="internal (between the holder's sites) or partner (a draft dispatch)")
    status: str = Field(description="open, accepted, dismissed or expired")
    sku_id: str
    sku_code: str
    sku_owner_id: str
    from_location_id: str
    to_location_id: str
    quantity: int
    lots: list[RecommendationLot]
    units_saved_from_expiry: int
    stockout_days_avoided: float
    dispatch_id: str | None
    reason: str | None
    updated_at: datetime


class RecommendationPayload(Shape):
    recommendation: RecommendationBody
