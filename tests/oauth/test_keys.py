"""Key rotation: the ring lives in the database; tokens of the old key work until it retires, of the new key at once.

Three hub processes share one database: this test process's hub and two ``lotpulse serve`` subprocesses. A rotation
on one is honoured by the others, and a deployment's former key file is imported on first start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path

import httpx
import jwt

from hub.auth import mint_local_token
from hub.cli import main as lotpulse
from hub.keys import COLLECTION, RING_ID, KeyFile
from tests.conftest import start_hub
from tests.events.test_two_processes import hub_process
from tests.oauth.conftest import create_client, erp, pkce_pair, portal_for, query_of

ME = "{ me { tenant { id } } }"


async def _token(hub, client_id: str, secret: str) -> str:
    async with erp(hub, client_id, secret) as client:
        return (await client.fetch_token(f"{hub.url}/oauth/token", grant_type="client_credentials"))["access_token"]


async def _me(url: str, token: str) -> str:
    """The tenant the token is accepted for at ``url``, or the error code it is refused with."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        body = (await client.post("/graphql", json={"query": ME},
                                  headers={"authorization": f"Bearer {token}"})).json()
    if "errors" in body:
        return body["errors"][0]["extensions"]["code"]
    return body["data"]["me"]["tenant"]["id"]


async def _until(check, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_rotation_keeps_old_tokens_until_the_old_key_retires(settings):
    # given a hub whose database holds the key ring
    async for hub in start_hub(settings.with_(signing_key_refresh_seconds=0.2)):
        await hub.tenant("acme")
        client_id, secret = await create_client(hub, "acme", scopes=["read"], roles=["integration"])
        old_token = await _token(hub, client_id, secret)
        old_kid = jwt.get_unverified_header(old_token)["kid"]
        # when the key is rotated from the shell (`lotpulse keys rotate`), keeping the old one for six seconds
        env = {**os.environ, "LOTPULSE_MONGODB_URI": settings.mongodb_uri, "LOTPULSE_DATABASE": settings.database}
        shell = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub.cli", "keys", "rotate", "--keep", "6",
                                                     env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await shell.communicate()
        assert shell.returncode == 0 and b"new signing key" in out
        retired_at = time.time() + 6
        # then the hub signs with the new key (it re-reads the ring), and both tokens work meanwhile
        new_token = old_token

        async def signs_anew() -> bool:
            nonlocal new_token
            new_token = await _token(hub, client_id, secret)
            return jwt.get_unverified_header(new_token)["kid"] != old_kid

        await _until(signs_anew, "the hub never signed with the rotated key")
        new_kid = jwt.get_unverified_header(new_token)["kid"]
        assert (await hub.ok(ME, token=new_token))["me"]["tenant"]["id"] == "acme"
        if time.time() < retired_at - 3:  # (on a very slow machine the old key may already have retired)
            assert (await hub.ok(ME, token=old_token))["me"]["tenant"]["id"] == "acme"
            published = {key["kid"] for key in (await hub.http.get("/.well-known/jwks.json")).json()["keys"]}
            assert {old_kid, new_kid} <= published
        # and once the old key retires, its tokens are refused and it leaves the JWKS
        await asyncio.sleep(max(0.0, retired_at - time.time()) + 0.2)
        assert (await hub.post(ME, token=old_token)).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (await hub.ok(ME, token=new_token))["me"]["tenant"]["id"] == "acme"
        published = {key["kid"] for key in (await hub.http.get("/.well-known/jwks.json")).json()["keys"]}
        assert old_kid not in published and new_kid in published


async def test_a_rotation_on_one_process_is_honoured_by_the_others(hub, mongo_uri, key_file, tmp_path):
    # given three hub processes on one database: this one and two `lotpulse serve` subprocesses
    await hub.tenant("acme")
    old_token = hub.token("acme", "viewer")
    async with hub_process(hub, mongo_uri, key_file, tmp_path / "a.log") as first, \
            hub_process(hub, mongo_uri, key_file, tmp_path / "b.log") as second:
        assert {await _me(url, old_token) for url in (first, second)} == {"acme"}
        # when this process rotates the ring, keeping the old key for six seconds
        ring = hub.state.keyring
        new_key = await ring.rotate(6)
        retired_at = time.time() + 6
        new_token = mint_local_token(hub.settings, ring, "acme", ["viewer"], 3600)
        assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
        # then the others accept the new key's token at once (an unknown key id makes them read the ring again)
        assert [await _me(url, new_token) for url in (first, second)] == ["acme", "acme"]
        # and still accept the old key's token until it retires, then refuse it
        if time.time() < retired_at - 3:
            assert [await _me(url, old_token) for url in (first, second)] == ["acme", "acme"]
        await asyncio.sleep(max(0.0, retired_at - time.time()) + 0.2)
        assert [await _me(url, old_token) for url in (first, second)] == ["UNAUTHENTICATED"] * 2
        assert [await _me(url, new_token) for url in (first, second)] == ["acme", "acme"]


async def test_the_former_key_file_is_imported_once_and_the_database_ring_wins(settings, tmp_path):
    # given a deployment's key file from before the ring moved into the database
    legacy = KeyFile(tmp_path / "legacy-keys.json")
    legacy_kid = legacy.current.kid
    async for hub in start_hub(settings.with_(signing_key_file=legacy.path)):
        # then its keys are the ring: tokens it signed still work
        await hub.tenant("acme")
        token = mint_local_token(settings, legacy, "acme", ["viewer"], 3600)
        assert (await hub.ok(ME, token=token))["me"]["tenant"]["id"] == "acme"
        stored = await hub.state.database.db[COLLECTION].find_one({"_id": RING_ID})
        assert [key["kid"] for key in stored["keys"]] == [legacy_kid]
    # and a process started later with another file keeps the database's ring (the file is read only once)
    other = KeyFile(tmp_path / "other-keys.json")
    assert other.current.kid != legacy_kid
    async for hub in start_hub(settings.with_(signing_key_file=other.path)):
        assert [key.kid for key in hub.state.keyring.keys()] == [legacy_kid]
        stranger = mint_local_token(settings, other, "acme", ["viewer"], 3600)
        assert (await hub.post(ME, token=stranger)).json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_default_rotation_keeps_the_old_key_for_the_longest_token_lifetime(settings, monkeypatch, capsys):
    monkeypatch.setenv("LOTPULSE_MONGODB_URI", settings.mongodb_uri)
    monkeypatch.setenv("LOTPULSE_DATABASE", settings.database)
    # The CLI points the root logger at the stderr of the moment, here capsys's, which is closed after this test:
    # later tests would log into a closed file. Logging is left as it was found.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        assert lotpulse(["keys", "rotate"]) == 0
        assert "verifiable for 3660 s" in capsys.readouterr().out  # 1 h CLI tokens + clock leeway
        assert lotpulse(["keys", "list"]) == 0
        listed = capsys.readouterr().out.splitlines()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert len(listed) == 2 and listed[-1].endswith("signing") and "retires in" in listed[0]


def test_a_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    ring = KeyFile(tmp_path / "nested" / "keys.json")
    assert ring.current.kid and oct(ring.path.stat().st_mode & 0o777) == "0o600"


async def test_a_sign_in_started_on_one_process_finishes_on_another_after_the_oldest_key_retired(
    settings, oidc, mongo_uri, key_file, tmp_path
):
    # given a hub process that has served sign-ins since before a rotation
    async for hub in start_hub(settings):
        portal = await portal_for(hub, oidc)
        assert (await hub.http.get("/oauth/authorize")).status_code == 400
        ring = hub.state.keyring
        oldest = ring.keys()[0].kid
        # when the key its sign-in cookie's key derives from retires, and another process starts after that
        await ring.rotate(0.5)

        async def retired() -> bool:
            return ring.keys()[0].kid != oldest

        await _until(retired, "the old key never retired")
        async with hub_process(hub, mongo_uri, key_file, tmp_path / "other.log") as other:
            # then a sign-in started on the first process finishes on the other one (a load balancer's choice)
            url, _ = portal.oauth().create_authorization_url(f"{hub.url}/oauth/authorize",
                                                             code_verifier=pkce_pair()[0])
            to_idp = await portal.browser.get(url)
            at_idp = await portal.browser.get(to_idp.headers["location"])
            back = at_idp.headers["location"].replace(hub.url, other)
            assert back.startswith(f"{other}/oauth/callback?")
            answer = await portal.browser.get(back)
            assert answer.status_code == 302, answer.text
            assert "code" in query_of(answer.headers["location"])
