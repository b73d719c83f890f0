"""Mutations: registering sensors and ingesting their readings."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub.errors import BadInput
from hub.models.sensor import states_of
from hub.services import readings as reading_service
from hub.services import sensors as sensor_service
from schema.permissions import allowed
from schema.sensors.types import (
    IngestReadingsPayload,
    RegisterSensorInput,
    RegisterSensorPayload,
    SensorReadingsInput,
    SensorType,
)
from tenants.roles import Group


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=allowed(Group.operations),
        description="Register a device at a location, or move/re-attach it (same deviceId) to lots, a dispatch "
                    "or pallets (SSCCs)"
    )
    async def register_sensor(self, info: Info, input: RegisterSensorInput) -> RegisterSensorPayload:
        access = await info.context.access()
        sensor, created = await sensor_service.register_sensor(
            access,
            input.device_id,
            str(input.location_id) if input.location_id is not None else None,
            input.name,
            [str(i) for i in input.lot_ids or []],
            str(input.dispatch_id) if input.dispatch_id else None,
            interval_minutes=input.interval_minutes,
            max_silence_minutes=input.max_silence_minutes,
            ssccs=input.ssccs,
        )
        offline = info.context.hub.settings.sensor_offline_minutes
        state = (await states_of([sensor.id])).get(sensor.id)
        goods = (await sensor_service.goods_for([sensor]))[sensor.id]  # type: ignore[index]
        return RegisterSensorPayload(
            sensor=SensorType.from_model(sensor, state, offline, goods.limit_c), created=created
        )

    @strawberry.mutation(
        permission_classes=allowed(Group.readings),
        description="Store readings of one or many sensors (idempotent); impossible readings are rejected one by one",
    )
    async def ingest_readings(self, info: Info, input: list[SensorReadingsInput]) -> IngestReadingsPayload:
        access = await info.context.access()
        hub = info.context.hub
        if any(item.samples is not None and not isinstance(item.samples, list) for item in input):
            raise BadInput("samples must be a JSON array of [time, temperatureC, humidityPct?] arrays", field="samples")
        batches = [
            reading_service.SensorReadingsIn(
                sensor_id=str(item.sensor_id) if item.sensor_id else None,
                device_id=item.device_id,
                readings=[
                    reading_service.ReadingIn(r.at, r.temperature_c, r.humidity_pct) for r in item.readings or []
                ],
                samples=list(item.samples) if isinstance(item.samples, list) else [],
            )
            for item in input
        ]
        report = await reading_service.ingest(access, hub.database, hub.settings, batches)
        return IngestReadingsPayload.from_report(report)
