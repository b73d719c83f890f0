"""Receivers that misbehave at the HTTP level: each attempt still ends within the timeout, is logged, and is tried
again with the same webhook-id. Raw sockets on loopback, since a well-behaved server cannot be made to dribble."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from hub.db import free_port
from hub.events.log import build_event, emit_many
from tests.webhooks.helpers import create_endpoint, deliveries
from webhooks.clock import ManualClock
from webhooks.delivery import EXCERPT_BYTES
from webhooks.runtime import build

Behaviour = Callable[[asyncio.StreamWriter, asyncio.Event], Awaitable[None]]
HANG_GUARD = 60.0  # only so that a regression fails instead of hanging the suite


async def dribble_headers(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """A status line, then one header line every 0.1 s for ever: no single read waits long."""
    writer.write(b"HTTP/1.1 200 OK\r\n")
    while not stop.is_set():
        writer.write(b"x-slow: a\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)


async def dribble_body(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """A 2xx with a long body sent a byte every 0.1 s."""
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n")
    while not stop.is_set():
        writer.write(b"a")
        await writer.drain()
        await asyncio.sleep(0.1)


async def close_mid_body(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial")
    await writer.drain()


async def huge_body(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """A 500 with 8 MiB of body: only an excerpt is read."""
    size = 8 * 1024 * 1024
    writer.write(f"HTTP/1.1 500 Internal Server Error\r\ncontent-length: {size}\r\n\r\n".encode())
    chunk = b"e" * 65536
    for _ in range(size // len(chunk)):
        if stop.is_set():
            return
        writer.write(chunk)
        await writer.drain()


async def serve(behaviour: Behaviour) -> AsyncIterator[str]:
    stop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await behaviour(writer, stop)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield f"http://127.0.0.1:{port}/erp"
    finally:
        stop.set()
        server.close()


async def test_headers_sent_a_line_at_a_time_time_out(quiet_hub):
    await two_failed_attempts(quiet_hub, dribble_headers, "timed out")


async def test_a_body_sent_a_byte_at_a_time_times_out(quiet_hub):
    await two_failed_attempts(quiet_hub, dribble_body, "timed out")


async def test_a_connection_closed_mid_body_is_a_failed_attempt(quiet_hub):
    await two_failed_attempts(quiet_hub, close_mid_body, "RemoteProtocolError")


async def two_failed_attempts(quiet_hub, behaviour: Behaviour, error: str) -> None:
    """Each attempt ends within the timeout however the receiver stalls, is logged as failed, and is retried."""
    async for url in serve(behaviour):
        await quiet_hub.tenant("acme", "retailer")
        endpoint_id, _ = await create_endpoint(quiet_hub, "acme", url)
        clock = ManualClock()
        dispatcher, worker = build(quiet_hub.settings.with_(webhook_timeout_seconds=0.5), clock)
        try:
            await emit_many(None, [build_event("stock.changed", "acme", [], {"n": 1}, subject="lot:1")])
            await dispatcher.run_once()
            # when: two attempts, the second when the retry falls due
            assert await asyncio.wait_for(worker.run_once(), HANG_GUARD) == 1
            clock.advance(timedelta(seconds=5))
            assert await asyncio.wait_for(worker.run_once(), HANG_GUARD) == 1
        finally:
            await worker.close()
        # then: both logged as failures, and the delivery waits for its next retry
        [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
        assert [a["statusCode"] for a in logged["attempts"]] == [None, None]
        assert all(a["error"].startswith(error) for a in logged["attempts"])
        assert logged["state"] == "pending" and logged["attemptCount"] == 2


async def test_a_huge_answer_is_cut_to_an_excerpt(quiet_hub):
    async for url in serve(huge_body):
        await quiet_hub.tenant("acme", "retailer")
        endpoint_id, _ = await create_endpoint(quiet_hub, "acme", url)
        dispatcher, worker = build(quiet_hub.settings, ManualClock())
        try:
            await emit_many(None, [build_event("stock.changed", "acme", [], {"n": 1}, subject="lot:1")])
            await dispatcher.run_once()
            assert await asyncio.wait_for(worker.run_once(), HANG_GUARD) == 1
        finally:
            await worker.close()
        [logged] = await deliveries(quiet_hub, "acme", endpoint_id)
        [attempt] = logged["attempts"]
        assert attempt["statusCode"] == 500 and attempt["responseExcerpt"] == "e" * EXCERPT_BYTES
