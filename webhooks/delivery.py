"""Sending one webhook: sign, POST to the checked address, and describe what happened. Never raises."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import httpx

from webhooks import guard, signing

EXCERPT_BYTES = 1024
RETRY_AFTER_STATUSES = (429, 503)


@dataclass(frozen=True)
class Outcome:
    at: datetime
    status_code: int | None
    duration_ms: int
    response_excerpt: str | None = None
    error: str | None = None
    retry_after: str | None = None


def client(timeout: float) -> httpx.AsyncClient:
    """One pooled client per worker: redirects are never followed (a 3xx is a failure, not a new target)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        trust_env=False,  # a proxy from the environment would bypass the address check
    )


async def _excerpt(response: httpx.Response) -> str:
    taken = bytearray()
    async for chunk in response.aiter_bytes():
        taken.extend(chunk)
        if len(taken) >= EXCERPT_BYTES:
            break
    return bytes(taken[:EXCERPT_BYTES]).decode("utf-8", errors="replace")


async def send(
    http: httpx.AsyncClient,
    target: guard.Target,
    msg_id: str,
    body: str,
    secrets: list[str],
    *,
    at: datetime,
    signed_at: datetime,
    deadline: float,
) -> Outcome:
    """One attempt to a checked target. ``at`` is the scheduling clock's time; ``signed_at`` the wall-clock time
    receivers check the signature's age against. ``deadline`` bounds the whole attempt, answer and excerpt included:
    the client's timeouts bound each read only, so a receiver sending a byte at a time would hold the attempt (and a
    slot of its endpoint) for ever."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    headers = {**signing.headers(msg_id, signed_at, body, secrets), **target.headers}
    try:
        async with asyncio.timeout(deadline):
            request = http.build_request(
                "POST", target.url, content=body.encode(), headers=headers, extensions=target.extensions
            )
            response = await http.send(request, stream=True)
            try:
                excerpt = await _excerpt(response)
            finally:
                await response.aclose()
    except (httpx.TimeoutException, TimeoutError):
        return Outcome(at, None, elapsed(), error="timed out")
    except Exception as exc:
        return Outcome(at, None, elapsed(), error=f"{type(exc).__name__}: {exc}"[:300])
    return Outcome(
        at,
        response.status_code,
        elapsed(),
        response_excerpt=excerpt or None,
        # Honoured on 429 and 503 only (webhooks/retry.py): not looked up on every answer (httpx scans the headers).
        retry_after=response.headers.get("retry-after") if response.status_code in RETRY_AFTER_STATUSES else None,
    )


def refused(at: datetime, reason: str) -> Outcome:
    return Outcome(at, None, 0, error=f"refused: {reason}")
