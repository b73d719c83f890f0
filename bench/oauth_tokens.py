"""OAuth token issuance and validation over HTTP.

    python bench/oauth_tokens.py [--requests 300] [--clients 4]

Starts a SecantusDB process (or uses LOTPULSE_MONGODB_URI) and a hub process (``python -m hub.cli serve``), registers
a confidential client, then measures from ``--clients`` concurrent callers:
- ``client_credentials`` at ``/oauth/token`` (client authentication, RS256 signing, one audit write);
- a trivial GraphQL query (``{ me { roles } }``) with that OAuth token (signature check, revocation list, tenant
  lookup cache), next to the same query with a CLI-minted token, so the difference is what OAuth validation costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import percentile, running_hub, wait_ready
from tenants import service as tenant_service

CREATE_CLIENT = """
mutation { createOAuthClient(input: {name: "bench", scopes: ["read", "write"], roles: [integration]}) {
  clientSecret client { clientId } } }
"""
ME = "{ me { roles } }"




async def measure(
    requests: int, clients: int, call: Callable[[httpx.AsyncClient], Awaitable[None]]
) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def worker(share: int) -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in range(share):
                started = time.perf_counter()
                await call(http)
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(requests // clients) for _ in range(clients)))
    return len(latencies) / (time.perf_counter() - started), latencies


def report(label: str, rate: float, latencies: list[float]) -> None:
    print(
        f"{label:<34}: {rate:8,.0f} req/s  p50 {statistics.median(latencies) * 1000:6.1f} ms"
        f"  p99 {percentile(latencies, 0.99) * 1000:6.1f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    async with running_hub() as hub:
        admin, local = hub.token("bench", "admin"), hub.token("bench", "integration")
        base, port = hub.url, hub.port
        await tenant_service.create_tenant("bench", "Bench", "retailer")
        await wait_ready(port, hub.process)
        async with httpx.AsyncClient(timeout=60) as http:
            body = (await http.post(f"{base}/graphql", json={"query": CREATE_CLIENT},
                                    headers={"authorization": f"Bearer {admin}"})).json()
        created = body["data"]["createOAuthClient"]
        client_id, secret = created["client"]["clientId"], created["clientSecret"]
        tokens: list[str] = []

        async def issue(http: httpx.AsyncClient) -> None:
            response = await http.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                                       auth=(client_id, secret))
            response.raise_for_status()
            tokens.append(response.json()["access_token"])

        def query_with(token: str) -> Callable[[httpx.AsyncClient], Awaitable[None]]:
            async def call(http: httpx.AsyncClient) -> None:
                response = await http.post(f"{base}/graphql", json={"query": ME},
                                           headers={"authorization": f"Bearer {token}"})
                if "errors" in response.json():
                    raise SystemExit(response.json()["errors"])
            return call

        print(f"{args.requests} requests, {args.clients} concurrent clients")
        report("client_credentials /oauth/token", *await measure(args.requests, args.clients, issue))
        report("GraphQL { me } with OAuth token", *await measure(args.requests, args.clients, query_with(tokens[0])))
        report("GraphQL { me } with CLI token", *await measure(args.requests, args.clients, query_with(local)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=4)
    asyncio.run(main(parser.parse_args()))
