"""Beanie documents of the hub's domain, one module per aggregate."""

from __future__ import annotations

from beanie import Document

from hub.epcis.models import MODELS as EPCIS_MODELS
from hub.models.alert import Alert
from hub.models.audit import AuditEntry
from hub.models.dispatch import Dispatch
from hub.models.escalation import EscalationPolicy
from hub.models.event import Event
from hub.models.excursion import Excursion
from hub.models.health import HealthSettings, HealthSnapshot, LotCost
from hub.models.location import Location
from hub.models.lot import Lot
from hub.models.movement import Movement
from hub.models.notification import Notification
from hub.models.oauth import MODELS as OAUTH_MODELS
from hub.models.pallet import Pallet
from hub.models.persisted import MODELS as PERSISTED_MODELS
from hub.models.planning import MODELS as PLANNING_MODELS
from hub.models.reading import ReadingBucket
from hub.models.receipt import Receipt
from hub.models.sensor import Sensor
from hub.models.sku import Sku
from hub.models.stock import StockPosition

MODELS: list[type[Document]] = [Sku, Location, Lot, Event, Alert]
MODELS += [AuditEntry, *OAUTH_MODELS]
MODELS += [Movement, StockPosition, Dispatch, Receipt]
MODELS += [Sensor, ReadingBucket, Excursion]
MODELS += PLANNING_MODELS
MODELS += PERSISTED_MODELS
MODELS += [HealthSettings, HealthSnapshot, LotCost, EscalationPolicy, Notification]
MODELS += EPCIS_MODELS
MODELS += [Pallet]
