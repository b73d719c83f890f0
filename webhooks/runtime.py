"""Running the dispatcher and the worker: inside each hub process, or alone (``lotpulse webhooks worker``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hub.config import Settings
from webhooks.clock import Clock
from webhooks.dispatcher import Dispatcher
from webhooks.worker import Worker

if TYPE_CHECKING:
    from hub.state import HubState


def build(settings: Settings, clock: Clock | None = None) -> tuple[Dispatcher, Worker]:
    worker = Worker(settings, clock=clock)
    dispatcher = Dispatcher(
        poll_seconds=settings.webhook_poll_seconds,
        clock=clock,
        on_created=worker.wake,
    )
    return dispatcher, worker


async def start_webhooks(hub: HubState) -> None:
    """Startup hook: every hub process dispatches (one at a time, by lease) and delivers (all together)."""
    if not hub.settings.webhook_worker:
        return
    dispatcher, worker = build(hub.settings)
    hub.webhook_dispatcher, hub.webhook_worker = dispatcher, worker
    hub.bus.listeners.append(dispatcher.wake)
    hub.spawn("webhook-dispatcher", dispatcher.run)
    hub.spawn("webhook-worker", worker.run)


async def run_forever(settings: Settings) -> None:
    dispatcher, worker = build(settings)
    await asyncio.gather(dispatcher.run(), worker.run())


async def drain(settings: Settings) -> int:
    """Dispatch every new event and make every attempt due now; answers the number of attempts."""
    dispatcher, worker = build(settings)
    try:
        while await dispatcher.run_once() or dispatcher.more:
            pass
        return await worker.drain()
    finally:
        await dispatcher.release()
        await worker.close()
