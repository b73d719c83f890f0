"""Ingesting sensor readings into hour buckets, and reading series back (raw or downsampled).

One call may carry up to ``settings.max_batch`` readings for many sensors. Impossible readings are rejected one by
one with a reason while the rest are kept. The buckets of the hours a call brings readings to are read once (readings
already stored there are duplicates), and the new ones are inserted as one more bucket per hour, in one bulk write
inside a transaction that also judges each sensor's affected window again (``rejudge_window``: late and out-of-order
readings are judged like timely ones) and reconciles the excursions it finds with the stored ones, so readings,
detector state, excursions, re-dated lots and alerts commit together or not at all. Every call that stores readings
for a sensor writes its state, so a concurrent call on the same sensor conflicts (on the state, or on the next
bucket's ``_id``) and is retried from the start: an hour never gets the same reading twice.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError, DuplicateKeyError

from hub import metrics
from hub.config import Settings
from hub.dates import RANGE_MESSAGE, in_range, utcnow
from hub.db import Database, by_ids
from hub.detect.spikes import DEFAULT_INTERVAL_MINUTES, RISE_WINDOW, Reading, judge, state_doc
from hub.errors import BadInput
from hub.models.excursion import Excursion, ExcursionStatus
from hub.models.reading import ReadingBucket, bucket_hour, bucket_ids
from hub.models.sensor import Sensor, SensorState, states
from hub.services import excursions, heartbeat
from hub.services.sensors import goods_for
from tenants.access import Access
from tenants.roles import Group


@dataclass(frozen=True)
class ReadingIn:
    at: datetime
    temperature_c: float
    humidity_pct: float | None = None


@dataclass
class SensorReadingsIn:
    readings: list[ReadingIn] = field(default_factory=list)
    sensor_id: str | None = None
    device_id: str | None = None
    samples: list[Any] = field(default_factory=list)  # compact form, see parse_sample

    @property
    def size(self) -> int:
        return len(self.readings) + len(self.samples)

    @property
    def ref(self) -> str:
        return self.sensor_id or self.device_id or ""


@dataclass(frozen=True)
class Rejection:
    sensor: str
    index: int  # position in that sensor's readings
    at: datetime | None
    reason: str


@dataclass
class IngestReport:
    received: int = 0
    accepted: int = 0  # newly stored
    duplicates: int = 0  # already stored (or repeated in the call): stored once
    late: int = 0  # stored, but older than the re-judged window (settings.spike_rejudge_hours): not judged
    rejected: list[Rejection] = field(default_factory=list)
    excursions: list[excursions.Outcome] = field(default_factory=list)


def _utc_ms(at: datetime) -> datetime:
    """UTC with millisecond precision, as BSON stores it (so re-sent readings compare equal)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    elif at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000) if at.microsecond % 1000 else at


def parse_sample(sample: Any) -> ReadingIn | str:
    """A compact reading, ``[time, °C]`` or ``[time, °C, %RH]`` with time ISO 8601 or epoch seconds; or why not.

    Gateways posting thousands of readings use this form: it skips GraphQL's per-object input coercion, which
    costs more than storing the readings, and a malformed sample is rejected alone instead of failing the call.
    """
    if not isinstance(sample, (list, tuple)) or not 2 <= len(sample) <= 3:
        return "a sample is [time, temperatureC] or [time, temperatureC, humidityPct]"
    raw_at, c, *rest = sample
    rh = rest[0] if rest else None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (c, *([rh] if rh is not None else []))):
        return "temperature and humidity must be numbers"
    try:
        temperature, humidity = float(c), None if rh is None else float(rh)
    except OverflowError:  # a 400-digit integer is valid JSON
        return "temperature and humidity must be numbers within range"
    if isinstance(raw_at, str):
        try:
            at = datetime.fromisoformat(raw_at)
        except ValueError:
            return "time is not a valid ISO 8601 instant"
    elif isinstance(raw_at, (int, float)) and not isinstance(raw_at, bool):
        try:
            at = datetime.fromtimestamp(raw_at, UTC)
        except (ValueError, OverflowError, OSError):
            return "time is not a valid epoch instant"
    else:
        return "time must be an ISO 8601 string or epoch seconds"
    if not in_range(at):  # year 1 at +05:00 is before year 1 in UTC: no bucket could be named or stored
        return f"time is out of range: {RANGE_MESSAGE}"
    return ReadingIn(at, temperature, humidity)


def check_reading(reading: ReadingIn, at: datetime, earliest: datetime, latest: datetime, settings: Settings
                  ) -> str | None:
    """Why this reading, at ``at`` (``_utc_ms``), is impossible, or None: ``earliest`` and ``latest`` are the
    oldest and newest instants accepted now (``reading_max_age_days``, ``reading_max_future_seconds``)."""
    c, rh = reading.temperature_c, reading.humidity_pct
    if c is None or not math.isfinite(c):
        return "temperature is not a number"
    if not -100.0 <= c <= 100.0:
        return f"temperature {c:g} °C is outside -100..100 °C"
    if rh is not None and (not math.isfinite(rh) or not 0.0 <= rh <= 100.0):
        return f"relative humidity {rh:g} % is outside 0..100 %"
    if at > latest:
        return "time is in the future (check the device clock)"
    if at < earliest:
        return f"time is more than {settings.reading_max_age_days} days in the past (check the device clock)"
    return None


async def _resolve(access: Access, batches: list[SensorReadingsIn]) -> dict[str, Sensor]:
    """The caller's own sensors by the id or device id each batch names (ingesting is for the owner only)."""
    ids = sorted({ObjectId(b.sensor_id) for b in batches if b.sensor_id and ObjectId.is_valid(b.sensor_id)})
    devices = sorted({b.device_id for b in batches if b.device_id and not b.sensor_id})
    # By _id alone, then by device id: SecantusDB answers an _id lookup from the primary key but scans every
    # tenant's sensors once another field (the owner) or an $or joins it. Ingesting is for the owner only: another
    # tenant's sensor is left out here, as the owner filter of the device query leaves it out there.
    docs = [doc for doc in await by_ids(Sensor.get_pymongo_collection(), ids) if doc["tenant_id"] == access.tenant_id]
    if devices:
        docs += await Sensor.get_pymongo_collection().find(
            {**access.sensors("write"), "device_id": {"$in": devices}}
        ).to_list(None)
    found: dict[str, Sensor] = {}
    for doc in docs:
        sensor = Sensor.model_validate(doc)
        found[str(sensor.id)] = sensor
        found[f"device:{sensor.device_id}"] = sensor
    return found


CREATE_RACE_RETRIES = 3
NEIGHBOUR = timedelta(hours=1)  # how far before a judged window its first reading's neighbour is looked for


def _duplicate_key(exc: Exception) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    if not isinstance(exc, BulkWriteError):
        return False
    errors = getattr(exc, "details", {}).get("writeErrors", [])
    return bool(errors) and all(error.get("code") == 11000 for error in errors)


def _hours(start: datetime, end: datetime) -> list[datetime]:
    hour, hours = bucket_hour(start), []
    while hour <= end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def rejudge_window(
    earliest: datetime, newest: datetime, detector: dict[str, Any], bound: datetime, settings: Settings,
    stored_since: datetime | None = None, attached: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The span of a sensor's series to judge again for new readings from ``earliest`` to ``newest``.

    It reaches back from the earliest new reading (or the start of an episode still in progress, or of a stored
    excursion the span would otherwise cut, ``stored_since``, if earlier) by the context the rules look at
    (hysteresis, rise window, a few samples), never before ``bound`` minus that context, and forward to the newest
    reading ever judged, so a late batch can extend or merge the episodes after it. It never reaches before the
    sensor was put where it is (``attached``): readings taken elsewhere are no context for the goods here.
    """
    interval = detector.get("interval_minutes") or DEFAULT_INTERVAL_MINUTES
    context = timedelta(minutes=settings.spike_hysteresis_minutes + 3 * interval) + RISE_WINDOW
    pending = detector.get("pending_since")
    start = min(filter(None, (earliest, pending, stored_since)))
    start = max(start - context, bound - context, *([attached] if attached is not None else []))
    last = detector.get("last_at")
    return start, max(newest, last) if last is not None else newest


async def _cut_excursions(
    windows: dict[PydanticObjectId, tuple[datetime, datetime]], settings: Settings, session: AsyncClientSession
) -> dict[PydanticObjectId, datetime]:
    """Per sensor, the start of the earliest stored excursion that began before its window and reaches into it
    (within the hysteresis, where a mark in the window would join it)."""
    if not windows:
        return {}
    hysteresis = timedelta(minutes=settings.spike_hysteresis_minutes)
    starts = [start for start, _ in windows.values()]
    cursor = Excursion.get_pymongo_collection().find(
        {
            "sensor_id": {"$in": sorted(windows)},
            "status": {"$ne": ExcursionStatus.merged.value},
            "started_at": {"$lt": max(starts)},
            "$or": [{"ended_at": None}, {"ended_at": {"$gte": min(starts) - hysteresis}}],
        },
        {"sensor_id": 1, "started_at": 1, "ended_at": 1},
        session=session,
    )
    cut: dict[PydanticObjectId, datetime] = {}
    async for doc in cursor:
        start = windows[doc["sensor_id"]][0]
        ended = doc.get("ended_at")
        if doc["started_at"] < start and (ended is None or ended >= start - hysteresis):
            cut[doc["sensor_id"]] = min(doc["started_at"], cut.get(doc["sensor_id"], doc["started_at"]))
    return cut


def _summary(readings: list[dict[str, Any]]) -> dict[str, Any]:
    """A bucket's fields for these readings (sorted by time)."""
    ordered = sorted(readings, key=lambda r: r["t"])
    temps = [r["c"] for r in ordered]
    return {"readings": ordered, "count": len(ordered), "min_c": min(temps), "max_c": max(temps), "sum_c": sum(temps)}


Hour = tuple[PydanticObjectId, datetime]  # a sensor's hour


async def _hour_buckets(
    collection: Any, hours: Sequence[Hour], session: AsyncClientSession
) -> dict[Hour, dict[str, dict[str, Any]]]:
    """The stored buckets of these sensor hours by ``_id``, each hour looked up by every ``_id`` it can use."""
    owner: dict[str, Hour] = {}
    for sensor_id, hour in hours:
        for key in bucket_ids(sensor_id, hour):
            owner[key] = (sensor_id, hour)
    found: dict[Hour, dict[str, dict[str, Any]]] = {}
    for doc in await by_ids(collection, sorted(owner), session):
        found.setdefault(owner[doc["_id"]], {})[doc["_id"]] = doc
    return found


async def ingest(
    access: Access, database: Database, settings: Settings, batches: list[SensorReadingsIn]
) -> IngestReport:
    access.require(Group.readings)
    report = IngestReport(received=sum(b.size for b in batches))
    if report.received > settings.max_batch:
        raise BadInput(f"at most {settings.max_batch} readings per call", field="input")
    now = utcnow()
    sensors = await _resolve(access, batches)
    incoming: dict[PydanticObjectId, dict[datetime, dict[str, Any]]] = defaultdict(dict)
    earliest = now - timedelta(days=settings.reading_max_age_days)
    latest = now + timedelta(seconds=settings.reading_max_future_seconds)
    for batch in batches:
        if bool(batch.sensor_id) == bool(batch.device_id):
            raise BadInput("name each sensor by exactly one of sensorId or deviceId", field="sensorId")
        if batch.readings and batch.samples:
            raise BadInput("send a sensor's readings either as readings or as samples, not both", field="samples")
        sensor = sensors.get(batch.sensor_id or f"device:{batch.device_id}")
        items: Sequence[ReadingIn | str] = batch.readings or [parse_sample(sample) for sample in batch.samples]
        for index, reading in enumerate(items):
            if isinstance(reading, str):
                report.rejected.append(Rejection(batch.ref, index, None, reading))
                continue
            at = _utc_ms(reading.at)
            reason = "unknown sensor" if sensor is None else check_reading(reading, at, earliest, latest, settings)
            if reason is not None:
                report.rejected.append(Rejection(batch.ref, index, reading.at, reason))
                continue
            seen = incoming[sensor.id]  # type: ignore[union-attr,index]
            if at in seen:
                report.duplicates += 1
                continue
            seen[at] = {"t": at, "c": float(reading.temperature_c), "rh": reading.humidity_pct}
    if not incoming:
        return report
    touched = {sensor_id: sensor for sensor in sensors.values() if (sensor_id := sensor.id) in incoming}
    goods = await goods_for(touched.values())
    by_hour: dict[Hour, list[dict[str, Any]]] = defaultdict(list)
    for sensor_id, readings in incoming.items():
        for at, stored_reading in readings.items():
            by_hour[sensor_id, bucket_hour(at)].append(stored_reading)
    duplicates_before = report.duplicates

    bound = now - timedelta(hours=settings.spike_rejudge_hours)
    # Readings from before a sensor was moved are stored but not judged: the goods they would expose are elsewhere.
    bounds = {sensor_id: max(bound, sensor.attached_at or bound) for sensor_id, sensor in touched.items()}
    buckets = ReadingBucket.get_pymongo_collection()

    async def work(session: AsyncClientSession) -> None:
        report.duplicates, report.late, report.excursions = duplicates_before, 0, []
        stored_states = {doc["_id"]: doc for doc in await by_ids(states(), sorted(incoming), session)}
        current = {sensor_id: SensorState.model_validate(doc) for sensor_id, doc in stored_states.items()}
        # The hours the readings go to first; the rest of a judged window only for sensors with new readings.
        stored = await _hour_buckets(buckets, sorted(by_hour), session)
        added: dict[PydanticObjectId, list[dict[str, Any]]] = defaultdict(list)
        writes: list[InsertOne | ReplaceOne | DeleteOne] = []
        contents = {key: [r for doc in docs.values() for r in doc["readings"]] for key, docs in stored.items()}
        for key, readings in by_hour.items():
            present = {r["t"] for r in contents.get(key, [])}
            new = [r for r in readings if r["t"] not in present]
            report.duplicates += len(readings) - len(new)
            if not new:
                continue
            sensor_id, hour = key
            added[sensor_id].extend(new)
            contents[key] = [*contents.get(key, []), *new]
            ids, taken = bucket_ids(sensor_id, hour), stored.get(key, {})
            free = [bucket for bucket in ids if bucket not in taken]
            doc = {"sensor_id": sensor_id, "tenant_id": access.tenant_id, "hour": hour}
            if free:  # a bucket of its own: inserting costs a fraction of rewriting the hour's readings
                writes.append(InsertOne({"_id": free[0], **doc, **_summary(new)}))
            else:  # the hour is full: merge its buckets into the first (rare: BUCKETS_PER_HOUR calls per hour)
                writes.append(ReplaceOne({"_id": ids[0]}, {**doc, **_summary(contents[key])}))
                writes += [DeleteOne({"_id": bucket}) for bucket in ids[1:]]
        windows: dict[PydanticObjectId, tuple[datetime, datetime]] = {}
        for sensor_id in added:
            arrived = incoming[sensor_id]
            judged = [at for at in arrived if at >= bounds[sensor_id]]
            if judged:
                state = current.get(sensor_id, SensorState())
                windows[sensor_id] = rejudge_window(
                    min(judged), max(arrived), state.detector, bound, settings, attached=touched[sensor_id].attached_at
                )
        # A stored excursion that began before a window and reaches into it is judged whole: its tail alone would
        # have another cause, evidence and doses (and rewriting them reopened its resolved alert).
        for sensor_id, since in (await _cut_excursions(windows, settings, session)).items():
            arrived, state = incoming[sensor_id], current.get(sensor_id, SensorState())
            judged_from = min(at for at in arrived if at >= bounds[sensor_id])
            windows[sensor_id] = rejudge_window(judged_from, max(arrived), state.detector, bound, settings, since,
                                                attached=touched[sensor_id].attached_at)
        context = {(sensor_id, hour) for sensor_id, (a, b) in windows.items() for hour in _hours(a, b)}
        for key, docs in (await _hour_buckets(buckets, sorted(context - by_hour.keys()), session)).items():
            contents[key] = [r for doc in docs.values() for r in doc["readings"]]
        # The hour before a window too, where the window's own first hour holds no reading before it.
        hour_before = {
            (sensor_id, bucket_hour(a) - NEIGHBOUR) for sensor_id, (a, _) in windows.items()
            if not any(r["t"] < a for r in contents.get((sensor_id, bucket_hour(a)), []))
        }
        for key, docs in (await _hour_buckets(buckets, sorted(hour_before - contents.keys()), session)).items():
            contents[key] = [r for doc in docs.values() for r in doc["readings"]]
        if writes:
            await buckets.bulk_write(writes, ordered=False, session=session)
        state_writes: list[InsertOne | ReplaceOne] = []
        recovered: list[Sensor] = []  # sensors that were offline: resumed together after the loop
        owner_writes = []
        for sensor_id, sensor in touched.items():
            owners = [o for o in goods[sensor_id].owners if o != sensor.tenant_id]
            if owners != sensor.goods_owners:  # rare: goods arrived or left
                owner_writes.append(UpdateOne({"_id": sensor_id}, {"$set": {"goods_owners": owners}}))
            new = added.get(sensor_id, [])
            if not new:
                continue  # a replayed batch: nothing to judge or write
            state = current.get(sensor_id, SensorState())
            fields: dict[str, Any] = {"updated_at": now}
            newest = max(new, key=lambda r: r["t"])
            if state.last_reading_at is None or newest["t"] > state.last_reading_at:
                fields.update(last_reading_at=newest["t"], last_temperature_c=newest["c"])
            fresh = [r for r in new if r["t"] >= bounds[sensor_id]]
            report.late += len(new) - len(fresh)
            if fresh and sensor_id in windows:
                start, end = windows[sensor_id]
                # The last reading before the window too (never one from before a move): the median of the first
                # reading judged takes it as its neighbour, as in the whole series.
                floor = max(start - NEIGHBOUR, sensor.attached_at or start - NEIGHBOUR)
                around = sorted(
                    Reading(r["t"], r["c"])
                    for hour in _hours(floor, end)
                    for r in contents.get((sensor_id, hour), [])
                    if floor <= r["t"] <= end
                )
                first = bisect.bisect_left([r.at for r in around], start)
                config = replace(goods[sensor_id].spike_config(settings), interval_minutes=sensor.interval_minutes)
                with metrics.DETECTOR_DURATION.labels("spikes").time():
                    judgement = judge(around[max(first - 1, 0):], config, since=start)
                series = around[first:]
                last_at = max(filter(None, (state.detector.get("last_at"), newest["t"])))
                fields["detector"] = state_doc(judgement, last_at)
                earliest = min(r["t"] for r in fresh)
                margin = timedelta(minutes=config.hysteresis_minutes + 2 * judgement.interval_minutes)
                affected = [e for e in judgement.episodes if e.ended_at is None or e.ended_at >= earliest - margin]
                if affected:
                    report.excursions.extend(await excursions.reconcile(
                        session, sensor, goods[sensor_id], affected, series[0].at, settings, now
                    ))
            heard = max(filter(None, (state.last_reading_at, newest["t"])))
            allowed = timedelta(minutes=sensor.max_silence_minutes or settings.sensor_offline_minutes)
            if state.offline_alert and now - heard <= allowed:  # a late reading from before the silence is not one
                recovered.append(sensor)
                fields["offline_alert"] = False
            if sensor_id in stored_states:
                # Replaced whole, as read in this transaction (a concurrent writer conflicts and the call runs
                # again): on SecantusDB a replacement costs half an update with operators.
                previous = stored_states[sensor_id]
                count = previous.get("readings_count", 0) + len(new)
                state_writes.append(ReplaceOne({"_id": sensor_id}, {**previous, **fields, "readings_count": count}))
            else:  # its first readings (a concurrent first call fails on the key and runs again, replacing)
                state_writes.append(InsertOne({"_id": sensor_id, **fields, "readings_count": len(new)}))
        await heartbeat.resume(session, recovered, now)
        if state_writes:
            await states().bulk_write(state_writes, ordered=False, session=session)
        if owner_writes:
            await Sensor.get_pymongo_collection().bulk_write(owner_writes, ordered=False, session=session)

    # Another call may create the same bucket or sensor state first: run again, now updating what it created.
    await database.in_transaction(work, retry_if=_duplicate_key, attempts=CREATE_RACE_RETRIES)
    report.accepted = sum(len(r) for r in incoming.values()) - (report.duplicates - duplicates_before)
    return report


@dataclass(frozen=True)
class Point:
    at: datetime
    temperature_c: float
    humidity_pct: float | None


@dataclass(frozen=True)
class Aggregate:
    start: datetime
    count: int
    min_c: float
    max_c: float
    avg_c: float


@dataclass
class Series:
    points: list[Point] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    truncated: bool = False


MAX_SPAN = timedelta(days=366)


async def _hourly(cursor: Any) -> AsyncIterator[list[dict[str, Any]]]:
    """Each hour's readings in time order, merged from its buckets (``cursor`` yields buckets sorted by hour)."""
    hour: datetime | None = None
    readings: list[dict[str, Any]] = []
    async for bucket in cursor:
        if bucket["hour"] != hour and readings:
            yield sorted(readings, key=lambda r: r["t"])
            readings = []
        hour = bucket["hour"]
        readings += bucket["readings"]
    if readings:
        yield sorted(readings, key=lambda r: r["t"])


async def series(
    sensor: Sensor, start: datetime, end: datetime, interval_minutes: int | None, limit: int
) -> Series:
    """Readings of ``sensor`` in [start, end): raw (at most ``limit``) or min/max/avg per ``interval_minutes``."""
    start, end = _utc_ms(start), _utc_ms(end)
    if end <= start:
        raise BadInput("`to` must be after `from`", field="to")
    if end - start > MAX_SPAN:
        raise BadInput("ask for at most 366 days at a time", field="from")
    if interval_minutes is not None and not 1 <= interval_minutes <= 1440 * 7:
        raise BadInput("interval must be 1 minute to 7 days", field="intervalMinutes")
    query = {"tenant_id": sensor.tenant_id, "sensor_id": sensor.id, "hour": {"$gte": bucket_hour(start), "$lt": end}}
    collection = ReadingBucket.get_pymongo_collection()
    result = Series()
    whole_hours = interval_minutes is not None and interval_minutes % 60 == 0 and start == bucket_hour(start)
    projection = {"readings": 0} if whole_hours else None
    groups: dict[datetime, list[float]] = {}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    cursor = collection.find(query, projection).sort("hour", 1)
    if whole_hours:  # coarse series straight from the buckets' summaries, never unpacking readings
        assert interval_minutes is not None
        step = timedelta(minutes=interval_minutes)
        async for bucket in cursor:
            acc = groups.setdefault(start + (bucket["hour"] - start) // step * step, [0, math.inf, -math.inf, 0.0])
            acc[0] += bucket["count"]
            acc[1] = min(acc[1], bucket["min_c"])
            acc[2] = max(acc[2], bucket["max_c"])
            acc[3] += bucket["sum_c"]
    else:
        async for readings in _hourly(cursor):
            for reading in readings:
                if not start <= reading["t"] < end:
                    continue
                if interval_minutes is None:
                    if len(result.points) >= limit:
                        result.truncated = True
                        return result
                    result.points.append(Point(reading["t"], reading["c"], reading.get("rh")))
                    continue
                step = timedelta(minutes=interval_minutes)
                slot = epoch + (reading["t"] - epoch) // step * step
                acc = groups.setdefault(slot, [0, math.inf, -math.inf, 0.0])
                acc[0] += 1
                acc[1] = min(acc[1], reading["c"])
                acc[2] = max(acc[2], reading["c"])
                acc[3] += reading["c"]
    result.aggregates = [
        Aggregate(slot, int(n), lo, hi, round(total / n, 3)) for slot, (n, lo, hi, total) in sorted(groups.items()) if n
    ]
    if len(result.aggregates) > limit:
        result.aggregates, result.truncated = result.aggregates[:limit], True
    return result
