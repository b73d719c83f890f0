"""What the EPCIS interface stores: captured events (as sent, plus the fields queries match on) and capture jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pymongo
from beanie import Document
from pydantic import BaseModel, Field

from hub.dates import utcnow
from hub.sharding import Declaration, Unsharded, key


class Mapped(BaseModel):
    """A domain object an event became or changed (``kind``: dispatch, receipt, lot, sensor, pallet)."""

    kind: str
    id: str
    ref: str | None = None


STANDARD_CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]


def event_key(tenant_id: str, event_id: str) -> str:
    """The ``_id`` of a captured event: one per tenant and eventID, kept unique by the primary key alone."""
    return f"{tenant_id}|{event_id}"


def tenant_range(tenant_id: str) -> dict[str, Any]:
    """Every event a tenant captured: its keys sort between ``<tenant>|`` and ``<tenant>}`` (tenant ids are
    lowercase letters, digits and dashes, all before ``|``)."""
    return {"_id": {"$gt": f"{tenant_id}|", "$lt": f"{tenant_id}}}"}}


class EpcisEvent(Document):
    """One captured event. ``body`` is the event as captured (with its document's ``@context``), less what other
    fields hold: its ``eventID`` (in the key) and the standard context alone (``stored_body``); the other fields are
    its normal forms for queries: CBV words bare, identifiers as canonical GS1 Digital Link URIs. Queries read the
    type and action in the body; empty fields are not stored (``capture.stored_fields``).

    There is no secondary index on purpose: on SecantusDB any one of them, even a partial index no event enters,
    halves capture throughput (bench/epcis.py). The key (``event_key``) gives uniqueness per tenant and each
    tenant's range; an event a partner may read (``audience``: the parties of its dispatch) is written a second
    time under the partner's key, so every query reads one tenant's range."""

    id: str  # type: ignore[assignment]  # event_key(tenant_id, event_id)
    tenant_id: str  # who captured it
    audience: list[str] = Field(default_factory=list)  # other tenants that may read it: parties of its dispatch
    event_time: datetime
    record_time: datetime = Field(default_factory=utcnow)
    biz_step: str | None = None
    disposition: str | None = None
    read_point: str | None = None
    biz_location: str | None = None
    epcs: list[str] = Field(default_factory=list)  # MATCH_epc: epcList and childEPCs
    any_epcs: list[str] = Field(default_factory=list)  # MATCH_anyEPC: also parentID, input and output EPCs (absent
    # when it would repeat epcs)
    classes: list[str] = Field(default_factory=list)  # epcClass of every quantity list
    body: dict[str, Any]
    mapped: list[Mapped] = Field(default_factory=list)
    note: str | None = None  # why the event changed nothing in the hub's domain

    shard_key: ClassVar[Declaration] = key(
        "_id",
        why="the capturing tenant's events: the _id starts with the tenant (event_key), so a range of ids is a "
            "range of one tenant's events, without a secondary index",
        id_names_tenant=True,
    )

    class Settings:
        name = "epcis_events"



def stored_body(event: dict[str, Any]) -> dict[str, Any]:
    """The event as ``body`` stores it: without its eventID, and without ``@context`` when that is the standard one
    alone (nearly every document's). On SecantusDB each stored byte costs capture throughput: these two were a fifth
    of a stored event."""
    return {k: v for k, v in event.items() if k != "eventID" and (k != "@context" or v != STANDARD_CONTEXT)}


def event_of(key: str, body: dict[str, Any]) -> dict[str, Any]:
    """A stored event as captured again (``stored_body`` undone; a body stored without any context is answered with
    the standard one)."""
    return {"@context": list(STANDARD_CONTEXT), **body, "eventID": key.partition("|")[2]} if "@context" not in body \
        else {**body, "eventID": key.partition("|")[2]}


class EpcisLink(Document):
    """What later events and exports look up by key: ``<kind>:<record id>`` → the event that made that dispatch or
    receipt (exports skip it), ``instance:<tenant>|<SGTIN>`` → the lot its commissioning gave it."""

    id: str  # type: ignore[assignment]
    event: str | None = None  # event_key of the event
    lot: str | None = None

    shard_key: ClassVar[Declaration] = Unsharded(
        "looked up by a key that names a record or an instance; sharded, it would gain tenant_id in front of it",
    )

    class Settings:
        name = "epcis_links"


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

    shard_key: ClassVar[Declaration] = key(
        "tenant_id", "capture_id",
        why="the capturing tenant's jobs; the unique (tenant_id, capture_id) starts with it",
    )

    class Settings:
        name = "epcis_capture_jobs"
        indexes = [pymongo.IndexModel([("tenant_id", 1), ("capture_id", 1)], unique=True)]


MODELS: list[type[Document]] = [EpcisEvent, EpcisLink, CaptureJob]
