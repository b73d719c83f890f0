"""Replaying a history of actions through the real services with a virtual clock (``lotpulse replay``).

A history is JSON Lines, one action per line: ``{"action": NAME, ...}``. Each name has one handler in ``ACTIONS``
(add one with ``@action("name")``; other modules, e.g. planning back-tests, register theirs the same way). Every
action may carry ``"at"`` (ISO 8601): the virtual clock moves there first (never backwards), the action runs, and
then the heartbeat looks for sensors silent at the new time. The formats are documented in the README
("Replaying a history").

What comes out is every alert the history raised, with the line and virtual time it was first raised, its audience
and evidence, and every event written about it (type, audience, line, time), and every transfer recommendation
(with its status at the end): what a partner back-testing its thresholds compares with what it knows happened.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from hub import clock
from hub.auth import Principal
from hub.config import Settings
from hub.db import Database
from hub.detect.fefo import FefoRules
from hub.errors import HubError
from hub.models.alert import Alert
from hub.models.dispatch import Dispatch
from hub.models.event import Event
from hub.models.location import Location, LocationKind
from hub.models.planning import TransferRecommendation
from hub.models.sku import Storage
from hub.services import dispatches, expiry, fefo, heartbeat, movements, readings, receipts, sensors, signals, skus
from hub.services.locations import create_location
from tenants import service as tenant_service
from tenants.access import Access
from tenants.models import Scope

Handler = Callable[["Replay", dict[str, Any]], Awaitable[Any]]
ACTIONS: dict[str, Handler] = {}


def action(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ACTIONS[name] = handler
        return handler

    return register


class ReplayError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass
class Replay:
    database: Database
    settings: Settings
    clock: clock.VirtualClock
    line: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    last_event: Any = None  # id of the last event attributed to a line
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # alert id -> first sighting

    async def access(self, tenant: str) -> Access:
        """The tenant as an admin of itself, loaded afresh (partnerships may have changed)."""
        principal = Principal(tenant_id=tenant, subject="replay", issuer="replay", roles=frozenset({"admin"}))
        return await Access.load(principal)

    def move_clock(self, at: str | None) -> bool:
        """Answers whether time moved."""
        if at is None:
            return False
        before = self.clock.now()
        self.clock.set(_instant(at))
        return self.clock.now() > before

    async def collect(self) -> None:
        """Attribute the events written since the last action to this line."""
        # One process writes them one action at a time, so ids follow the order of writing (no sequencer needed).
        query = {"_id": {"$gt": self.last_event}} if self.last_event is not None else {}
        async for doc in Event.get_pymongo_collection().find(query).sort("_id", 1):
            self.last_event = doc["_id"]
            alert = (doc.get("payload") or {}).get("alert")
            if not alert:
                continue
            entry = self.seen.setdefault(alert["id"], {"line": self.line, "at": doc["occurred_at"], "events": []})
            entry["events"].append({
                "type": doc["type"],
                "audience": doc["audience"],
                "line": self.line,
                "at": doc["occurred_at"].isoformat(),
            })


def _instant(value: str) -> datetime:
    return clock.VirtualClock(datetime.fromisoformat(value)).now()


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


async def _dispatch_id(replay: Replay, tenant: str, ref: str) -> str:
    doc = await Dispatch.find_one({"ref": ref, "parties": tenant})
    if doc is None:
        raise ReplayError(replay.line, f"no dispatch {ref!r} visible to {tenant}")
    return str(doc.id)


async def _location_id(replay: Replay, tenant: str, code: str) -> str:
    doc = await Location.find_one({"tenant_id": tenant, "code": code})
    if doc is None:
        raise ReplayError(replay.line, f"{tenant} has no location {code!r}")
    return str(doc.id)


@action("clock")
async def _clock(replay: Replay, item: dict[str, Any]) -> None:
    """``{"action": "clock", "at": ISO}``: only moves time (the heartbeat runs)."""


@action("tenant")
async def _tenant(replay: Replay, item: dict[str, Any]) -> None:
    await tenant_service.create_tenant(item["id"], item.get("name") or item["id"], item.get("kind", "supplier"))


@action("partnership")
async def _partnership(replay: Replay, item: dict[str, Any]) -> None:
    inviter, invitee = item["inviter"], item["invitee"]
    proposed = await tenant_service.invite_partner(
        await replay.access(inviter),
        invitee,
        [Scope(s) for s in item.get("inviter_shares", [])],
        [Scope(s) for s in item.get("invitee_shares", [])],
    )
    await tenant_service.accept_partnership(await replay.access(invitee), str(proposed.id))


@action("revoke_partnership")
async def _revoke(replay: Replay, item: dict[str, Any]) -> None:
    from tenants.models import Partnership, PartnershipStatus

    found = await Partnership.find_one({
        "status": PartnershipStatus.active.value,
        "$or": [
            {"inviter_id": item["tenant"], "invitee_id": item["partner"]},
            {"inviter_id": item["partner"], "invitee_id": item["tenant"]},
        ],
    })
    if found is None:
        raise ReplayError(replay.line, "no active partnership between them")
    await tenant_service.revoke_partnership(await replay.access(item["tenant"]), str(found.id))


@action("sku")
async def _sku(replay: Replay, item: dict[str, Any]) -> None:
    data = skus.SkuInput(
        code=item["code"],
        name=item.get("name") or item["code"],
        gtin=item.get("gtin"),
        pack_size=item.get("pack_size", 1),
        shelf_life_days=item.get("shelf_life_days"),
        storage=Storage(temp_min_c=item.get("temp_min_c"), temp_max_c=item.get("temp_max_c")),
        min_remaining_shelf_life_days=item.get("min_remaining_shelf_life_days"),
        excursion_sensitivity=item.get("excursion_sensitivity", 0.0),
        excursion_min_minutes=item.get("excursion_min_minutes", 15),
    )
    await skus.upsert_sku(await replay.access(item["tenant"]), data)


@action("location")
async def _location(replay: Replay, item: dict[str, Any]) -> None:
    await create_location(
        await replay.access(item["tenant"]), item["code"], item.get("name") or item["code"],
        LocationKind(item.get("kind", "warehouse")),
    )


@action("dispatch")
async def _dispatch(replay: Replay, item: dict[str, Any]) -> None:
    lines = [
        dispatches.DispatchLineInput(
            sku=line["sku"], lot_code=line["lot"], quantity=line["quantity"],
            produced_on=_date(line.get("produced_on")), expires_on=_date(line.get("expires_on")),
        )
        for line in item["lines"]
    ]
    await dispatches.create_dispatch(await replay.access(item["tenant"]), replay.database, dispatches.DispatchInput(
        ref=item["ref"], consignee_id=item["consignee"], lines=lines, to_location=item.get("to_location"),
        carrier_id=item.get("carrier"), shipped_on=_date(item.get("shipped_on")),
        expected_on=_date(item.get("expected_on")),
    ))


@action("receipt")
async def _receipt(replay: Replay, item: dict[str, Any]) -> None:
    tenant = item["tenant"]
    lines = [
        receipts.ReceiptLineInput(sku=line["sku"], lot_code=line["lot"], quantity=line["quantity"],
                                  expires_on=_date(line.get("expires_on")))
        for line in item["lines"]
    ]
    location = await _location_id(replay, tenant, item["location"]) if item.get("location") else None
    await receipts.record_receipt(await replay.access(tenant), replay.database, replay.settings, receipts.ReceiptInput(
        dispatch_id=await _dispatch_id(replay, tenant, item["dispatch"]), lines=lines, location_id=location,
        final=item.get("final", True), ref=item.get("ref"),
    ))


@action("movements")
async def _movements(replay: Replay, item: dict[str, Any]) -> None:
    tenant = item["tenant"]
    locations: dict[str, str] = {}
    batch = []
    for n, move in enumerate(item["movements"]):
        code = move.get("location", item.get("location"))
        if code not in locations:
            locations[code] = await _location_id(replay, tenant, code)
        batch.append(movements.MovementInput(
            location_id=locations[code], sku=move["sku"], kind=movements.MovementKind(move["kind"]),
            quantity=move["quantity"], idempotency_key=move.get("key") or f"replay:{replay.line}:{n}",
            lot_code=move.get("lot"), expires_on=_date(move.get("expires_on")),
            occurred_at=_instant(move["occurred_at"]) if move.get("occurred_at") else None,
            unit_price=move.get("unit_price"), promotion=move.get("promotion"),
        ))
    await movements.record_movements(await replay.access(tenant), replay.database, batch, replay.settings.max_batch)


@action("sensor")
async def _sensor(replay: Replay, item: dict[str, Any]) -> None:
    tenant = item["tenant"]
    access = await replay.access(tenant)
    dispatch = await _dispatch_id(replay, tenant, item["dispatch"]) if item.get("dispatch") else None
    await sensors.register_sensor(
        access, item["device"], await _location_id(replay, tenant, item["location"]), item.get("name"),
        dispatch_id=dispatch, interval_minutes=item.get("interval_minutes"),
        max_silence_minutes=item.get("max_silence_minutes"),
    )


@action("readings")
async def _readings(replay: Replay, item: dict[str, Any]) -> None:
    """``{"action": "readings", "tenant", "device", "samples": [[ISO or epoch, °C], ...]}``: one gateway upload."""
    batch = readings.SensorReadingsIn(device_id=item["device"], samples=item["samples"])
    report = await readings.ingest(await replay.access(item["tenant"]), replay.database, replay.settings, [batch])
    if report.rejected:
        replay.errors.append({"line": replay.line, "rejected": [r.reason for r in report.rejected[:5]]})


@action("sweep")
async def _sweep(replay: Replay, item: dict[str, Any]) -> None:
    """The periodic expiry sweep, as of the virtual clock's day."""
    await expiry.sweep(replay.database)


@action("planning_sweep")
async def _planning_sweep(replay: Replay, item: dict[str, Any]) -> None:
    """The planning sweep (velocity, obsolescence, transfer recommendations) as of the virtual clock's day."""
    fefo.configure(FefoRules(replay.settings.fefo_tolerance_days, replay.settings.fefo_tolerance_units))
    await signals.sweep(replay.database, rules=signals.rules_from(replay.settings), full=True)


async def play(database: Database, settings: Settings, lines: Iterable[str], start: datetime) -> dict[str, Any]:
    """Run the history; answers the report (alerts with their first sighting and events, and refused actions)."""
    virtual = clock.VirtualClock(start)
    previous = clock.use(virtual)
    expiry.set_velocity_window(settings.expiry_velocity_days)
    replay = Replay(database, settings, virtual)
    try:
        for replay.line, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                item = json.loads(text)
                handler = ACTIONS.get(item.get("action"))
                if handler is None:
                    raise ReplayError(replay.line, f"unknown action {item.get('action')!r}")
                moved = replay.move_clock(item.get("at"))
                await handler(replay, item)
                if moved:  # what the heartbeat concludes once this step has happened
                    await heartbeat.check(replay.database, replay.settings, replay.clock.now())
            except (HubError, ReplayError, KeyError, ValueError, TypeError) as exc:
                message = exc.message if isinstance(exc, HubError) else str(exc)
                replay.errors.append({"line": replay.line, "error": f"{type(exc).__name__}: {message}"})
            await replay.collect()
        return await _report(replay)
    finally:
        clock.use(previous)


async def _report(replay: Replay) -> dict[str, Any]:
    alerts = []
    async for doc in Alert.get_pymongo_collection().find({}).sort("created_at", 1):
        alert = Alert.model_validate(doc)
        seen = replay.seen.get(str(alert.id), {})
        alerts.append({
            "id": str(alert.id),
            "kind": alert.kind.value,
            "severity": alert.severity.value,
            "status": alert.status.value,
            "owner": alert.tenant_id,
            "audience": alert.audience,
            "title": alert.title,
            "subjects": [s.model_dump() for s in alert.subjects],
            "evidence": alert.evidence,
            "recommendation": alert.recommendation,
            "raisedAt": alert.created_at.isoformat(),
            "raisedAtLine": seen.get("line"),
            "events": seen.get("events", []),
        })
    transfers = [{
        "id": str(r.id), "kind": r.kind.value, "status": r.status.value, "owner": r.tenant_id,
        "sku": r.sku_code, "from": {"holder": r.from_holder_id or r.tenant_id, "location": r.from_location_code},
        "to": {"holder": r.to_holder_id or r.tenant_id, "location": r.to_location_code}, "quantity": r.quantity,
        "lots": [{"lot": lot.lot_code, "quantity": lot.quantity} for lot in r.lots],
        "unitsSavedFromExpiry": r.units_saved_from_expiry, "stockoutDaysAvoided": r.stockout_days_avoided,
        "reason": r.reason,
    } async for r in TransferRecommendation.find({}).sort("+created_at")]
    return {"alerts": alerts, "transferRecommendations": transfers, "errors": replay.errors,
            "clock": replay.clock.now().isoformat()}


def summary(report: dict[str, Any]) -> str:
    """One line per alert: kind, subject, audience, the gist of its evidence."""
    out = []
    for alert in report["alerts"]:
        subject = next((f"{s['kind']} {s.get('label') or s['id']}" for s in alert["subjects"]), "-")
        gist = {k: v for k, v in alert["evidence"].items() if not isinstance(v, (list, dict))}
        out.append(
            f"{alert['raisedAt']} line {alert['raisedAtLine']}: {alert['kind']}"
            f" ({alert['severity']}, {alert['status']})"
            f" on {subject} for {', '.join(alert['audience'])}: {alert['title']} {json.dumps(gist, default=str)}"
        )
    for t in report.get("transferRecommendations", []):
        out.append(
            f"transfer ({t['kind']}, {t['status']}) of {t['sku']}: {t['quantity']} from {t['from']['holder']} "
            f"{t['from']['location']} to {t['to']['holder']} {t['to']['location']} for {t['owner']}"
        )
    for error in report["errors"]:
        out.append(f"line {error['line']}: refused: {error.get('error') or error.get('rejected')}")
    return "\n".join(out)
