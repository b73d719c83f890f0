"""``POST /epcis/capture``: validate a document (or one event), give every event its id, map it, store it.

One capture is one job. Validation comes first and is all-or-nothing under the binding's default error behaviour
``rollback`` (a refused document stores nothing and answers 400); with ``GS1-Capture-Error-Behaviour: proceed`` the
valid events are captured and the invalid ones listed in the job. Events already stored for the tenant (same
``eventID``, given or computed as the CBV event hash) are counted as duplicates and change nothing. Each new event is
mapped into the domain (``mapping``) and then stored with what it became, so an event that maps to nothing is still
kept and queryable.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.errors import BulkWriteError

from hub import dates, epc, jsontext
from hub.config import Settings
from hub.dates import utcnow
from hub.db import Database
from hub.epcis import hashing, mapping
from hub.epcis.models import CaptureJob, EpcisEvent, EpcisLink, event_key, stored_body
from hub.epcis.validation import Problem, bare, cbv_errors, schema_errors
from tenants.access import Access
from tenants.roles import Group

QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")
BEHAVIOURS = ("rollback", "proceed")
LINKED = ("dispatch", "receipt")  # records that exports answer as the captured event that made them
CHUNK = 100  # events normalised and inserted together
BODY_COPIES = ("event_id", "event_type", "action")  # index fields that are the body's own values, not stored twice


class CaptureRefused(Exception):
    """The request cannot be captured at all: answered as a problem (RFC 7807) with this status."""

    def __init__(self, status: int, kind: str, title: str, problems: list[Problem] | None = None) -> None:
        super().__init__(title)
        self.status, self.kind, self.title, self.problems = status, kind, title, problems or []


@dataclass
class Prepared:
    events: list[dict[str, Any]] = field(default_factory=list)  # valid events, with their document's @context
    problems: list[Problem] = field(default_factory=list)  # per-event problems (schema, CBV, time)
    namespaces: dict[str, str] = field(default_factory=dict)  # prefixes of the document's @context


def _with_context(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    return {"@context": context, **event} if context is not None and "@context" not in event else dict(event)


def _too_deep(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest deeper than ``limit`` (walked level by level: the point is to refuse what
    recursion could not walk)."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
    return False


def prepare(body: Any, max_events: int, max_depth: int = 64) -> Prepared:
    """Shape and schema checks; a document-level problem raises ``CaptureRefused``."""
    if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
        raise CaptureRefused(400, "ValidationException", "expected an EPCISDocument or one EPCIS event")
    kind = body["type"]
    if kind == "EPCISDocument":
        event_list = (body.get("epcisBody") or {}).get("eventList") if isinstance(body.get("epcisBody"), Mapping) \
            else None
        if not isinstance(event_list, list):
            raise CaptureRefused(400, "ValidationException", "an EPCISDocument needs epcisBody.eventList")
        base = "/epcisBody/eventList/"
        raw_events, context = event_list, body.get("@context")
    elif kind in EVENT_TYPES:
        base, raw_events, context = "", [body], None
    else:
        raise CaptureRefused(400, "ValidationException", f"cannot capture a {kind[:40]!r}: send an EPCISDocument or "
                                                         f"one of {', '.join(EVENT_TYPES)}")
    if len(raw_events) > max_events:
        raise CaptureRefused(413, "CaptureLimitExceededException",
                             f"{len(raw_events)} events in one capture; at most {max_events}")
    document_problems = schema_errors(body)
    at_event = {p.pointer.split("/")[3] for p in document_problems if p.pointer.startswith("/epcisBody/eventList/")
                and p.pointer.count("/") >= 3}
    if document_problems and not at_event and kind == "EPCISDocument":
        raise CaptureRefused(400, "ValidationException", "the document does not follow the EPCIS 2.0 schema",
                             document_problems)
    prepared = Prepared(problems=list(document_problems))
    namespaces = hashing.namespaces(context)
    # One walk of the whole body settles the usual case: an event (or the context it is given) is never nested
    # deeper than the body holding it. Only a body that is too deep has its events walked one by one.
    shallow = not _too_deep(body, max_depth)
    for n, raw in enumerate(raw_events):
        pointer = f"{base}{n}" if base else ""
        if str(n) in at_event or (not base and document_problems):
            continue
        event = _with_context(raw, context)
        if not shallow and _too_deep(event, max_depth):
            prepared.problems.append(Problem(pointer, f"the event nests deeper than {max_depth} levels"))
            continue
        problems = cbv_errors(event, pointer) or value_errors(event, pointer)
        if problems:
            prepared.problems.extend(problems)
            continue
        prepared.events.append(event)
    prepared.namespaces = namespaces
    return prepared


SENSOR_TIMES = ("time", "startTime", "endTime")
ILMD_DATES = ("productionDate", "manufacturingDate", "itemExpirationDate", "bestBeforeDate", "sellByDate")
MAX_QUANTITY = 2**31 - 1  # what the GraphQL API answers a quantity as (Int)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def value_errors(event: Mapping[str, Any], pointer: str) -> list[Problem]:
    """Values the schema admits that the hub could not compute with or answer: instants it cannot read or outside
    the calendar it accepts (``hub.dates``), ILMD dates likewise, quantities beyond what the API answers."""
    problems: list[Problem] = []

    def instant(value: Any, where: str) -> None:
        at = _instant(value)
        if at is None:
            problems.append(Problem(where, "expected a date-time with a UTC offset"))
        elif not dates.in_range(at):
            problems.append(Problem(where, dates.RANGE_MESSAGE))

    instant(event.get("eventTime"), pointer + "/eventTime")
    for n, element in enumerate(event.get("sensorElementList") or ()):
        if not isinstance(element, Mapping):
            continue
        where = f"{pointer}/sensorElementList/{n}"
        metadata = element.get("sensorMetadata")
        if isinstance(metadata, Mapping):
            for key in SENSOR_TIMES:
                if key in metadata:
                    instant(metadata[key], f"{where}/sensorMetadata/{key}")
        for m, report in enumerate(element.get("sensorReport") or ()):
            if isinstance(report, Mapping) and "time" in report:
                instant(report["time"], f"{where}/sensorReport/{m}/time")
    ilmd = event.get("ilmd")
    for key, value in ilmd.items() if isinstance(ilmd, Mapping) else ():
        if key.rpartition(":")[2] in ILMD_DATES:
            day = mapping.ilmd_date(value)
            if day is None or not dates.in_range(day):
                problems.append(Problem(f"{pointer}/ilmd/{_escape(key)}",
                                        f"expected a date (YYYY-MM-DD); {dates.RANGE_MESSAGE}"))
    for key in QUANTITY_LISTS:
        for n, entry in enumerate(event.get(key) or ()):
            quantity = entry.get("quantity") if isinstance(entry, Mapping) else None
            if isinstance(quantity, int | float) and abs(quantity) > MAX_QUANTITY:
                problems.append(Problem(f"{pointer}/{key}/{n}/quantity", f"a quantity is at most {MAX_QUANTITY}"))
    return problems


def _instant(value: Any) -> datetime | None:
    """A date-time as the hub reads it (RFC 3339 allows a lower-case ``t`` and ``z``), None unless it has an offset."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.upper())
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _event_time(event: Mapping[str, Any]) -> datetime | None:
    return _instant(event.get("eventTime"))


def _canonical(uri: Any) -> str | None:
    if not isinstance(uri, str):
        return None
    return epc.canonical(uri) or uri


def _canonical_set(event: Mapping[str, Any], keys: tuple[str, ...]) -> set[str]:
    """The canonical forms of the identifiers the event lists under ``keys`` (anything but strings skipped)."""
    found = set()
    for key in keys:
        for uri in event.get(key) or ():
            if isinstance(uri, str):
                value = epc.canonical(uri) or uri
                if value:
                    found.add(value)
    return found


def index_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """The normal forms queries match on (see ``EpcisEvent``)."""
    epcs = _canonical_set(event, ("epcList", "childEPCs"))
    others = _canonical_set(event, ("inputEPCList", "outputEPCList"))
    parent = _canonical(event.get("parentID"))
    if parent:
        others.add(parent)
    classes = {c for key in QUANTITY_LISTS for q in event.get(key) or () if isinstance(q, dict)
               for c in [_canonical(q.get("epcClass"))] if c}
    read_point, location = event.get("readPoint"), event.get("bizLocation")
    step, disposition = event.get("bizStep"), event.get("disposition")
    return {
        "event_id": event["eventID"],
        "event_type": event["type"],
        "event_time": _event_time(event),
        "action": event.get("action"),
        "biz_step": (bare("bizStep", step) or step) if isinstance(step, str) else None,
        "disposition": (bare("disposition", disposition) or disposition) if isinstance(disposition, str) else None,
        "read_point": _canonical(read_point.get("id")) if isinstance(read_point, dict) else None,
        "biz_location": _canonical(location.get("id")) if isinstance(location, dict) else None,
        "epcs": sorted(epcs),
        "any_epcs": sorted(epcs | others) if others - epcs else sorted(epcs),
        "classes": sorted(classes),
    }


def stored_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """``index_fields`` as stored: without what the body already holds as is (eventID, type, action), without
    empty values, and ``any_epcs`` only when it holds more than ``epcs`` (on SecantusDB every stored field costs
    capture throughput; queries read the body's copy, and ``epcs`` for an absent ``any_epcs``)."""
    fields = index_fields(event)
    if fields["any_epcs"] == fields["epcs"]:
        del fields["any_epcs"]
    return {k: v for k, v in fields.items() if k not in BODY_COPIES and v is not None and v != []}


async def capture(access: Access, database: Database, settings: Settings, raw: bytes, behaviour: str) -> CaptureJob:
    """Capture a request body; answers the finished job (or raises ``CaptureRefused``)."""
    access.require(Group.operations)
    if behaviour not in BEHAVIOURS:
        raise CaptureRefused(400, "ValidationException", "GS1-Capture-Error-Behaviour is rollback or proceed")
    try:
        body = jsontext.loads(raw)
    except jsontext.Unreadable as exc:
        raise CaptureRefused(400, "ValidationException", f"the body holds {exc}") from None
    except (ValueError, RecursionError):
        raise CaptureRefused(400, "ValidationException", "the body is not JSON") from None
    prepared = prepare(body, settings.epcis_capture_limit, settings.max_json_depth)
    if prepared.problems and behaviour == "rollback":
        raise CaptureRefused(400, "ValidationException", "events do not follow the EPCIS 2.0 schema or the CBV",
                             prepared.problems)
    job = CaptureJob(tenant_id=access.tenant_id, capture_id=uuid.uuid4().hex, error_behaviour=behaviour,
                     errors=[problem("ValidationException", "invalid event", 400, p) for p in prepared.problems])
    seen: set[str] = set()
    inflight: list[asyncio.Task[int]] = []
    now = utcnow()
    for start in range(0, len(prepared.events), CHUNK):
        # Chunk by chunk, each chunk's insert runs in the database while the next chunk is hashed and normalised.
        chunk = []
        for event in prepared.events[start:start + CHUNK]:
            if not event.get("eventID"):
                event["eventID"] = hashing.event_hash(event, prepared.namespaces)
            if event["eventID"] not in seen:
                seen.add(event["eventID"])
                chunk.append(event)
        keys = [event_key(access.tenant_id, event["eventID"]) for event in chunk]
        # Events that may change the domain are looked up first, so a resent one is not mapped again; the others
        # are simply inserted, and the primary key turns a resent one away (counted as a duplicate).
        maps = [mapping.has_mapping(event) for event in chunk]
        mappable = [key for key, may in zip(keys, maps) if may]
        stored: set[str] = set()
        if mappable:
            found = EpcisEvent.get_pymongo_collection().find({"_id": {"$in": mappable}}, {"_id": 1})
            stored = {doc["_id"] async for doc in found}
        pending = []
        for key, event, may in zip(keys, chunk, maps):
            if key in stored:
                continue
            if may:
                pending.append(await _new_event(access, database, settings, job, key, event, now))
            else:  # only stored: no coroutine, no lookups
                pending.append({"_id": key, "tenant_id": access.tenant_id, "record_time": now,
                                "body": stored_body(event), **stored_fields(event)})
        if pending:
            inflight.append(asyncio.create_task(_store(pending)))
            await asyncio.sleep(0)  # let the driver send it before the next chunk's work
    inserted = sum(await asyncio.gather(*inflight))
    job.captured = inserted
    job.duplicates = len(prepared.events) - inserted
    job.running, job.success, job.finished_at = False, not prepared.problems, utcnow()
    await job.insert()  # written once, finished: the client learns of it only from this request's answer
    return job


async def _new_event(access: Access, database: Database, settings: Settings, job: CaptureJob, key: str,
                     event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Map a new event into the domain; answers the document to store (its partners' copies are written here)."""
    maps = mapping.has_mapping(event)
    mapped, audience, note = (await mapping.map_event(access, database, settings, event, event["eventID"])
                              if maps else ([], [], None))
    stored_event = {"_id": key, "tenant_id": access.tenant_id, "record_time": now, "body": stored_body(event),
                    **stored_fields(event)}
    if maps:  # the others are only stored (``mapping.stored_only`` says so when they are read back)
        stored_event.update(audience=audience, mapped=[m.model_dump() for m in mapped], note=note)
        job.outcomes.append({"eventID": event["eventID"], "mapped": stored_event["mapped"],
                             **({"note": note} if note else {})})
    if mapped:
        await _link([{"_id": f"{m.kind}:{m.id}", "event": key} for m in mapped if m.kind in LINKED])
    # Partners read the event in their own range: a copy under their key (their own capture of it, if any, stands).
    await _share([{**stored_event, "_id": event_key(partner, event["eventID"])} for partner in audience])
    return stored_event


async def _link(links: list[dict[str, Any]]) -> None:
    if links:
        await _insert_new(EpcisLink.get_pymongo_collection(), links)


async def _share(copies: list[dict[str, Any]]) -> None:
    if copies:
        await _insert_new(EpcisEvent.get_pymongo_collection(), copies)


async def _insert_new(collection: Any, documents: list[dict[str, Any]]) -> int:
    """Insert what is not there yet (by ``_id``); answers how many were new."""
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != 11000 for error in errors):
            raise
        return len(documents) - len(errors)
    return len(documents)


async def _store(documents: list[dict[str, Any]]) -> int:
    """Insert captured events; answers how many were new (a concurrent capture of the same events wins the race
    for those, and they count as duplicates here)."""
    if not documents:
        return 0
    return await _insert_new(EpcisEvent.get_pymongo_collection(), documents)


def problem(kind: str, title: str, status: int, detail: Problem | None = None) -> dict[str, Any]:
    """An RFC 7807 problem as the EPCIS binding names them (``epcisException:<Kind>``)."""
    body: dict[str, Any] = {"type": f"epcisException:{kind}", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail.message
        body["instance"] = detail.pointer
    return body


def job_view(job: CaptureJob) -> dict[str, Any]:
    """The job as ``GET /epcis/capture/{id}`` answers it: the binding's fields, then the hub's own."""
    return {
        "captureID": job.capture_id,
        "createdAt": job.created_at.isoformat(),
        **({"finishedAt": job.finished_at.isoformat()} if job.finished_at else {}),
        "running": job.running,
        "success": job.success,
        "captureErrorBehaviour": job.error_behaviour,
        "errors": job.errors,
        "capturedEvents": job.captured,
        "duplicateEvents": job.duplicates,
        "outcomes": job.outcomes,
    }
