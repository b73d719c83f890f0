"""Running the dispatcher and the worker: inside each hub process, or alone (``lotpulse webhooks worker``)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from pymongo.errors import PyMongoError

from hub.config import Settings
from hub.leases import Partitions
from webhooks.clock import Clock
from webhooks.dispatcher import Dispatcher
from webhooks.worker import Worker

if TYPE_CHECKING:
    from hub.db import Database
    from hub.state import HubState

log = logging.getLogger("lotpulse.webhooks")
JOB = "webhook-endpoints"  # the leased partitions endpoints are spread over


def build(
    settings: Settings, clock: Clock | None = None, database: Database | None = None
) -> tuple[Dispatcher, Worker]:
    """With ``database``, the worker serves only the endpoints of the partitions this process leases."""
    worker = Worker(settings, clock=clock)
    if database is not None:
        worker.partitions = Partitions(database, JOB, lease_seconds=settings.work_lease_seconds, name=worker.name)
    # The shared work lease, as for numbering the log: a dead leader's dispatch (and the deliveries its worker had
    # taken, made again from the log) moves to another process within it.
    dispatcher = Dispatcher(lease=timedelta(seconds=settings.work_lease_seconds),
                            poll_seconds=settings.webhook_poll_seconds, clock=clock, worker=worker)
    return dispatcher, worker


async def deliver(worker: Worker) -> None:
    """The worker, with the heartbeat of its endpoint partitions when it has some."""
    if worker.partitions is not None:
        try:
            await worker.partitions.refresh()
        except PyMongoError as exc:  # the database is not up yet: the heartbeat takes a share once it is
            log.warning("could not lease webhook endpoint partitions yet (%s)", exc)
        partitions = asyncio.create_task(worker.partitions.run())
    try:
        await worker.run()
    finally:
        if worker.partitions is not None:
            partitions.cancel()
            await asyncio.gather(partitions, return_exceptions=True)


async def dispatch(dispatcher: Dispatcher, worker: Worker) -> None:
    """The dispatcher, once the worker runs: the deliveries it makes for the worker's endpoints are then sent
    first and inserted finished, rather than inserted pending and claimed (a backlog found at start included)."""
    await worker.started.wait()
    await dispatcher.run()


async def start_webhooks(hub: HubState) -> None:
    """Startup hook: every hub process dispatches (one at a time, by lease) and delivers to its share of endpoints."""
    if not hub.settings.webhook_worker:
        return
    dispatcher, worker = build(hub.settings, database=hub.database)
    hub.webhook_dispatcher, hub.webhook_worker = dispatcher, worker
    hub.bus.listeners.append(dispatcher.wake)
    hub.spawn("webhook-dispatcher", lambda: dispatch(dispatcher, worker))
    hub.spawn("webhook-worker", lambda: deliver(worker))


async def run_forever(settings: Settings, database: Database) -> None:
    dispatcher, worker = build(settings, database=database)
    await asyncio.gather(dispatch(dispatcher, worker), deliver(worker))


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
