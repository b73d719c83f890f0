"""Locations of a tenant."""

from __future__ import annotations

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
