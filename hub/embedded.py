"""``lotpulse serve`` on its embedded database: the database is supervised, and stops after the hub.

The hub and its embedded SecantusDB are two processes with one owner. If the database dies, the hub keeps serving
(requests answer SERVICE_UNAVAILABLE meanwhile) and the supervisor starts it again on the same port and data, with a
backoff that grows while it keeps dying. On SIGTERM or SIGINT the hub stops first (in-flight requests finish,
background work ends, its client closes) and the database after it, so the hub never meets a database that went away
under it. The database lives in a session of its own (a terminal's Ctrl-C reaches the hub only) and still dies with
the hub if the hub is killed (``PR_SET_PDEATHSIG``, see hub/db.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
from contextlib import suppress
from typing import Any

import uvicorn

from hub import gcpolicy
from hub.config import Settings
from hub.db import EmbeddedServer

log = logging.getLogger("lotpulse.embedded")
POLL_SECONDS = 0.2
FIRST_BACKOFF_SECONDS = 0.25
MAX_BACKOFF_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0  # a database that ran this long before dying is restarted without delay again
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 2.0  # then it is killed: with --sync-on-commit every acknowledged write is on disk already
NUDGE_AFTER_SECONDS = 0.05
GRACEFUL_SHUTDOWN_SECONDS = 1.5  # in-flight requests and sockets get this long when the hub stops


async def wait_listening(server: EmbeddedServer, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not server.listening():
        if time.monotonic() > deadline:
            raise RuntimeError("embedded database did not start in time")
        await asyncio.sleep(0.05)


async def stop_server(server: EmbeddedServer, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM, then SIGKILL if it is still running after ``timeout`` (acknowledged writes are on disk already).

    SecantusDB's stop waits up to 2 s for its accept thread, which a closed listening socket does not wake; one
    connection does, so it is nudged once it has had time to take the signal (its stop then takes ~0.4 s).
    """
    process = server.process
    if process is None or process.poll() is not None:
        return
    process.terminate()
    deadline = time.monotonic() + timeout
    nudges = [time.monotonic() + NUDGE_AFTER_SECONDS, time.monotonic() + timeout / 2]
    while process.poll() is None:
        now = time.monotonic()
        if now > deadline:
            log.warning("embedded database did not stop within %.1f s; killing it", timeout)
            process.kill()
            process.wait()
            return
        if nudges and now >= nudges[0]:
            nudges.pop(0)
            with suppress(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                pass
        await asyncio.sleep(0.02)


class Supervisor:
    """Restarts the embedded database whenever it exits, until cancelled."""

    def __init__(self, server: EmbeddedServer) -> None:
        self.server = server
        self.restarts = 0

    async def run(self) -> None:
        backoff = FIRST_BACKOFF_SECONDS
        started = time.monotonic()
        reported: object = None
        while True:
            process = self.server.process
            assert process is not None
            while process.poll() is None:
                await asyncio.sleep(POLL_SECONDS)
            if time.monotonic() - started > STABLE_AFTER_SECONDS:
                backoff = FIRST_BACKOFF_SECONDS
            if process is not reported:
                log.warning("embedded database exited with code %s", process.returncode)
                reported = process
            log.warning("starting the embedded database again in %.2f s", backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            started = time.monotonic()
            try:
                # Started from the event loop's (main) thread: the parent-death signal follows the starting thread.
                self.server.spawn()
                await wait_listening(self.server)
            except (OSError, RuntimeError) as exc:
                log.warning("embedded database did not come back (%s); trying again", exc)
                continue
            self.restarts += 1
            pid = self.server.process.pid if self.server.process else -1
            log.warning("embedded database restarted (pid %d, port %d)", pid, self.server.port)


def uvicorn_server(app: Any, settings: Settings) -> uvicorn.Server:
    from hub.app import uvicorn_options

    # Our logging setup (hub/logs.py) formats uvicorn's lines too; the access line comes from logs.RequestContext.
    config = uvicorn.Config(
        app, **uvicorn_options(settings), log_config=None, access_log=False,
        # typed int by uvicorn, but passed to asyncio.wait_for, which takes fractions of a second
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,  # type: ignore[arg-type]
    )
    return uvicorn.Server(config)


async def serve_hub(app: Any, settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; returns once the hub has stopped (no signal is re-raised afterwards)."""
    server = uvicorn_server(app, settings)
    # What the process holds once started (modules, the schema, the app) lives as long as it does: frozen out of the
    # collector's sight, a full collection scans only what serving made, not ~150,000 objects for ~75 ms every few
    # thousand requests (the pause a trivial query otherwise meets at random).
    gcpolicy.configure(settings)
    # uvicorn restores the handlers it found and re-raises the signal it caught once it has stopped; with these the
    # re-raised signal is a no-op and the caller gets to stop the database before the process ends.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        await server.serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def serve_embedded(settings: Settings) -> None:
    """Start the embedded database, serve the hub on it, and stop both in that order."""
    from hub.app import create_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = EmbeddedServer(settings.data_dir / "db", log_path=settings.data_dir / "secantusd.log")
    marker = settings.data_dir / "embedded.json"
    database.spawn()
    supervisor: asyncio.Task[None] | None = None
    try:
        await wait_listening(database)
        marker.write_text(json.dumps({"port": database.port, "pid": os.getpid()}))
        log.info("embedded database (SecantusDB) at %s, data in %s", database.uri, settings.data_dir.resolve())
        supervisor = asyncio.create_task(Supervisor(database).run(), name="embedded-database-supervisor")
        await serve_hub(create_app(settings, mongodb_uri=database.uri), settings)
    finally:
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        marker.unlink(missing_ok=True)
        await stop_server(database)
        log.info("embedded database stopped")
