"""Who hears an alert: one rule per kind of alert, each decided through the sharing rule in ``tenants.access``.

- ``mismatch`` and dispatch-level ``expiry_risk``: the dispatch's parties (shipper, consignee, carrier if any).
- ``sensor_spike`` / ``sensor_offline`` of a sensor travelling with a dispatch: that dispatch's parties; of a
  sensor attached to pallets (SSCCs): the parties of the dispatches carrying them.
- ``sensor_spike`` / ``sensor_offline`` at a location: its owner, plus each owner of goods there to whom the owner
  shares both ``sensors`` and ``alerts``.
- stock ``expiry_risk``: the holder, plus the SKU's owner only if the holder shares ``alerts`` with it.

The alert's owner is always in its audience (``raise_alert`` adds it); these answer the others. Alerts addressed to
a dispatch's parties carry ``audience_rule = "dispatch"``: the parties hear them by being parties (the sharing rule's
``event_scope`` and ``Access.alerts`` honour it); the others are heard while the owner shares ``alerts``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo.asynchronous.client_session import AsyncClientSession

from hub.models.dispatch import Dispatch
from hub.models.sensor import Sensor
from hub.services.pallets import dispatches_carrying
from tenants.access import DISPATCH_PARTIES, grantees
from tenants.models import Scope

DISPATCH = DISPATCH_PARTIES  # Alert.audience_rule of alerts addressed to a dispatch's parties
SHARING = "sharing"


def dispatch_parties(dispatch: Dispatch) -> list[str]:
    return sorted({dispatch.tenant_id, dispatch.consignee_id, *([dispatch.carrier_id] if dispatch.carrier_id else [])})


async def shared_with_all(owner: str, scopes: Iterable[Scope]) -> frozenset[str]:
    """Partners ``owner`` shares every one of ``scopes`` with (through an active partnership, now)."""
    result: frozenset[str] | None = None
    for scope in scopes:
        partners = await grantees(owner, scope)
        result = partners if result is None else result & partners
    return result or frozenset()


async def for_sensor(
    sensor: Sensor, goods_owners: Iterable[str], session: AsyncClientSession | None = None
) -> list[str]:
    """Audience of a ``sensor_spike`` or ``sensor_offline`` alert of ``sensor`` (owned by the sensor's owner); see
    ``sensor_rule`` for how they hear it."""
    if sensor.ssccs:
        carrying = await dispatches_carrying([sensor.tenant_id], sensor.ssccs, session)
        if carrying:
            return sorted({party for dispatch in carrying for party in dispatch_parties(dispatch)})
    if sensor.dispatch_id is not None:
        dispatch = await Dispatch.find_one({"_id": sensor.dispatch_id}, session=session)
        if dispatch is not None:
            return dispatch_parties(dispatch)
    entitled = await shared_with_all(sensor.tenant_id, (Scope.sensors, Scope.alerts))
    return sorted({sensor.tenant_id, *(owner for owner in goods_owners if owner in entitled)})


async def for_stock(holder: str, sku_owner: str | None) -> list[str]:
    """Audience of a stock ``expiry_risk`` alert of ``holder``."""
    if sku_owner is None or sku_owner == holder:
        return [holder]
    return sorted({holder, sku_owner}) if sku_owner in await grantees(holder, Scope.alerts) else [holder]


def sensor_rule(sensor: Sensor) -> str:
    """The parties of the dispatch a sensor travels with hear its alerts by being parties."""
    return DISPATCH if sensor.dispatch_id is not None or sensor.ssccs else SHARING
