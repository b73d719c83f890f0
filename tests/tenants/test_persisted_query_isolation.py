"""Automatic persisted queries are each tenant's own: a hash another tenant registered is unknown to the caller.

A query text can hold what it asks about (a GTIN, a dispatch ref, a partner's id); if any tenant's registration
answered every caller, anyone could test whether some tenant ever ran a guessed text. An unauthenticated caller
learns nothing either: known or not, a bare hash without a token answers 401.
"""

from __future__ import annotations

from hub.services.persisted import sha256_hex


def persisted(digest: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def test_a_hash_registered_by_one_tenant_is_unknown_to_another_and_to_anonymous_callers(hub, acme, globex):
    query = f'query Guess {{ skus(filter: {{code: "{acme}-SECRET"}}) {{ nodes {{ id }} }} }}'
    digest = sha256_hex(query)
    as_acme = {"authorization": f"Bearer {hub.token(acme, 'viewer')}"}
    as_globex = {"authorization": f"Bearer {hub.token(globex, 'viewer')}"}
    registered = await hub.http.post("/graphql", json={"query": query, "extensions": persisted(digest)},
                                     headers=as_acme)
    assert registered.status_code == 200 and "errors" not in registered.json()

    again = await hub.http.post("/graphql", json={"extensions": persisted(digest)}, headers=as_acme)
    other = await hub.http.post("/graphql", json={"extensions": persisted(digest)}, headers=as_globex)
    anonymous_known = await hub.http.post("/graphql", json={"extensions": persisted(digest)})
    anonymous_unknown = await hub.http.post("/graphql", json={"extensions": persisted("a" * 64)})

    assert again.json() == {"data": {"skus": {"nodes": []}}}
    assert other.status_code == 200
    assert other.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert anonymous_known.status_code == anonymous_unknown.status_code == 401
    # the other tenant sends the text as the protocol says, and from then on has the hash too
    sent = await hub.http.post("/graphql", json={"query": query, "extensions": persisted(digest)},
                               headers=as_globex)
    hit = await hub.http.post("/graphql", json={"extensions": persisted(digest)}, headers=as_globex)
    assert sent.json() == hit.json() == {"data": {"skus": {"nodes": []}}}
