"""What one hub process holds while it runs: settings, database, keys, token validator, its long-lived services and
background tasks. The app keeps the one instance in ``app.state.hub`` (``hub_of`` reads it)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from hub.auth import TokenValidator
from hub.config import Settings
from hub.db import Database
from hub.keys import KeyRing, StoredKeyRing

if TYPE_CHECKING:
    from hub.events.bus import EventBus
    from hub.events.sequencer import Sequencer
    from hub.leases import Partitions
    from hub.oauth.http import OAuthService
    from hub.ratelimit import RateLimiter
    from hub.services.persisted import PersistedQueries, Safelists
    from webhooks.dispatcher import Dispatcher
    from webhooks.worker import Worker

log = logging.getLogger("lotpulse")
CANCEL_REPEAT_SECONDS = 2.0


def key_file_for(settings: Settings) -> Path:
    """Where the key ring was kept before it moved into the database: imported from there on first start."""
    return settings.signing_key_file or settings.data_dir / "signing-keys.json"


def keyring_for(settings: Settings) -> StoredKeyRing:
    """The key ring of the hub's database (``load`` it once connected)."""
    return StoredKeyRing(key_file_for(settings))


@dataclass
class HubState:
    settings: Settings
    database: Database
    keyring: KeyRing
    validator: TokenValidator
    # Set by the startup hooks before the hub takes requests (hub/app.py runs them in order).
    oauth: OAuthService = field(init=False, repr=False)
    bus: EventBus = field(init=False, repr=False)
    sequencer: Sequencer = field(init=False, repr=False)
    # Which tenants' periodic work (sweep, escalation) this process does; None until leased (hub/leases.py).
    partitions: Partitions | None = field(default=None, repr=False)
    # Only when this process runs the webhook dispatcher and worker (LOTPULSE_WEBHOOK_WORKER).
    webhook_dispatcher: Dispatcher | None = field(default=None, repr=False)
    webhook_worker: Worker | None = field(default=None, repr=False)
    rate_limiter: RateLimiter | None = field(default=None, repr=False)  # None: LOTPULSE_RATE_LIMITS is off
    persisted_queries: PersistedQueries = field(init=False, repr=False)
    safelists: Safelists = field(init=False, repr=False)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list, repr=False)

    def spawn(self, name: str, factory: Callable[[], Awaitable[Any]]) -> None:
        """Run a background loop for the life of the process; a crash is logged, never silent."""

        async def guarded() -> None:
            try:
                await factory()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s crashed", name)

        self.tasks.append(asyncio.create_task(guarded(), name=name))

    async def stop_tasks(self) -> None:
        await cancel_and_wait(self.tasks)
        self.tasks.clear()

    async def stop_task(self, name: str) -> None:
        """Stop the one running background task called ``name`` (a drill or test restarts it with ``spawn``)."""
        (task,) = [task for task in self.tasks if task.get_name() == name and not task.done()]
        await cancel_and_wait([task])


async def cancel_and_wait(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until they have ended, cancelling again any that swallowed the first request.

    Python 3.11's ``asyncio.wait_for`` drops a cancellation that lands just as the operation it waits on completes,
    and pymongo's network layer uses it: a loop that only awaits the database then runs on with ``cancelling()`` set,
    and a plain cancel-and-gather (the hub's stop) waits for ever. The pause before repeating lets a task that did
    take the request finish its clean-up (giving back a lease) undisturbed.
    """
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=CANCEL_REPEAT_SECONDS)
        for task in pending:
            log.warning("background task %s ignored its cancellation; cancelling it again", task.get_name())
            task.cancel()


def hub_of(connection: HTTPConnection) -> HubState:
    """The hub state of the app serving this request or WebSocket."""
    hub: HubState = connection.app.state.hub
    return hub
