"""A crash is local: kill -9 of one of three hub processes on one database, in the middle of everything.

Three ``lotpulse serve`` processes share the test's database. P1 starts alone: it numbers the event log (holds the
sequencer lease), serves a live subscriber and is the only webhook worker, whose requests the receiver holds open.
Then P2 and P3 join, writers post movement batches to each process, and P1 is killed with SIGKILL. Afterwards:

- writers on P2 and P3 were acknowledged throughout, never waiting more than 5 s, with no error;
- the subscriber, resuming on P2 from the last cursor it got from P1, has every stock change exactly once, in order;
- the deliveries P1 had claimed (in flight, unanswered) are delivered by P2 or P3 within about 20 s of the kill, and
  every event has exactly one delivery, succeeded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.db import free_port
from hub.events.sequencer import STATE, STATE_ID
from hub.models.event import Event
from tests.conftest import start_hub
from tests.events.conftest import Listener
from tests.supply.conftest import RECORD_MOVEMENTS
from tests.webhooks.helpers import create_endpoint
from webhooks.models import DeliveryState, WebhookDelivery

pytestmark = pytest.mark.slow
STOCK_CHANGED = "subscription($after: ID) { stockChanged(after: $after) { cursor positions { onHand delta } } }"
CURSOR = "{ eventCursor }"
UPSERT_SKU = 'mutation { upsertSku(input: {code: "S-1", name: "S"}) { sku { id } } }'
CREATE_LOCATION = "mutation($code: String!) { createLocation(input: {code: $code, name: $code, kind: store}) { id } }"
LEASE_SECONDS = 15  # the default webhook lease: what an operator gets


async def until(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class GatedReceiver:
    """A webhook receiver that holds every request open until the gate opens; records when each one arrived."""

    def __init__(self) -> None:
        self.port = free_port()
        self.gate = asyncio.Event()
        self.arrivals: list[tuple[str, float]] = []  # (webhook-id, monotonic time)
        self.answered: list[tuple[str, float]] = []

    async def handle(self, request: Request) -> Response:
        webhook_id = request.headers["webhook-id"]
        self.arrivals.append((webhook_id, time.monotonic()))
        with suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.gate.wait(), 60)
        self.answered.append((webhook_id, time.monotonic()))
        return Response("ok")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        app = Starlette(routes=[Route("/erp", self.handle, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{self.port}/erp"
        finally:
            self.gate.set()
            server.should_exit = True
            await task


def spawn(hub: Any, mongo_uri: str, key_file: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "LOTPULSE_MONGODB_URI": mongo_uri,
        "LOTPULSE_DATABASE": hub.settings.database,
        "LOTPULSE_PORT": str(port),
        "LOTPULSE_SIGNING_KEY_FILE": str(key_file),
        "LOTPULSE_PUBLIC_URL": hub.url,
        "LOTPULSE_DATA_DIR": str(log.parent),
        "LOTPULSE_LOG_LEVEL": "WARNING",
        "LOTPULSE_WEBHOOK_ALLOW_PRIVATE": "1",
        "LOTPULSE_WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS),
        "LOTPULSE_WEBHOOK_TIMEOUT_SECONDS": "60",
        "LOTPULSE_WEBHOOK_POLL_SECONDS": "0.2",
        "LOTPULSE_SWEEP_INTERVAL_MINUTES": "0",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


async def ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        async def up() -> bool:
            assert process.poll() is None, log.read_text()
            with suppress(httpx.TransportError):
                return (await client.get("/readyz")).status_code == 200
            return False

        await until(up, 60, f"hub at {url}")


class Writer:
    """Posts batches of movements to one hub process, one after another; records when each was acknowledged."""

    def __init__(self, url: str, token: str, location: str, name: str) -> None:
        self.url, self.token, self.location, self.name = url, token, location, name
        self.acks: list[float] = []
        self.errors: list[Any] = []
        self.stop = False

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=60) as client:
            n = 0
            while not self.stop:
                batch = [{"sku": "S-1", "kind": "receipt", "quantity": 1, "idempotencyKey": f"{self.name}-{n}-{i}"}
                         for i in range(10)]
                n += 1
                try:
                    response = await client.post(
                        "/graphql",
                        headers={"authorization": f"Bearer {self.token}"},
                        json={
                            "query": RECORD_MOVEMENTS,
                            "variables": {"movements": batch, "locationId": self.location},
                        },
                    )
                    body = response.json()
                except (httpx.TransportError, ValueError) as exc:
                    self.errors.append(repr(exc))
                    return  # its hub is gone
                if "errors" in body:
                    self.errors.append(body["errors"])
                else:
                    self.acks.append(time.monotonic())

    def longest_wait(self, since: float) -> float:
        times = [since, *[t for t in self.acks if t > since]]
        return max(b - a for a, b in zip(times, times[1:])) if len(times) > 1 else float("inf")


async def test_kill_9_of_one_hub_stalls_no_other_and_loses_nothing(settings, mongo_uri, key_file, tmp_path):
    receiver = GatedReceiver()
    processes: list[subprocess.Popen[bytes]] = []
    writers: list[Writer] = []
    tasks: list[asyncio.Task[Any]] = []
    async for hub in start_hub(settings.with_(webhook_worker=False)):
        async with receiver.running() as erp:
            try:
                # given: Acme with a SKU, a store per writer and a webhook endpoint; the in-process hub steps back
                await hub.tenant("acme", "retailer")
                await hub.ok(UPSERT_SKU, tenant="acme")
                stores = [(await hub.ok(CREATE_LOCATION, {"code": f"S{n}"}, tenant="acme"))["createLocation"]["id"]
                          for n in range(3)]
                await create_endpoint(hub, "acme", erp, ["stock.changed"])
                first = [{"sku": "S-1", "kind": "receipt", "quantity": 1, "idempotencyKey": "first"}]
                await hub.ok(RECORD_MOVEMENTS, {"movements": first, "locationId": stores[0]}, tenant="acme")

                async def first_numbered() -> bool:
                    return await Event.find({"pending": True}).count() == 0

                await until(first_numbered, 30, "the first event to be numbered")
                await hub.state.stop_task("event-sequencer")
                token = hub.token("acme", "operator")

                # P1 alone: it takes the sequencer lease, serves a subscriber and claims deliveries that hang
                p1, url1 = spawn(hub, mongo_uri, key_file, tmp_path / "p1.log")
                processes.append(p1)
                await ready(p1, url1, tmp_path / "p1.log")
                state = hub.state.database.db[STATE]

                async def p1_sequences() -> bool:
                    return bool((await state.find_one({"_id": STATE_ID}) or {}).get("owner"))

                await until(p1_sequences, 30, "P1 to lead the sequencer")
                cursor = (await hub.ok(CURSOR, tenant="acme"))["eventCursor"]
                ws1 = url1.replace("http", "ws") + "/graphql"
                subscriber = Listener(ws1, hub.token("acme", "viewer"), STOCK_CHANGED, {"after": cursor}).start()
                writers.append(Writer(url1, token, stores[0], "p1"))
                tasks.append(asyncio.create_task(writers[0].run()))

                async def p1_holds_claims() -> bool:
                    return len(receiver.arrivals) >= 1  # a worker sends one batch per endpoint at a time

                await until(p1_holds_claims, 60, "P1's first webhook requests")
                claimed_by_p1 = {webhook_id for webhook_id, _ in receiver.arrivals}

                # P2 and P3 join and write; P1's claims stay its own while it lives (renewed by heartbeat)
                joined = []
                for n in (2, 3):
                    process, url = spawn(hub, mongo_uri, key_file, tmp_path / f"p{n}.log")
                    processes.append(process)
                    joined.append(url)
                for n, url in enumerate(joined, start=2):
                    await ready(processes[n - 1], url, tmp_path / f"p{n}.log")
                for n, url in enumerate(joined, start=1):
                    writers.append(Writer(url, token, stores[n], f"p{n + 1}"))
                    tasks.append(asyncio.create_task(writers[-1].run()))

                async def both_write() -> bool:
                    return all(len(w.acks) >= 3 for w in writers[1:])

                await until(both_write, 60, "writes acknowledged on P2 and P3")
                received = []

                # when: P1 is killed; the requests it had in flight can now be answered (to a dead client)
                p1.send_signal(signal.SIGKILL)
                p1.wait()
                killed_at = time.monotonic()
                receiver.gate.set()
                await subscriber.close()
                while not subscriber.received.empty():
                    item = subscriber.received.get_nowait()
                    if isinstance(item, dict):  # not the end-of-subscription marker
                        received.append(item)

                # then: P2 and P3 keep acknowledging writes, never more than 5 s apart
                async def eight_seconds_on() -> bool:
                    return time.monotonic() > killed_at + 8

                await until(eight_seconds_on, 30, "the writers to go on")
                for writer in writers[1:]:
                    writer.stop = True
                await asyncio.gather(*tasks)
                for writer in writers[1:]:
                    assert writer.errors == [], writer.errors
                    assert writer.longest_wait(killed_at - 2) <= 5.0, (writer.name, writer.acks)

                # and the deliveries P1 had claimed are delivered by another process within about 20 s
                async def p1_claims_sent_again() -> bool:
                    again = {wid for wid, at in receiver.arrivals if at > killed_at}
                    return claimed_by_p1 <= again

                await until(p1_claims_sent_again, 60, "P1's claims to be taken over")
                taken_over = max(at for wid, at in receiver.arrivals if wid in claimed_by_p1 and at > killed_at)
                assert taken_over - killed_at <= LEASE_SECONDS + 8, taken_over - killed_at

                # and the subscriber, resuming on P2 from its last cursor, has every change exactly once, in order
                last = received[-1]["stockChanged"]["cursor"] if received else cursor
                resumed = Listener(joined[0].replace("http", "ws") + "/graphql", hub.token("acme", "viewer"),
                                   STOCK_CHANGED, {"after": last}).start()

                async def all_numbered() -> bool:
                    return await Event.find({"pending": True}).count() == 0

                await until(all_numbered, 30, "the log to be numbered by a surviving process")
                # the cursor is the newest event acme heard, of any type (a batch's movements.recorded, say)
                after = (await Event.get(cursor)).seq if cursor else 0
                logged = [str(e.id) for e in await Event.find({"type": "stock.changed", "seq": {"$gt": 0}})
                          .sort("seq").to_list()]
                expected = [str(e.id) for e in await Event.find({"type": "stock.changed", "seq": {"$gt": after}})
                            .sort("seq").to_list()]
                while len(received) < len(expected):
                    received.append(await resumed.next(timeout=20))
                await resumed.close()
                assert [m["stockChanged"]["cursor"] for m in received] == expected

                # and every event has exactly one delivery, and every one succeeded
                async def all_delivered() -> bool:
                    done = await WebhookDelivery.find({"state": DeliveryState.succeeded.value}).count()
                    return done == len(logged)

                await until(all_delivered, 60, "every delivery to succeed")
                assert await WebhookDelivery.find_all().count() == len(logged)
                assert {wid for wid, _ in receiver.answered} == set(logged)
            finally:
                for writer in writers:
                    writer.stop = True
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for process in processes:
                    if process.poll() is None:
                        process.terminate()
                        with suppress(subprocess.TimeoutExpired):
                            process.wait(10)
                    if process.poll() is None:
                        process.kill()
