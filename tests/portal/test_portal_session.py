"""The portal's session: tokens renewed in memory before they expire (the live feed follows), a reload signs in
again, sign-out revokes the sign-in at the hub, a non-member is turned away; the page's security headers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import Hub, hub_settings, start_hub
from tests.portal.conftest import (
    CREATE_DISPATCH,
    RECORD_MOVEMENTS,
    WAIT_MS,
    Chain,
    build_chain,
    serious_violations,
    sign_in,
    stored_values,
)

TOKEN_TTL = 8  # seconds: the page renews at half of it
REVOKED = '{ auditLog(filter: {action: "token.revoked"}) { edges { node { action clientId } } } }'
ADD_MEMBER = "mutation($input: AddMemberInput!) { addMember(input: $input) { id } }"
REMOVE_MEMBER = "mutation($id: ID!) { removeMember(id: $id) }"


@pytest.fixture(scope="module")
async def hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Hub]:
    settings = hub_settings(
        key_file, mongo_uri, oauth_access_token_ttl_seconds=TOKEN_TTL, oauth_revocation_cache_seconds=1
    )
    async for running in start_hub(settings):
        yield running


@pytest.fixture(scope="module")
async def chain(hub, oidc_provider) -> Chain:
    return await build_chain(hub, oidc_provider)


async def test_session_renews_in_memory_and_the_live_feed_follows(hub, chain, oidc_provider, open_tab):
    # given a signed-in page whose first access token has since expired (renewed twice: 2 x TTL/2)
    tab = await open_tab()
    await sign_in(tab, hub, oidc_provider, chain.clients[chain.shopco], "alice")
    await tab.page.locator("#who[data-renewals='2']").wait_for()
    assert "eyJ" not in await stored_values(tab) and "lprt_" not in await stored_values(tab)
    # when a mismatch is recorded
    receipt = await chain.mismatched_receipt(await chain.dispatch())
    # then it still arrives live, and the page can still act on it
    card = tab.page.locator(f"article.alert[data-alert-id='{receipt['alertId']}']")
    await card.wait_for()
    await card.get_by_role("button", name="Acknowledge").click()
    await tab.page.locator(f"article.alert[data-alert-id='{receipt['alertId']}'][data-status=acknowledged]").wait_for()


async def test_reload_signs_in_again_and_sign_out_revokes_the_sign_in(hub, chain, oidc_provider, open_tab):
    tab = await open_tab()
    await sign_in(tab, hub, oidc_provider, chain.clients[chain.shopco], "alice")
    # a reload loses the in-memory token: the page signs in again by itself
    await tab.page.evaluate("() => { window.beforeReload = true; }")
    await tab.page.reload()
    await tab.page.wait_for_selector("#live[data-state=live]")
    assert await tab.page.evaluate("() => window.beforeReload === undefined")
    assert await tab.page.locator("#who").inner_text() == "alice · Shopco"
    # sign-out: the sign-in form is back, and the hub revoked the refresh token's whole family
    await tab.page.get_by_role("button", name="Sign out").click()
    await tab.page.get_by_text("You are signed out.").wait_for()
    assert await tab.page.locator("#nav").is_hidden()
    deadline = time.monotonic() + WAIT_MS / 1000
    while not (await hub.ok(REVOKED, tenant=chain.shopco))["auditLog"]["edges"]:
        assert time.monotonic() < deadline, "the page did not revoke its refresh token"
    revoked = (await hub.ok(REVOKED, tenant=chain.shopco))["auditLog"]["edges"]
    assert [edge["node"]["clientId"] for edge in revoked] == [chain.clients[chain.shopco]]
    # and a reload now stays signed out
    await tab.page.reload()
    await tab.page.get_by_role("button", name="Sign in").wait_for()
    assert await tab.page.locator("#session").is_hidden()


async def test_someone_who_is_not_a_member_is_turned_away(hub, chain, oidc_provider, open_tab):
    tab = await open_tab()
    oidc_provider.signed_in = "mallory"
    await tab.page.goto(f"{hub.url}/portal?client={chain.clients[chain.shopco]}")
    await tab.page.get_by_role("button", name="Sign in").click()
    await tab.page.get_by_text("Sign-in failed: you are not a member of this organisation").wait_for()
    assert await tab.page.locator("#nav").is_hidden()
    assert "code=" not in tab.page.url  # the answer never stays in the address bar
    assert await serious_violations(tab) == []
    await tab.shot("sign-in")


async def test_older_alerts_load_page_by_page(hub, chain, oidc_provider, open_tab):
    # given more alerts than the page reads at first: 60 expired lots, one expiry alert each
    lots = [f"X-{i:03d}" for i in range(60)]
    expired = str(date.today() - timedelta(days=1))
    lines = [{"sku": "YOG-1", "lotCode": lot, "quantity": 1, "expiresOn": expired} for lot in lots]
    await hub.ok(CREATE_DISPATCH, {"input": {"ref": f"OLD-{chain.suffix}", "consigneeId": chain.shopco,
                                             "lines": lines}}, tenant=chain.acme)
    movements = [{"sku": "YOG-1", "kind": "receipt", "quantity": 1, "idempotencyKey": f"old-{lot}", "lotCode": lot,
                  "expiresOn": expired} for lot in lots]
    await hub.ok(RECORD_MOVEMENTS, {"movements": movements, "locationId": chain.dc}, tenant=chain.shopco,
                 roles=("operator",))
    tab = await open_tab()
    await sign_in(tab, hub, oidc_provider, chain.clients[chain.shopco], "alice")
    cards = tab.page.locator("article.alert[data-kind=expiry_risk]")
    await cards.first.wait_for()
    first_page = await cards.count()
    assert first_page < len(lots)
    # when the user asks for older ones
    await tab.page.get_by_role("button", name="Load older alerts").click()
    # then every one is there, newest first, and the button is gone
    await tab.page.get_by_role("button", name="Load older alerts").wait_for(state="hidden")
    assert await cards.count() >= len(lots)
    created = await tab.page.locator("article.alert").evaluate_all("els => els.map(el => el.dataset.alertId)")
    assert len(created) == len(set(created))


async def test_a_removed_member_is_signed_out_of_the_open_page(hub, chain, oidc_provider, open_tab):
    # given dora, a member of Shopco, on the portal
    issuer = oidc_provider.issuer
    member = await hub.ok(ADD_MEMBER, {"input": {"issuer": issuer, "subject": "dora", "roles": ["planner"]}},
                          tenant=chain.shopco)
    tab = await open_tab()
    tab.expected.append("status of 400")  # the refused renewal: the browser logs the token endpoint's answer
    await sign_in(tab, hub, oidc_provider, chain.clients[chain.shopco], "dora")
    # when Shopco's admin removes her
    await hub.ok(REMOVE_MEMBER, {"id": member["addMember"]["id"]}, tenant=chain.shopco)
    # then the page's next renewal (or its live feed, closed by the hub) is refused, and she is signed out
    await tab.page.get_by_text("Your session has ended. Sign in again.").wait_for()
    assert await tab.page.locator("#nav").is_hidden() and await tab.page.locator("#view").inner_text() == ""


async def test_the_page_is_served_with_a_strict_content_security_policy(hub):
    response = await hub.http.get("/portal/")
    policy = response.headers["content-security-policy"]
    assert response.status_code == 200 and "script-src 'self'" in policy and "default-src 'none'" in policy
    assert response.headers["referrer-policy"] == "no-referrer" and response.headers["cache-control"] == "no-store"
    script = await hub.http.get("/portal/static/js/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert (await hub.http.get("/portal/static/../../app.py")).status_code == 404
    moved = await hub.http.get("/portal?client=x")
    assert moved.status_code == 307 and moved.headers["location"] == "/portal/?client=x"
