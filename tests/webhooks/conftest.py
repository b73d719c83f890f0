"""A real webhook receiver under uvicorn on loopback, and a hub whose webhook loops the test drives itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import uvicorn
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.config import Settings
from hub.db import free_port
from hub.models.event import Event
from tests.conftest import Hub, start_hub
from webhooks.dispatcher import Dispatcher


async def all_numbered(within: float = 20.0) -> None:
    """Wait until the hub's sequencer has numbered every event written so far (the dispatcher reads only those)."""
    deadline = time.monotonic() + within
    while await Event.find({"pending": True}).count():
        assert time.monotonic() < deadline, "events were left unnumbered"
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def dispatch_what_was_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests drive the dispatcher right after writing events: each pass first lets the sequencer catch up."""
    run_once = Dispatcher.run_once

    async def numbered_then_run_once(self: Dispatcher) -> int:
        await all_numbered()
        return await run_once(self)

    monkeypatch.setattr(Dispatcher, "run_once", numbered_then_run_once)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 0  # what the receiver answered
    answered: float = 0.0  # when (monotonic)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def verify(self, secret: str) -> dict:
        """The official library's check: raises unless the signature matches."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    """Records every request; answers from ``script`` (path -> statuses, used in order) then ``default``."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[int | tuple[int, dict[str, str]]]] = field(default_factory=dict)
    default: int = 200
    delay: Callable[[str], float] = lambda path: 0.0
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    respond: Callable[[Received], Awaitable[int]] | None = None  # answers instead of script/default when set

    def at(self, path: str) -> str:
        return f"{self.url}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, count: int, path: str | None = None, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.on(path) if path else self.requests
            if len(got) >= count:
                return got
            await asyncio.sleep(0.02)
        got = self.on(path) if path else self.requests
        raise AssertionError(f"expected {count} webhook requests, got {len(got)}")


async def start_receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}")

    async def handle(request: Request) -> Response:
        path = request.url.path
        received = Received(path, dict(request.headers), await request.body(), time.monotonic())
        receiver.requests.append(received)
        receiver.in_flight[path] = receiver.in_flight.get(path, 0) + 1
        receiver.max_in_flight[path] = max(receiver.max_in_flight.get(path, 0), receiver.in_flight[path])
        answer: int | tuple[int, dict[str, str]]
        try:
            pause = receiver.delay(path)
            if pause:
                await asyncio.sleep(pause)
            if receiver.respond is not None:
                answer = await receiver.respond(received)
        finally:
            receiver.in_flight[path] -= 1
        if receiver.respond is None:
            planned = receiver.script.get(path)
            answer = planned.pop(0) if planned else receiver.default
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        received.status, received.answered = status, time.monotonic()
        return Response(f"answer {status}", status_code=status, headers=headers)

    app = Starlette(routes=[Route("/{path:path}", handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for running in start_receiver():
        yield running


@pytest.fixture
async def quiet_hub(settings: Settings) -> AsyncIterator[Hub]:
    """A hub without background webhook loops: the test runs the dispatcher and worker with its own clock."""
    async for running in start_hub(settings.with_(webhook_worker=False)):
        yield running


@pytest.fixture
async def live_hub(settings: Settings) -> AsyncIterator[Hub]:
    """A hub whose webhook loops run in the background and poll briskly."""
    async for running in start_hub(settings.with_(webhook_poll_seconds=0.05)):
        yield running
