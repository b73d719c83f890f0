"""Requests per second and latency (p50/p99) of GraphQL over HTTP, each next to its floor measured in the same run;
then what operability costs on the trivial query.

    python -m bench.graphql [--seconds 10] [--concurrency 8] [--rounds 5] [--cpu-requests 2000] [--ratios-only]

Starts a SecantusDB process (or uses LOTPULSE_MONGODB_URI), a hub process (``python -m hub.cli serve``, default
settings: metrics, JSON access line, rate limits on) and, as the reference, stock strawberry with its ParserCache and
ValidationCache on Starlette under the same uvicorn. Seeds one tenant with 200 SKUs, then, in ``--ratio-rounds``
alternating rounds of ``--seconds`` each (load from elsewhere on the machine then hits each alike), keeps
``--concurrency`` requests in flight over keep-alive connections:

* ``{ __typename }`` with a bearer token on the hub (token validation, cached parse and validation, limits, rate
  limits, execution), next to ``{ __typename }`` on stock strawberry (target: hub >= 0.6x);
* ``skus(first: 50)`` on the hub, next to the raw pymongo find of the same page (same filter, sort and limit) at the
  same concurrency from this process (target: hub >= 0.5x).

The load generator is a minimal HTTP/1.1 keep-alive client (``Client``) rather than httpx: on a 2-core machine
shared by hub, database and client, httpx spent more CPU per request than the servers measured. It shares the
machine with the hub and the database either way.

The overhead part runs three more hubs on the same database and measures them in alternating rounds (so load
from elsewhere on the machine hits each alike): *bare* (LOTPULSE_METRICS, LOTPULSE_RATE_LIMITS off, log level WARNING),
*observed* (metrics, JSON access log line per request, rate limits on with limits too high to refuse), and *traced*
(observed plus OpenTelemetry, exporting to a local OTLP sink). It prints each one's median rate over the rounds
and the overhead against *bare* (target: observed at most 10 % slower). On a shared machine those rates swing with
everyone else's load, so it then measures the same three as apps inside this process in CPU time per request,
which other processes' load disturbs least (it still swings by about a fifth at load average 6 on 2 cores).

``--cpu-only --rounds 3`` at load average 4-7: observed typically +12-17 % over bare, single runs from +7 % to +37 %
(was +33 % to +47 %), traced about +300 %; the runs and what was cut are in docs/operations.md ("What observability
costs").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, running_hub, wait_ready
from hub import logs
from hub.auth import mint_local_token
from hub.config import Settings
from hub.db import EmbeddedServer, free_port
from hub.models.sku import Sku
from tenants import service as tenant_service

QUERIES = {
    "trivial": "{ __typename }",
    "page": "{ skus(first: 50) { edges { cursor node { id code name gtin shelfLifeDays } } "
    "pageInfo { hasNextPage endCursor } } }",
}




class Client:
    """One keep-alive HTTP/1.1 connection posting one prepared GraphQL request again and again."""

    def __init__(self, url: str, token: str | None, query: str) -> None:
        address = httpx.URL(url)
        self.host, self.port = address.host, address.port or 80
        body = json.dumps({"query": query}).encode()
        head = [f"POST {address.raw_path.decode()} HTTP/1.1", f"host: {self.host}:{self.port}",
                "content-type: application/json", "accept: application/json", f"content-length: {len(body)}"]
        if token:
            head.append(f"authorization: Bearer {token}")
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self) -> bytes:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status, length = int(head[9:12]), 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        if status != 200 or b'"errors"' in body:
            raise SystemExit(f"HTTP {status}: {body[:300]!r}")
        return body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()


Measured = tuple[float, list[float]]  # requests per second, latencies in seconds


async def run_for(seconds: float, concurrency: int, call: Callable[[int], Awaitable[object]]) -> Measured:
    """``concurrency`` workers calling ``call(worker)`` back to back for ``seconds``: rate and latencies."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies


async def measure(url: str, token: str | None, query: str, seconds: float, concurrency: int) -> Measured:
    clients = [Client(url, token, query) for _ in range(concurrency)]
    try:
        await asyncio.gather(*(client.post() for client in clients))  # connect and check the answer
        return await run_for(seconds, concurrency, lambda i: clients[i].post())
    finally:
        await asyncio.gather(*(client.close() for client in clients))


def stock_app() -> Any:
    """The reference: stock strawberry with its parser and validation caches on Starlette (a uvicorn factory)."""
    import strawberry
    from starlette.applications import Starlette
    from starlette.routing import Route
    from strawberry.asgi import GraphQL
    from strawberry.extensions import ParserCache, ValidationCache

    @strawberry.type
    class Query:
        hello: str = "world"

    caches = [lambda: ParserCache(maxsize=512), lambda: ValidationCache(maxsize=512)]
    schema = strawberry.Schema(Query, extensions=caches)
    return Starlette(routes=[Route("/graphql", GraphQL(schema, graphql_ide=None), methods=["GET", "POST"])])


@contextlib.contextmanager
def running_stock() -> Iterator[str]:
    """The reference under uvicorn with the options ``lotpulse serve`` uses (no access log: stock, not observed)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "bench.graphql:stock_app", "--host", "127.0.0.1", "--port",
         str(port), "--log-level", "warning", "--no-access-log"],
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None:
                raise SystemExit("the stock strawberry server exited")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/graphql"
    finally:
        process.terminate()
        process.wait(10)


def line(label: str, rate: float, latencies: list[float], extra: str = "") -> str:
    return (f"  {label:40} {rate:8,.0f} /s   p50 {statistics.median(latencies) * 1000:6.1f} ms   "
            f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms{extra}")


async def main(args: argparse.Namespace) -> None:
    with running_stock() as stock_url:
        async with running_hub(**OBSERVED) as hub:  # limits too high to refuse: the bench is one busy tenant
            token = hub.token("bench", "viewer")
            await tenant_service.create_tenant("bench", "Bench", "supplier")
            await Sku.insert_many([
                Sku(tenant_id="bench", code=f"B-{i:04d}", name=f"Bench item {i}", shelf_life_days=30)
                for i in range(200)
            ])
            await wait_ready(hub.port, hub.process)
            url = f"{hub.url}/graphql"
            # The page the hub's skus(first: 50) reads: the caller's visible SKUs in _id order, one more than asked.
            collection = Sku.get_pymongo_collection()

            async def raw_find(_: int) -> None:
                page = await collection.find({"tenant_id": {"$in": ["bench"]}}).sort("_id", 1).limit(51).to_list()
                assert len(page) == 51

            phases: dict[str, Callable[[], Awaitable[Measured]]] = {
                "hub { __typename }": lambda: measure(url, token, QUERIES["trivial"], args.seconds, args.concurrency),
                "stock strawberry { __typename }": lambda: measure(
                    stock_url, None, "{ __typename }", args.seconds, args.concurrency
                ),
                "hub skus(first: 50)": lambda: measure(url, token, QUERIES["page"], args.seconds, args.concurrency),
                "raw pymongo find of the same page": lambda: run_for(args.seconds, args.concurrency, raw_find),
            }
            rates: dict[str, list[float]] = {name: [] for name in phases}
            latencies: dict[str, list[float]] = {name: [] for name in phases}
            load = os.getloadavg()[0]
            for _ in range(args.ratio_rounds):
                for name, phase in phases.items():
                    rate, measured = await phase()
                    rates[name].append(rate)
                    latencies[name].extend(measured)
    print(f"{args.concurrency} requests in flight, {args.ratio_rounds} alternating rounds of {args.seconds:g} s; "
          f"hub + SecantusDB + reference + client on {os.cpu_count()} CPUs, load average {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f}; median rate over the rounds")
    median = {name: statistics.median(values) for name, values in rates.items()}
    for name in phases:
        print(line(name, median[name], latencies[name], f"   (rounds: {', '.join(f'{r:,.0f}' for r in rates[name])})"))
    for hub_side, floor, target in (("hub { __typename }", "stock strawberry { __typename }", 0.6),
                                    ("hub skus(first: 50)", "raw pymongo find of the same page", 0.5)):
        paired = [h / f for h, f in zip(rates[hub_side], rates[floor], strict=True)]
        ratio = median[hub_side] / median[floor]
        print(f"  {hub_side} / {floor}: {ratio:.2f}x (per round: {', '.join(f'{r:.2f}' for r in paired)}; "
              f"target >= {target}x: {'met' if ratio >= target else 'NOT met'})")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector that accepts and drops spans."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


BARE = {"LOTPULSE_METRICS": "false", "LOTPULSE_RATE_LIMITS": "false", "LOTPULSE_LOG_LEVEL": "WARNING"}
OBSERVED = {
    "LOTPULSE_METRICS": "true", "LOTPULSE_METRICS_TOKEN": "bench", "LOTPULSE_LOG_LEVEL": "INFO",
    "LOTPULSE_LOG_FORMAT": "json", "LOTPULSE_RATE_LIMITS": "true",
    # Refills too fast to ever refuse, with the default bursts: the process still leases a chunk of 25 tokens
    # from MongoDB every 25 requests, as it would for a busy tenant. The cost refill too: a skus(first: 50) page
    # costs 551, and at ~90 pages/s the default 20,000 a second ran dry a few seconds into a round (RATE_LIMITED).
    "LOTPULSE_RATE_LIMIT_REQUESTS_PER_SECOND": "1000000",
    "LOTPULSE_RATE_LIMIT_COST_PER_SECOND": "1000000000",
}
QUIET = {"LOTPULSE_WEBHOOK_WORKER": "false", "LOTPULSE_SWEEP_INTERVAL_MINUTES": "0"}


async def cpu_per_request(app: Any, token: str, requests: int) -> float:
    """CPU seconds this process spends per ``{ __typename }`` request, calling the ASGI app directly: no network, no
    client, and no other process's load in the figure (the database's share of a lease draw is not CPU here)."""
    body = b'{"query": "{ __typename }"}'
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/graphql", "raw_path": b"/graphql", "query_string": b"", "root_path": "",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
        "headers": [(b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode()),
                    (b"content-length", str(len(body)).encode())],
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope), receive, send)
        # As a server would between requests: the hub's background tasks get their turn in every variant alike
        # (a request that never waits would otherwise leave them to whichever variant waits for the database).
        await asyncio.sleep(0)
    logs.flush_access_lines()  # the access lines of these requests still waiting for their batch: written here
    spent = time.process_time() - started
    if set(status) != {200}:
        raise SystemExit(f"unexpected statuses {set(status)}")
    return spent / requests


async def cpu_overhead(args: argparse.Namespace, sink_port: int) -> None:
    """The same three variants as apps in this process, measured in CPU time in alternating rounds."""
    from hub.app import create_app

    traced = {**OBSERVED, "LOTPULSE_TRACING": "true", "LOTPULSE_TRACING_ENDPOINT": f"http://127.0.0.1:{sink_port}/v1/traces"}
    variants = {"bare": BARE, "observed": OBSERVED, "traced": traced}  # traced last: its pymongo tracing is global
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("LOTPULSE_")} | {
        "LOTPULSE_MONGODB_URI": os.environ["LOTPULSE_MONGODB_URI"], **QUIET,
        "LOTPULSE_SIGNING_KEY_FILE": str(Path(tempfile.mkdtemp(prefix="lotpulse-bench-")) / "keys.json"),
    }
    devnull = open(os.devnull, "w")
    async with contextlib.AsyncExitStack() as stack:
        apps: dict[str, tuple[Any, str, Settings]] = {}
        for name, env in variants.items():
            settings = Settings.from_env(base_env | env | {"LOTPULSE_DATABASE": f"bench_cpu_{uuid.uuid4().hex[:8]}"})
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            await tenant_service.create_tenant("bench", "Bench", "supplier")  # beanie: the database connected last
            token = mint_local_token(settings, app.state.hub.keyring, "bench", ["viewer"], 3600)
            apps[name] = (app, token, settings)
        # As ``lotpulse serve`` does before serving (hub/embedded.py): what startup made is out of the collector's
        # sight, so a full collection (which the traced hub's spans bring on, in whichever variant's round) scans
        # only what the requests made instead of costing ~75 ms in that round.
        gc.collect()
        gc.freeze()
        per_request: dict[str, list[float]] = {name: [] for name in apps}
        for _ in range(args.rounds):
            for name, (app, token, settings) in apps.items():
                logs.configure(settings, devnull)  # the JSON access line is written (to /dev/null) when INFO
                await cpu_per_request(app, token, 100)  # warm caches (parser, validation, lease)
                per_request[name].append(await cpu_per_request(app, token, args.cpu_requests))
    # The hubs' own background loops (change streams, polls) land in whichever round they fall: the fastest round of
    # each is its cost with the least of that noise, the median shows how much noise there was.
    best, middle = ({name: pick(v) for name, v in per_request.items()} for pick in (min, statistics.median))
    print(
        f"\nCPU per {{ __typename }} request inside the hub (ASGI app called directly, {args.rounds} alternating "
        f"rounds "
        f"of {args.cpu_requests} requests; other processes' load does not count; paired: median over the rounds "
        f"of each round's ratio to bare's)"
    )
    # Load from elsewhere moves whole rounds: each variant against bare in the same round, the median over rounds.
    paired = {name: statistics.median(v / b for v, b in zip(values, per_request["bare"], strict=True))
              for name, values in per_request.items()}
    for name in per_request:
        print(f"  {name:9} best {best[name] * 1e6:6.0f} µs  overhead {(best[name] / best['bare'] - 1) * 100:+5.1f} %   "
              f"median {middle[name] * 1e6:6.0f} µs  overhead {(middle[name] / middle['bare'] - 1) * 100:+5.1f} %   "
              f"paired {(paired[name] - 1) * 100:+5.1f} %")


async def overhead(args: argparse.Namespace, sink: ThreadingHTTPServer) -> None:
    traced = {**OBSERVED, "LOTPULSE_TRACING": "true",
              "LOTPULSE_TRACING_ENDPOINT": f"http://127.0.0.1:{sink.server_port}/v1/traces"}
    variants = {"bare": BARE, "observed": OBSERVED, "traced": traced}
    async with contextlib.AsyncExitStack() as stack:
        hubs = {}
        for name, env in variants.items():
            hubs[name] = await stack.enter_async_context(running_hub(**env))
            # beanie writes to the database connected last: seed each hub's tenant right after it connects
            await tenant_service.create_tenant(f"bench-{name}", "Bench", "supplier")
        for hub in hubs.values():
            await wait_ready(hub.port, hub.process)
        rates: dict[str, list[float]] = {name: [] for name in hubs}
        latencies: dict[str, list[float]] = {name: [] for name in hubs}
        cpu: dict[str, float] = {name: 0.0 for name in hubs}
        for _ in range(args.rounds):
            for name, hub in hubs.items():
                before = process_cpu(hub.process.pid)
                rate, measured = await measure(f"{hub.url}/graphql", hub.token(f"bench-{name}", "viewer"),
                                               "{ __typename }", args.seconds, args.concurrency)
                cpu[name] += process_cpu(hub.process.pid) - before
                rates[name].append(rate)
                latencies[name].extend(measured)
    per_request = {name: cpu[name] / len(latencies[name]) for name in hubs}
    print(f"\nhub process CPU per {{ __typename }} request over HTTP (uvicorn included; other processes' load does "
          f"not count), all {args.rounds} rounds together")
    for name in hubs:
        print(
            f"  {name:9} {per_request[name] * 1e6:6.0f} µs   "
            f"overhead {(per_request[name] / per_request['bare'] - 1) * 100:+5.1f} %"
            f"   ({len(latencies[name]):,} requests)"
        )
    base = statistics.median(rates["bare"])
    print(f"\noperability overhead on {{ __typename }}: median of {args.rounds} alternating rounds of "
          f"{args.seconds:g} s each")
    for name in hubs:
        rate = statistics.median(rates[name])
        print(f"  {name:9} {rate:8,.0f} requests/s   p50 {statistics.median(latencies[name]) * 1000:6.1f} ms   "
              f"{rate / base:5.2f}x bare   overhead {(base / rate - 1) * 100:+5.1f} %   "
              f"(rounds: {', '.join(f'{r:,.0f}' for r in rates[name])})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of the overhead comparison")
    parser.add_argument("--ratio-rounds", type=int, default=3, help="alternating rounds of the hub-to-floor ratios")
    parser.add_argument("--overhead-only", action="store_true", help="skip the hub-to-floor ratios")
    parser.add_argument("--ratios-only", action="store_true", help="only the hub-to-floor ratios (skip the overhead)")
    parser.add_argument("--cpu-requests", type=int, default=2000, help="requests per round of the CPU comparison")
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU comparison (implies --overhead-only)")
    arguments = parser.parse_args()
    # One database for every hub of the run.
    server = None
    if not os.environ.get("LOTPULSE_MONGODB_URI"):
        server = EmbeddedServer(Path(tempfile.mkdtemp(prefix="lotpulse-bench-db-")) / "db", sync_on_commit=False)
        server.start()
        os.environ["LOTPULSE_MONGODB_URI"] = server.uri
    try:
        if not (arguments.overhead_only or arguments.cpu_only):
            asyncio.run(main(arguments))
        if not arguments.ratios_only:
            collector = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
            threading.Thread(target=collector.serve_forever, daemon=True).start()
            if not arguments.cpu_only:
                asyncio.run(overhead(arguments, collector))
            asyncio.run(cpu_overhead(arguments, collector.server_port))
            collector.shutdown()
    finally:
        if server is not None:
            server.stop()
