"""``GET /epcis/events``: the binding's SimpleEventQuery parameters over captured events and the hub's own records.

Five sources answer a query: captured events (``epcis_events``) and exports of dispatches, receipts, movements and
excursions (``export``). Each is read in its own ``_id`` order under the caller's read rule from
``tenants/access.py``; the page merges them by record time. The ``nextPageToken`` holds one cursor per source, so a
page never skips or repeats an event however the sources interleave. Captured events are filtered in MongoDB; exports
are built and then filtered with the same normal forms (``capture.index_fields``), scanning a bounded number of
records per request.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId

from hub import dates, epc
from hub.epcis import export
from hub.epcis.capture import index_fields
from hub.epcis.models import EpcisEvent, EpcisLink, event_of, tenant_range
from hub.epcis.validation import bare
from hub.models.dispatch import Dispatch
from hub.models.excursion import Excursion
from hub.models.movement import Movement
from hub.models.receipt import Receipt
from tenants.access import Access

LIST_PARAMS = ("eventType", "EQ_action", "EQ_bizStep", "EQ_disposition", "EQ_readPoint", "EQ_bizLocation",
               "MATCH_epc", "MATCH_anyEPC", "MATCH_epcClass")
TIME_PARAMS = ("GE_eventTime", "LT_eventTime", "GE_recordTime", "LT_recordTime")
PAGING = ("perPage", "nextPageToken")
SOURCES = ("events", "dispatches", "receipts", "movements", "excursions")
EXPORT_STEPS = {"dispatches": {"shipping"}, "receipts": {"receiving"}, "excursions": {"sensor_reporting"},
                "movements": set(export.MOVEMENT_STEPS.values())}
SCAN_BATCH = 200
SCAN_LIMIT = 5000  # records of one export source examined per request, at most
PAGE_SIZE = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() also takes '²', which int() refuses


class QueryRefused(Exception):
    """A query the binding answers with ``QueryParameterException`` (400)."""


@dataclass
class Query:
    lists: dict[str, list[str]] = field(default_factory=dict)
    times: dict[str, datetime] = field(default_factory=dict)
    per_page: int = 30
    cursors: dict[str, str] = field(default_factory=dict)


def _time(name: str, value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.replace(" ", "+"))  # a '+' of an offset often arrives decoded as a space
    except ValueError:
        raise QueryRefused(f"{name} must be an ISO 8601 date-time with offset") from None
    if at.tzinfo is None:
        raise QueryRefused(f"{name} must carry a UTC offset")
    if not dates.in_range(at):
        raise QueryRefused(f"{name}: {dates.RANGE_MESSAGE}")
    return at


def _normal(name: str, value: str) -> str:
    """Query values in the normal forms events are stored with."""
    if name == "EQ_bizStep":
        return bare("bizStep", value) or value
    if name == "EQ_disposition":
        return bare("disposition", value) or value
    if name in ("EQ_readPoint", "EQ_bizLocation", "MATCH_epc", "MATCH_anyEPC", "MATCH_epcClass"):
        return epc.canonical(value) or value
    return value


def parse(params: list[tuple[str, str]], max_page: int) -> Query:
    query = Query()
    for name, value in params:
        if name in LIST_PARAMS:
            for part in value.split(","):
                if part.strip():
                    query.lists.setdefault(name, []).append(_normal(name, part.strip()))
        elif name in TIME_PARAMS:
            query.times[name] = _time(name, value)
        elif name == "perPage":
            if not PAGE_SIZE.fullmatch(value) or not 1 <= int(value) <= max_page:
                raise QueryRefused(f"perPage must be 1-{max_page}")
            query.per_page = int(value)
        elif name == "nextPageToken":
            query.cursors = _read_token(value)
        else:
            raise QueryRefused(f"unknown query parameter {name[:40]!r}")
    return query


def _read_token(token: str) -> dict[str, str]:
    try:
        cursors = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise QueryRefused("nextPageToken is not one this hub gave") from None
    if not isinstance(cursors, dict) or not all(k in SOURCES and isinstance(v, str) and (k == "events" or
                                                ObjectId.is_valid(v)) for k, v in cursors.items()):
        raise QueryRefused("nextPageToken is not one this hub gave")
    return cursors


def _write_token(cursors: Mapping[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(dict(cursors), separators=(",", ":")).encode()).decode().rstrip("=")


def _pattern(value: str) -> dict[str, Any] | str:
    """A class pattern (``urn:epc:idpat:sgtin:...*`` → GTIN without serial) matches every instance of the class."""
    key = epc.parse(value)
    if key is not None and key.kind == "gtin":
        return {"$regex": "^" + re.escape(key.digital_link) + "(/|$)"}
    return value


def mongo_filter(query: Query) -> dict[str, Any]:
    """The query's conditions on stored events (their normal-form fields)."""
    clauses: list[dict[str, Any]] = []
    columns = {"eventType": "body.type", "EQ_action": "body.action", "EQ_bizStep": "biz_step",
               "EQ_disposition": "disposition", "EQ_readPoint": "read_point", "EQ_bizLocation": "biz_location"}
    for name, column in columns.items():
        if name in query.lists:
            clauses.append({column: {"$in": query.lists[name]}})
    # any_epcs is stored only when it holds more than epcs (capture.stored_fields)
    for name, columns_of in (("MATCH_epc", ("epcs",)), ("MATCH_anyEPC", ("epcs", "any_epcs")),
                             ("MATCH_epcClass", ("classes",))):
        if name in query.lists:
            clauses.append({"$or": [{column: _pattern(value)} for value in query.lists[name] for column in columns_of]})
    for name, value in query.times.items():
        op = "$gte" if name.startswith("GE_") else "$lt"
        clauses.append({"event_time" if name.endswith("eventTime") else "record_time": {op: value}})
    return {"$and": clauses} if clauses else {}


def _matches_value(wanted: list[str], found: list[str]) -> bool:
    for value in wanted:
        condition = _pattern(value)
        if isinstance(condition, str):
            if condition in found:
                return True
        elif any(re.match(condition["$regex"], f) for f in found):
            return True
    return False


def matches(query: Query, event: Mapping[str, Any]) -> bool:
    """The same conditions as ``mongo_filter``, on an event built in memory (the exports)."""
    fields = index_fields(event)
    record = datetime.fromisoformat(event["recordTime"])
    for name, column in (("eventType", "event_type"), ("EQ_action", "action"), ("EQ_bizStep", "biz_step"),
                         ("EQ_disposition", "disposition"), ("EQ_readPoint", "read_point"),
                         ("EQ_bizLocation", "biz_location")):
        if name in query.lists and fields[column] not in query.lists[name]:
            return False
    for name, column in (("MATCH_epc", "epcs"), ("MATCH_anyEPC", "any_epcs"), ("MATCH_epcClass", "classes")):
        if name in query.lists and not _matches_value(query.lists[name], fields[column]):
            return False
    for name, value in query.times.items():
        at = fields["event_time"] if name.endswith("eventTime") else record
        if (at < value) if name.startswith("GE_") else (at >= value):
            return False
    return True


@dataclass
class Row:
    record_time: datetime
    source: str
    id: Cursor
    event: dict[str, Any]

    def __lt__(self, other: Row) -> bool:
        return (self.record_time, self.source, self.id) < (other.record_time, other.source, other.id)


@dataclass
class Fetched:
    rows: list[Row]
    scanned_to: Cursor  # the last record examined (matching or not), None if none
    exhausted: bool


Cursor = Any  # a captured event's key (str) or a domain record's ObjectId
Fetch = Callable[[Access, Query, Cursor, int], Awaitable[Fetched]]


async def _stored(access: Access, query: Query, after: Cursor, limit: int) -> Fetched:
    condition: dict[str, Any] = {"$and": [tenant_range(access.tenant_id), mongo_filter(query) or {}]}
    if after is not None:
        condition["$and"].append({"_id": {"$gt": after}})
    docs = await EpcisEvent.get_pymongo_collection().find(condition, {"body": 1, "record_time": 1}) \
        .sort("_id", 1).limit(limit).to_list(limit)
    rows = []
    for doc in docs:
        body = event_of(doc["_id"], doc["body"])
        body.setdefault("recordTime", export._iso(doc["record_time"]))
        rows.append(Row(doc["record_time"], "events", doc["_id"], body))
    return Fetched(rows, docs[-1]["_id"] if docs else None, len(docs) < limit)


async def _captured_ids(kind: str, ids: list[Any]) -> set[str]:
    """Domain records that captured events made: they are answered as those events, not exported again."""
    links = [f"{kind}:{i}" for i in ids]
    found = EpcisLink.get_pymongo_collection().find({"_id": {"$in": links}}, {"_id": 1})
    return {doc["_id"].partition(":")[2] async for doc in found}


def _exporter(model: Any, rule: Callable[[Access], dict[str, Any]], build: Any, time_field: str) -> Fetch:
    async def fetch(access: Access, query: Query, after: Cursor, limit: int) -> Fetched:
        rows: list[Row] = []
        scanned: Cursor = after
        examined = 0
        conditions: list[dict[str, Any]] = [rule(access)]
        for name, value in query.times.items():
            if name.endswith("eventTime"):
                conditions.append({time_field: {"$gte" if name.startswith("GE_") else "$lt": value}})
        while len(rows) < limit and examined < SCAN_LIMIT:
            page = {"$and": [*conditions, *([{"_id": {"$gt": scanned}}] if scanned else [])]}
            docs = await model.find(page).sort("_id").limit(SCAN_BATCH).to_list()
            if not docs:
                return Fetched(rows, scanned, True)
            examined += len(docs)
            events = await build(docs, access.tenant_id)
            for doc, event in zip(docs, events):
                scanned = doc.id
                if event is not None and matches(query, event):
                    rows.append(Row(datetime.fromisoformat(event["recordTime"]), model.Settings.name, doc.id, event))
                    if len(rows) >= limit:
                        return Fetched(rows, scanned, False)
            if len(docs) < SCAN_BATCH:
                return Fetched(rows, scanned, True)
        return Fetched(rows, scanned, False)

    return fetch


async def _dispatches(docs: list[Dispatch], viewer: str) -> list[dict[str, Any] | None]:
    skip = await _captured_ids("dispatch", [d.id for d in docs])
    names = await export.Names.load([line.sku_id for d in docs for line in d.lines],
                                    [loc for d in docs for loc in (d.from_location_id, d.to_location_id)],
                                    [t for d in docs for t in (d.tenant_id, d.consignee_id)])
    return [None if str(d.id) in skip else export.dispatch_event(d, names, viewer) for d in docs]


async def _receipts(docs: list[Receipt], viewer: str) -> list[dict[str, Any] | None]:
    skip = await _captured_ids("receipt", [r.id for r in docs])
    shipments = {d.id: d for d in await Dispatch.find({"_id": {"$in": [r.dispatch_id for r in docs]}}).to_list()}
    names = await export.Names.load([line.sku_id for r in docs for line in r.lines], [r.location_id for r in docs],
                                    [r.tenant_id for r in docs])
    return [None if str(r.id) in skip else export.receipt_event(r, shipments.get(r.dispatch_id), names, viewer)
            for r in docs]


async def _movements(docs: list[Movement], viewer: str) -> list[dict[str, Any] | None]:
    names = await export.Names.load([m.sku_id for m in docs], [m.location_id for m in docs], [])
    return [export.movement_event(m, names) for m in docs]


async def _excursions(docs: list[Excursion], viewer: str) -> list[dict[str, Any] | None]:
    names = await export.Names.load([lot.sku_id for x in docs for lot in x.exposed_lots],
                                    [x.location_id for x in docs], [])
    return [export.excursion_event(x, names, viewer) for x in docs]


FETCHERS: dict[str, Fetch] = {
    "events": _stored,
    "dispatches": _exporter(Dispatch, lambda a: a.dispatches("read"), _dispatches, "created_at"),
    "receipts": _exporter(Receipt, lambda a: a.receipts("read"), _receipts, "received_at"),
    "movements": _exporter(Movement, lambda a: a.stock("read"), _movements, "occurred_at"),
    "excursions": _exporter(Excursion, lambda a: a.sensors("read"), _excursions, "started_at"),
}


def _sources(query: Query) -> list[str]:
    """Sources that can answer at all: exports are ObjectEvents of known steps."""
    chosen = ["events"]
    types = query.lists.get("eventType")
    steps = set(query.lists.get("EQ_bizStep", []))
    for source in SOURCES[1:]:
        if types is not None and "ObjectEvent" not in types:
            continue
        if steps and not steps & EXPORT_STEPS[source]:
            continue
        chosen.append(source)
    return chosen


@dataclass
class Page:
    events: list[dict[str, Any]]
    next_token: str | None


async def run(access: Access, query: Query) -> Page:
    """One page of events in record-time order, and the token of the next page (None on the last)."""
    fetched: dict[str, Fetched] = {}
    for source in _sources(query):
        after = query.cursors.get(source)
        cursor = after if source == "events" or after is None else ObjectId(after)
        fetched[source] = await FETCHERS[source](access, query, cursor,
                                                 query.per_page + 1)
    taken: list[Row] = list(heapq.merge(*(f.rows for f in fetched.values())))[: query.per_page]
    cursors = dict(query.cursors)
    more = False
    for source, result in fetched.items():
        mine = [row.id for row in taken if row.source == source]
        if mine:
            cursors[source] = str(mine[-1])
        elif not result.rows and result.scanned_to is not None:
            cursors[source] = str(result.scanned_to)  # examined, none matched: never examine them again
        more = more or len(result.rows) > len(mine) or not result.exhausted
    return Page([row.event for row in taken], _write_token(cursors) if more else None)
