"""Relay conventions: node(id:)/nodes(ids:) within tenancy, backward paging, startCursor/hasPreviousPage, totalCount."""

from __future__ import annotations

UPSERT = "mutation($input: SkuInput!) { upsertSku(input: $input) { sku { id } } }"
LOCATION = 'mutation { createLocation(input: {code: "R-WH", name: "Relay", kind: warehouse}) { id } }'
PAGE = """
query($first: Int, $after: String, $last: Int, $before: String) {
  skus(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { code } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Sku { code } ... on Location { code } } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


async def seeded(hub, tenant: str, count: int = 5) -> list[str]:
    ids = []
    for n in range(count):
        data = await hub.ok(UPSERT, {"input": {"code": f"R-{n}", "name": f"Relay {n}"}}, tenant=tenant)
        ids.append(data["upsertSku"]["sku"]["id"])
    return ids


async def page(hub, tenant: str, **args) -> dict:
    return (await hub.ok(PAGE, {"first": 50, **args}, tenant=tenant))["skus"]


def codes(connection: dict) -> list[str]:
    return [edge["node"]["code"] for edge in connection["edges"]]


async def test_paging_forward_and_backward_with_counts(ops_hub, suffix):
    tenant = await ops_hub.tenant(f"relay-{suffix}")
    await ops_hub.tenant(f"noise-{suffix}")
    await seeded(ops_hub, f"noise-{suffix}", 2)  # another tenant's SKUs are neither listed nor counted
    await seeded(ops_hub, tenant)

    first = await page(ops_hub, tenant, first=2)
    assert codes(first) == ["R-0", "R-1"] and first["totalCount"] == 5
    assert first["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False,
                                 "startCursor": first["edges"][0]["cursor"], "endCursor": first["edges"][1]["cursor"]}
    second = await page(ops_hub, tenant, first=2, after=first["pageInfo"]["endCursor"])
    assert codes(second) == ["R-2", "R-3"] and second["pageInfo"]["hasPreviousPage"] is True

    tail = await page(ops_hub, tenant, last=2)
    assert codes(tail) == ["R-3", "R-4"]
    assert tail["pageInfo"]["hasPreviousPage"] is True and tail["pageInfo"]["hasNextPage"] is False
    before = await page(ops_hub, tenant, last=2, before=tail["pageInfo"]["startCursor"])
    assert codes(before) == ["R-1", "R-2"]
    assert before["pageInfo"]["hasPreviousPage"] is True and before["pageInfo"]["hasNextPage"] is True
    start = await page(ops_hub, tenant, last=5, before=before["pageInfo"]["startCursor"])
    assert codes(start) == ["R-0"] and start["pageInfo"]["hasPreviousPage"] is False

    for bad in ({"last": 0}, {"last": 501}, {"last": 1, "before": "not-a-cursor"}):
        body = await ops_hub.gql(PAGE, {"first": 50, **bad}, tenant=tenant)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", bad


async def test_node_finds_objects_only_within_the_tenancy(ops_hub, suffix):
    mine, theirs = await ops_hub.tenant(f"nodes-{suffix}"), await ops_hub.tenant(f"other-{suffix}")
    (sku,) = await seeded(ops_hub, mine, 1)
    location = (await ops_hub.ok(LOCATION, tenant=mine))["createLocation"]["id"]
    (foreign,) = await seeded(ops_hub, theirs, 1)

    found = (await ops_hub.ok(NODE, {"id": sku}, tenant=mine))["node"]
    assert found == {"__typename": "Sku", "id": sku, "code": "R-0"}
    assert (await ops_hub.ok(NODE, {"id": location}, tenant=mine))["node"] == {
        "__typename": "Location", "id": location, "code": "R-WH"}
    # another tenant's object is indistinguishable from one that does not exist
    assert (await ops_hub.ok(NODE, {"id": foreign}, tenant=mine))["node"] is None
    assert (await ops_hub.ok(NODE, {"id": sku}, tenant=theirs))["node"] is None
    listed = (await ops_hub.ok(NODES, {"ids": [sku, foreign, "000000000000000000000000", "garbage", location]},
                                tenant=mine))["nodes"]
    assert listed == [{"__typename": "Sku", "id": sku}, None, None, None, {"__typename": "Location", "id": location}]
