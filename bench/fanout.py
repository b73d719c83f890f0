"""Live fan-out: delivery latency, deliveries per second and hub memory with K alert subscriptions on one hub.

Starts an embedded SecantusDB and one hub process (``python -m hub.cli serve``), creates T tenants paired into
partnerships that share alerts, and opens K ``alerts`` subscriptions spread evenly over the tenants (10 per
WebSocket, graphql-transport-ws). Then it raises alerts the way detectors do (service call, one transaction each,
owner plus its partner in the audience) from this process and times each delivery from just before the write
started to the moment the subscriber parsed it: write, commit, change stream, fan-out and the socket together.
Two phases: paced (one alert every --pace-ms, so latency is measured without queueing) and burst (alerts as fast as
the writers go, so deliveries per second is the hub's fan-out capacity and latency includes queueing).
It runs K = 100 and then the K asked for (default 2,000 over 50 tenants), each on a fresh hub, so the growth shows.

    python -m bench.fanout [--subscriptions 2000] [--tenants 50] [--rounds 4] [--per-connection 10] [--writers 1] \
        [--pace-ms 250]
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
from pathlib import Path

# Run as a script, bench/ comes first on sys.path and bench/webhooks.py would shadow the webhooks package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx
from websockets.asyncio.client import ClientConnection, connect

from hub.auth import mint_local_token
from hub.config import Settings
from hub.db import Database, EmbeddedServer, free_port
from hub.keys import KeyFile
from hub.models.alert import AlertKind, Severity, SubjectRef
from hub.services.alerts import raise_alert
from tenants.models import Partnership, PartnershipStatus, Tenant, TenantKind, pair_key

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


async def measure(args: argparse.Namespace, mongo_uri: str, workdir: Path, subscriptions: int) -> dict:
    name = f"fanout_{uuid.uuid4().hex[:8]}"
    port = free_port()
    settings = Settings(mongodb_uri=mongo_uri, database=name, port=port, public_url=f"http://127.0.0.1:{port}",
                        signing_key_file=workdir / "keys.json")
    keyring = KeyFile(settings.signing_key_file)  # type: ignore[arg-type]
    _ = keyring.current  # generate the key before timing anything
    database = await Database.connect(mongo_uri, name)
    tenants = [f"t{n:03d}" for n in range(args.tenants)]
    await setup_tenants(database, tenants)
    env = {**os.environ, "LOTPULSE_MONGODB_URI": mongo_uri, "LOTPULSE_DATABASE": name, "LOTPULSE_PORT": str(port),
           "LOTPULSE_SIGNING_KEY_FILE": str(settings.signing_key_file), "LOTPULSE_PUBLIC_URL": settings.public_url,
           "LOTPULSE_LOG_LEVEL": "WARNING", "LOTPULSE_WEBHOOK_WORKER": "false",
           "LOTPULSE_MAX_SUBSCRIPTIONS_PER_TENANT": str(subscriptions)}
    hub = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve"], env=env, stdout=subprocess.DEVNULL)
    clients = Clients()
    try:
        async with httpx.AsyncClient(base_url=settings.public_url) as http:
            for _ in range(600):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
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
        hub.terminate()
        hub.wait(10)
        await database.db.client.drop_database(name)
        await database.close()


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="lotpulse-fanout-"))
    server = EmbeddedServer(workdir / "db", log_path=workdir / "secantusd.log")
    server.start()
    try:
        results = []
        for k in sorted({100, args.subscriptions}):
            results.append(await measure(args, server.uri, workdir, k))
    finally:
        server.stop()
    print(f"fan-out: {args.tenants} tenants in partner pairs (an alert reaches its owner's and its partner's "
          f"subscriptions), {args.per_connection} subscriptions per WebSocket, one hub process, SecantusDB, "
          f"{os.cpu_count()} cores")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=2000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-connection", type=int, default=10)
    parser.add_argument("--writers", type=int, default=1, help="concurrent alert writers in the burst phase")
    parser.add_argument("--pace-ms", type=int, default=250, help="gap between alerts in the paced phase")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
