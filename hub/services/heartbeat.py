"""The heartbeat promise: a sensor that falls silent while goods depend on it is a signal (``sensor_offline``).

``check`` (run by the sweep, and by replays when the clock moves) raises one ``sensor_offline`` alert per sensor
silent for longer than its allowed silence (``max_silence_minutes``, else ``settings.sensor_offline_minutes``) while
lots are at its location or on its dispatch, to the same audience as a spike of that sensor. Ingestion resolves it
(``resume``) with the first reading that arrives afterwards. A sensor that never reported is not silent: it has not
started yet.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from hub.config import Settings
from hub.dates import utcnow
from hub.db import Database
from hub.events.log import build_event, emit_many
from hub.models.alert import AlertKind, Severity, SubjectRef
from hub.models.event import Event
from hub.models.location import Location
from hub.models.sensor import Sensor, states, states_of
from hub.services import audiences
from hub.services.alerts import raise_alert, resolve_all_by_system
from hub.services.excursions import exposed_units
from hub.services.sensors import goods_for
from tenants.access import grantees
from tenants.models import Scope

log = logging.getLogger("lotpulse.heartbeat")
RESOLVER = "system:heartbeat"


def dedupe_key(sensor: Sensor) -> str:
    return f"sensor_offline:{sensor.id}"


@dataclass
class HeartbeatReport:
    silent: int = 0  # sensors past their allowed silence
    raised: int = 0  # of which an alert was raised now (the others already had one, or watch no goods)


async def check(
    database: Database, settings: Settings, now: datetime | None = None, page: int = 500
) -> HeartbeatReport:
    now = now or utcnow()
    report = HeartbeatReport()
    last = None
    while True:
        query: dict[str, Any] = {"_id": {"$gt": last}} if last is not None else {}
        sensors = await Sensor.find(query).sort("_id").limit(page).to_list()
        if not sensors:
            return report
        last = sensors[-1].id
        state = await states_of([s.id for s in sensors])
        silent = []
        for sensor in sensors:
            current = state.get(sensor.id)
            if current is None or current.last_reading_at is None or current.offline_alert:
                continue
            allowed = timedelta(minutes=sensor.max_silence_minutes or settings.sensor_offline_minutes)
            if now - current.last_reading_at > allowed:
                silent.append((sensor, current.last_reading_at, allowed))
        report.silent += len(silent)
        goods = await goods_for([sensor for sensor, _, _ in silent])
        for sensor, heard, allowed in silent:
            lots = goods[sensor.id].lots  # type: ignore[index]
            if not lots:
                continue

            async def work(session: AsyncClientSession, sensor: Sensor = sensor, heard: datetime = heard,
                           allowed: timedelta = allowed, lots: list = lots) -> None:
                await _raise(session, sensor, heard, allowed, lots, now)

            await database.in_transaction(work)
            report.raised += 1


async def _raise(
    session: AsyncClientSession, sensor: Sensor, heard: datetime, allowed: timedelta, lots: list, now: datetime
) -> None:
    location = await Location.find_one({"_id": sensor.location_id}, session=session)
    where = location.code if location else sensor.device_id
    owners = sorted({lot.tenant_id for lot in lots} - {sensor.tenant_id})
    units = await exposed_units(session, sensor, [lot.id for lot in lots])
    silent_minutes = round((now - heard).total_seconds() / 60)
    await raise_alert(
        session,
        kind=AlertKind.sensor_offline,
        severity=Severity.warning,
        owner=sensor.tenant_id,
        audience=await audiences.for_sensor(sensor, owners, session),
        title=f"Sensor {sensor.device_id} at {where} silent for {silent_minutes} min",
        dedupe_key=dedupe_key(sensor),
        subjects=[
            SubjectRef(kind="sensor", id=str(sensor.id), label=sensor.device_id),
            SubjectRef(kind="location", id=str(sensor.location_id), label=where),
            *[SubjectRef(kind="lot", id=str(lot.id), label=lot.lot_code) for lot in lots],
        ],
        evidence={
            "sensorId": str(sensor.id),
            "deviceId": sensor.device_id,
            "locationCode": where,
            "lastReadingAt": heard.isoformat(),
            "silentMinutes": silent_minutes,
            "allowedSilenceMinutes": allowed.total_seconds() / 60,
            # ownerId: a partner is shown its own lots only (hub/services/exposure_views.py)
            "lots": [{"lotId": str(lot.id), "ownerId": lot.tenant_id, "lotCode": lot.lot_code,
                      "units": units.get(lot.id, 0)} for lot in lots],
        },
        recommendation=f"Check sensor {sensor.device_id} (power, battery, coverage) and the goods at {where}: "
        "while it is silent, an excursion would go unseen.",
        audience_rule=audiences.sensor_rule(sensor),
    )
    await states().update_one({"_id": sensor.id}, {"$set": {"offline_alert": True}}, session=session)
    shared = await grantees(sensor.tenant_id, Scope.sensors)
    await emit_many(session, [sensor_event("sensor.offline", sensor, shared, heard, silent_minutes)])


async def resume(session: AsyncClientSession, sensors: list[Sensor], now: datetime) -> None:
    """Readings arrived again: resolve these sensors' ``sensor_offline`` alerts and say they are online, in a few
    round trips however many sensors there are (a gateway back from an outage brings all of its own in one call)."""
    if not sensors:
        return
    await resolve_all_by_system(session, [dedupe_key(sensor) for sensor in sensors], RESOLVER,
                                f"readings resumed at {now.isoformat()}")
    shared = {tenant: await grantees(tenant, Scope.sensors) for tenant in {sensor.tenant_id for sensor in sensors}}
    await emit_many(session, [sensor_event("sensor.online", sensor, shared[sensor.tenant_id], now, None)
                              for sensor in sensors])


def sensor_event(event_type: str, sensor: Sensor, shared_with: frozenset[str], heard: datetime,
                 silent_minutes: float | None) -> Event:
    """``sensor.offline``/``sensor.online``: for the owner, and the owners of goods near it that it shares sensors
    with (``shared_with``: the owner's grantees of the sensors scope)."""
    audience = sorted(set(sensor.goods_owners) & shared_with)
    return build_event(event_type, sensor.tenant_id, audience, {"sensor": {
        "id": str(sensor.id), "ownerId": sensor.tenant_id, "deviceId": sensor.device_id, "name": sensor.name,
        "locationId": str(sensor.location_id), "lastReadingAt": heard.isoformat(), "silentMinutes": silent_minutes,
    }})


HEARTBEAT_INTERVAL_SECONDS = 60.0


async def start_heartbeat(hub: Any) -> None:
    """Startup hook: look for silent sensors every minute (alerts are deduplicated, so several processes agree)."""
    if hub.settings.sensor_offline_minutes <= 0:
        return

    async def loop() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_SECONDS)
            try:
                report = await check(hub.database, hub.settings)
                if report.raised:
                    log.info("heartbeat: %d silent sensors, %d sensor_offline alerts", report.silent, report.raised)
            except Exception:
                log.exception("heartbeat check failed; retrying next interval")

    hub.spawn("sensor-heartbeat", loop)
