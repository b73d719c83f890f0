"""What the EPCIS interface stores: captured events (as sent, plus the fields queries match on) and capture jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pymongo
from beanie import Document
from pydantic import BaseModel, Field

from hub.dates import utcnow


class Mapped(BaseModel):
    """A domain object an event became or changed (``kind``: dispatch, receipt, lot, sensor, pallet)."""

    kind: str
    id: str
    ref: str | None = None


class EpcisEvent(Document):
    """One captured event. ``body`` is the event as captured (with its document's ``@context``); the other fields
    are its normal forms for queries: CBV words bare, identifiers as canonical GS1 Digital Link URIs."""

    tenant_id: str  # who captured it
    audience: list[str] = Field(default_factory=list)  # other tenants that may read it: parties of its dispatch
    event_id: str
    event_type: str
    event_time: datetime
    record_time: datetime = Field(default_factory=utcnow)
    action: str | None = None
    biz_step: str | None = None
    disposition: str | None = None
    read_point: str | None = None
    biz_location: str | None = None
    epcs: list[str] = Field(default_factory=list)  # MATCH_epc: epcList and childEPCs
    any_epcs: list[str] = Field(default_factory=list)  # MATCH_anyEPC: also parentID, input and output EPCs
    classes: list[str] = Field(default_factory=list)  # epcClass of every quantity list
    body: dict[str, Any]
    capture_id: str | None = None
    mapped: list[Mapped] = Field(default_factory=list)
    note: str | None = None  # why the event changed nothing in the hub's domain

    class Settings:
        name = "epcis_events"
        indexes = [
            pymongo.IndexModel([("tenant_id", 1), ("event_id", 1)], unique=True),
            pymongo.IndexModel([("tenant_id", 1), ("_id", 1)]),  # queries page in _id order
            pymongo.IndexModel([("audience", 1), ("_id", 1)]),
            pymongo.IndexModel([("tenant_id", 1), ("event_time", 1)]),
            pymongo.IndexModel([("tenant_id", 1), ("any_epcs", 1)]),
        ]


class CaptureJob(Document):
    """The job ``POST /epcis/capture`` answers with (the binding's ``EPCISCaptureJob``)."""

    tenant_id: str
    capture_id: str
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    running: bool = True
    success: bool = False
    error_behaviour: str = "rollback"
    errors: list[dict[str, Any]] = Field(default_factory=list)
    captured: int = 0  # events stored by this capture
    duplicates: int = 0  # events already stored (same eventID): nothing changed
    outcomes: list[dict[str, Any]] = Field(default_factory=list)  # per new event: what it mapped to, or why not

    class Settings:
        name = "epcis_capture_jobs"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("capture_id", 1)], unique=True)]


MODELS: list[type[Document]] = [EpcisEvent, CaptureJob]
