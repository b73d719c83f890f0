"""What one hub process holds while it runs: settings, database, keys, token validator, background tasks."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from hub.auth import TokenValidator
from hub.config import Settings
from hub.db import Database
from hub.keys import KeyRing

log = logging.getLogger("lotpulse")


def keyring_for(settings: Settings) -> KeyRing:
    return KeyRing(settings.signing_key_file or settings.data_dir / "signing-keys.json")


@dataclass
class HubState:
    settings: Settings
    database: Database
    keyring: KeyRing
    validator: TokenValidator
    services: dict[str, Any] = field(default_factory=dict)  # long-lived helpers (event bus, webhook worker, ...)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

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
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
