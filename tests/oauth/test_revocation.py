"""The revocation list across processes, and revocation by a public portal (RFC 7009)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from authlib.integrations.base_client import OAuthError

from hub.oauth.revocation import RevocationList, token_key
from tests.oauth.conftest import portal_for

ME = "{ me { subject } }"


async def test_a_revocation_on_another_process_is_honoured_within_the_cache_window(hub):
    # given two processes' lists, the second one loaded before the revocation
    here, elsewhere = RevocationList(cache_seconds=0.3), RevocationList(cache_seconds=0.3)
    key = token_key(uuid.uuid4().hex)
    assert not await elsewhere.contains_any([key])
    # when the first revokes
    await here.revoke(key, "acme", "test", datetime.now(UTC) + timedelta(minutes=15))
    # then it answers at once, the other after its cache window
    assert await here.contains_any([key])
    await asyncio.sleep(0.35)
    assert await elsewhere.contains_any([key])


async def test_expired_revocations_are_not_loaded(hub):
    key = token_key(uuid.uuid4().hex)
    await RevocationList(cache_seconds=0).revoke(key, "acme", "test", datetime.now(UTC) - timedelta(seconds=1))
    assert not await RevocationList(cache_seconds=0).contains_any([key])


async def test_portal_revoking_its_refresh_token_ends_the_sign_in(hub, oidc):
    # given
    portal = await portal_for(hub, oidc)
    callback, verifier, client = await portal.sign_in()
    token = await portal.token(callback, verifier, client)
    # when the public client revokes its refresh token (no secret: client id only)
    response = await hub.http.post(
        "/oauth/revoke", data={"token": token["refresh_token"], "client_id": portal.client_id}
    )
    # then neither it nor the access token issued with it work any more
    assert response.status_code == 200
    with pytest.raises(OAuthError):
        await client.refresh_token(f"{hub.url}/oauth/token", refresh_token=token["refresh_token"])
    assert (await hub.post(ME, token=token["access_token"])).status_code == 401


async def test_public_clients_cannot_introspect(hub, oidc):
    portal = await portal_for(hub, oidc)
    callback, verifier, client = await portal.sign_in()
    token = await portal.token(callback, verifier, client)
    response = await hub.http.post(
        "/oauth/introspect", data={"token": token["access_token"], "client_id": portal.client_id}
    )
    assert response.status_code in (400, 401) and response.json()["error"] == "invalid_client"
