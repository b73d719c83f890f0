"""Notifications: escalation steps that address a role or a member reach those people, and only them.

A ``notify_role`` or ``notify_member`` step writes one notification in the transaction of its ``alert.escalated``
event (hub/services/escalation.py); the event carries the notification's id and its recipients, so the live
``notifications`` subscription hears it from the event bus and the ``notifications`` query lists it from the
collection. A reader is addressed by the roles its token carries and by its membership of the tenant (the member
record of its identity); a reader of another tenant never is: every read is scoped by the caller's tenant first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from hub.auth import Principal
from hub.errors import BadInput, NotFound
from hub.events.bus import LiveEvent
from hub.models.alert import Alert
from hub.models.escalation import EscalationStep, StepAction
from hub.models.notification import Notification, member_key, role_key
from tenants.models import Member

ADDRESSING = (StepAction.notify_role, StepAction.notify_member)
MAX_PAGE = 200


def recipients_of(step: EscalationStep) -> list[str]:
    if step.action is StepAction.notify_role and step.role:
        return [role_key(step.role)]
    if step.action is StepAction.notify_member and step.member_id:
        return [member_key(step.member_id)]
    return []


async def write(session: AsyncClientSession, alert: Alert, step: EscalationStep, number: int, of: int,
                at: datetime) -> Notification | None:
    """The step's notification, if it addresses people (called in the step's transaction)."""
    recipients = recipients_of(step)
    if not recipients:
        return None
    notification = Notification(
        id=PydanticObjectId(), tenant_id=alert.tenant_id, recipients=recipients, alert_id=alert.id,
        alert_kind=alert.kind.value, severity=alert.severity.value, title=alert.title, step=number, of=of,
        action=step.action.value, created_at=at,
    )
    await notification.insert(session=session)
    return notification


class Reader:
    """Who is reading: the keys that address them (their roles, their member record) and their read-state name."""

    def __init__(self, principal: Principal, member_id: str | None) -> None:
        self.tenant_id = principal.tenant_id
        self.member_id = member_id
        self.keys = sorted({role_key(role) for role in principal.roles} | (
            {member_key(member_id)} if member_id else set()))
        self.name = member_id or f"{principal.issuer}|{principal.subject}"

    def addressed(self, event: LiveEvent) -> bool:
        """A live ``alert.escalated`` event carrying a notification to one of this reader's keys."""
        notice = event.payload.get("escalation") or {}
        return event.tenant_id == self.tenant_id and bool(
            notice.get("notificationId") and set(notice.get("recipients") or ()) & set(self.keys))


async def reader(principal: Principal) -> Reader:
    """The caller as a reader: its member record found by the identity that signed in, in its own tenant only."""
    member_id = principal.extra.get("member_id")
    if member_id is None:
        found = await Member.get_pymongo_collection().find_one(
            {"issuer": principal.issuer, "subject": principal.subject, "tenant_id": principal.tenant_id}, {"_id": 1})
        member_id = str(found["_id"]) if found else None
    return Reader(principal, member_id)


def _mine(who: Reader) -> dict[str, Any]:
    return {"tenant_id": who.tenant_id, "recipients": {"$in": who.keys}}


async def listing(who: Reader, unread_only: bool = False, first: int = 50) -> list[Notification]:
    """The reader's notifications, newest first."""
    if not 1 <= first <= MAX_PAGE:
        raise BadInput(f"first is 1 to {MAX_PAGE}", field="first")
    if not who.keys:
        return []
    query = _mine(who)
    if unread_only:
        query["read_by"] = {"$ne": who.name}
    docs = await Notification.get_pymongo_collection().find(query).sort("created_at", -1).limit(first).to_list()
    return [Notification.model_validate(doc) for doc in docs]


def _ids(ids: list[str]) -> list[PydanticObjectId]:
    try:
        return [PydanticObjectId(i) for i in ids]
    except (InvalidId, TypeError) as exc:
        raise NotFound("notification not found", field="ids") from exc


async def mark_read(who: Reader, ids: list[str], read: bool = True) -> list[Notification]:
    """Mark the reader's own notifications read (or unread again); any id not addressed to it answers NOT_FOUND and
    nothing changes."""
    if not ids or len(ids) > MAX_PAGE:
        raise BadInput(f"name 1 to {MAX_PAGE} notifications", field="ids")
    wanted = sorted(set(_ids(ids)))
    collection = Notification.get_pymongo_collection()
    found = await collection.count_documents({**_mine(who), "_id": {"$in": wanted}})
    if found != len(wanted):
        raise NotFound("notification not found", field="ids")
    change = {"$addToSet": {"read_by": who.name}} if read else {"$pull": {"read_by": who.name}}
    await collection.update_many({**_mine(who), "_id": {"$in": wanted}}, change)
    docs = await collection.find({**_mine(who), "_id": {"$in": wanted}}).sort("created_at", -1).to_list()
    return [Notification.model_validate(doc) for doc in docs]


async def acknowledge(who: Reader, notification_id: str, at: datetime) -> Notification:
    """Take the notification for everyone it addresses (and read it); the first acknowledgement is the one kept."""
    oid = _ids([notification_id])[0]
    collection = Notification.get_pymongo_collection()
    raw = await collection.find_one_and_update(
        {**_mine(who), "_id": oid},
        {"$addToSet": {"read_by": who.name}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise NotFound("notification not found", field="id")
    if raw.get("acknowledged_at") is None:
        raw = await collection.find_one_and_update(
            {"_id": oid, "acknowledged_at": None},
            {"$set": {"acknowledged_at": at, "acknowledged_by": who.name}},
            return_document=ReturnDocument.AFTER,
        ) or await collection.find_one({"_id": oid})
    return Notification.model_validate(raw)
