"""Queries over sensors, their reading series and excursions, each scoped by ``Access.sensors``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from hub.models.excursion import Excursion
from hub.models.sensor import Sensor, states_of
from hub.services import readings as reading_service
from hub.services import sensors as sensor_service
from schema.pagination import Connection, check_first, paginate
from schema.permissions import READ
from schema.sensors.types import (
    ExcursionFilter,
    ExcursionType,
    ReadingAggregate,
    ReadingPoint,
    ReadingSeries,
    SensorFilter,
    SensorType,
)
from tenants.access import object_id

MAX_POINTS = 10_000


@strawberry.type
class Query:
    @strawberry.field(permission_classes=READ)
    async def sensors(
        self, info: Info, filter: SensorFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[SensorType]:
        access = await info.context.access()
        query = sensor_service.sensor_filter(
            access,
            str(filter.location_id) if filter and filter.location_id else None,
            filter.device_id if filter else None,
        )
        offline = info.context.hub.settings.sensor_offline_minutes

        async def nodes(page: Sequence[Sensor]) -> list[SensorType]:
            state = await states_of([sensor.id for sensor in page])
            goods = await sensor_service.goods_for(page)
            return [
                SensorType.from_model(sensor, state.get(sensor.id), offline, goods[sensor.id].limit_c)  # type: ignore[index]
                for sensor in page
            ]

        return await paginate(
            Sensor, query, first, after, info.context.hub.settings.max_page_size, nodes, batch=True
        )

    @strawberry.field(
        permission_classes=READ,
        description="Readings of one sensor in [from, to): raw, or min/max/avg per intervalMinutes",
    )
    async def sensor_readings(
        self,
        info: Info,
        sensor_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime | None = None,
        interval_minutes: int | None = None,
        first: int = 1000,
    ) -> ReadingSeries:
        check_first(first, MAX_POINTS)
        access = await info.context.access()
        sensor = await sensor_service.visible_sensor(access, str(sensor_id))
        end = to or datetime.now(UTC)
        series = await reading_service.series(sensor, from_, end, interval_minutes, first)
        return ReadingSeries(
            sensor_id=strawberry.ID(str(sensor.id)),
            points=[
                ReadingPoint(at=p.at, temperature_c=p.temperature_c, humidity_pct=p.humidity_pct)
                for p in series.points
            ],
            aggregates=[
                ReadingAggregate(start=a.start, count=a.count, min_c=a.min_c, max_c=a.max_c, avg_c=a.avg_c)
                for a in series.aggregates
            ],
            truncated=series.truncated,
        )

    @strawberry.field(permission_classes=READ, description="Newest first")
    async def excursions(
        self, info: Info, filter: ExcursionFilter | None = None, first: int = 50, after: str | None = None
    ) -> Connection[ExcursionType]:
        access = await info.context.access()
        clauses: list[dict] = [access.sensors("read")]
        viewer = access.tenant_id
        if filter:
            if filter.sensor_id is not None:
                clauses.append({"sensor_id": object_id(str(filter.sensor_id), "sensor")})
            if filter.location_id is not None:
                clauses.append({"location_id": object_id(str(filter.location_id), "location")})
            if filter.status is not None:
                clauses.append({"status": filter.status.value})
            if filter.started_after is not None:
                clauses.append({"started_at": {"$gte": filter.started_after}})
        return await paginate(
            Excursion, {"$and": clauses}, first, after, info.context.hub.settings.max_page_size,
            lambda excursion: ExcursionType.from_model(excursion, viewer), descending=True,
        )
