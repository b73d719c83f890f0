"""GraphQL documents and helpers shared by the catalog tests: two tenants, and a partnership between them."""

from __future__ import annotations

import random
from typing import Any

import pytest

from hub.gs1 import check_digit

UPSERT_SKU = """
mutation ($input: SkuInput!) {
  upsertSku(input: $input) { created sku { id ownerId code gtin name shelfLifeDays editable myAlias aliases } }
}
"""
SKUS = """
query ($filter: SkuFilter, $first: Int, $after: String) {
  skus(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id code ownerId editable } } pageInfo { hasNextPage endCursor }
  }
}
"""
SKU = "query ($id: ID!) { sku(id: $id) { id code name ownerId editable myAlias aliases } }"
SET_ALIAS = "mutation ($id: ID!, $code: String) { setSkuAlias(skuId: $id, code: $code) { id myAlias } }"
CREATE_LOCATION = """
mutation ($input: CreateLocationInput!) { createLocation(input: $input) { id code name kind gln parentId } }
"""
LOCATIONS = "query ($filter: LocationFilter) { locations(filter: $filter) { edges { node { id code } } } }"
REGISTER_LOT = """
mutation ($input: RegisterLotInput!) {
  registerLot(input: $input) { id ownerId lotCode producedOn expiresOn sku { code } }
}
"""
LOTS = "query ($filter: LotFilter) { lots(filter: $filter) { edges { node { id lotCode ownerId } } } }"
INVITE = """
mutation ($partner: ID!, $we: [PartnerScope!]!, $they: [PartnerScope!]!) {
  invitePartner(input: {partnerId: $partner, weShare: $we, theyShare: $they}) { id status }
}
"""
ACCEPT = "mutation ($id: ID!) { acceptPartnership(id: $id) { id status } }"
REVOKE = "mutation ($id: ID!) { revokePartnership(id: $id) { id status } }"

# No GTIN: a GTIN belongs to one brand owner, and tests share a database (see ``fresh_gtin``).
APPLE = {"code": "APL-1", "name": "Apple", "shelfLifeDays": 30}


def fresh_gtin() -> str:
    """A valid GTIN-13 no other test uses."""
    body = "".join(random.choice("0123456789") for _ in range(12))
    return body + str(check_digit(body))


def codes(body: dict) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def upsert_sku(hub: Any, tenant: str, **fields: Any) -> dict:
    data = await hub.ok(UPSERT_SKU, {"input": {**APPLE, **fields}}, tenant=tenant)
    return data["upsertSku"]["sku"]


async def sku_codes(hub: Any, tenant: str, filter: dict | None = None) -> list[str]:
    data = await hub.ok(SKUS, {"filter": filter}, tenant=tenant)
    return [edge["node"]["code"] for edge in data["skus"]["edges"]]


async def partner(
    hub: Any, inviter: str, invitee: str, inviter_shares: list[str], invitee_shares: list[str] = ()
) -> str:
    """An active partnership; answers its id."""
    invited = await hub.ok(
        INVITE, {"partner": invitee, "we": inviter_shares, "they": list(invitee_shares)}, tenant=inviter
    )
    partnership_id = invited["invitePartner"]["id"]
    await hub.ok(ACCEPT, {"id": partnership_id}, tenant=invitee)
    return partnership_id


@pytest.fixture(scope="module")
def hub(module_hub: Any) -> Any:
    return module_hub


@pytest.fixture
async def tenants(hub: Any, suffix: str) -> tuple[str, str]:
    """A brand and a retailer, strangers to each other, new for each test."""
    return await hub.tenant(f"acme-{suffix}", "supplier"), await hub.tenant(f"globex-{suffix}", "retailer")


@pytest.fixture
async def third(hub: Any, suffix: str) -> str:
    return await hub.tenant(f"initech-{suffix}", "retailer")
