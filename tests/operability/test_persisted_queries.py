"""Automatic persisted queries (miss → register → hit, GET and POST) and per-client safelists managed over GraphQL."""

from __future__ import annotations

import hashlib
import json

from tests.oauth.conftest import create_client, erp

QUERY = "query Who { me { tenant { id } } }"
OTHER = "query Roles { me { roles } }"
REGISTER = """
mutation($client: String!, $query: String!) {
  registerSafelistedQuery(clientId: $client, query: $query, name: "who") { hash name createdBy }
}
"""
ENFORCE = "mutation($client: String!, $on: Boolean!) { enforceSafelist(clientId: $client, enforced: $on) }"
SAFELIST = "query($client: String!) { clientSafelist(clientId: $client) { enforced queries { hash name } } }"


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(digest: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def test_apq_miss_register_hit_over_post_and_get(ops_hub, suffix):
    tenant = await ops_hub.tenant(f"apq-{suffix}")
    query = QUERY.replace("Who", f"Who{suffix}")  # a text no earlier run registered
    digest, headers = sha(query), {"authorization": f"Bearer {ops_hub.token(tenant, 'viewer')}"}
    # miss: only the hash
    miss = await ops_hub.http.post("/graphql", json={"extensions": persisted(digest)}, headers=headers)
    assert miss.status_code == 200
    assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # register: hash and query
    first = await ops_hub.http.post("/graphql", json={"query": query, "extensions": persisted(digest)}, headers=headers)
    assert first.json() == {"data": {"me": {"tenant": {"id": tenant}}}}
    # hit: the hash alone now runs the query, over POST and over GET
    hit = await ops_hub.http.post("/graphql", json={"extensions": persisted(digest)}, headers=headers)
    assert hit.json() == first.json()
    got = await ops_hub.http.get("/graphql", params={"extensions": json.dumps(persisted(digest))}, headers=headers)
    assert got.status_code == 200 and got.json() == first.json()
    # the stored hashes live in the database: a process with an empty cache (as after a restart) still finds them
    ops_hub.state.persisted_queries._cache.clear()
    again = await ops_hub.http.post("/graphql", json={"extensions": persisted(digest)}, headers=headers)
    assert again.json() == first.json()


async def test_apq_refuses_a_hash_that_does_not_match_and_anonymous_registration(ops_hub, suffix):
    tenant = await ops_hub.tenant(f"apqbad-{suffix}")
    headers = {"authorization": f"Bearer {ops_hub.token(tenant, 'viewer')}"}
    wrong = await ops_hub.http.post("/graphql", json={"query": QUERY, "extensions": persisted("0" * 64)},
                                    headers=headers)
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    malformed = await ops_hub.http.post("/graphql", json={"extensions": {"persistedQuery": {"version": 2}}},
                                        headers=headers)
    assert malformed.status_code == 400
    # without a token nothing is stored: the hash stays unknown
    query = f"query Anon{suffix} {{ __typename }}"
    anonymous = await ops_hub.http.post("/graphql", json={"query": query, "extensions": persisted(sha(query))})
    assert anonymous.status_code == 401
    after = await ops_hub.http.post("/graphql", json={"extensions": persisted(sha(query))}, headers=headers)
    assert after.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_safelisted_client_runs_only_its_registered_queries(ops_hub, suffix):
    tenant, rival = await ops_hub.tenant(f"safe-{suffix}"), await ops_hub.tenant(f"rival-{suffix}")
    client_id, secret = await create_client(ops_hub, tenant, scopes=["read"], roles=["integration"])
    async with erp(ops_hub, client_id, secret) as oauth:
        token = (await oauth.fetch_token(f"{ops_hub.url}/oauth/token", grant_type="client_credentials"))["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    # the tenant's admin registers one query for the client and enforces the list
    registered = (await ops_hub.ok(REGISTER, {"client": client_id, "query": QUERY}, tenant=tenant))
    assert registered["registerSafelistedQuery"]["hash"] == sha(QUERY)
    assert (await ops_hub.ok(ENFORCE, {"client": client_id, "on": True}, tenant=tenant))["enforceSafelist"] is True
    listed = (await ops_hub.ok(SAFELIST, {"client": client_id}, tenant=tenant))["clientSafelist"]
    assert listed == {"enforced": True, "queries": [{"hash": sha(QUERY), "name": "who"}]}
    # the client runs it, by text or by hash alone
    by_text = await ops_hub.http.post("/graphql", json={"query": QUERY}, headers=headers)
    assert by_text.json() == {"data": {"me": {"tenant": {"id": tenant}}}}
    by_hash = await ops_hub.http.post("/graphql", json={"extensions": persisted(sha(QUERY))}, headers=headers)
    assert by_hash.json() == by_text.json()
    # anything else is refused
    refused = await ops_hub.http.post("/graphql", json={"query": OTHER}, headers=headers)
    assert refused.status_code == 403 and refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # another tenant's admin can neither see nor change this client's safelist
    for operation, variables in ((SAFELIST, {"client": client_id}), (ENFORCE, {"client": client_id, "on": False}),
                                 (REGISTER, {"client": client_id, "query": OTHER})):
        body = await ops_hub.gql(operation, variables, tenant=rival)
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # relaxing the list lets the client run anything again
    await ops_hub.ok(ENFORCE, {"client": client_id, "on": False}, tenant=tenant)
    assert (await ops_hub.http.post("/graphql", json={"query": OTHER}, headers=headers)).status_code == 200
