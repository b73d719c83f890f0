"""Portal sign-in: authorization code + PKCE through the tenant's OpenID Connect provider, and every way to get it
wrong (RFC 9700): non-members, wrong verifier, changed redirect URI, missing state, replayed code, reused refresh."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
from authlib.integrations.base_client import OAuthError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import hub.auth as auth_module
from hub.db import free_port
from hub.oauth.routes import SignInSession
from tests.oauth.conftest import (
    ADD_MEMBER,
    CONFIGURE_PROVIDER,
    PORTAL_REDIRECT,
    Portal,
    create_client,
    pkce_pair,
    portal_for,
)

ME = "{ me { tenant { id } subject issuer roles scopes } }"
MEMBERS = "{ members { edges { node { id subject } } } }"
REMOVE_MEMBER = "mutation($id: ID!) { removeMember(id: $id) }"
SIGNIN_REFUSALS = '{ auditLog(filter: {action: "signin.refused"}) { edges { node { reason details } } } }'


async def _code_status(hub, token: str) -> str | None:
    body = (await hub.post(ME, token=token)).json()
    return body["errors"][0]["extensions"]["code"] if "errors" in body else None


async def test_member_signs_in_through_their_provider_and_reaches_graphql(hub, oidc):
    # given
    portal = await portal_for(hub, oidc)
    # when
    callback, verifier, client = await portal.sign_in()
    token = await portal.token(callback, verifier, client)
    # then
    assert callback["iss"] == hub.url
    me = (await hub.ok(ME, token=token["access_token"]))["me"]
    assert me == {
        "tenant": {"id": portal.tenant}, "subject": "alice", "issuer": oidc.issuer, "roles": ["planner"],
        "scopes": ["read", "write"],
    }
    assert token["refresh_token"].startswith("lprt_") and token["expires_in"] == 900


async def test_user_who_is_not_a_member_is_refused(hub, oidc):
    portal = await portal_for(hub, oidc)
    oidc.signed_in = "mallory"
    callback, _, _ = await portal.sign_in()
    assert callback["error"] == "access_denied" and "code" not in callback
    refusals = (await hub.ok(SIGNIN_REFUSALS, tenant=portal.tenant))["auditLog"]["edges"]
    assert [edge["node"]["reason"] for edge in refusals] == ["not a member of this tenant"]
    assert refusals[0]["node"]["details"] == {"issuer": oidc.issuer, "subject": "mallory"}


async def test_member_of_another_tenant_is_refused(hub, oidc):
    # given alice is a member of acme, and beta's portal signs in through the same provider
    await portal_for(hub, oidc)
    beta = await portal_for(hub, oidc, members=())
    # when alice signs in at beta's portal
    callback, _, _ = await beta.sign_in()
    # then
    assert callback["error"] == "access_denied" and "code" not in callback


async def test_injected_id_token_with_a_wrong_nonce_is_refused(hub, oidc):
    portal = await portal_for(hub, oidc)
    oidc.nonce_override = "not-the-nonce"
    callback, _, _ = await portal.sign_in()
    assert callback["error"] == "access_denied" and "code" not in callback


async def test_wrong_pkce_verifier_is_refused(hub, oidc):
    portal = await portal_for(hub, oidc)
    callback, _, client = await portal.sign_in()
    wrong, _ = pkce_pair()
    with pytest.raises(OAuthError) as refused:
        await portal.token(callback, wrong, client)
    assert refused.value.error == "invalid_grant"


async def test_changed_redirect_uri_is_refused(hub, oidc):
    portal = await portal_for(hub, oidc)
    # at the authorization endpoint: an unregistered URI is never redirected to
    _, challenge = pkce_pair()
    response = await portal.browser.get(
        f"{hub.url}/oauth/authorize",
        params={
            "response_type": "code", "client_id": portal.client_id, "redirect_uri": PORTAL_REDIRECT + "/../evil",
            "state": "s", "code_challenge": challenge, "code_challenge_method": "S256", "scope": "read",
        },
    )
    assert response.status_code == 400 and "location" not in response.headers
    # at the token endpoint: the code is bound to the URI it was issued for
    callback, verifier, client = await portal.sign_in()
    client.redirect_uri = "http://127.0.0.1:9/portal/other"
    with pytest.raises(OAuthError) as refused:
        await portal.token(callback, verifier, client)
    assert refused.value.error == "invalid_grant"


async def test_missing_state_is_refused(hub, oidc):
    portal = await portal_for(hub, oidc)
    callback, _, _ = await portal.sign_in(state="")
    assert callback["error"] == "invalid_request" and "code" not in callback


async def test_missing_or_plain_pkce_is_refused(hub, oidc):
    portal = await portal_for(hub, oidc)
    callback, _, _ = await portal.sign_in(code_challenge="", code_challenge_method="")
    assert callback["error"] == "invalid_request" and "code" not in callback
    callback, _, _ = await portal.sign_in(code_challenge_method="plain")
    assert callback["error"] == "invalid_request" and "code" not in callback


async def test_replayed_code_is_refused_and_revokes_what_it_issued(hub, oidc):
    # given a code already exchanged
    portal = await portal_for(hub, oidc)
    callback, verifier, client = await portal.sign_in()
    token = await portal.token(callback, verifier, client)
    # when it is replayed
    with pytest.raises(OAuthError) as refused:
        await portal.token(callback, verifier, portal.oauth())
    # then
    assert refused.value.error == "invalid_grant"
    assert await _code_status(hub, token["access_token"]) == "UNAUTHENTICATED"
    with pytest.raises(OAuthError):
        await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=token["refresh_token"])


async def test_refresh_token_rotates_and_reuse_revokes_the_family(hub, oidc):
    # given a signed-in portal that refreshed once
    portal = await portal_for(hub, oidc)
    callback, verifier, client = await portal.sign_in()
    first = await portal.token(callback, verifier, client)
    second = await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert (await hub.ok(ME, token=second["access_token"]))["me"]["subject"] == "alice"
    # when the old refresh token comes back
    with pytest.raises(OAuthError) as refused:
        await portal.oauth().refresh_token(f"{hub.url}/oauth/token", refresh_token=first["refresh_token"])
    # then it is refused and the whole sign-in ends: the newest refresh token and every access token
    assert refused.value.error == "invalid_grant"
    with pytest.raises(OAuthError):
        await portal.oauth().refresh_token(f"{hub.url}/oauth/token", refresh_token=second["refresh_token"])
    assert await _code_status(hub, second["access_token"]) == "UNAUTHENTICATED"
    assert await _code_status(hub, first["access_token"]) == "UNAUTHENTICATED"


async def test_refresh_cannot_widen_the_scope(hub, oidc):
    portal = await portal_for(hub, oidc)
    callback, verifier, client = await portal.sign_in(scope="read")
    token = await portal.token(callback, verifier, client)
    with pytest.raises(OAuthError) as refused:
        await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=token["refresh_token"], scope="read write")
    assert refused.value.error == "invalid_scope"
    # and the refused request did not use the token up
    refreshed = await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=token["refresh_token"])
    assert refreshed["scope"] == "read"


async def test_a_narrower_refresh_keeps_the_sign_ins_scope_for_the_next_one(hub, oidc):
    # RFC 6749 §6: a new refresh token has the scope of the one it replaces, whatever the access token asked for
    portal = await portal_for(hub, oidc)
    callback, verifier, client = await portal.sign_in(scope="read write")
    token = await portal.token(callback, verifier, client)
    narrow = await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=token["refresh_token"], scope="read")
    assert narrow["scope"] == "read"
    full = await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=narrow["refresh_token"])
    assert full["scope"] == "read write"
    assert (await hub.ok(ME, token=full["access_token"]))["me"]["scopes"] == ["read", "write"]


async def test_auth_time_is_when_the_member_signed_in_not_when_a_token_was_refreshed(hub, oidc):
    portal = await portal_for(hub, oidc)
    before = int(time.time())
    callback, verifier, client = await portal.sign_in()
    first = await portal.token(callback, verifier, client)
    signed_in = jwt.decode(first["access_token"], options={"verify_signature": False})["auth_time"]
    assert before <= signed_in <= int(time.time())
    await asyncio.sleep(1.1)  # let the clock pass a whole second: a refreshed token would otherwise look the same
    second = await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=first["refresh_token"])
    third = await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=second["refresh_token"])
    for token in (second, third):
        assert jwt.decode(token["access_token"], options={"verify_signature": False})["auth_time"] == signed_in


async def test_removed_member_is_refused(hub, oidc, monkeypatch):
    monkeypatch.setattr(auth_module, "MEMBER_CACHE_SECONDS", 0.0)  # the one-minute window, without the wait
    portal = await portal_for(hub, oidc)
    callback, verifier, client = await portal.sign_in()
    token = await portal.token(callback, verifier, client)
    members = (await hub.ok(MEMBERS, tenant=portal.tenant))["members"]["edges"]
    alice = next(edge["node"]["id"] for edge in members if edge["node"]["subject"] == "alice")
    await hub.ok(REMOVE_MEMBER, {"id": alice}, tenant=portal.tenant)
    assert await _code_status(hub, token["access_token"]) == "UNAUTHENTICATED"
    with pytest.raises(OAuthError):
        await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=token["refresh_token"])


async def test_removed_member_is_refused_at_once_by_the_process_that_removed_them_and_by_introspection(hub, oidc):
    # given a signed-in member whose token this process has already accepted
    portal = await portal_for(hub, oidc)
    callback, verifier, client = await portal.sign_in()
    token = await portal.token(callback, verifier, client)
    assert await _code_status(hub, token["access_token"]) is None
    erp_id, erp_secret = await create_client(hub, portal.tenant, scopes=["read"], roles=["integration"])
    for kind in ("access_token", "refresh_token"):
        answer = await hub.http.post("/oauth/introspect", data={"token": token[kind]}, auth=(erp_id, erp_secret))
        assert answer.json()["active"] is True
    # when an admin removes them
    members = (await hub.ok(MEMBERS, tenant=portal.tenant))["members"]["edges"]
    alice = next(edge["node"]["id"] for edge in members if edge["node"]["subject"] == "alice")
    await hub.ok(REMOVE_MEMBER, {"id": alice}, tenant=portal.tenant)
    # then their tokens stop at once here, and a resource server introspecting them hears they are not active
    assert await _code_status(hub, token["access_token"]) == "UNAUTHENTICATED"
    for kind in ("access_token", "refresh_token"):
        answer = await hub.http.post("/oauth/introspect", data={"token": token[kind]}, auth=(erp_id, erp_secret))
        assert answer.json() == {"active": False}, kind


async def test_sign_in_state_is_bound_to_the_browser(hub, oidc):
    # given a sign-in started in one browser
    portal = await portal_for(hub, oidc)
    url, _ = portal.oauth().create_authorization_url(f"{hub.url}/oauth/authorize", code_verifier=pkce_pair()[0])
    to_idp = await portal.browser.get(url)
    at_idp = await portal.browser.get(to_idp.headers["location"])
    back_to_hub = at_idp.headers["location"]
    # when another browser (without the sign-in cookie) delivers the provider's answer
    async with httpx.AsyncClient() as other:
        response = await other.get(back_to_hub)
    # then nothing is issued
    assert response.status_code == 400 and "location" not in response.headers


async def test_the_sign_in_cookie_is_http_only_same_site_lax_for_oauth_only_and_secure_behind_https(hub, oidc):
    portal = await portal_for(hub, oidc)
    url, _ = portal.oauth().create_authorization_url(f"{hub.url}/oauth/authorize", code_verifier=pkce_pair()[0])
    cookie = (await portal.browser.get(url)).headers["set-cookie"]
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    assert cookie.startswith("lotpulse_signin=") and flags["path"] == "path=/oauth"
    assert "httponly" in flags and flags["samesite"].lower() == "samesite=lax" and "secure" not in flags
    # the same middleware behind an https public URL (a TLS proxy in front): the cookie is only sent over https
    behind_tls = hub.settings.with_(public_url="https://hub.example.com")

    async def sets_cookie(request: Request) -> Response:
        request.session["pending"] = "x"
        return Response("ok")

    app = SignInSession(Starlette(routes=[Route("/oauth/x", sets_cookie)]), behind_tls, hub.state.keyring)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://hub.example.com") as tls:
        cookie = (await tls.get("/oauth/x")).headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_member_roles_come_from_the_member_not_the_client(hub, oidc):
    portal = await portal_for(hub, oidc)
    await hub.ok(
        ADD_MEMBER, {"input": {"issuer": oidc.issuer, "subject": "bob", "roles": ["viewer"]}}, tenant=portal.tenant
    )
    oidc.signed_in = "bob"
    callback, verifier, client = await portal.sign_in()
    token = await portal.token(callback, verifier, client)
    me = (await hub.ok(ME, token=token["access_token"]))["me"]
    assert me["roles"] == ["viewer"]


async def test_unreachable_identity_provider_answers_the_portal_not_a_500(hub, oidc):
    portal = await portal_for(hub, oidc)
    oidc.port = free_port()  # the tenant's provider settings now name a closed port
    await hub.ok(
        CONFIGURE_PROVIDER,
        {"input": {"issuer": oidc.issuer, "clientId": oidc.client_id, "clientSecret": oidc.client_secret}},
        tenant=portal.tenant,
    )
    callback, _, _ = await portal.sign_in()
    assert callback["error"] == "temporarily_unavailable" and "code" not in callback


async def test_confidential_portal_must_authenticate_to_redeem_its_code(hub, oidc):
    # given a server-side portal registered as a confidential client of the same tenant
    public = await portal_for(hub, oidc)
    client_id, secret = await create_client(
        hub, public.tenant, name="Server portal", scopes=["read"], roles=["viewer"], redirectUris=[PORTAL_REDIRECT]
    )
    portal = Portal(hub, client_id, public.tenant, secret=secret)
    callback, verifier, client = await portal.sign_in(scope="read")
    # when it presents the code without its secret, it is refused
    unauthenticated = Portal(hub, client_id, public.tenant).oauth(scope="read")
    with pytest.raises(OAuthError) as refused:
        await portal.token(callback, verifier, unauthenticated)
    assert refused.value.error == "invalid_client"
    # and with its secret (on a fresh code) it signs alice in with her roles, not the client's
    callback, verifier, client = await portal.sign_in(scope="read")
    token = await portal.token(callback, verifier, client)
    me = (await hub.ok(ME, token=token["access_token"]))["me"]
    assert me["subject"] == "alice" and me["roles"] == ["planner"] and me["scopes"] == ["read"]


async def test_racing_redemptions_of_one_code_issue_at_most_one_token(hub, oidc):
    portal = await portal_for(hub, oidc)
    callback, verifier, _ = await portal.sign_in()
    data = {
        "grant_type": "authorization_code", "code": callback["code"], "code_verifier": verifier,
        "redirect_uri": PORTAL_REDIRECT, "client_id": portal.client_id,
    }
    responses = await asyncio.gather(*(hub.http.post("/oauth/token", data=data) for _ in range(4)))
    assert sorted(response.status_code for response in responses) == [200, 400, 400, 400]


async def test_racing_refreshes_of_one_token_issue_at_most_one_token(hub, oidc):
    portal = await portal_for(hub, oidc)
    callback, verifier, client = await portal.sign_in()
    token = await portal.token(callback, verifier, client)
    data = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": portal.client_id}
    responses = await asyncio.gather(*(hub.http.post("/oauth/token", data=data) for _ in range(4)))
    winners = [response.json() for response in responses if response.status_code == 200]
    assert len(winners) == 1
    # the losers looked like a reuse, so the sign-in ended: the winner's new refresh token is refused too
    with pytest.raises(OAuthError):
        await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=winners[0]["refresh_token"])
