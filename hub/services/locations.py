"""Locations of a tenant."""

from __future__ import annotations

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from hub.errors import Conflict
from hub.gs1 import validate_gln
from hub.models.location import Location, LocationKind
from hub.services.text import CODE_MAX, NAME_MAX, clean_text
from tenants.access import Access
from tenants.roles import Group


async def create_location(
    access: Access, code: str, name: str, kind: LocationKind, gln: str | None = None, parent_id: str | None = None
) -> Location:
    access.require(Group.master_data)
    code = clean_text(code, "code", CODE_MAX, "location code")
    name = clean_text(name, "name", NAME_MAX, "location name")
    parent = None
    if parent_id is not None:
        parent = await access.get(Location, parent_id, access.locations("write"), "parent location")
    location = Location(
        tenant_id=access.tenant_id,
        code=code,
        name=name,
        kind=kind,
        gln=validate_gln(gln) if gln else None,
        parent_id=parent.id if parent else None,
    )
    try:
        await location.insert()
    except DuplicateKeyError:
        raise Conflict(f"location {code!r} already exists", field="code") from None
    return location


class _Owners:
    """Location id -> owning tenant, per database: a location never changes hands and is never deleted, so a
    location once seen needs no second look (the write path checks a batch's locations on every request)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._owner: dict[tuple[str, ObjectId], str] = {}

    async def owned(self, access: Access, ids: set[ObjectId], session: AsyncClientSession | None = None
                    ) -> set[ObjectId]:
        """Those of ``ids`` the caller may write to: its own (``Access.locations`` is own locations only)."""
        collection = Location.get_pymongo_collection()
        db = collection.database.name
        unknown = [i for i in ids if (db, i) not in self._owner]
        if unknown:
            if len(self._owner) + len(unknown) > self.LIMIT:
                self._owner.clear()
            async for doc in collection.find({"_id": {"$in": unknown}}, {"tenant_id": 1}, session=session):
                self._owner[(db, doc["_id"])] = doc["tenant_id"]
        return {i for i in ids if self._owner.get((db, i)) == access.tenant_id}


owners = _Owners()
