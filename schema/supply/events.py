"""GraphQL types for live supply-flow events, rendered from the event payloads (a snapshot at event time).

Payload shapes are the supply flow's: ``hub/services/stock.py position_payload`` and
``hub/services/dispatches.py dispatch_payload``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import strawberry

from hub.events.bus import LiveEvent
from hub.models.dispatch import DispatchStatus
from schema.scalars import DispatchStatusEnum  # noqa: F401 - registers the enum

DISPATCH_EVENT_TYPES = ("dispatch.created", "dispatch.updated", "dispatch.received")


@strawberry.type(name="StockPositionChange")
class StockPositionChangeType:
    holder_id: strawberry.ID
    location_id: strawberry.ID
    sku_id: strawberry.ID
    sku_owner_id: strawberry.ID
    lot_id: strawberry.ID | None
    lot_code: str | None
    on_hand: int
    delta: int | None
    expires_on: date | None

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> StockPositionChangeType:
        return cls(
            holder_id=strawberry.ID(data["tenantId"]),
            location_id=strawberry.ID(data["locationId"]),
            sku_id=strawberry.ID(data["skuId"]),
            sku_owner_id=strawberry.ID(data["skuOwnerId"]),
            lot_id=strawberry.ID(data["lotId"]) if data.get("lotId") else None,
            lot_code=data.get("lotCode"),
            on_hand=data["onHand"],
            delta=data.get("delta"),
            expires_on=date.fromisoformat(data["expiresOn"]) if data.get("expiresOn") else None,
        )


@strawberry.type(name="StockChange")
class StockChangeType:
    cursor: strawberry.ID = strawberry.field(description="The event id: pass it as 'after' to resume from here")
    occurred_at: datetime
    positions: list[StockPositionChangeType]


@strawberry.input
class StockChangedFilter:
    location_ids: list[strawberry.ID] | None = None
    sku_ids: list[strawberry.ID] | None = None
    lot_code: str | None = None

    def positions(self, event: LiveEvent) -> list[dict[str, Any]]:
        """The event's positions that pass the filter."""
        locations = {str(i) for i in self.location_ids} if self.location_ids is not None else None
        skus = {str(i) for i in self.sku_ids} if self.sku_ids is not None else None
        return [
            position
            for position in event.payload.get("positions", [])
            if (locations is None or position.get("locationId") in locations)
            and (skus is None or position.get("skuId") in skus)
            and (self.lot_code is None or position.get("lotCode") == self.lot_code)
        ]

    def matches(self, event: LiveEvent) -> bool:
        return bool(self.positions(event))


@strawberry.type(name="DispatchSnapshotLine")
class DispatchSnapshotLineType:
    sku_id: strawberry.ID
    lot_code: str
    quantity: int
    received: int | None


@strawberry.type(name="DispatchSnapshot")
class DispatchSnapshotType:
    id: strawberry.ID
    ref: str
    shipper_id: strawberry.ID
    consignee_id: strawberry.ID
    carrier_id: strawberry.ID | None
    status: DispatchStatus
    has_mismatch: bool
    lines: list[DispatchSnapshotLineType]
    updated_at: datetime

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> DispatchSnapshotType:
        return cls(
            id=strawberry.ID(data["id"]),
            ref=data["ref"],
            shipper_id=strawberry.ID(data["shipperId"]),
            consignee_id=strawberry.ID(data["consigneeId"]),
            carrier_id=strawberry.ID(data["carrierId"]) if data.get("carrierId") else None,
            status=DispatchStatus(data["status"]),
            has_mismatch=bool(data.get("hasMismatch")),
            lines=[
                DispatchSnapshotLineType(
                    sku_id=strawberry.ID(line["skuId"]),
                    lot_code=line["lotCode"],
                    quantity=line["quantity"],
                    received=line.get("received"),
                )
                for line in data.get("lines", [])
            ],
            updated_at=datetime.fromisoformat(data["updatedAt"]),
        )


@strawberry.type(name="DispatchUpdate")
class DispatchUpdateType:
    cursor: strawberry.ID = strawberry.field(description="The event id: pass it as 'after' to resume from here")
    type: str = strawberry.field(description="dispatch.created, dispatch.updated or dispatch.received")
    occurred_at: datetime
    dispatch: DispatchSnapshotType

    @classmethod
    def from_event(cls, event: LiveEvent) -> DispatchUpdateType:
        return cls(
            cursor=strawberry.ID(event.id),
            type=event.type,
            occurred_at=event.occurred_at,
            dispatch=DispatchSnapshotType.from_payload(event.payload["dispatch"]),
        )


@strawberry.input
class DispatchUpdatedFilter:
    dispatch_ids: list[strawberry.ID] | None = None
    statuses: list[DispatchStatus] | None = None
    role: str | None = strawberry.field(default=None, description="shipper, consignee or carrier: only as this party")

    def matches(self, event: LiveEvent, viewer: str) -> bool:
        dispatch = event.payload.get("dispatch", {})
        if self.dispatch_ids is not None and dispatch.get("id") not in {str(i) for i in self.dispatch_ids}:
            return False
        if self.statuses is not None and dispatch.get("status") not in {s.value for s in self.statuses}:
            return False
        if self.role is not None and dispatch.get(f"{self.role}Id") != viewer:
            return False
        return True
