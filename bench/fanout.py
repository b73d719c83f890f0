"""Live fan-out: delivery latency, deliveries per second and hub memory, audience-filtered and broadcast.

Starts an embedded SecantusDB and hub processes (``python -m hub.cli serve``, a fresh one per measurement).

Audience-filtered (``--phases alerts``): T tenants paired into partnerships that share alerts, K ``alerts``
subscriptions spread evenly over the tenants (10 per WebSocket, graphql-transport-ws). Alerts are raised the way
detectors do (service call, one transaction each, owner plus its partner in the audience) from this process, and
each delivery is timed from just before the write started to the moment the subscriber parsed it: write, commit,
change stream, fan-out and the socket together. Two phases: paced (one alert every --pace-ms, so latency is
measured without queueing) and burst (alerts as fast as the writers go, so deliveries per second is the hub's
fan-out capacity and latency includes queueing). It runs K = 100 and then the K asked for (default 2,000 over 50
tenants), so the growth shows.

Broadcast (``--phases broadcast``): --broadcast subscriptions (default 2,000) to ``stockChanged`` of ONE tenant,
10 per WebSocket; --broadcast-rounds stock changes, one at a time, each timed from just before its event is written
to each subscriber parsing it. The floor runs in the same script at the same time: a bare Starlette
graphql-transport-ws broadcaster (bench/broadcaster.py, same uvicorn options) with as many subscribers of its own,
timed from just before the HTTP request that makes it send the same payload. The two take turns, round by round
(which goes first alternates), so load from the rest of the machine weighs on both alike. While the hub has its turn,
one client sends the trivial query ``{ __typename }`` back to back; its latency shows whether the fan-out starves the
hub's other requests. The hub's garbage collections during the rounds are read from its /metrics.

    python -m bench.fanout [--phases alerts,broadcast] [--subscriptions 2000] [--tenants 50] [--rounds 4] \
        [--per-connection 10] [--writers 1] [--pace-ms 250] [--broadcast 2000] [--broadcast-rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

# Run as a script, bench/ comes first on sys.path and bench/webhooks.py would shadow the webhooks package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx
import pymongo
from prometheus_client.parser import text_string_to_metric_families
from pymongo.errors import PyMongoError
from websockets.asyncio.client import ClientConnection, connect

from hub.auth import mint_local_token
from hub.config import Settings
from hub.db import Database, EmbeddedServer, free_port
from hub.events.log import emit
from hub.keys import KeyFile
from hub.models.alert import AlertKind, Severity, SubjectRef
from hub.services.alerts import raise_alert
from tenants.models import Partnership, PartnershipStatus, Tenant, TenantKind, pair_key

METRICS_TOKEN = "fanout-bench"
SUBSCRIPTION = "subscription { alerts { cursor type alert { id title evidence } } }"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Clients:
    """K subscriptions over WebSockets; records when each alert reached each subscription."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.received: dict[str, list[float]] = {}  # alert title -> arrival times
        self.count = 0

    async def open(self, url: str, tokens: list[str], per_connection: int) -> None:
        for start in range(0, len(tokens), per_connection):
            group = tokens[start:start + per_connection]
            # one tenant per socket: the token is the connection's
            ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)
            await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {group[0]}"}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for n in range(len(group)):
                await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self._read(ws)))

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "next":
                title = message["payload"]["data"]["alerts"]["alert"]["title"]
                self.received.setdefault(title, []).append(now)
                self.count += 1
            elif message.get("type") == "error":
                raise RuntimeError(message)

    async def wait_for(self, total: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.count < total:
            if time.monotonic() > deadline:
                missing = total - self.count
                raise TimeoutError(f"only {self.count} of {total} deliveries arrived ({missing} missing)")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        for ws in self.sockets:
            await ws.close()


async def setup_tenants(database: Database, tenants: list[str]) -> None:
    await Tenant.insert_many([Tenant(id=t, name=t, kind=TenantKind.retailer) for t in tenants])
    pairs = [
        Partnership(pair_key=pair_key(a, b), inviter_id=a, invitee_id=b, status=PartnershipStatus.active,
                    shares={a: ["alerts"], b: ["alerts"]})
        for a, b in zip(tenants[0::2], tenants[1::2], strict=False)  # an odd one out has no partner
    ]
    if pairs:
        await Partnership.insert_many(pairs)


def partner_of(tenants: list[str], index: int) -> str | None:
    other = index + 1 if index % 2 == 0 else index - 1
    return tenants[other] if other < len(tenants) else None


async def raise_one(database: Database, owner: str, partner: str | None, title: str) -> None:
    async def work(session):
        await raise_alert(session, kind=AlertKind.mismatch, severity=Severity.warning, owner=owner,
                          audience=[partner] if partner else [], title=title, dedupe_key=title,
                          subjects=[SubjectRef(kind="bench", id=title)], evidence={"bench": True})

    await database.in_transaction(work)


async def timed(database: Database, clients: Clients, tenants: list[str], jobs: list[tuple[str, int]],
                total: int, pace: float, writers: int) -> dict:
    """Raise ``jobs`` (one alert each; ``pace`` seconds apart, or as fast as ``writers`` go) and time deliveries."""
    sent: dict[str, float] = {}
    committed: dict[str, float] = {}

    async def writer(mine: list[tuple[str, int]]) -> None:
        for label, index in mine:
            title = f"{label}-{tenants[index]}"
            sent[title] = time.perf_counter()
            await raise_one(database, tenants[index], partner_of(tenants, index), title)
            committed[title] = time.perf_counter()
            if pace:
                await asyncio.sleep(max(0.0, pace - (committed[title] - sent[title])))

    t0 = time.perf_counter()
    shares = [jobs] if pace else [jobs[w::writers] for w in range(writers)]
    await asyncio.gather(*(writer(share) for share in shares))
    await clients.wait_for(total, timeout=600)
    last = max(max(clients.received[title]) for title in sent)
    latencies = [(arrival - sent[title]) * 1000 for title in sent for arrival in clients.received[title]]
    after_commit = [(arrival - committed[title]) * 1000 for title in sent for arrival in clients.received[title]]
    return {
        "alerts": len(sent),
        "deliveries": len(latencies),
        "write_p50_ms": statistics.median((committed[t] - sent[t]) * 1000 for t in sent),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "commit_p50_ms": percentile(after_commit, 0.50),
        "commit_p99_ms": percentile(after_commit, 0.99),
        "deliveries_per_s": len(latencies) / (last - t0),
    }


@asynccontextmanager
async def running_hub(mongo_uri: str, workdir: Path, max_subscriptions: int,
                      tenants: list[str]) -> AsyncIterator[tuple[Settings, KeyFile, Database, subprocess.Popen]]:
    """A fresh database with ``tenants``, and a hub process serving it until the block ends (/metrics with the
    bearer token ``METRICS_TOKEN``)."""
    name = f"fanout_{uuid.uuid4().hex[:8]}"
    port = free_port()
    settings = Settings(mongodb_uri=mongo_uri, database=name, port=port, public_url=f"http://127.0.0.1:{port}",
                        signing_key_file=workdir / "keys.json")
    keyring = KeyFile(settings.signing_key_file)  # type: ignore[arg-type]
    _ = keyring.current  # generate the key before timing anything
    database = await Database.connect(mongo_uri, name)
    await setup_tenants(database, tenants)
    env = {**os.environ, "LOTPULSE_MONGODB_URI": mongo_uri, "LOTPULSE_DATABASE": name, "LOTPULSE_PORT": str(port),
           "LOTPULSE_SIGNING_KEY_FILE": str(settings.signing_key_file), "LOTPULSE_PUBLIC_URL": settings.public_url,
           "LOTPULSE_LOG_LEVEL": "WARNING", "LOTPULSE_WEBHOOK_WORKER": "false",
           "LOTPULSE_MAX_SUBSCRIPTIONS_PER_TENANT": str(max_subscriptions), "LOTPULSE_METRICS_TOKEN": METRICS_TOKEN}
    hub = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        await wait_ready(settings.public_url + "/readyz")
        yield settings, keyring, database, hub
    finally:
        stop_process(hub)
        try:
            # The database of 2,000 subscriptions' leases takes a while to drop on a busy machine: a failure here
            # must not discard the figures just measured.
            with pymongo.timeout(120):
                await database.db.client.drop_database(name)
        except PyMongoError as exc:
            print(f"(could not drop the bench database {name}: {exc!r})", file=sys.stderr)
        await database.close()


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered 200")


async def measure(args: argparse.Namespace, mongo_uri: str, workdir: Path, subscriptions: int) -> dict:
    tenants = [f"t{n:03d}" for n in range(args.tenants)]
    clients = Clients()
    async with running_hub(mongo_uri, workdir, subscriptions, tenants) as (settings, keyring, database, hub):
        try:
            idle_rss = rss_mib(hub.pid)
            per_tenant = {
                t: subscriptions // len(tenants) + (i < subscriptions % len(tenants)) for i, t in enumerate(tenants)
            }
            tokens = [mint_local_token(settings, keyring, t, ["viewer"], 3600) for t in tenants]
            started = time.perf_counter()
            for tenant, token in zip(tenants, tokens, strict=True):
                await clients.open(settings.issuer.replace("http", "ws") + "/graphql", [token] * per_tenant[tenant],
                                   args.per_connection)
            connect_seconds = time.perf_counter() - started

            def expected(index: int) -> int:
                partner = partner_of(tenants, index)
                return per_tenant[tenants[index]] + (per_tenant[partner] if partner else 0)

            # warm-up: every subscription has to hear one alert before timing starts (subscribe is asynchronous)
            for index, tenant in enumerate(tenants):
                await raise_one(database, tenant, partner_of(tenants, index), f"warm-{tenant}")
            warm_total = sum(expected(i) for i in range(len(tenants)))
            await clients.wait_for(warm_total, timeout=120)
            total = warm_total
            phases = {}
            for phase, rounds, pace in (("paced", 1, args.pace_ms / 1000), ("burst", args.rounds, 0.0)):
                jobs = [(f"{phase}{r}", index) for r in range(rounds) for index in range(len(tenants))]
                total += sum(expected(index) for _, index in jobs)
                phases[phase] = await timed(database, clients, tenants, jobs, total, pace, args.writers)
            return {"subscriptions": subscriptions, "sockets": len(clients.sockets), "connect_s": connect_seconds,
                    "rss_idle_mib": idle_rss, "rss_mib": rss_mib(hub.pid), **phases}
        finally:
            await clients.close()


# -- broadcast: one tenant, every subscription hears every event -----------------------------------------------------

BROADCAST_TENANT = "bcast"
STOCK_CHANGED = ("subscription { stockChanged { cursor occurredAt positions { holderId locationId skuId lotCode "
                 "onHand delta expiresOn } } }")
TRIVIAL = "{ __typename }"


def stock_positions(label: str) -> list[dict[str, Any]]:
    """The payload of one stock change (three positions of one movement batch); ``label`` names the round."""
    return [{"tenantId": BROADCAST_TENANT, "locationId": "65f0c0ffee0000000000000a",
             "skuId": f"65f0c0ffee00000000000{n}0b", "skuOwnerId": BROADCAST_TENANT, "lotId": None,
             "lotCode": f"{label}-{n}", "onHand": 100 + n, "delta": -n, "expiresOn": "2027-03-01"}
            for n in range(3)]


class BroadcastClients:
    """``count`` subscriptions over WebSockets, ``per_connection`` per socket; arrival times per round label."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.arrivals: dict[str, list[float]] = {}
        self.errors: list[tuple[ClientConnection, dict[str, Any]]] = []
        self.retried = 0
        self.query = ""

    async def open(self, url: str, init: dict[str, Any], query: str, count: int, per_connection: int,
                   live: Any) -> None:
        """Subscribe ``count`` times, ``per_connection`` per socket; ``live()`` answers how many the server holds:
        a batch of sockets at a time, each waited for (thousands of subscribes at once would only measure the
        stampede)."""
        self.query = query
        for start in range(0, count, per_connection):
            if start and start % (per_connection * 5) == 0:
                await self.settle(live, start)
            ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            for n in range(min(per_connection, count - start)):
                await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": query}}))
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self._read(ws)))
        await self.settle(live, count)

    async def settle(self, live: Any, count: int) -> None:
        """Wait until ``count`` subscriptions are live; one refused on the way (the database a moment too slow:
        SERVICE_UNAVAILABLE, retryable) subscribes again under a new id."""
        deadline = time.monotonic() + 120
        while await live() < count:
            while self.errors:
                ws, message = self.errors.pop()
                self.retried += 1
                await ws.send(json.dumps({"id": f"retry{self.retried}", "type": "subscribe",
                                          "payload": {"query": self.query}}))
            if time.monotonic() > deadline:
                raise TimeoutError(f"{await live()} of {count} subscriptions live")
            await asyncio.sleep(0.05)

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "next" and not message["payload"].get("errors"):
                label = message["payload"]["data"]["stockChanged"]["positions"][0]["lotCode"].rsplit("-", 1)[0]
                self.arrivals.setdefault(label, []).append(now)
            elif message.get("type") != "complete":
                self.errors.append((ws, message))

    async def wait_for(self, label: str, count: int, timeout: float = 120) -> list[float]:
        deadline = time.monotonic() + timeout
        while len(self.arrivals.get(label, ())) < count:
            if self.errors:
                raise RuntimeError(f"a subscriber got {self.errors[0][1]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{label}: {len(self.arrivals.get(label, ()))} of {count} deliveries arrived")
            await asyncio.sleep(0.002)
        return self.arrivals[label]

    async def close(self) -> None:
        for task in self.readers:
            task.cancel()
        for ws in self.sockets:
            await ws.close()


class Rounds:
    """One side's broadcast rounds: each event sent after the last one's deliveries all arrived, plus a pause."""

    def __init__(self, clients: BroadcastClients, count: int, send: Any) -> None:
        self.clients, self.count, self.send = clients, count, send
        self.latencies: list[float] = []
        self.round_p99: list[float] = []
        self.sent: list[float] = []
        self.first: list[float] = []

    async def round(self, label: str, measured: bool) -> None:
        started = time.perf_counter()
        await self.send(label)
        returned = time.perf_counter()
        arrived = await self.clients.wait_for(label, self.count)
        if measured:
            mine = [(t - started) * 1000 for t in arrived]
            self.latencies.extend(mine)
            self.round_p99.append(percentile(mine, 0.99))
            self.sent.append((returned - started) * 1000)
            self.first.append(min(mine))
        await asyncio.sleep(0.2)

    def figures(self) -> dict[str, Any]:
        latencies = self.latencies
        return {"deliveries": len(latencies), "p50_ms": percentile(latencies, 0.5),
                "p99_ms": percentile(latencies, 0.99), "max_ms": max(latencies),
                "round_p99_min": min(self.round_p99), "round_p99_max": max(self.round_p99),
                "send_p50_ms": statistics.median(self.sent), "first_p50_ms": statistics.median(self.first)}


async def broadcast(args: argparse.Namespace, mongo_uri: str, workdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The floor and the hub, both serving their subscribers at once, take turns: round r of each, the one to go
    first alternating, so a machine that gets busier or quieter meanwhile weighs on both alike."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.broadcaster:app", "--port", str(port),
                               "--log-level", "warning", "--no-proxy-headers"], stdout=subprocess.DEVNULL)
    floor_clients, hub_clients = BroadcastClients(), BroadcastClients()
    stop = asyncio.Event()
    hub_turn = False  # the trivial query's latency counts while the hub has its turn (its round and pause)
    query_latencies: list[float] = []
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base + "/count")
        async with (httpx.AsyncClient(base_url=base, timeout=60) as floor_http,
                    running_hub(mongo_uri, workdir, args.broadcast, [BROADCAST_TENANT]) as (settings, keyring, database,
                                                                                            hub)):
            token = mint_local_token(settings, keyring, BROADCAST_TENANT, ["viewer"], 3600)
            idle_rss = rss_mib(hub.pid)

            async def floor_live() -> int:
                return int((await floor_http.get("/count")).text)

            async def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
                async with httpx.AsyncClient(base_url=settings.public_url, timeout=60) as http:
                    text = (await http.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})).text
                return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                        for family in text_string_to_metric_families(text) for sample in family.samples}

            async def hub_live() -> int:
                """Subscriptions registered on the hub's bus (its gauge counts them once they hear new events)."""
                samples = await scrape()
                return int(samples.get(("lotpulse_live_subscriptions", (("tenant", BROADCAST_TENANT),)), 0))

            async def trivial_queries(always: bool) -> None:
                async with httpx.AsyncClient(base_url=settings.public_url, timeout=60,
                                             headers={"authorization": f"Bearer {token}"}) as http:
                    while not stop.is_set():
                        counted = always or hub_turn
                        started = time.perf_counter()
                        response = await http.post("/graphql", json={"query": TRIVIAL})
                        assert response.status_code == 200, response.text
                        if counted:
                            query_latencies.append((time.perf_counter() - started) * 1000)
                        await asyncio.sleep(0.005)

            await floor_clients.open(f"ws://127.0.0.1:{port}/graphql", {}, STOCK_CHANGED, args.broadcast,
                                     args.per_connection, floor_live)
            await hub_clients.open(settings.issuer.replace("http", "ws") + "/graphql",
                                   {"authorization": f"Bearer {token}"}, STOCK_CHANGED, args.broadcast,
                                   args.per_connection, hub_live)
            prober = asyncio.create_task(trivial_queries(always=True))  # the query with no fan-out: its floor
            await asyncio.sleep(3)
            stop.set()
            await prober
            idle = list(query_latencies)
            query_latencies.clear()
            stop.clear()

            async def floor_send(label: str) -> None:
                data = {"stockChanged": {"cursor": uuid.uuid4().hex[:24], "occurredAt": "2026-12-01T12:00:00+00:00",
                                         "positions": stock_positions(label)}}
                await floor_http.post("/publish", content=json.dumps({"data": data}))

            async def hub_send(label: str) -> None:
                await emit(None, "stock.changed", BROADCAST_TENANT, [], {"positions": stock_positions(label)})

            floor_rounds = Rounds(floor_clients, args.broadcast, floor_send)
            hub_rounds = Rounds(hub_clients, args.broadcast, hub_send)
            prober = asyncio.create_task(trivial_queries(always=False))
            gc_before = await scrape()
            for r in range(-2, args.broadcast_rounds):  # two warm-up rounds: every subscription live, caches warm
                label = f"r{r + 2}"
                for side in ((floor_rounds, hub_rounds) if r % 2 == 0 else (hub_rounds, floor_rounds)):
                    hub_turn = side is hub_rounds
                    await side.round(label, measured=r >= 0)
                    hub_turn = False
            gc_after = await scrape()
            stop.set()
            await prober
            return floor_rounds.figures(), {
                **hub_rounds.figures(), "idle_query_p50_ms": percentile(idle, 0.5),
                "idle_query_p99_ms": percentile(idle, 0.99), "query_count": len(query_latencies),
                "query_p50_ms": percentile(query_latencies, 0.5), "query_p99_ms": percentile(query_latencies, 0.99),
                "query_max_ms": max(query_latencies), "rss_idle_mib": idle_rss, "rss_mib": rss_mib(hub.pid),
                "gc": gc_pauses(gc_before, gc_after)}
    finally:
        stop.set()
        await floor_clients.close()
        await hub_clients.close()
        stop_process(server)


def gc_pauses(before: dict[tuple[str, tuple], float], after: dict[tuple[str, tuple], float]) -> dict[str, Any]:
    """The hub's garbage collections between two scrapes, by generation: count, total seconds, and the smallest
    bucket bound that holds the longest of them (the histogram keeps no maximum per window); objects tracked at the
    end."""
    figures: dict[str, Any] = {}
    for generation in ("0", "1", "2"):
        def value(name: str, *labels: tuple[str, str], generation: str = generation) -> float:
            key = (name, tuple(sorted((("generation", generation), *labels))))
            return after.get(key, 0.0) - before.get(key, 0.0)

        count = value("lotpulse_gc_pause_seconds_count")
        bounds = sorted({dict(labels)["le"] for name, labels in after if name == "lotpulse_gc_pause_seconds_bucket"},
                        key=float)
        longest = next((bound for bound in bounds if value("lotpulse_gc_pause_seconds_bucket", ("le", bound)) >= count),
                       "+Inf")
        figures[generation] = {"count": int(count), "seconds": value("lotpulse_gc_pause_seconds_sum"),
                               "longest_le": longest if count else "-",
                               "tracked": int(after.get(("lotpulse_gc_tracked_objects",
                                                         (("generation", generation),)), 0))}
    figures["frozen"] = int(after.get(("lotpulse_gc_tracked_objects", (("generation", "permanent"),)), 0))
    figures["full_since_start"] = int(after.get(("lotpulse_gc_pause_seconds_count", (("generation", "2"),)), 0))
    figures["longest_full_since_start"] = after.get(("lotpulse_gc_pause_longest_seconds", (("generation", "2"),)), 0)
    return figures


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def run(args: argparse.Namespace) -> None:
    phases = set(args.phases.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="lotpulse-fanout-"))
    server = EmbeddedServer(workdir / "db", log_path=workdir / "secantusd.log")
    server.start()
    load_before = load_average()
    try:
        results = []
        if "alerts" in phases:
            for k in sorted({100, args.subscriptions}):
                results.append(await measure(args, server.uri, workdir, k))
        if results:
            print_alerts(args, results)
        if "broadcast" in phases:
            floor, hub = await broadcast(args, server.uri, workdir)
            print_broadcast(args, floor, hub)
    finally:
        server.stop()
    print(f"machine: {os.cpu_count()} cores, load average {load_before} before, {load_average()} after")


def print_alerts(args: argparse.Namespace, results: list[dict]) -> None:
    print(f"fan-out: {args.tenants} tenants in partner pairs (an alert reaches its owner's and its partner's "
          f"subscriptions), {args.per_connection} subscriptions per WebSocket, one hub process, SecantusDB")
    print(f"paced: one alert per tenant, {args.pace_ms} ms apart (latency without queueing); burst: {args.rounds} "
          f"rounds of one alert per tenant by {args.writers} writer(s), as fast as they go (throughput)")
    print(f"{'K':>5} {'phase':>6} {'alerts':>6} {'deliveries':>10} {'write p50':>9} {'p50':>9} {'p99':>9} {'max':>9} "
          f"{'commit->p50':>11} {'commit->p99':>11} {'deliv/s':>8} {'RSS idle':>8} {'RSS':>7}")
    for r in results:
        for phase in ("paced", "burst"):
            f = r[phase]
            print(f"{r['subscriptions']:>5} {phase:>6} {f['alerts']:>6} {f['deliveries']:>10} "
                  f"{f['write_p50_ms']:>7.1f}ms {f['p50_ms']:>7.1f}ms {f['p99_ms']:>7.1f}ms {f['max_ms']:>7.1f}ms "
                  f"{f['commit_p50_ms']:>9.1f}ms {f['commit_p99_ms']:>9.1f}ms {f['deliveries_per_s']:>8.0f} "
                  f"{r['rss_idle_mib']:>5.0f}MiB {r['rss_mib']:>4.0f}MiB")
    print("p50/p99/max: from just before the alert's transaction began to the subscriber parsing the message;")
    print("commit->: from the writer seeing its commit acknowledged. RSS: the hub process before subscriptions, "
          "and at the end")


def print_broadcast(args: argparse.Namespace, floor: dict[str, Any], hub: dict[str, Any]) -> None:
    print(f"\nbroadcast: one event to {args.broadcast} stockChanged subscriptions of one tenant "
          f"({args.per_connection} per WebSocket), {args.broadcast_rounds} rounds after 2 warm-up rounds, the floor "
          "and the hub taking turns")
    print(f"{'':>8} {'deliveries':>10} {'p50':>9} {'p99':>9} {'max':>9} {'round p99 min-max':>19} {'send p50':>9} "
          f"{'first p50':>9}")
    for name, f in (("floor", floor), ("hub", hub)):
        print(f"{name:>8} {f['deliveries']:>10} {f['p50_ms']:>7.1f}ms {f['p99_ms']:>7.1f}ms {f['max_ms']:>7.1f}ms "
              f"{f['round_p99_min']:>8.1f}-{f['round_p99_max']:.1f}ms {f['send_p50_ms']:>7.1f}ms "
              f"{f['first_p50_ms']:>7.1f}ms")
    print(f"hub p99 / floor p99: {hub['p99_ms'] / floor['p99_ms']:.2f}x (target <= 1.5x); "
          f"hub p50 / floor p50: {hub['p50_ms'] / floor['p50_ms']:.2f}x")
    print(f"trivial query during the hub's rounds: {hub['query_count']} requests, p50 {hub['query_p50_ms']:.1f} ms, "
          f"p99 {hub['query_p99_ms']:.1f} ms (target <= 50 ms), max {hub['query_max_ms']:.1f} ms; with no fan-out: "
          f"p50 {hub['idle_query_p50_ms']:.1f} ms, p99 {hub['idle_query_p99_ms']:.1f} ms")
    print(f"hub RSS {hub['rss_idle_mib']:.0f} MiB before subscriptions, {hub['rss_mib']:.0f} MiB at the end")
    pauses = hub["gc"]
    print("hub garbage collections during the rounds (lotpulse_gc_pause_seconds): " + "; ".join(
        f"gen {g}: {pauses[g]['count']}, {pauses[g]['seconds'] * 1000:.0f} ms in all, longest <= "
        f"{pauses[g]['longest_le']} s" for g in ("0", "1", "2")))
    print("objects tracked at the end: " + ", ".join(f"gen {g} {pauses[g]['tracked']:,}" for g in ("0", "1", "2"))
          + f", frozen at start-up {pauses['frozen']:,}; full collections since the hub started "
          f"{pauses['full_since_start']}, the longest {pauses['longest_full_since_start'] * 1000:.0f} ms")
    print("floor: bench/broadcaster.py (bare Starlette, no schema, no auth, no database), timed from just before the "
          "POST that makes it send; hub: timed from just before the event is written (write, commit, numbering, "
          "change stream, fan-out, socket); send: until the POST or the write returned; first: the first delivery")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-connection", type=int, default=10)
    parser.add_argument("--writers", type=int, default=1, help="concurrent alert writers in the burst phase")
    parser.add_argument("--pace-ms", type=int, default=250, help="gap between alerts in the paced phase")
    parser.add_argument("--phases", default="alerts,broadcast", help="alerts, broadcast or both (comma-separated)")
    parser.add_argument("--broadcast", type=int, default=2000, help="subscriptions of the broadcast phase")
    parser.add_argument("--broadcast-rounds", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
