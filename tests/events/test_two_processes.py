"""End to end across processes: two real hub processes on one database, subscribers spread over both.

The hubs are ``python -m hub.cli serve`` subprocesses sharing the test's database, signing key and public URL (so
tokens minted by the test verify on either); the in-process ``hub`` fixture only sets the scene.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from hub.db import free_port
from hub.events.log import emit
from hub.models.event import Event
from tests.events.conftest import ACKNOWLEDGE, ALERTS_SUBSCRIPTION, Listener, alert, partner
from tests.supply.conftest import CREATE_DISPATCH, CREATE_LOCATION, RECORD_RECEIPT, UPSERT_SKU


@asynccontextmanager
async def hub_process(hub, mongo_uri: str, key_file: Path, log: Path) -> AsyncIterator[str]:
    """A hub process on a free port; answers its base URL once it is ready."""
    port = free_port()
    env = {
        **os.environ,
        "LOTPULSE_MONGODB_URI": mongo_uri,
        "LOTPULSE_DATABASE": hub.settings.database,
        "LOTPULSE_PORT": str(port),
        "LOTPULSE_HOST": "127.0.0.1",
        "LOTPULSE_SIGNING_KEY_FILE": str(key_file),
        "LOTPULSE_PUBLIC_URL": hub.url,
        "LOTPULSE_DATA_DIR": str(log.parent),
        "LOTPULSE_LOG_LEVEL": "WARNING",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def gql(url: str, token: str, query: str, variables: dict) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post("/graphql", json={"query": query, "variables": variables},
                                     headers={"authorization": f"Bearer {token}"})
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def last_cursor(tenant: str) -> str:
    event = await Event.find({"audience": tenant}).sort("-seq").first_or_none()
    assert event is not None
    return str(event.id)


async def test_two_hub_processes_deliver_alerts_to_entitled_partners_only(hub, mongo_uri, key_file, tmp_path):
    # given: Acme (supplier) ships to Shopco (retailer); they share alerts; Rival is unrelated
    async with hub_process(hub, mongo_uri, key_file, tmp_path / "one.log") as one, \
            hub_process(hub, mongo_uri, key_file, tmp_path / "two.log") as two:
        for tenant, kind in (("acme", "supplier"), ("shopco", "retailer"), ("rival", "retailer")):
            await hub.tenant(tenant, kind)
        await partner(hub, "acme", "shopco", ["alerts", "dispatches"], ["alerts", "dispatches"])
        await hub.ok(UPSERT_SKU, {"input": {"code": "YOG-1", "name": "Yogurt", "shelfLifeDays": 30}}, tenant="acme")
        await hub.ok(CREATE_LOCATION, {"input": {"code": "DC-1", "name": "DC", "kind": "dc"}}, tenant="shopco")
        line = {"sku": "YOG-1", "lotCode": "B240315", "quantity": 100, "producedOn": "2024-03-15",
                "expiresOn": "2024-04-14"}
        dispatch = (await hub.ok(CREATE_DISPATCH, {"input": {"ref": "ASN-1", "consigneeId": "shopco",
                                                              "toLocation": "DC-1", "lines": [line]}},
                                 tenant="acme"))["createDispatch"]
        await emit(None, "stock.changed", "rival", [], {"positions": []})  # a cursor for Rival too
        # subscribers on different processes, each from a cursor so none can miss anything while connecting; only
        # mismatch alerts (receiving stock may also raise expiry-risk alerts, which are not this story)
        listeners = {
            tenant: Listener(url.replace("http", "ws") + "/graphql", hub.token(tenant, "viewer"), ALERTS_SUBSCRIPTION,
                             {"after": await last_cursor(tenant), "filter": {"kinds": ["mismatch"]}}).start()
            for tenant, url in (("acme", one), ("shopco", two), ("rival", one))
        }
        try:
            await asyncio.sleep(0.5)  # let them go live, so what follows travels by change stream
            # when: Shopco records a mismatched receipt on process two
            started = time.monotonic()
            receipt = (await gql(two, hub.token("shopco", "operator"), RECORD_RECEIPT, {"input": {
                "dispatchId": dispatch["id"], "final": True,
                "lines": [{"sku": "YOG-1", "lotCode": "B240314", "quantity": 100}]}}))["recordReceipt"]
            assert receipt["outcome"] == "mismatched"
            # then: Acme (on process one) and Shopco (on two) hear it (the deadline is generous: 2 cores, shared); Rival
            # hears nothing
            for tenant in ("acme", "shopco"):
                message = (await listeners[tenant].next(timeout=max(0.0, started + 10.0 - time.monotonic())))["alerts"]
                assert message["type"] == "mismatch.detected", tenant
                assert message["alert"]["id"] == receipt["alertId"] and message["alert"]["ownerId"] == "shopco"
            assert await listeners["rival"].silent_for(1.0)
            # when: Acme acknowledges on process one
            await gql(one, hub.token("acme", "operator"), ACKNOWLEDGE, {"id": receipt["alertId"], "note": "checking"})
            # then: Shopco, on process two, sees it
            message = (await listeners["shopco"].next(timeout=10.0))["alerts"]
            assert message["type"] == "alert.acknowledged"
            assert message["alert"]["status"] == "acknowledged" and message["alert"]["note"] == "checking"
            assert (await listeners["acme"].next(timeout=10.0))["alerts"]["type"] == "alert.acknowledged"
            # and Rival was listening all along: its own alert reaches it, and nothing else did
            await alert(hub, "rival", [], "own")
            assert (await listeners["rival"].next(timeout=10.0))["alerts"]["alert"]["title"] == "alert own"
        finally:
            for listener in listeners.values():
                await listener.close()
