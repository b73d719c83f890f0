"""Rate limits: token buckets per tenant and per OAuth client, for requests and query cost, shared across processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.auth import Principal
from hub.config import RateLimitOverride
from hub.ratelimit import GROW_SECONDS, Limit, RateLimiter, SharedBuckets
from tests.conftest import Hub, hub_settings, start_hub

PAGE = "query Page($n: Int!) { skus(first: $n) { edges { node { id code } } } }"
SLOW = 0.001  # tokens per second: nothing refills during a test


@pytest.fixture(scope="module")
async def limited_hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Hub]:
    overrides = (
        RateLimitOverride(tenant="chatty", requests_per_second=SLOW, requests_burst=3),
        RateLimitOverride(tenant="costly", cost_per_second=SLOW, cost_burst=100),
    )
    async for running in start_hub(hub_settings(key_file, mongo_uri, rate_limit_overrides=overrides)):
        for tenant in ("chatty", "costly", "calm"):
            await running.tenant(tenant)
        yield running


async def test_a_tenant_over_its_request_limit_is_refused_while_another_is_not(limited_hub):
    token = limited_hub.token("chatty", "viewer")
    answers = [await limited_hub.post("{ me { subject } }", token=token) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    refused = answers[3]
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) >= 1 and "RateLimit-Reset" in refused.headers
    assert "data" not in refused.json()
    # the other tenant, on the same hub, is unaffected
    calm = [await limited_hub.post("{ me { subject } }", token=limited_hub.token("calm", "viewer")) for _ in range(5)]
    assert [a.status_code for a in calm] == [200] * 5


async def test_query_cost_weighs_lists_by_first(limited_hub):
    token = limited_hub.token("costly", "viewer")
    # 1 (skus) + 5 x (edges, node, id, code) = 21 points: runs
    small = await limited_hub.post(PAGE, {"n": 5}, token=token)
    assert small.status_code == 200 and "errors" not in small.json(), small.json()
    # 1 + 50 x 4 = 201 points: more than the whole bucket (100), refused before it runs
    big = await limited_hub.post(PAGE, {"n": 50}, token=token)
    assert big.status_code == 429
    error = big.json()["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["cost"] == 201
    assert "Retry-After" in big.headers
    # the same page is cheap for a tenant with the default limits
    other = await limited_hub.post(PAGE, {"n": 50}, token=limited_hub.token("calm", "viewer"))
    assert other.status_code == 200 and "errors" not in other.json()


def principal(tenant: str, client: str | None) -> Principal:
    return Principal(tenant_id=tenant, subject=client or "user", issuer="test", roles=frozenset({"integration"}),
                     client_id=client)


async def test_each_oauth_client_has_its_own_bucket_within_its_tenants(limited_hub):
    settings = limited_hub.settings.with_(
        rate_limit_overrides=(RateLimitOverride(client_id="lpc_loop", requests_per_second=SLOW, requests_burst=2),)
    )
    limiter = RateLimiter(settings, SharedBuckets(limited_hub.state.database.db["rate_buckets"]))
    looping, other = principal("calm", "lpc_loop"), principal("calm", "lpc_other")
    assert [(await limiter.take("requests", looping, 1)).allowed for _ in range(3)] == [True, True, False]
    assert (await limiter.take("requests", other, 1)).allowed  # the tenant's other client is unaffected


async def test_buckets_are_shared_across_processes(limited_hub):
    collection = limited_hub.state.database.db["rate_buckets"]
    one, two = SharedBuckets(collection), SharedBuckets(collection)  # as two hub processes hold them
    limit = Limit(per_second=SLOW, burst=20)  # chunk of 1: each process leases a token at a time
    allowed = 0
    for _ in range(20):
        for process in (one, two):
            allowed += (await process.take("requests:t:shared-test", 1, limit)).allowed
    assert allowed == 20  # together they spent the one bucket, not one each


async def test_a_large_query_is_not_refused_while_small_ones_spend_the_lease_it_is_refilling(limited_hub):
    # given one process's lease of a roomy bucket, warmed by a first request
    buckets = SharedBuckets(limited_hub.state.database.db["rate_buckets"])
    limit = Limit(per_second=SLOW, burst=100_000)
    assert (await buckets.take("cost:t:concurrent", 10, limit)).allowed
    # when a query larger than the lease waits for a draw while small ones are served from the lease meanwhile
    # (as a page sends its first queries at once)
    key = "cost:t:concurrent"
    large, *small = await asyncio.gather(
        buckets.take(key, 6001, limit), *(buckets.take(key, 500, limit) for _ in range(9))
    )
    # then all are allowed: the bucket holds far more than they take
    assert large.allowed and all(decision.allowed for decision in small)


async def test_a_busy_lease_is_topped_up_in_the_background_and_never_overspends(limited_hub):
    # given a bucket of 200 (chunks of 20) that does not refill during the test
    buckets = SharedBuckets(limited_hub.state.database.db["rate_buckets"])
    limit, key = Limit(per_second=SLOW, burst=200), "requests:t:busy-lease"
    assert (await buckets.take(key, 1, limit)).allowed  # the first request draws a chunk
    # when requests keep spending the lease: each is served from it, without awaiting the database
    leased, deadline = 0, time.monotonic() + 30
    while leased < 150 and time.monotonic() < deadline:
        if buckets.take_leased(key, 1, limit) is None:
            await asyncio.sleep(0.01)  # the top-up started below half a chunk is still on its way
            continue
        leased += 1
    # then seven chunks and more came from top-ups drawn in the background
    assert leased == 150
    # and all processes' requests together never get more than the bucket held
    rest = 0
    while (await buckets.take(key, 1, limit)).allowed:
        rest += 1
    assert 1 + leased + rest == 200


async def test_a_busy_lease_grows_to_a_second_of_the_refill_rate_and_the_bucket_still_holds(limited_hub):
    # given two processes sharing a bucket whose refill (400/s) is larger than its first chunk (100)
    collection = limited_hub.state.database.db["rate_buckets"]
    one, two = SharedBuckets(collection), SharedBuckets(collection)
    limit, key = Limit(per_second=400, burst=1000), "requests:t:growing-lease"
    assert limit.chunk == 100 and limit.largest_lease == 400
    started = time.monotonic()
    # when one process spends its leases as fast as it can
    allowed = 0
    for _ in range(800):
        allowed += (one.take_leased(key, 1, limit) or await one.take(key, 1, limit)).allowed
    # then its leases doubled up to a second of the refill rate: fewer database draws per request
    lease = one.leases[key]
    assert lease.size == 400
    # and a lease that lasted long halves the next one
    lease.taken_at, lease.tokens = lease.taken_at - 5 * GROW_SECONDS, 0.0
    allowed += (await one.take(key, 1, limit)).allowed
    assert lease.size == 200
    # and both processes together never got more than the bucket held and refilled meanwhile (a bounded number of
    # tries: the bucket refills while they are made)
    for _ in range(300):
        allowed += (await two.take(key, 1, limit)).allowed
    assert allowed <= limit.burst + limit.per_second * (time.monotonic() - started)
