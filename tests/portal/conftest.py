"""Browser tests of the portal: Debian's Chromium driven by Playwright (never a browser Playwright downloads).

A small supply chain on a hub of its own: Acme (supplier) ships yogurt to Shopco (retailer), both sign in to their
portals through the loopback OpenID Connect provider of the OAuth tests; Rival and Rivalshop trade with each other
only, so none of their alerts may ever reach Shopco's page. Screenshots go to ``test-artifacts/portal/``
(``LOTPULSE_SCREENSHOTS`` to change it).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from hub.db import free_port
from tests.conftest import Hub, hub_settings, start_hub
from tests.oauth.conftest import ADD_MEMBER, CONFIGURE_PROVIDER, OidcProvider, create_client, serve_oidc

CHROMIUM = os.environ.get("LOTPULSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("LOTPULSE_SCREENSHOTS", ROOT / "test-artifacts" / "portal"))
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
WAIT_MS = 15_000  # generous: the machine is shared; tests wait on the page, never for a fixed time

UPSERT_SKU = "mutation($input: SkuInput!) { upsertSku(input: $input) { sku { id code } } }"
CREATE_LOCATION = "mutation($input: CreateLocationInput!) { createLocation(input: $input) { id code } }"
INVITE = "mutation($input: InvitePartnerInput!) { invitePartner(input: $input) { id } }"
ACCEPT = "mutation($id: ID!) { acceptPartnership(id: $id) { id } }"
CREATE_DISPATCH = "mutation($input: CreateDispatchInput!) { createDispatch(input: $input) { id ref } }"
RECORD_RECEIPT = """
mutation($input: RecordReceiptInput!) { recordReceipt(input: $input) { id outcome alertId } }
"""
RECORD_MOVEMENTS = """
mutation($movements: [MovementInput!]!, $locationId: ID) {
  recordMovements(movements: $movements, locationId: $locationId) { accepted }
}
"""
REGISTER_SENSOR = "mutation($input: RegisterSensorInput!) { registerSensor(input: $input) { sensor { id limitC } } }"
INGEST = """
mutation($input: [SensorReadingsInput!]!) { ingestReadings(input: $input) { accepted excursions { opened } } }
"""
ALERT = "query($id: ID!) { alert(id: $id) { id status acknowledgedBy note resolvedBy } }"


def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session", autouse=True)
def _fresh_screenshots() -> None:
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)


@dataclass
class Chain:
    """Tenants, their portal clients and the goods between them."""

    hub: Hub
    oidc: OidcProvider
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    clients: dict[str, str] = field(default_factory=dict)
    dc: str = ""  # Shopco's distribution centre
    counter: int = 0

    def t(self, name: str) -> str:
        return f"{name}-{self.suffix}"

    @property
    def acme(self) -> str:
        return self.t("acme")

    @property
    def shopco(self) -> str:
        return self.t("shopco")

    async def portal_tenant(self, tenant: str, member: str) -> None:
        """``tenant`` signs in through the loopback provider; ``member`` is a planner; a public portal client."""
        hub, oidc = self.hub, self.oidc
        await hub.ok(
            CONFIGURE_PROVIDER,
            {"input": {"issuer": oidc.issuer, "clientId": oidc.client_id, "clientSecret": oidc.client_secret}},
            tenant=tenant,
        )
        await hub.ok(ADD_MEMBER, {"input": {"issuer": oidc.issuer, "subject": member, "roles": ["planner"]}},
                     tenant=tenant)
        client_id, _ = await create_client(
            hub, tenant, name="Portal", kind="public", scopes=["read", "write"], roles=[],
            redirectUris=[f"{hub.url}/portal/"],
        )
        self.clients[tenant] = client_id

    async def partner(self, sharer: str, other: str, we_share: list[str], they_share: list[str]) -> None:
        data = await self.hub.ok(INVITE, {"input": {"partnerId": other, "weShare": we_share, "theyShare": they_share}},
                                 tenant=sharer)
        await self.hub.ok(ACCEPT, {"id": data["invitePartner"]["id"]}, tenant=other)

    async def dispatch(self, lot: str = "B240315", quantity: int = 100, shipper: str | None = None,
                       consignee: str | None = None, to: str = "DC-1") -> dict[str, str]:
        self.counter += 1
        ref = f"ASN-{self.suffix}-{self.counter}"
        line = {"sku": "YOG-1", "lotCode": lot, "quantity": quantity, "producedOn": str(date.today()),
                "expiresOn": str(date.today() + timedelta(days=30))}
        data = await self.hub.ok(
            CREATE_DISPATCH,
            {"input": {"ref": ref, "consigneeId": consignee or self.shopco, "toLocation": to, "lines": [line]}},
            tenant=shipper or self.acme,
        )
        return data["createDispatch"]

    async def mismatched_receipt(self, dispatch: dict[str, str], tenant: str | None = None) -> dict[str, Any]:
        """Receive lot B240314 against a notice of B240315 (a near miss): one ``mismatch`` alert."""
        line = {"sku": "YOG-1", "lotCode": "B240314", "quantity": 100,
                "expiresOn": str(date.today() + timedelta(days=30))}
        data = await self.hub.ok(RECORD_RECEIPT, {"input": {"dispatchId": dispatch["id"], "lines": [line]}},
                                 tenant=tenant or self.shopco, roles=("operator",))
        receipt = data["recordReceipt"]
        assert receipt["outcome"] == "mismatched" and receipt["alertId"]
        return receipt


async def build_chain(hub: Hub, oidc: OidcProvider) -> Chain:
    chain = Chain(hub, oidc)
    acme, shopco, rival, rivalshop = chain.acme, chain.shopco, chain.t("rival"), chain.t("rivalshop")
    for tenant, kind in ((acme, "supplier"), (shopco, "retailer"), (rival, "supplier"), (rivalshop, "retailer")):
        await hub.tenant(tenant, kind, name=tenant.split("-")[0].title())
    await chain.portal_tenant(shopco, "alice")
    await chain.portal_tenant(acme, "bob")
    await chain.portal_tenant(rivalshop, "carol")
    await chain.partner(acme, shopco, ["sku_master", "dispatches"], ["alerts", "stock", "sensors", "dispatches"])
    await chain.partner(rival, rivalshop, ["sku_master", "dispatches"], ["alerts", "dispatches"])
    yogurt = {"code": "YOG-1", "name": "Yogurt 500 g", "shelfLifeDays": 30, "storage": {"tempMaxC": 8.0},
              "excursionSensitivity": 1.0, "excursionMinMinutes": 15}
    for supplier in (acme, rival):
        await hub.ok(UPSERT_SKU, {"input": yogurt}, tenant=supplier)
    for tenant in (shopco, rivalshop):
        dc = {"code": "DC-1", "name": "Main DC", "kind": "dc"}
        data = await hub.ok(CREATE_LOCATION, {"input": dc}, tenant=tenant)
        if tenant == shopco:
            chain.dc = data["createLocation"]["id"]
    return chain


async def stock_lots(chain: Chain) -> None:
    """Three yogurt lots on Shopco's DC: one expired, one expiring in three days, one with a month to go."""
    today = date.today()
    received = (datetime.now(UTC) - timedelta(hours=7)).isoformat()  # in the DC before the sensor's six hours
    lots = (("L-OLD", -2, 5), ("L-SOON", 3, 12), ("L-FRESH", 30, 40))
    # Acme ships them first: a retailer books only lots it was shipped, never new lots of a brand's SKU.
    lines = [{"sku": "YOG-1", "lotCode": lot, "quantity": qty, "expiresOn": str(today + timedelta(days=days))}
             for lot, days, qty in lots]
    await chain.hub.ok(CREATE_DISPATCH, {"input": {"ref": f"STOCK-{chain.suffix}", "consigneeId": chain.shopco,
                                                   "lines": lines}}, tenant=chain.acme)
    movements = [
        {"sku": "YOG-1", "kind": "receipt", "quantity": qty, "idempotencyKey": f"stock-{lot}", "lotCode": lot,
         "expiresOn": str(today + timedelta(days=days)), "occurredAt": received}
        for lot, days, qty in lots
    ]
    await chain.hub.ok(RECORD_MOVEMENTS, {"movements": movements, "locationId": chain.dc}, tenant=chain.shopco,
                       roles=("operator",))


async def sensor_with_excursion(chain: Chain) -> str:
    """A sensor on the DC (yogurt there: limit 8 °C), six hours of readings with a 40-minute rise to 13 °C."""
    data = await chain.hub.ok(REGISTER_SENSOR, {"input": {"deviceId": "dc-probe-1", "name": "DC cold room",
                                                          "locationId": chain.dc}}, tenant=chain.shopco)
    sensor = data["registerSensor"]["sensor"]
    assert sensor["limitC"] == 8.0
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=6)
    temps = [4.0 + (i % 5) * 0.3 for i in range(360)]
    for i in range(200, 240):
        temps[i] = 13.0
    readings = [{"at": (start + timedelta(minutes=i)).isoformat(), "temperatureC": c} for i, c in enumerate(temps)]
    result = await chain.hub.ok(INGEST, {"input": [{"sensorId": sensor["id"], "readings": readings}]},
                                tenant=chain.shopco, roles=("integration",))
    assert result["ingestReadings"]["accepted"] == 360
    assert any(change["opened"] for change in result["ingestReadings"]["excursions"])
    return sensor["id"]


async def silent_sensor(chain: Chain) -> str:
    """A second sensor on the DC whose last reading is three hours old: past the offline threshold."""
    data = await chain.hub.ok(REGISTER_SENSOR, {"input": {"deviceId": "dc-probe-2", "name": "DC dock",
                                                          "locationId": chain.dc}}, tenant=chain.shopco)
    sensor = data["registerSensor"]["sensor"]
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=4)
    readings = [{"at": (start + timedelta(minutes=i)).isoformat(), "temperatureC": 5.0} for i in range(60)]
    await chain.hub.ok(INGEST, {"input": [{"sensorId": sensor["id"], "readings": readings}]},
                       tenant=chain.shopco, roles=("integration",))
    return sensor["id"]


@pytest.fixture(scope="module")
async def oidc_provider() -> AsyncIterator[OidcProvider]:
    provider = OidcProvider(port=free_port())
    async for running in serve_oidc(provider):
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (.ci/run does it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@dataclass
class Tab:
    """A browser page and everything it said on its console."""

    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # console errors a test provokes on purpose

    async def shot(self, name: str, full_page: bool = True) -> Path:
        path = screenshot_dir() / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
async def open_tab(browser: Browser) -> AsyncIterator[Any]:
    """Opens fresh browser contexts (no cookies, no storage); fails the test on any console error."""
    tabs: list[Tab] = []

    async def open_(viewport: dict[str, int] | None = None) -> Tab:
        context = await browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        await context.add_init_script(path=str(AXE))  # init scripts are not subject to the page's CSP
        page = await context.new_page()
        page.set_default_timeout(WAIT_MS)
        tab = Tab(page, context)

        def console(message: ConsoleMessage) -> None:
            if message.type in ("error", "assert"):
                tab.errors.append(f"console {message.type}: {message.text} at {message.location}")

        page.on("console", console)
        page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
        tabs.append(tab)
        return tab

    yield open_
    errors = [error for tab in tabs for error in tab.errors if not any(part in error for part in tab.expected)]
    for tab in tabs:
        await tab.context.close()
    assert errors == [], errors


async def sign_in(tab: Tab, hub: Hub, oidc: OidcProvider, client_id: str, user: str) -> None:
    """Open the portal link, press Sign in, and come back signed in (the provider signs ``user`` in)."""
    oidc.signed_in = user
    await tab.page.goto(f"{hub.url}/portal/?client={client_id}")
    await tab.page.get_by_role("button", name="Sign in").click()
    await tab.page.wait_for_selector("#session:not([hidden])")
    await tab.page.wait_for_selector("#live[data-state=live]")


async def serious_violations(tab: Tab) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now."""
    result = await tab.page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                             nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def stored_values(tab: Tab) -> str:
    """Everything in the page's localStorage and sessionStorage, as one string."""
    return await tab.page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )


@pytest.fixture(scope="module")
async def hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Hub]:
    async for running in start_hub(hub_settings(key_file, mongo_uri)):
        yield running
