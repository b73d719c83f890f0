"""Who may manage endpoints and who hears which events: tenants are isolated, partners hear only what is shared."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hub.events.log import build_event, emit_many
from tests.webhooks.helpers import (
    CREATE_ENDPOINT,
    DELETE_ENDPOINT,
    DELIVERIES,
    ENDPOINTS,
    REPLAY,
    REVOKE,
    ROTATE_SECRET,
    UPDATE_ENDPOINT,
    create_endpoint,
    deliveries,
    partners,
    raise_mismatch,
)
from webhooks.clock import ManualClock
from webhooks.runtime import build


@pytest.fixture
async def loops(quiet_hub):
    dispatcher, worker = build(quiet_hub.settings, ManualClock())
    yield dispatcher, worker
    await worker.close()


def codes(body: dict) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def test_another_tenant_cannot_see_change_rotate_replay_or_delete_an_endpoint(quiet_hub, receiver):
    # given
    await quiet_hub.tenant("acme", "retailer")
    await quiet_hub.tenant("rival", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/acme"))
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    # when / then
    listed = await quiet_hub.ok(ENDPOINTS, tenant="rival")
    assert listed["webhookEndpoints"]["edges"] == []
    attempts = [
        (UPDATE_ENDPOINT, {"input": {"id": endpoint_id, "url": receiver.at("/stolen")}}),
        (ROTATE_SECRET, {"id": endpoint_id}),
        (REPLAY, {"id": endpoint_id, "since": since}),
        (DELETE_ENDPOINT, {"id": endpoint_id}),
        (DELIVERIES, {"filter": {"endpointId": endpoint_id}}),
    ]
    for document, variables in attempts:
        assert codes(await quiet_hub.gql(document, variables, tenant="rival")) == ["NOT_FOUND"]
    [mine] = (await quiet_hub.ok(ENDPOINTS, tenant="acme"))["webhookEndpoints"]["edges"]
    assert mine["node"]["url"] == receiver.at("/acme")


async def test_only_tenant_admins_manage_webhooks(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    endpoint_id, _ = await create_endpoint(quiet_hub, "acme", receiver.at("/acme"))
    for role in ("planner", "operator", "viewer", "integration"):
        create = await quiet_hub.gql(
            "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) { secret } }",
            {"u": receiver.at("/x")}, tenant="acme", roles=(role,),
        )
        assert codes(create) == ["FORBIDDEN"]
        assert codes(await quiet_hub.gql(ENDPOINTS, tenant="acme", roles=(role,))) == ["FORBIDDEN"]
        assert codes(await quiet_hub.gql(DELETE_ENDPOINT, {"id": endpoint_id}, tenant="acme", roles=(role,))) == [
            "FORBIDDEN"
        ]


async def test_the_secret_is_answered_once_and_never_logged(quiet_hub, receiver, loops, caplog):
    dispatcher, worker = loops
    await quiet_hub.tenant("acme", "retailer")
    with caplog.at_level(logging.INFO):  # the driver's DEBUG command log echoes every document it writes
        endpoint_id, secret = await create_endpoint(quiet_hub, "acme", receiver.at("/acme"))
        assert secret.startswith("whsec_")
        await raise_mismatch(quiet_hub, "acme", [])
        await dispatcher.run_once()
        await worker.run_once()
        listed = await quiet_hub.gql(ENDPOINTS, tenant="acme")
        logged = await quiet_hub.gql(DELIVERIES, tenant="acme")
    # then: no query can even ask for it, and nothing printed it
    asked = await quiet_hub.gql("{ webhookEndpoints { edges { node { id secret } } } }", tenant="acme")
    assert codes(asked) == ["BAD_USER_INPUT"]
    raw = secret.removeprefix("whsec_")
    assert raw not in str(listed) and raw not in str(logged)
    assert all(raw not in record.getMessage() for record in caplog.records)
    assert len(receiver.requests) == 1


async def test_partner_without_alerts_scope_gets_nothing(quiet_hub, receiver, loops):
    # given: acme shares only its SKU master with bigmart, yet names bigmart in an alert's audience
    dispatcher, worker = loops
    await quiet_hub.tenant("acme", "supplier")
    await quiet_hub.tenant("bigmart", "retailer")
    await partners(quiet_hub, "acme", "bigmart", ["sku_master"])
    await create_endpoint(quiet_hub, "acme", receiver.at("/acme"))
    await create_endpoint(quiet_hub, "bigmart", receiver.at("/bigmart"))
    # when
    await raise_mismatch(quiet_hub, "acme", ["bigmart"])
    await dispatcher.run_once()
    await worker.run_once()
    # then
    assert len(receiver.on("/acme")) == 1
    assert receiver.on("/bigmart") == []
    assert await deliveries(quiet_hub, "bigmart") == []


async def test_partner_sharing_alerts_hears_them_until_the_partnership_is_revoked(quiet_hub, receiver, loops):
    # given
    dispatcher, worker = loops
    await quiet_hub.tenant("acme", "supplier")
    await quiet_hub.tenant("bigmart", "retailer")
    partnership = await partners(quiet_hub, "acme", "bigmart", ["alerts"])
    _, secret = await create_endpoint(quiet_hub, "bigmart", receiver.at("/bigmart"))
    await raise_mismatch(quiet_hub, "acme", ["bigmart"], key="before")
    await dispatcher.run_once()
    await worker.run_once()
    [heard] = receiver.on("/bigmart")
    assert heard.verify(secret)["data"]["ownerId"] == "acme"
    # when: revoked, and an event whose audience was computed before the revocation arrives afterwards
    await quiet_hub.ok(REVOKE, {"id": partnership}, tenant="acme")
    await raise_mismatch(quiet_hub, "acme", ["bigmart"], key="after")
    assert await dispatcher.run_once() == 0
    await worker.run_once()
    # then
    assert len(receiver.on("/bigmart")) == 1


async def test_a_revocation_stops_retries_already_made_for_the_partner(quiet_hub, receiver):
    # given: acme's alert reached both ERPs while shared, and both answered 500 (a retry is due in 5 s)
    clock = ManualClock()
    dispatcher, worker = build(quiet_hub.settings, clock)
    await quiet_hub.tenant("acme", "supplier")
    await quiet_hub.tenant("bigmart", "retailer")
    partnership = await partners(quiet_hub, "acme", "bigmart", ["alerts"])
    await create_endpoint(quiet_hub, "acme", receiver.at("/acme"))
    bigmart_endpoint, _ = await create_endpoint(quiet_hub, "bigmart", receiver.at("/bigmart"))
    receiver.script.update({"/acme": [500], "/bigmart": [500]})
    await raise_mismatch(quiet_hub, "acme", ["bigmart"])
    assert await dispatcher.run_once() == 2
    assert await worker.run_once() == 2
    # when: acme revokes the partnership before the retry falls due
    await quiet_hub.ok(REVOKE, {"id": partnership}, tenant="acme")
    clock.advance(timedelta(seconds=5))
    await worker.run_once()
    clock.advance(timedelta(days=1))
    await worker.run_once()
    await worker.close()
    # then: acme's own ERP gets its retry; bigmart's gets nothing more, and its delivery is given up
    assert [r.status for r in receiver.on("/acme")] == [500, 200]
    assert [r.status for r in receiver.on("/bigmart")] == [500]
    [given_up] = await deliveries(quiet_hub, "bigmart", bigmart_endpoint)
    assert given_up["state"] == "failed" and "no longer shares" in given_up["lastError"]
    assert [a["statusCode"] for a in given_up["attempts"]] == [500, None]


async def test_an_endpoint_hears_only_its_event_types(quiet_hub, receiver, loops):
    dispatcher, worker = loops
    await quiet_hub.tenant("acme", "retailer")
    await create_endpoint(quiet_hub, "acme", receiver.at("/stock"), ["stock.changed"])
    await create_endpoint(quiet_hub, "acme", receiver.at("/all"))
    await raise_mismatch(quiet_hub, "acme", [])
    assert await dispatcher.run_once() == 1
    await worker.run_once()
    assert receiver.on("/stock") == [] and len(receiver.on("/all")) == 1


async def test_unknown_event_types_are_refused(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    body = await quiet_hub.gql(CREATE_ENDPOINT, {"input": {"url": receiver.at("/x"), "eventTypes": ["stock.exploded"]}},
                               tenant="acme")
    assert codes(body) == ["BAD_USER_INPUT"]


def scoped_token(hub, tenant: str, scope: str) -> str:
    """An admin's token that, like an OAuth access token, carries only ``scope``."""
    now = int(time.time())
    claims = {
        "iss": hub.settings.issuer, "aud": hub.settings.audience, "sub": f"erp:{tenant}", "iat": now, "nbf": now,
        "exp": now + 600, "jti": uuid.uuid4().hex, "scope": scope,
        hub.settings.claim_namespace: {"tenant": tenant, "roles": ["admin"]},
    }
    return hub.keyring.sign(claims)


async def test_a_scoped_token_needs_the_webhooks_manage_scope(quiet_hub, receiver):
    await quiet_hub.tenant("acme", "retailer")
    without = scoped_token(quiet_hub, "acme", "alerts:read")
    assert codes(await quiet_hub.gql(ENDPOINTS, token=without)) == ["FORBIDDEN"]
    granted = scoped_token(quiet_hub, "acme", "alerts:read webhooks:manage")
    body = await quiet_hub.gql(
        "mutation($u: String!) { createWebhookEndpoint(input: {url: $u}) { secret } }", {"u": receiver.at("/x")},
        token=granted,
    )
    assert "errors" not in body and body["data"]["createWebhookEndpoint"]["secret"].startswith("whsec_")


async def test_dispatch_parties_hear_dispatch_events_but_stock_needs_the_stock_scope(quiet_hub, receiver, loops):
    # given: Acme ships to Shopco; they are partners sharing nothing
    dispatcher, worker = loops
    await quiet_hub.tenant("acme", "supplier")
    await quiet_hub.tenant("shopco", "retailer")
    await partners(quiet_hub, "acme", "shopco", [])
    await create_endpoint(quiet_hub, "shopco", receiver.at("/shopco"))
    # when: a dispatch names Shopco as a party, and a stock change of Acme's names it too
    await emit_many(None, [
        build_event("dispatch.created", "acme", ["shopco"], {"dispatch": {"id": "d1", "ref": "ASN-1"}}),
        build_event("stock.changed", "acme", ["shopco"], {"positions": []}),
    ])
    await dispatcher.run_once()
    await worker.run_once()
    # then: parties to a dispatch see it by being parties; stock needs the partnership's stock scope
    assert [json.loads(r.body)["type"] for r in receiver.on("/shopco")] == ["dispatch.created"]
