"""Escalation policies: what happens, step by step, while an alert waits unacknowledged.

A tenant sets a policy per alert kind and severity (either may be "any"): a chain of steps, each due a number of
minutes after the alert opened (counting business hours only when the policy has them). A step raises the severity,
notifies a role or a member of the owner, notifies the partners that share the alert, or pages the owner's webhooks;
every step is one ``alert.escalated`` event. Without a policy of its own a tenant follows the default: raise the
severity once after ``LOTPULSE_ALERT_ESCALATION_MINUTES``.

The sweep runs in every hub process for the tenants whose partitions it leases (hub/leases.py), on the hub's clock
(hub/clock.py, settable for tests and replays). Each step fires once: it is a compare-and-set on the alert's step
counter, in the transaction that writes its event, so two processes that briefly overlap cannot both fire it. An
acknowledged or resolved alert leaves the sweep; a reopened one starts its chain again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from beanie import PydanticObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub import audit
from hub.business_hours import due_at, parse_time
from hub.dates import utcnow
from hub.errors import BadInput, NotFound
from hub.events.log import emit
from hub.leases import tenant_ids
from hub.models.alert import Alert, AlertKind, AlertStatus, Severity
from hub.models.escalation import ANY, BusinessHours, EscalationPolicy, EscalationStep, StepAction
from hub.services import notifications
from hub.services.alerts import alert_payload
from tenants.access import Access
from tenants.models import Member, Role
from tenants.roles import Group
from webhooks.models import WebhookEndpoint

if TYPE_CHECKING:
    from hub.db import Database
    from hub.state import HubState

log = logging.getLogger("lotpulse.escalation")

DEFAULT_KEY = "default"
MAX_STEPS = 10
MAX_AFTER_MINUTES = 30 * 24 * 60
MIN_WINDOW_MINUTES = 30
# Who hears a step: the severity and a partner notice concern everyone who sees the alert; the rest is the owner's.
TO_AUDIENCE = (StepAction.raise_severity, StepAction.notify_partners)


@dataclass(frozen=True)
class Chain:
    key: str
    steps: list[tuple[timedelta, EscalationStep]]
    hours: BusinessHours | None = None


def key_of(kind: str, severity: str) -> str:
    return f"{kind}/{severity}"


def default_chain(after: timedelta) -> Chain:
    step = EscalationStep(after_minutes=int(after.total_seconds() // 60), action=StepAction.raise_severity)
    return Chain(DEFAULT_KEY, [(after, step)])


def chain_of(policy: EscalationPolicy) -> Chain:
    steps = [(timedelta(minutes=step.after_minutes), step) for step in policy.steps]
    return Chain(key_of(policy.kind, policy.severity), steps, policy.business_hours)


def choose(chains: dict[str, Chain], default: Chain, kind: str, severity: str, pinned: str | None) -> Chain:
    """The pinned chain once a step fired (raising the severity must not switch policies), else the most specific."""
    if pinned is not None:
        return chains.get(pinned, default) if pinned != DEFAULT_KEY else default
    for key in (key_of(kind, severity), key_of(kind, ANY), key_of(ANY, severity), key_of(ANY, ANY)):
        if key in chains:
            return chains[key]
    return default


# -- policies --------------------------------------------------------------------------------------------------------


async def list_policies(access: Access) -> list[EscalationPolicy]:
    """The caller's own tenant's policies only: another tenant's are never visible."""
    return await EscalationPolicy.find({"tenant_id": access.tenant_id}).sort("+kind", "+severity").to_list()


def _check_hours(hours: BusinessHours | None) -> BusinessHours | None:
    if hours is None:
        return None
    try:
        ZoneInfo(hours.time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadInput(f"unknown time zone {hours.time_zone!r}", field="businessHours.timeZone") from exc
    if not hours.days or any(day not in range(1, 8) for day in hours.days):
        raise BadInput("days are ISO weekdays 1 (Monday) to 7 (Sunday), at least one", field="businessHours.days")
    try:
        opens, closes = parse_time(hours.start), parse_time(hours.end)
    except ValueError as exc:
        raise BadInput("start and end are local times HH:MM", field="businessHours") from exc
    minutes = (closes.hour * 60 + closes.minute) - (opens.hour * 60 + opens.minute)
    if minutes < MIN_WINDOW_MINUTES:
        raise BadInput(f"business hours end at least {MIN_WINDOW_MINUTES} minutes after they start, the same day",
                       field="businessHours")
    return BusinessHours(time_zone=hours.time_zone, days=sorted(set(hours.days)),
                         start=opens.strftime("%H:%M"), end=closes.strftime("%H:%M"))


async def _check_steps(tenant_id: str, steps: list[EscalationStep]) -> list[EscalationStep]:
    if len(steps) > MAX_STEPS:
        raise BadInput(f"at most {MAX_STEPS} steps", field="steps")
    previous = -1
    for n, step in enumerate(steps):
        field = f"steps.{n}"
        if not 0 <= step.after_minutes <= MAX_AFTER_MINUTES:
            raise BadInput(f"afterMinutes is 0 to {MAX_AFTER_MINUTES}", field=f"{field}.afterMinutes")
        if step.after_minutes <= previous:
            raise BadInput("steps come in order: each afterMinutes larger than the one before",
                           field=f"{field}.afterMinutes")
        previous = step.after_minutes
        wants_role, wants_member = step.action is StepAction.notify_role, step.action is StepAction.notify_member
        if wants_role != (step.role is not None):
            raise BadInput("a role is named by notify_role steps, and only by them", field=f"{field}.role")
        if wants_member != (step.member_id is not None):
            raise BadInput("a member is named by notify_member steps, and only by them", field=f"{field}.memberId")
        if step.role is not None and step.role not in {role.value for role in Role}:
            raise BadInput(f"unknown role {step.role!r}", field=f"{field}.role")
        if step.webhook_endpoint_id is not None:
            if step.action is not StepAction.page_webhook:
                raise BadInput("a webhook endpoint is named by page_webhook steps only",
                               field=f"{field}.webhookEndpointId")
            await _check_endpoint(tenant_id, step.webhook_endpoint_id, f"{field}.webhookEndpointId")
        if step.member_id is not None:
            try:
                member_id = PydanticObjectId(step.member_id)
            except (InvalidId, TypeError) as exc:
                raise NotFound("member not found", field=f"{field}.memberId") from exc
            if await Member.find_one({"_id": member_id, "tenant_id": tenant_id}) is None:
                raise NotFound("member not found", field=f"{field}.memberId")
    return steps


async def _check_endpoint(tenant_id: str, endpoint_id: str, field: str) -> None:
    try:
        oid = PydanticObjectId(endpoint_id)
    except (InvalidId, TypeError) as exc:
        raise NotFound("webhook endpoint not found", field=field) from exc
    if await WebhookEndpoint.find_one({"_id": oid, "tenant_id": tenant_id}) is None:
        raise NotFound("webhook endpoint not found", field=field)


def policy_view(policy: EscalationPolicy | None) -> dict[str, Any] | None:
    """A policy as the audit log keeps it (before and after a change), named as the API names it."""
    if policy is None:
        return None
    hours = policy.business_hours
    return {
        "alertKind": policy.kind, "severity": policy.severity,
        "steps": [{"afterMinutes": s.after_minutes, "action": s.action.value,
                   **({"role": s.role} if s.role else {}), **({"memberId": s.member_id} if s.member_id else {}),
                   **({"webhookEndpointId": s.webhook_endpoint_id} if s.webhook_endpoint_id else {})}
                  for s in policy.steps],
        "businessHours": {"timeZone": hours.time_zone, "days": hours.days, "start": hours.start, "end": hours.end}
        if hours else None,
    }


async def upsert_policy(
    access: Access,
    kind: AlertKind | None,
    severity: Severity | None,
    steps: list[EscalationStep],
    business_hours: BusinessHours | None,
) -> EscalationPolicy:
    """Set the tenant's policy for one kind and severity (None: any); an empty chain means "never escalate"."""
    access.require(Group.administration)
    hours = _check_hours(business_hours)
    steps = await _check_steps(access.tenant_id, steps)
    key = {"tenant_id": access.tenant_id, "kind": kind.value if kind else ANY,
           "severity": severity.value if severity else ANY}
    before = await EscalationPolicy.find_one(key)
    collection = EscalationPolicy.get_pymongo_collection()
    raw = await collection.find_one_and_update(
        key,
        {"$set": {"steps": [step.model_dump() for step in steps],
                  "business_hours": hours.model_dump() if hours else None,
                  "updated_at": utcnow(), "updated_by": f"{access.tenant_id}:{access.principal.subject}"}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    policy = EscalationPolicy.model_validate(raw)
    await audit.record(
        "escalation_policy.changed", tenant_id=access.tenant_id, principal=access.principal, target=str(policy.id),
        details={"before": policy_view(before), "after": policy_view(policy)},
    )
    return policy


# -- the sweep -------------------------------------------------------------------------------------------------------


def _at_step(step: int) -> Any:
    return step if step else {"$in": [0, None]}  # alerts written before chains existed have no counter


async def _fire(database: Database, alert_id: Any, step: int, chain: Chain, now: datetime) -> bool:
    """Fire step ``step`` (0-based) of ``chain`` on one alert, once; answers whether this call fired it."""
    collection = Alert.get_pymongo_collection()
    after, spec = chain.steps[step]
    last = step + 1 == len(chain.steps)

    async def work(session: AsyncClientSession) -> bool:
        match = {"_id": alert_id, "status": AlertStatus.open.value, "escalation_step": _at_step(step)}
        current = await collection.find_one(match, session=session)
        if current is None:
            return False  # acknowledged, resolved, or another process fired it first
        previous = Severity(current["severity"])
        changes: dict[str, Any] = {"escalation_step": step + 1, "escalation_policy": chain.key, "updated_at": now}
        if not current.get("escalated_at"):
            changes["escalated_at"] = now
        if last:
            changes["escalation_done_at"] = now
        if spec.action is StepAction.raise_severity:
            changes["severity"] = previous.raised().value
        notice = {"step": step + 1, "of": len(chain.steps), "policy": chain.key, "action": spec.action.value,
                  "afterMinutes": spec.after_minutes, "role": spec.role, "memberId": spec.member_id,
                  "webhookEndpointId": spec.webhook_endpoint_id}
        raw = await collection.find_one_and_update(
            match, {"$set": changes, "$push": {"escalations": {**notice, "at": now}}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        alert = Alert.model_validate(raw)
        payload = alert_payload(alert)
        payload["escalation"] = {**notice, "at": now.isoformat()}
        # A step addressed to people leaves them a notification, in this transaction; the event says where it went.
        notification = await notifications.write(session, alert, spec, step + 1, len(chain.steps), now)
        if notification is not None:
            payload["escalation"].update(notificationId=str(notification.id), recipients=notification.recipients)
        if spec.action is StepAction.raise_severity:
            payload["previousSeverity"] = previous.value
        audience = alert.audience if spec.action in TO_AUDIENCE else [alert.tenant_id]
        await emit(session, "alert.escalated", alert.tenant_id, audience, payload)
        return True

    return await database.in_transaction(work)


async def _finish(alert_id: Any, step: int, now: datetime) -> None:
    """A chain with no step left (an empty policy, or one shortened meanwhile): the alert leaves the sweep."""
    await Alert.get_pymongo_collection().update_one(
        {"_id": alert_id, "escalation_step": _at_step(step)}, {"$set": {"escalation_done_at": now}}
    )


async def escalate_overdue(database: Database, default_after: timedelta, now: datetime | None = None,
                           tenants: list[str] | None = None) -> int:
    """Fire every escalation step that is due on an open alert, in order, once; answers how many fired.

    ``default_after``: the default policy's one step (raise the severity). ``tenants``: the owners whose partitions
    this process leases (None: all).
    """
    now = now or utcnow()
    scope: dict[str, Any] = {"tenant_id": {"$in": tenants}} if tenants is not None else {}
    policies = await EscalationPolicy.find(scope).to_list()
    chains: dict[str, dict[str, Chain]] = {}
    for policy in policies:
        chains.setdefault(policy.tenant_id, {})[key_of(policy.kind, policy.severity)] = chain_of(policy)
    default = default_chain(default_after)
    firsts = [chain.steps[0][0] for own in chains.values() for chain in own.values() if chain.steps]
    earliest = min([default_after, *firsts])
    # The overdue index's equality prefix and one range, no hint and no tenant clause (checked here): SecantusDB
    # would otherwise walk every alert ever raised (tests/test_indexes.py).
    query: dict[str, Any] = {"status": AlertStatus.open.value, "escalation_done_at": None,
                             "opened_at": {"$lte": now - earliest}}
    fields = {"tenant_id": 1, "kind": 1, "severity": 1, "opened_at": 1, "escalation_step": 1, "escalation_policy": 1}
    due = await Alert.get_pymongo_collection().find(query, fields).to_list(None)
    if tenants is not None:
        leased = set(tenants)
        due = [doc for doc in due if doc["tenant_id"] in leased]
    fired = 0
    for doc in due:
        own = chains.get(doc["tenant_id"], {})
        chain = choose(own, default, doc["kind"], doc["severity"], doc.get("escalation_policy"))
        step = doc.get("escalation_step") or 0
        if step >= len(chain.steps):
            await _finish(doc["_id"], step, now)
            continue
        # Steps overdue together (the hub was down, or the clock jumped) fire in order, each in its own transaction.
        while step < len(chain.steps):
            when = due_at(doc["opened_at"], chain.steps[step][0], chain.hours)
            if when is None or when > now or not await _fire(database, doc["_id"], step, chain, now):
                break
            fired += 1
            step += 1
    return fired


async def start_escalation(hub: HubState) -> None:
    """Startup hook: every process runs the steps of the tenants whose partitions it leases."""
    default_after = timedelta(minutes=hub.settings.alert_escalation_minutes)
    interval = hub.settings.alert_escalation_interval_seconds

    async def loop() -> None:
        while True:
            try:
                count = await escalate_overdue(hub.database, default_after,
                                               tenants=await tenant_ids(hub.database, hub.partitions))
                if count:
                    log.info("fired %d escalation steps", count)
            except Exception:
                log.exception("alert escalation sweep failed; retrying next interval")
            await asyncio.sleep(interval)

    hub.spawn("alert-escalation", loop)
