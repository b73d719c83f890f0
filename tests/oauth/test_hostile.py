"""Hostile or malformed requests to the OAuth endpoints are answered cheaply with a 4xx, never a 500."""

from __future__ import annotations

import base64

from tests.oauth.conftest import create_client, pkce_pair, portal_for

FORM = "application/x-www-form-urlencoded"
MALFORMED = [
    (b'{"grant_type": "client_credentials"}', {"content-type": "application/json"}, 400, "invalid_request"),
    (b"grant_type=" + b"x" * 20_000, {"content-type": FORM}, 400, "invalid_request"),
    (b"grant_type=\xff\xfe", {"content-type": FORM}, 400, "invalid_request"),
    (b"grant_type=password&username=a&password=b", {"content-type": FORM}, 400, "unsupported_grant_type"),
    (b"grant_type=client_credentials", {"content-type": FORM, "authorization": "Basic !!!"}, 401, "invalid_client"),
    (b"grant_type=client_credentials&client_id=" + b"x" * 5000 + b"&client_secret=y", {"content-type": FORM}, 400,
     "invalid_client"),
]


async def test_malformed_token_requests_get_a_4xx(hub):
    for content, headers, status, error in MALFORMED:
        response = await hub.http.post("/oauth/token", content=content, headers=headers)
        assert (response.status_code, response.json()["error"]) == (status, error), content[:40]


async def test_token_endpoint_takes_post_only(hub):
    assert (await hub.http.get("/oauth/token")).status_code == 405


async def test_authorize_with_an_unknown_client_is_never_redirected(hub):
    response = await hub.http.get(
        "/oauth/authorize",
        params={"response_type": "code", "client_id": "lpc_nobody", "redirect_uri": "https://evil.example/cb",
                "state": "s", "code_challenge": "x" * 43, "code_challenge_method": "S256"},
    )
    assert response.status_code == 400 and "location" not in response.headers


async def test_callback_without_a_sign_in_in_progress_is_refused(hub):
    response = await hub.http.get("/oauth/callback", params={"code": "c", "state": "s"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_introspecting_garbage_answers_inactive(hub, acme):
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    for token in ("garbage", "lprt_unknown", "a.b.c", "x" * 10_000):
        response = await hub.http.post("/oauth/introspect", data={"token": token}, auth=(client_id, secret))
        assert response.status_code == 200 and response.json() == {"active": False}


async def test_basic_credentials_that_are_not_utf8_are_invalid_client_on_every_client_endpoint(hub):
    basic = "Basic " + base64.b64encode(b"\xff\xfe:\xfa").decode()
    for path, content in (("/oauth/token", b"grant_type=client_credentials"), ("/oauth/revoke", b"token=x"),
                          ("/oauth/introspect", b"token=x")):
        response = await hub.http.post(path, content=content, headers={"content-type": FORM, "authorization": basic})
        assert (response.status_code, response.json()["error"]) == (401, "invalid_client"), path


async def test_parameters_beyond_printable_ascii_are_invalid_request_never_a_500(hub, acme, oidc):
    # RFC 6749 appendix A: every parameter is printable ASCII. authlib refuses to build an error description holding
    # anything else, so echoing such a scope, response type or redirect URI in the refusal raised a 500.
    client_id, secret = await create_client(hub, acme, scopes=["read"], roles=["integration"])
    for scope in ("r\u00e9ad", "read\x00", "read\x7f"):
        response = await hub.http.post("/oauth/token", data={"grant_type": "client_credentials", "scope": scope},
                                       auth=(client_id, secret))
        assert (response.status_code, response.json()["error"]) == (400, "invalid_request"), scope
    portal = await portal_for(hub, oidc)
    _, challenge = pkce_pair()
    base = {"response_type": "code", "client_id": portal.client_id, "redirect_uri": portal.redirect_uri,
            "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256", "scope": "read"}
    for change in ({"scope": "r\u00e9ad"}, {"response_type": "tok\u00e9n"}, {"scope": "read\x00"},
                   {"redirect_uri": portal.redirect_uri + "\u00e9"}, {"state": "\u00e9t\u00e9"}):
        response = await hub.http.get("/oauth/authorize", params={**base, **change})
        assert response.status_code == 400 and "location" not in response.headers, change
        assert response.json()["error"] == "invalid_request", change
