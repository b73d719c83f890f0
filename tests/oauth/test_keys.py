"""Key rotation: tokens of the old key work until the old key retires; tokens of the new key work at once."""

from __future__ import annotations

import asyncio
import shutil

import jwt

from hub.cli import main as lotpulse
from tests.conftest import start_hub
from tests.oauth.conftest import create_client, erp

ME = "{ me { tenant { id } } }"


async def _token(hub, client_id: str, secret: str) -> str:
    async with erp(hub, client_id, secret) as client:
        return (await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials"))["access_token"]


async def test_rotation_keeps_old_tokens_until_the_old_key_retires(settings, tmp_path, monkeypatch):
    # given a hub with its own key ring (rotating the shared test key would disturb other tests)
    keys = tmp_path / "own-keys.json"
    shutil.copy(settings.signing_key_file, keys)
    monkeypatch.setenv("LOTPULSE_SIGNING_KEY_FILE", str(keys))
    async for hub in start_hub(settings.with_(signing_key_file=keys)):
        await hub.tenant("acme")
        client_id, secret = await create_client(hub, "acme", scopes=["read"], roles=["integration"])
        old_token = await _token(hub, client_id, secret)
        # when the key is rotated, keeping the old one for two seconds
        assert lotpulse(["keys", "rotate", "--keep", "2"]) == 0
        new_token = await _token(hub, client_id, secret)
        # then both work, and the JWKS publishes both keys
        old_kid, new_kid = (jwt.get_unverified_header(t)["kid"] for t in (old_token, new_token))
        assert old_kid != new_kid
        assert (await hub.ok(ME, token=old_token))["me"]["tenant"]["id"] == "acme"
        assert (await hub.ok(ME, token=new_token))["me"]["tenant"]["id"] == "acme"
        published = {key["kid"] for key in (await hub.http.get("/.well-known/jwks.json")).json()["keys"]}
        assert {old_kid, new_kid} <= published
        # and once the old key retires, its tokens are refused and it leaves the JWKS
        await asyncio.sleep(2.2)
        assert (await hub.post(ME, token=old_token)).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await hub.ok(ME, token=new_token))["me"]["tenant"]["id"] == "acme"
        published = {key["kid"] for key in (await hub.http.get("/.well-known/jwks.json")).json()["keys"]}
        assert old_kid not in published and new_kid in published


def test_default_rotation_keeps_the_old_key_for_the_longest_token_lifetime(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOTPULSE_SIGNING_KEY_FILE", str(tmp_path / "keys.json"))
    assert lotpulse(["keys", "rotate"]) == 0
    assert "verifiable for 3660 s" in capsys.readouterr().out  # 1 h CLI tokens + clock leeway
