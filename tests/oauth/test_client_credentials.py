"""Partner ERPs: client_credentials with authlib's own client, scopes, revocation, deletion, isolation, limits."""

from __future__ import annotations

import jwt
import pytest
from authlib.integrations.base_client import OAuthError

from hub.models.oauth import OAuthClient
from tests.oauth.conftest import CREATE_CLIENT, create_client, erp

ME = "{ me { tenant { id } subject roles scopes } }"
CREATE_LOCATION = """
mutation { createLocation(input: {code: "WH1", name: "Main", kind: warehouse}) { id code } }
"""
OAUTH_CLIENTS = "{ oauthClients { edges { node { clientId name kind scopes roles } } } }"
DELETE_CLIENT = "mutation($id: String!) { deleteOAuthClient(clientId: $id) }"
ROTATE_SECRET = "mutation($id: String!) { rotateOAuthClientSecret(clientId: $id) { clientSecret } }"


async def _token(hub, client_id: str, secret: str, scope: str | None = None) -> dict:
    async with erp(hub, client_id, secret, scope) as client:
        return await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials")


async def test_erp_gets_a_token_and_calls_graphql(hub, acme):
    # given
    client_id, secret = await create_client(hub, acme, scopes=["read", "write"], roles=["integration"])
    # when
    token = await _token(hub, client_id, secret)
    # then
    me = (await hub.ok(ME, token=token["access_token"]))["me"]
    assert me == {"tenant": {"id": acme}, "subject": client_id, "roles": ["integration"], "scopes": ["read", "write"]}
    created = await hub.ok(CREATE_LOCATION, token=token["access_token"])
    assert created["createLocation"]["code"] == "WH1"
    assert "refresh_token" not in token


async def test_access_token_is_an_rfc9068_jwt_living_15_minutes(hub, acme):
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    token = await _token(hub, client_id, secret)
    header = jwt.get_unverified_header(token["access_token"])
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert header["typ"] == "at+jwt" and header["alg"] == "RS256" and header["kid"]
    assert token["expires_in"] == 900 and claims["exp"] - claims["iat"] == 900
    assert claims["iss"] == hub.url and claims["aud"] == "lotpulse"
    assert claims["client_id"] == client_id and claims["sub"] == client_id and claims["jti"]
    assert claims["scope"] == "read"


async def test_wrong_secret_is_invalid_client(hub, acme):
    client_id, _ = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    with pytest.raises(OAuthError) as refused:
        await _token(hub, client_id, "lpcs_not-the-secret")
    assert refused.value.error == "invalid_client"


async def test_scope_the_client_lacks_is_refused(hub, acme):
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    with pytest.raises(OAuthError) as refused:
        await _token(hub, client_id, secret, scope="read write")
    assert refused.value.error == "invalid_scope"


async def test_read_only_token_cannot_write(hub, acme):
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    token = await _token(hub, client_id, secret)
    body = await hub.gql(CREATE_LOCATION, token=token["access_token"])
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await hub.ok(ME, token=token["access_token"]))["me"]["tenant"]["id"] == acme


async def test_admin_scope_without_admin_role_cannot_manage_clients(hub, acme):
    client_id, secret = await create_client(hub, acme, scopes=["read", "admin"], roles=["planner"])
    token = await _token(hub, client_id, secret)
    body = await hub.gql(OAUTH_CLIENTS, token=token["access_token"])
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_integration_client_has_exactly_its_scopes_admin_included(hub, acme):
    client_id, secret = await create_client(hub, acme, scopes=["read", "admin"], roles=["integration"])
    token = await _token(hub, client_id, secret)
    listed = await hub.ok(OAUTH_CLIENTS, token=token["access_token"])
    assert client_id in [edge["node"]["clientId"] for edge in listed["oauthClients"]["edges"]]
    body = await hub.gql(CREATE_LOCATION, token=token["access_token"])  # no write scope
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_scoped_admin_token_cannot_mint_or_take_over_a_client_with_scopes_it_lacks(hub, acme):
    # given an admin client without webhooks:manage, and another client that has it
    client_id, secret = await create_client(hub, acme, scopes=["read", "admin"], roles=["admin"])
    hooks_id, _ = await create_client(hub, acme, scopes=["webhooks:manage"], roles=["admin"])
    token = (await _token(hub, client_id, secret))["access_token"]
    # when it registers a client with webhooks:manage, or rotates the secret of one that holds it
    minted = await hub.gql(CREATE_CLIENT, {"input": {"name": "Hooks", "scopes": ["webhooks:manage"],
                                                     "roles": ["admin"]}}, token=token)
    rotated = await hub.gql(ROTATE_SECRET, {"id": hooks_id}, token=token)
    # then both are refused (its scopes narrow its role, and would not if it could hand itself more)
    assert minted["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert rotated["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    listed = await hub.ok(OAUTH_CLIENTS, tenant=acme)
    assert "Hooks" not in [edge["node"]["name"] for edge in listed["oauthClients"]["edges"]]
    # while clients within its own scopes are its to manage
    allowed = await hub.gql(CREATE_CLIENT, {"input": {"name": "Reader", "scopes": ["read"], "roles": ["viewer"]}},
                            token=token)
    assert "errors" not in allowed, allowed
    reader_id = allowed["data"]["createOAuthClient"]["client"]["clientId"]
    assert "errors" not in await hub.gql(ROTATE_SECRET, {"id": reader_id}, token=token)


async def test_revoked_token_is_unauthenticated_on_the_next_call(hub, acme):
    # given
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    async with erp(hub, client_id, secret) as client:
        token = await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials")
        await hub.ok(ME, token=token["access_token"])
        # when
        revoked = await client.revoke_token(f"{hub.url}/oauth/revoke", token=token["access_token"])
    # then
    assert revoked.status_code == 200
    response = await hub.post(ME, token=token["access_token"])
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_deleting_a_client_stops_new_tokens_and_refuses_issued_ones(hub, acme):
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    token = await _token(hub, client_id, secret)
    await hub.ok(DELETE_CLIENT, {"id": client_id}, tenant=acme)
    with pytest.raises(OAuthError) as refused:
        await _token(hub, client_id, secret)
    assert refused.value.error == "invalid_client"
    response = await hub.post(ME, token=token["access_token"])
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_secret_is_shown_once_and_stored_hashed(hub, acme):
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    assert secret and secret.startswith("lpcs_")
    listed = (await hub.ok(OAUTH_CLIENTS, tenant=acme))["oauthClients"]["edges"]
    assert [edge["node"]["clientId"] for edge in listed] == [client_id]
    stored = await OAuthClient.find_one({"client_id": client_id})
    assert stored is not None and secret not in stored.model_dump_json()


async def test_rotating_the_secret_refuses_the_old_one(hub, acme):
    client_id, old = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    new = (await hub.ok(ROTATE_SECRET, {"id": client_id}, tenant=acme))["rotateOAuthClientSecret"]["clientSecret"]
    assert new != old
    with pytest.raises(OAuthError):
        await _token(hub, client_id, old)
    assert (await _token(hub, client_id, new))["access_token"]


async def test_client_of_one_tenant_never_acts_for_another(hub, acme, beta):
    # given two tenants, each with a client
    acme_id, acme_secret = await create_client(hub, acme, scopes=["read", "write", "admin"], roles=["admin"])
    beta_id, beta_secret = await create_client(hub, beta, scopes=["read"], roles=["integration"])
    acme_token = (await _token(hub, acme_id, acme_secret))["access_token"]
    beta_token = (await _token(hub, beta_id, beta_secret))["access_token"]
    # then acme's token sees and changes only acme
    assert (await hub.ok(ME, token=acme_token))["me"]["tenant"]["id"] == acme
    listed = (await hub.ok(OAUTH_CLIENTS, token=acme_token))["oauthClients"]["edges"]
    assert [edge["node"]["clientId"] for edge in listed] == [acme_id]
    body = await hub.gql(DELETE_CLIENT, {"id": beta_id}, token=acme_token)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    body = await hub.gql(ROTATE_SECRET, {"id": beta_id}, tenant=acme)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # and acme cannot introspect or revoke beta's token
    introspected = await hub.http.post(
        "/oauth/introspect", data={"token": beta_token}, auth=(acme_id, acme_secret)
    )
    assert introspected.json() == {"active": False}
    await hub.http.post("/oauth/revoke", data={"token": beta_token}, auth=(acme_id, acme_secret))
    assert (await hub.ok(ME, token=beta_token))["me"]["tenant"]["id"] == beta


async def test_introspection_describes_a_token_of_the_own_tenant(hub, acme):
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    token = (await _token(hub, client_id, secret))["access_token"]
    answer = (await hub.http.post("/oauth/introspect", data={"token": token}, auth=(client_id, secret))).json()
    assert answer["active"] is True and answer["client_id"] == client_id and answer["tenant"] == acme
    assert answer["scope"] == "read" and answer["roles"] == ["integration"]
    await hub.http.post("/oauth/revoke", data={"token": token}, auth=(client_id, secret))
    answer = (await hub.http.post("/oauth/introspect", data={"token": token}, auth=(client_id, secret))).json()
    assert answer == {"active": False}


async def test_unknown_scopes_and_public_clients_without_redirects_are_refused_at_registration(hub, acme):
    body = await hub.gql(CREATE_CLIENT, {"input": {"name": "x", "scopes": ["everything"]}}, tenant=acme)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await hub.gql(
        CREATE_CLIENT, {"input": {"name": "x", "scopes": ["read"], "kind": "public", "roles": []}}, tenant=acme
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await hub.gql(
        CREATE_CLIENT,
        {"input": {"name": "x", "scopes": ["read"], "redirectUris": ["http://evil.example/cb"]}},
        tenant=acme,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_only_tenant_admins_register_clients(hub, acme):
    body = await hub.gql(CREATE_CLIENT, {"input": {"name": "x", "scopes": ["read"]}}, tenant=acme, roles=("planner",))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_metadata_documents_the_server(hub):
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        meta = (await hub.http.get(path)).json()
        assert meta["issuer"] == hub.url
        assert meta["token_endpoint"] == f"{hub.url}/oauth/token"
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert "client_credentials" in meta["grant_types_supported"]
