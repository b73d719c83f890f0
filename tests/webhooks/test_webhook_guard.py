"""SSRF guard: private, loopback, link-local and metadata targets are refused at creation and at send time."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator

import pytest

from hub.config import Settings
from tests.conftest import Hub, start_hub
from tests.webhooks.helpers import create_endpoint, deliveries, raise_mismatch
from webhooks import guard
from webhooks.clock import ManualClock
from webhooks.runtime import build
from webhooks.worker import Worker

REFUSED = [
    "http://127.0.0.1/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://localhost:8080/hook",
    "https://192.168.1.20/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",
]


@pytest.fixture
async def strict_hub(settings: Settings) -> AsyncIterator[Hub]:
    async for running in start_hub(settings.with_(webhook_allow_private=False, webhook_worker=False)):
        yield running


async def test_private_targets_are_refused_when_not_allowed():
    for url in REFUSED:
        with pytest.raises(guard.UnsafeURL):
            await guard.check(url, allow_private=False)
        assert (await guard.check(url, allow_private=True)).pinned is False


async def test_only_plain_http_and_https_urls_are_accepted():
    for url in ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "https://u:p@example.com/"]:
        with pytest.raises(guard.UnsafeURL):
            await guard.check(url, allow_private=True)


async def test_creating_endpoints_at_private_addresses_is_refused_through_the_api(strict_hub):
    await strict_hub.tenant("acme", "retailer")
    for url in ["http://127.0.0.1/hook", "http://10.0.0.1/hook", "http://169.254.169.254/", "http://[::1]/hook",
                "http://localhost/hook"]:
        body = await strict_hub.gql(
            "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) { secret } }", {"u": url}, tenant="acme"
        )
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], url
        assert body["errors"][0]["extensions"]["field"] == "url"


async def test_a_public_name_is_pinned_to_its_checked_address(monkeypatch):
    async def resolve(host: str, port: int) -> list:
        return [ipaddress.ip_address("93.184.216.34")]

    monkeypatch.setattr(guard, "resolve", resolve)
    target = await guard.check("https://erp.example.com:8443/hooks?x=1", allow_private=False)
    assert target.url == "https://93.184.216.34:8443/hooks?x=1"
    assert target.headers == {"host": "erp.example.com:8443"}
    assert target.extensions == {"sni_hostname": "erp.example.com"}


async def test_a_name_that_rebinds_to_a_private_address_is_refused_at_send_time(monkeypatch):
    answers = iter([["93.184.216.34"], ["93.184.216.34", "10.1.2.3"]])

    async def resolve(host: str, port: int) -> list:
        return [ipaddress.ip_address(a) for a in next(answers)]

    monkeypatch.setattr(guard, "resolve", resolve)
    await guard.check("https://erp.example.com/hook", allow_private=False)
    with pytest.raises(guard.UnsafeURL):
        await guard.check("https://erp.example.com/hook", allow_private=False)


async def test_the_worker_rechecks_the_address_before_sending(quiet_hub, receiver):
    # given: an endpoint accepted while loopback was allowed
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/hook"))
    await raise_mismatch(quiet_hub, "acme", [])
    clock = ManualClock()
    dispatcher, _ = build(quiet_hub.settings, clock)
    await dispatcher.run_once()
    # when: a worker that does not allow private addresses picks it up
    strict = Worker(quiet_hub.settings.with_(webhook_allow_private=False), clock=clock)
    try:
        assert await strict.run_once() == 1
    finally:
        await strict.close()
    # then
    assert receiver.requests == []
    [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
    assert logged["state"] == "pending"
    assert logged["attempts"][0]["error"].startswith("refused:")
