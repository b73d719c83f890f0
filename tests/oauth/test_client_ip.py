"""Where a client is: X-Forwarded-For counts only from configured trusted proxies, and failed-authentication limits
are keyed on the client id first, so neither a spoofed header nor a shared load-balancer address decides them."""

from __future__ import annotations

from tests.conftest import start_hub
from tests.oauth.conftest import create_client
from tests.oauth.test_audit import _actions

TOKEN = "/oauth/token"
GRANT = {"grant_type": "client_credentials"}


async def guess(hub, n: int, forwarded_for: str) -> int:
    response = await hub.http.post(TOKEN, data=GRANT, auth=(f"lpc_guess{n}", "x"),
                                   headers={"x-forwarded-for": forwarded_for})
    return response.status_code


async def test_without_trusted_proxies_a_forwarded_for_header_changes_nothing(settings):
    async for hub in start_hub(settings.with_(oauth_failed_auth_per_ip=3)):
        await hub.tenant("acme")
        client_id, secret = await create_client(hub, "acme", scopes=["read"], roles=["integration"])
        # given: a guesser on loopback names a new address in every request
        assert [await guess(hub, n, f"203.0.113.{n}") for n in range(3)] == [401, 401, 401]
        # then: its own address is limited all the same
        assert await guess(hub, 3, "203.0.113.99") == 429
        # and a real client, named by its id, still gets its token from that address
        response = await hub.http.post(TOKEN, data=GRANT, auth=(client_id, secret),
                                       headers={"x-forwarded-for": "203.0.113.99"})
        assert response.status_code == 200
        # and the audit log records the peer, not the claimed address
        ips = {entry["ip"] for entry in await _actions(hub, "acme") if entry["action"] == "token.issued"}
        assert ips == {"127.0.0.1"}


async def test_behind_a_trusted_proxy_each_client_address_has_its_own_limit(settings):
    async for hub in start_hub(settings.with_(oauth_failed_auth_per_ip=3, trusted_proxies=("127.0.0.0/8",))):
        await hub.tenant("acme")
        client_id, secret = await create_client(hub, "acme", scopes=["read"], roles=["integration"])
        # given: the proxy appends the address it saw; whatever the client put before it is not believed
        spoofed = "198.51.100.1, 203.0.113.5"
        assert [await guess(hub, n, spoofed) for n in range(3)] == [401, 401, 401]
        # then: 203.0.113.5 is limited, the client next to it behind the same proxy is not
        assert await guess(hub, 3, "203.0.113.5") == 429
        assert await guess(hub, 4, "198.51.100.1, 203.0.113.6") == 401
        # and a known client id is judged by its own limit, even from the limited address
        response = await hub.http.post(TOKEN, data=GRANT, auth=(client_id, secret),
                                       headers={"x-forwarded-for": "203.0.113.5"})
        assert response.status_code == 200
        ips = {entry["ip"] for entry in await _actions(hub, "acme") if entry["action"] == "token.issued"}
        assert ips == {"203.0.113.5"}


def test_lotpulse_serve_never_lets_uvicorn_trust_forwarded_headers(settings):
    from hub.app import uvicorn_options

    options = uvicorn_options(settings)
    assert options["proxy_headers"] is False and options["forwarded_allow_ips"] == ""
