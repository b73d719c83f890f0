"""Portal latency: how long a mismatched receipt takes to show on a signed-in portal page, next to a bare subscriber.

Starts one hub process (``python -m hub.cli serve``) on an embedded SecantusDB, a loopback OpenID Connect provider
(the one the OAuth tests use) and Debian's headless Chromium (``/usr/bin/chromium``, driven by Playwright). Shopco's
planner signs in to the portal; a plain graphql-transport-ws client subscribes to Shopco's alerts beside it. Then,
one at a time, Acme ships a dispatch and Shopco records a mismatched receipt over HTTP; each round times, from just
before the receipt is sent, (a) the bare subscriber parsing the alert (the floor: commit, change stream, fan-out,
socket) and (b) the alert's card entering the page's DOM (the same, plus the browser's socket and rendering).

    python -m bench.portal [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

# Run as a script, bench/ comes first on sys.path and bench/webhooks.py would shadow the webhooks package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx
import uvicorn
from playwright.async_api import async_playwright
from websockets.asyncio.client import connect

from bench.harness import percentile, running_hub, wait_ready
from hub.db import free_port
from tenants import service as tenant_service
from tests.oauth.conftest import OidcProvider
from tests.portal.conftest import CHROMIUM, CHROMIUM_FLAGS

SUBSCRIPTION = "subscription { alerts { cursor alert { id title } } }"


async def gql(http: httpx.AsyncClient, token: str, query: str, variables: dict) -> dict:
    body = (await http.post("/graphql", json={"query": query, "variables": variables},
                            headers={"authorization": f"Bearer {token}"})).json()
    if "errors" in body:
        raise SystemExit(f"seeding failed: {body['errors']}")
    return body["data"]


async def seed(http: httpx.AsyncClient, hub, oidc: OidcProvider) -> str:
    """Acme ships yogurt to Shopco; Shopco signs in through ``oidc`` with a public portal client. Answers its id."""
    for tenant, kind in (("acme", "supplier"), ("shopco", "retailer")):
        await tenant_service.create_tenant(tenant, tenant.title(), kind)
    acme, shop = hub.token("acme", "admin"), hub.token("shopco", "admin")
    invite = await gql(http, acme, "mutation($i: InvitePartnerInput!) { invitePartner(input: $i) { id } }",
                       {"i": {"partnerId": "shopco", "weShare": ["sku_master", "dispatches"],
                              "theyShare": ["alerts", "dispatches"]}})
    await gql(http, shop, "mutation($id: ID!) { acceptPartnership(id: $id) { id } }",
              {"id": invite["invitePartner"]["id"]})
    await gql(http, acme, "mutation($i: SkuInput!) { upsertSku(input: $i) { created } }",
              {"i": {"code": "YOG-1", "name": "Yogurt", "shelfLifeDays": 30}})
    await gql(http, shop, "mutation($i: CreateLocationInput!) { createLocation(input: $i) { id } }",
              {"i": {"code": "DC-1", "name": "DC", "kind": "dc"}})
    await gql(http, shop, "mutation($i: IdentityProviderInput!) { configureIdentityProvider(input: $i) { issuer } }",
              {"i": {"issuer": oidc.issuer, "clientId": oidc.client_id, "clientSecret": oidc.client_secret}})
    await gql(http, shop, "mutation($i: AddMemberInput!) { addMember(input: $i) { id } }",
              {"i": {"issuer": oidc.issuer, "subject": "alice", "roles": ["planner"]}})
    client = await gql(http, shop,
                       "mutation($i: CreateOAuthClientInput!) { createOAuthClient(input: $i) { client { clientId } } }",
                       {"i": {"name": "Portal", "kind": "public", "scopes": ["read", "write"], "roles": [],
                              "redirectUris": [f"{hub.url}/portal/"]}})
    return client["createOAuthClient"]["client"]["clientId"]


async def round_trip(http: httpx.AsyncClient, hub, n: int) -> tuple[str, float]:
    """One dispatch and its mismatched receipt; answers the dispatch ref and when the receipt was sent (epoch ms)."""
    line = {"sku": "YOG-1", "lotCode": "B240315", "quantity": 10, "expiresOn": str(date.today() + timedelta(days=30))}
    ref = f"ASN-{n}"
    data = await gql(http, hub.token("acme", "admin"),
                     "mutation($i: CreateDispatchInput!) { createDispatch(input: $i) { id } }",
                     {"i": {"ref": ref, "consigneeId": "shopco", "toLocation": "DC-1", "lines": [line]}})
    sent = time.time() * 1000
    await gql(http, hub.token("shopco", "operator"),
              "mutation($i: RecordReceiptInput!) { recordReceipt(input: $i) { outcome } }",
              {"i": {"dispatchId": data["createDispatch"]["id"], "lines": [{**line, "lotCode": "B240314"}]}})
    return ref, sent


async def main(rounds: int) -> None:
    async with running_hub() as hub, httpx.AsyncClient(base_url=hub.url, timeout=60) as http:
        await wait_ready(hub.port, hub.process)
        oidc = OidcProvider(port=free_port())
        idp = uvicorn.Server(uvicorn.Config(oidc.app(), host="127.0.0.1", port=oidc.port, log_level="warning"))
        idp_task = asyncio.create_task(idp.serve())
        while not idp.started:
            await asyncio.sleep(0.01)
        client_id = await seed(http, hub, oidc)
        arrived: dict[str, float] = {}  # dispatch ref -> when the bare subscriber parsed its alert (epoch ms)
        ws = await connect(hub.url.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"])
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"authorization": f"Bearer {hub.token('shopco', 'viewer')}"}}))
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))

        async def listen() -> None:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "next":
                    title = message["payload"]["data"]["alerts"]["alert"]["title"]
                    arrived.setdefault(title.split()[3], time.time() * 1000)

        listener = asyncio.create_task(listen())
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            page = await browser.new_page()
            await page.goto(f"{hub.url}/portal/?client={client_id}")
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_selector("#live[data-state=live]")
            await page.evaluate("""() => {
                window.arrivals = {};
                new MutationObserver(() => {
                    for (const h of document.querySelectorAll('article.alert h2')) {
                        const ref = h.textContent.split(' ')[3];
                        if (!(ref in window.arrivals)) window.arrivals[ref] = Date.now();
                    }
                }).observe(document.getElementById('view'), {childList: true, subtree: true});
            }""")
            page_ms, bare_ms = [], []
            for n in range(rounds):
                ref, sent = await round_trip(http, hub, n)
                await page.wait_for_function(f"() => '{ref}' in window.arrivals", timeout=30_000)
                while ref not in arrived:
                    await asyncio.sleep(0.01)
                page_ms.append(await page.evaluate(f"() => window.arrivals['{ref}']") - sent)
                bare_ms.append(arrived[ref] - sent)
            await browser.close()
        listener.cancel()
        await ws.close()
        idp.should_exit = True
        await idp_task
    for name, values in (("bare subscriber (floor)", bare_ms), ("portal page", page_ms)):
        print(f"{name:24s} p50 {percentile(values, 0.5):6.0f} ms  p95 {percentile(values, 0.95):6.0f} ms  "
              f"max {max(values):6.0f} ms  ({len(values)} receipts)")
    print(f"portal / floor at p50: {percentile(page_ms, 0.5) / percentile(bare_ms, 0.5):.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(main(parser.parse_args().rounds))
