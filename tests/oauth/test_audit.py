"""The audit log: issuance, refusal, revocation and admin changes are recorded with who/what/when/where, and no
secret or token ever appears in it or in the logs. Failed client authentications are rate-limited."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from authlib.integrations.base_client import OAuthError

from hub.models.audit import AuditEntry
from hub.oauth.routes import RedactOAuthQueries
from tests.conftest import start_hub
from tests.oauth.conftest import PORTAL_REDIRECT, create_client, erp, portal_for

AUDIT_LOG = """
query($filter: AuditFilter) {
  auditLog(filter: $filter, first: 200) {
    edges { node { at action outcome actor actorKind clientId target reason ip userAgent details } }
  }
}
"""
INVITE = """
mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }
"""
ROTATE_SECRET = "mutation($id: String!) { rotateOAuthClientSecret(clientId: $id) { clientSecret } }"
DELETE_CLIENT = "mutation($id: String!) { deleteOAuthClient(clientId: $id) }"


async def _actions(hub, tenant: str) -> list[dict]:
    return [edge["node"] for edge in (await hub.ok(AUDIT_LOG, tenant=tenant))["auditLog"]["edges"]]


async def test_audit_log_shows_issuance_refusal_revocation_and_admin_changes(hub, acme, beta):
    # given
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    async with erp(hub, client_id, secret) as client:
        token = await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials")
        await client.revoke_token(f"{hub.url}/oauth/revoke", token=token["access_token"])
    for _ in range(2):  # the revoked token comes back twice: one entry
        assert (await hub.post("{ me { roles } }", token=token["access_token"])).status_code == 401
    with pytest.raises(OAuthError):
        async with erp(hub, client_id, "lpcs_wrong") as client:
            await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials")
    await hub.ok(INVITE, {"input": {"partnerId": beta, "weShare": ["stock"], "theyShare": []}}, tenant=acme)
    await hub.ok(ROTATE_SECRET, {"id": client_id}, tenant=acme)
    await hub.ok(DELETE_CLIENT, {"id": client_id}, tenant=acme)
    # when
    entries = await _actions(hub, acme)
    # then newest first, each with who and from where
    actions = [(entry["action"], entry["outcome"]) for entry in entries]
    assert actions == [
        ("client.deleted", "success"),
        ("client.secret_rotated", "success"),
        ("partnership.invited", "success"),
        ("token.refused", "refused"),
        ("token.refused", "refused"),
        ("token.revoked", "success"),
        ("token.issued", "success"),
        ("client.created", "success"),
    ]
    by_action = {entry["action"]: entry for entry in entries}
    assert by_action["token.issued"]["actor"] == client_id and by_action["token.issued"]["actorKind"] == "client"
    assert by_action["token.issued"]["details"]["grant_type"] == "client_credentials"
    refusals = [entry["reason"] for entry in entries if entry["action"] == "token.refused"]
    assert refusals == ["invalid_client", "revoked token presented"]
    assert (
        by_action["client.created"]["actor"] == f"local:{acme}" and by_action["client.created"]["actorKind"] == "member"
    )
    assert all(entry["ip"] == "127.0.0.1" and entry["at"] for entry in entries)
    assert by_action["token.issued"]["userAgent"].startswith("python-httpx")
    assert [e["action"] for e in await _actions(hub, beta)] == []  # acme's log is acme's alone
    by_client = (await hub.ok(AUDIT_LOG, {"filter": {"clientId": client_id, "outcome": "success"}}, tenant=acme))
    assert [edge["node"]["action"] for edge in by_client["auditLog"]["edges"]] == ["token.revoked", "token.issued"]


async def test_audit_log_is_for_tenant_admins_only(hub, acme):
    body = await hub.gql(AUDIT_LOG, tenant=acme, roles=("planner",))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_no_secret_or_token_appears_in_the_audit_log_or_the_logs(hub, oidc, caplog):
    caplog.set_level(logging.DEBUG)
    # given every credential the hub handles: client secrets, access and refresh tokens, codes, the IdP secret
    portal = await portal_for(hub, oidc)
    client_id, secret = await create_client(hub, portal.tenant, scopes=["read"], roles=["integration"])
    async with erp(hub, client_id, secret) as client:
        machine = await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials")
        await client.revoke_token(f"{hub.url}/oauth/revoke", token=machine["access_token"])
    callback, verifier, client = await portal.sign_in()
    first = await portal.token(callback, verifier, client)
    second = await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=first["refresh_token"])
    with pytest.raises(OAuthError):  # reuse: refused, family revoked, audited
        await portal.oauth().refresh_token(f"{hub.url}/oauth/token", refresh_token=first["refresh_token"])
    with pytest.raises(OAuthError):
        async with erp(hub, client_id, secret + "x") as wrong:
            await wrong.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials")
    credentials = [
        secret, secret + "x", oidc.client_secret, machine["access_token"], first["access_token"],
        first["refresh_token"], second["access_token"], second["refresh_token"], callback["code"], verifier,
    ]
    # when
    stored = json.dumps([doc async for doc in AuditEntry.get_pymongo_collection().find({})], default=str)
    # then
    assert "token.family_revoked" in stored and "signin.succeeded" in stored and "token.refused" in stored
    # (the test's own browser and portal log their traffic through httpx in this process: they are not the hub)
    hub_logs = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert hub_logs  # everything the hub logged at DEBUG: none of it may carry a credential
    for credential in credentials:
        assert credential not in stored
        assert credential not in hub_logs


def test_access_logs_never_show_oauth_query_strings():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/oauth/callback?code=secret-code&state=s", "1.1", 302), None,
    )
    assert RedactOAuthQueries().filter(record)
    assert "secret-code" not in record.getMessage() and "/oauth/callback?[redacted]" in record.getMessage()


async def test_refusals_that_concern_no_tenant_are_not_stored(hub):
    # anyone may post anything to the token endpoint: without a client of some tenant there is no one to tell, and
    # storing each refusal would let anybody fill the database (the sign-in routes already keep them out)
    async def tenantless() -> int:
        return await AuditEntry.get_pymongo_collection().count_documents({"tenant_id": None})

    before = await tenantless()
    for content in (b"grant_type=password&username=a&password=b", b"grant_type=client_credentials", b"token=x"):
        for path in ("/oauth/token", "/oauth/revoke"):
            response = await hub.http.post(path, content=content,
                                           headers={"content-type": "application/x-www-form-urlencoded"})
            assert 400 <= response.status_code < 500
    assert await tenantless() == before


async def test_one_address_cannot_fill_a_tenants_audit_log_with_refusals(settings):
    # a portal's client id is public: anyone may send requests that are refused for it, as often as they like
    async for hub in start_hub(settings.with_(oauth_failed_auth_per_ip=3)):
        await hub.tenant("acme")
        portal_id, _ = await create_client(hub, "acme", name="Portal", kind="public", scopes=["read"], roles=[],
                                           redirectUris=[PORTAL_REDIRECT])
        for _ in range(5):
            response = await hub.http.post("/oauth/token", data={
                "grant_type": "authorization_code", "client_id": portal_id, "code": "made-up",
                "redirect_uri": PORTAL_REDIRECT, "code_verifier": "v" * 43})
            assert response.json()["error"] == "invalid_grant"
            response = await hub.http.get("/oauth/authorize", params={
                "response_type": "code", "client_id": portal_id, "redirect_uri": PORTAL_REDIRECT, "state": "s",
                "scope": "bogus", "code_challenge": "c" * 43, "code_challenge_method": "S256"})
            assert "invalid_scope" in response.headers["location"]
        actions = [entry["action"] for entry in await _actions(hub, "acme")]
        # the first refusals are there; the flood beyond the per-address allowance is only logged
        assert actions.count("token.refused") + actions.count("signin.refused") == 3
        assert actions.count("token.refused") == 2 and actions.count("signin.refused") == 1


async def test_failed_client_authentications_are_rate_limited_per_client(settings):
    async for hub in start_hub(settings.with_(oauth_failed_auth_per_client=3)):
        await hub.tenant("acme")
        client_id, secret = await create_client(hub, "acme", scopes=["read"], roles=["integration"])
        for _ in range(3):
            response = await hub.http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "lpcs_guess")
            )
            assert response.status_code == 401 and response.json()["error"] == "invalid_client"
        # even the right secret waits now
        response = await hub.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert response.status_code == 429 and response.json()["error"] == "rate_limited"
        assert int(response.headers["retry-after"]) > 0
        limited = [e for e in await _actions(hub, "acme") if e["action"] == "client_auth.rate_limited"]
        assert len(limited) == 1 and limited[0]["details"]["limited"] == [f"client:{client_id}"]
        assert (
            len([e for e in await _actions(hub, "acme") if e["action"] == "token.refused"]) == 3
        )  # 429s are not logged


async def test_a_guesser_cannot_escape_the_per_client_limit_by_how_it_names_the_client(settings):
    async for hub in start_hub(settings.with_(oauth_failed_auth_per_client=3, oauth_failed_auth_per_ip=1000)):
        await hub.tenant("acme")
        client_id, secret = await create_client(hub, "acme", scopes=["read"], roles=["integration"])
        other_id, _ = await create_client(hub, "acme", scopes=["read"], roles=["integration"])
        # authlib decodes Basic credentials leniently: junk after the base64 is skipped, the guess still tried
        sloppy = "Basic " + base64.b64encode(f"{client_id}:lpcs_guess".encode()).decode() + "!"
        form = {"grant_type": "client_credentials"}
        for _ in range(2):
            response = await hub.http.post("/oauth/token", data=form, headers={"authorization": sloppy})
            assert response.status_code == 401 and response.json()["error"] == "invalid_client"
        # another client's id in the header (tried first, and wrong), the guess at this one in the form
        response = await hub.http.post(
            "/oauth/token", data={**form, "client_id": client_id, "client_secret": "lpcs_guess"},
            auth=(other_id, "lpcs_wrong"),
        )
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"
        # three guesses at this client: even its right secret waits now
        response = await hub.http.post("/oauth/token", data=form, auth=(client_id, secret))
        assert response.status_code == 429


async def test_nobody_can_lock_a_portal_out_by_failing_to_authenticate_as_it(settings, oidc):
    # a public client has no secret to guess, and its id is in every sign-in link
    async for hub in start_hub(settings.with_(oauth_failed_auth_per_client=3)):
        portal = await portal_for(hub, oidc)
        callback, verifier, client = await portal.sign_in()
        for form in ({"grant_type": "client_credentials"}, {"grant_type": "refresh_token", "refresh_token": "x",
                                                           "client_secret": "guess"}) * 2:
            response = await hub.http.post("/oauth/token", data={**form, "client_id": portal.client_id})
            assert response.json()["error"] == "invalid_client"
        # the portal's users still sign in
        token = await portal.token(callback, verifier, client)
        assert token["access_token"]


async def test_failed_client_authentications_are_rate_limited_per_ip(settings):
    async for hub in start_hub(settings.with_(oauth_failed_auth_per_ip=4)):
        await hub.tenant("acme")
        client_id, secret = await create_client(hub, "acme", scopes=["read"], roles=["integration"])
        for attempt in range(4):  # a guesser spreading over client ids
            await hub.http.post(
                "/oauth/token", data={"grant_type": "client_credentials"}, auth=(f"lpc_guess{attempt}", "x")
            )
        response = await hub.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=("lpc_guess-next", "x"))
        assert response.status_code == 429
        # a registered client is judged by its own failures: a guesser at its address does not lock it out
        response = await hub.http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert response.status_code == 200
