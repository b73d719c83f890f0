"""GraphQL types for sensors, their readings and excursions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.arguments import InputContext
from strawberry.types.base import get_object_definition

import schema.scalars  # noqa: F401 - binds the model enums to GraphQL
from hub.dates import utcnow
from hub.models.excursion import Excursion, ExcursionStatus, ExposedLot
from hub.models.sensor import Sensor, SensorState
from hub.services import exposure_views
from hub.services import readings as reading_service

ExcursionStatusEnum = strawberry.enum(ExcursionStatus, name="ExcursionStatus")


@strawberry.enum(description="What an excursion's exposure was resolved to")
class ExposureBasis(Enum):
    PALLET = "pallet"  # the goods on the pallets/cases the logger is attached to; only they lose shelf life
    DISPATCH = "dispatch"  # the dispatch the logger travels with (and its location's stock): whole lots re-dated
    LOCATION = "location"  # every lot at the sensor's location: whole lots re-dated


@strawberry.type(name="Sensor")
class SensorType:
    id: strawberry.ID
    owner_id: strawberry.ID
    device_id: str
    name: str | None
    location_id: strawberry.ID
    lot_ids: list[strawberry.ID]
    dispatch_id: strawberry.ID | None
    ssccs: list[str] = strawberry.field(description="Pallets or cases it is attached to (it watches only them)")
    last_reading_at: datetime | None
    last_temperature_c: float | None
    readings_count: int
    interval_minutes: float | None = strawberry.field(description="registered reporting interval, if any")
    max_silence_minutes: float | None = strawberry.field(description="allowed silence, if set for this sensor")
    online: bool = strawberry.field(description="A reading arrived within the offline threshold (heartbeat)")
    in_excursion: bool = strawberry.field(description="An excursion (or a candidate) is in progress")
    limit_c: float | None = strawberry.field(
        description="The storage limit readings are judged against now: the strictest maximum of the goods here"
    )

    @classmethod
    def from_model(
        cls, sensor: Sensor, state: SensorState | None, offline_minutes: int, limit_c: float | None
    ) -> SensorType:
        state = state or SensorState()
        last = state.last_reading_at
        return cls(
            id=strawberry.ID(str(sensor.id)),
            owner_id=strawberry.ID(sensor.tenant_id),
            device_id=sensor.device_id,
            name=sensor.name,
            location_id=strawberry.ID(str(sensor.location_id)),
            lot_ids=[strawberry.ID(str(i)) for i in sensor.lot_ids],
            dispatch_id=strawberry.ID(str(sensor.dispatch_id)) if sensor.dispatch_id else None,
            ssccs=list(sensor.ssccs),
            last_reading_at=last,
            last_temperature_c=state.last_temperature_c,
            readings_count=state.readings_count,
            interval_minutes=sensor.interval_minutes,
            max_silence_minutes=sensor.max_silence_minutes,
            online=last is not None
            and utcnow() - last <= timedelta(minutes=sensor.max_silence_minutes or offline_minutes),
            in_excursion=state.in_excursion,
            limit_c=limit_c,
        )


@strawberry.input
class RegisterSensorInput:
    device_id: str
    location_id: strawberry.ID | None = strawberry.field(
        default=None, description="Where it reports from; optional with dispatchId or ssccs (your end of the "
        "dispatch: the shipper's origin, the consignee's destination)"
    )
    name: str | None = None
    lot_ids: list[strawberry.ID] | None = None
    dispatch_id: strawberry.ID | None = None
    ssccs: list[str] | None = strawberry.field(
        default=None, description="SSCCs of pallets or cases on your dispatches it is attached to: its excursions "
        "expose only their goods"
    )
    interval_minutes: float | None = strawberry.field(
        default=None, description="reporting interval; inferred from the readings when not given"
    )
    max_silence_minutes: float | None = strawberry.field(
        default=None, description="silence allowed before a sensor_offline alert (default: the hub's setting)"
    )


@strawberry.type
class RegisterSensorPayload:
    sensor: SensorType
    created: bool


@strawberry.input
class SensorFilter:
    location_id: strawberry.ID | None = None
    device_id: str | None = None


@strawberry.input
class ReadingInput:
    at: datetime
    temperature_c: float
    humidity_pct: float | None = None


@strawberry.input
class SensorReadingsInput:
    """Readings of one sensor, named by its id or by the device id it was registered with.

    Send them as typed ``readings`` or as compact ``samples`` (several times cheaper to parse for large batches).
    """

    sensor_id: strawberry.ID | None = None
    device_id: str | None = None
    readings: list[ReadingInput] | None = None
    samples: JSON | None = strawberry.field(
        default=None,
        description=(
            "Readings in compact form, for high-volume gateways: a JSON array of [time, temperatureC] or "
            "[time, temperatureC, humidityPct], time an ISO 8601 instant or epoch seconds. A malformed sample is "
            "rejected on its own, like an impossible reading."
        ),
    )


def _readings_input(cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
    """``SensorReadingsInput`` built straight from the coerced input: Strawberry's generic conversion, field by
    field and type by type, of a 5,000-reading call cost more than storing the readings."""
    readings = value.get("readings")
    return cls(
        sensor_id=value.get("sensorId"),
        device_id=value.get("deviceId"),
        readings=None if readings is None else [
            ReadingInput(at=r["at"], temperature_c=r["temperatureC"], humidity_pct=r.get("humidityPct"))
            for r in readings
        ],
        samples=value.get("samples"),
    )


get_object_definition(SensorReadingsInput, strict=True).from_input = _readings_input


@strawberry.type
class RejectedReading:
    sensor: str = strawberry.field(description="The sensorId or deviceId the reading came under")
    index: int = strawberry.field(description="Position in that sensor's readings")
    at: datetime | None
    reason: str


@strawberry.type
class ExcursionChange:
    excursion_id: strawberry.ID
    opened: bool
    closed: bool


@strawberry.type
class IngestReadingsPayload:
    received: int
    accepted: int = strawberry.field(description="Newly stored")
    duplicates: int = strawberry.field(description="Already stored: kept once")
    late: int = strawberry.field(
        description="Stored, but older than the re-judged window (LOTPULSE_SPIKE_REJUDGE_HOURS): not judged for spikes"
    )
    rejected: list[RejectedReading]
    excursions: list[ExcursionChange]

    @classmethod
    def from_report(cls, report: reading_service.IngestReport) -> IngestReadingsPayload:
        return cls(
            received=report.received,
            accepted=report.accepted,
            duplicates=report.duplicates,
            late=report.late,
            rejected=[
                RejectedReading(sensor=r.sensor, index=r.index, at=r.at, reason=r.reason) for r in report.rejected
            ],
            excursions=[
                ExcursionChange(excursion_id=strawberry.ID(str(o.excursion_id)), opened=o.opened, closed=o.closed)
                for o in report.excursions
            ],
        )


@strawberry.type
class ReadingPoint:
    at: datetime
    temperature_c: float
    humidity_pct: float | None


@strawberry.type
class ReadingAggregate:
    start: datetime
    count: int
    min_c: float
    max_c: float
    avg_c: float


@strawberry.type
class ReadingSeries:
    sensor_id: strawberry.ID
    points: list[ReadingPoint] = strawberry.field(description="Raw readings (when no interval was asked)")
    aggregates: list[ReadingAggregate] = strawberry.field(description="Per interval (when one was asked)")
    truncated: bool = strawberry.field(description="More data than `first`: narrow the range or page by time")


@strawberry.type(name="ExposedLot")
class ExposedLotType:
    lot_id: strawberry.ID
    lot_code: str
    sku_id: strawberry.ID
    sku_code: str
    owner_id: strawberry.ID
    limit_c: float | None
    degree_minutes: float
    shelf_life_loss_pct: float
    expires_before: date | None
    expires_after: date | None
    units: int = strawberry.field(description="Units exposed")
    cases: int = strawberry.field(description="Whole cases exposed (units / the SKU's pack size)")
    total_units: int | None = strawberry.field(
        description="Pallet basis: the lot's units on the dispatches carrying the pallets (units is a part of it)")
    total_cases: int | None
    ssccs: list[str] = strawberry.field(description="Pallet basis: the watched pallets/cases holding the lot")

    @classmethod
    def from_model(cls, item: ExposedLot) -> ExposedLotType:
        return cls(
            lot_id=strawberry.ID(str(item.lot_id)),
            lot_code=item.lot_code,
            sku_id=strawberry.ID(str(item.sku_id)),
            sku_code=item.sku_code,
            owner_id=strawberry.ID(item.owner_id),
            limit_c=item.limit_c,
            degree_minutes=item.degree_minutes,
            shelf_life_loss_pct=round(item.loss_fraction * 100, 2),
            expires_before=item.expires_before,
            expires_after=item.expires_after,
            units=item.units,
            cases=item.cases,
            total_units=item.total_units,
            total_cases=item.total_cases,
            ssccs=list(item.ssccs),
        )


@strawberry.type(name="Excursion")
class ExcursionType:
    id: strawberry.ID
    owner_id: strawberry.ID
    sensor_id: strawberry.ID
    device_id: str
    location_id: strawberry.ID
    status: ExcursionStatus
    cause: str
    started_at: datetime
    opened_at: datetime
    ended_at: datetime | None
    limit_c: float | None
    peak_c: float
    peak_at: datetime
    degree_minutes: float
    duration_minutes: float
    exposed_lots: list[ExposedLotType]
    exposure_basis: ExposureBasis
    alert_id: strawberry.ID | None

    @classmethod
    def from_model(cls, excursion: Excursion, viewer: str) -> ExcursionType:
        """``viewer``: the tenant it is shown to; a partner sees its own exposed lots only."""
        exposed = exposure_views.exposed_for(excursion.tenant_id, viewer, excursion.exposed_lots)
        return cls(
            id=strawberry.ID(str(excursion.id)),
            owner_id=strawberry.ID(excursion.tenant_id),
            sensor_id=strawberry.ID(str(excursion.sensor_id)),
            device_id=excursion.device_id,
            location_id=strawberry.ID(str(excursion.location_id)),
            status=excursion.status,
            cause=excursion.cause,
            started_at=excursion.started_at,
            opened_at=excursion.opened_at,
            ended_at=excursion.ended_at,
            limit_c=excursion.limit_c,
            peak_c=excursion.peak_c,
            peak_at=excursion.peak_at,
            degree_minutes=excursion.degree_minutes,
            duration_minutes=excursion.duration_minutes,
            exposed_lots=[ExposedLotType.from_model(item) for item in exposed],
            exposure_basis=ExposureBasis(excursion.exposure_basis),
            alert_id=strawberry.ID(str(excursion.alert_id)) if excursion.alert_id else None,
        )


@strawberry.input
class ExcursionFilter:
    sensor_id: strawberry.ID | None = None
    location_id: strawberry.ID | None = None
    status: ExcursionStatus | None = None
    started_after: datetime | None = None
