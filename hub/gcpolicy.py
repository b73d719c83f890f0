"""The garbage collector's policy for a process that serves the hub (``lotpulse serve``).

CPython's cycle collector stops the process for as long as a collection walks its objects. A young collection walks
the few objects made since the last one; a full one (generation 2) walks every object that has lived a while, and
with thousands of live subscriptions that is hundreds of thousands of objects (docs/operations.md, "Garbage
collection"). Two levers, both settings:

- ``gc_freeze``: once start-up is done (modules, schema, app, background tasks), what the process holds is frozen
  (``gc.freeze``): it lives as long as the process, so no collection walks it again.
- ``gc_thresholds``: ``gc.set_threshold`` for the process. See docs/operations.md for the defaults and their cost.

Only the serving process is configured: tests build apps in their own process, and freezing a test runner's objects
would keep its garbage for good.
"""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.config import Settings

log = logging.getLogger("lotpulse.gc")
_freeze_after_startup = False


def configure(settings: Settings) -> None:
    """For the process about to serve: the thresholds now, and the freeze once start-up is done (``started``)."""
    global _freeze_after_startup
    if settings.gc_thresholds:
        gc.set_threshold(*settings.gc_thresholds)
    _freeze_after_startup = settings.gc_freeze
    log.debug("garbage collector thresholds %s, freeze after start-up: %s", gc.get_threshold(), settings.gc_freeze)


def started() -> None:
    """Called once start-up is done: freezes what it made if ``configure`` asked for it (once a process)."""
    global _freeze_after_startup
    if not _freeze_after_startup:
        return
    _freeze_after_startup = False
    gc.collect()
    gc.freeze()
