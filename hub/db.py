"""MongoDB client, beanie initialisation, the transaction runner and the embedded SecantusDB server.

The embedded server runs as a separate process (keeps its GPL-2.0 code out of ours; ``--sync-on-commit`` makes
acknowledged writes survive a kill -9). Production points ``LOTPULSE_MONGODB_URI`` at a MongoDB replica set.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern

from hub.metrics import CommandTimer

log = logging.getLogger("lotpulse.db")
PR_SET_PDEATHSIG = 1
T = TypeVar("T")
TRANSACTION_ATTEMPTS = 8
FIRST_BACKOFF_SECONDS = 0.005


class StaleRead(Exception):
    """Raised by transaction work whose reads a concurrent writer changed first: the runner starts it over."""


def _stale(exc: Exception) -> bool:
    return isinstance(exc, StaleRead)


async def run_transaction(
    client: AsyncMongoClient[Any],
    work: Callable[[AsyncClientSession], Awaitable[T]],
    *,
    retry_if: Callable[[Exception], bool] = _stale,
    attempts: int = TRANSACTION_ATTEMPTS,
) -> T:
    """The hub's one way to run ``work(session)`` in a transaction (majority write concern), retried as one policy.

    - The driver's ``with_transaction`` runs ``work`` again on a transient transaction error (a write conflict with
      another transaction) and commits again on an unknown commit result, so ``work`` must be safe to re-run.
    - An error ``retry_if`` accepts (by default ``StaleRead``; callers add e.g. a creation race on a unique key)
      starts ``work`` over in a new transaction after an exponential backoff from 5 ms, at most ``attempts`` times
      in all; the last one propagates.
    """
    for attempt in range(attempts):
        try:
            async with client.start_session() as session:
                return await session.with_transaction(work, write_concern=WriteConcern("majority"))
        except Exception as exc:
            if attempt == attempts - 1 or not retry_if(exc):
                raise
        await asyncio.sleep(FIRST_BACKOFF_SECONDS * 2**attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _die_with_parent() -> None:
    """Linux: the database gets SIGTERM when the hub dies, even by kill -9, so it is never left orphaned."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """A SecantusDB child process listening on loopback."""

    def __init__(
        self,
        storage_path: Path | str,
        port: int | None = None,
        log_path: Path | None = None,
        sync_on_commit: bool = True,
    ) -> None:
        # Tests turn syncing off: their data is thrown away, and killing a hub (not the database) loses nothing.
        self.sync_on_commit = sync_on_commit
        self.storage_path = Path(storage_path)
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout: float = 30.0) -> None:
        if str(self.storage_path) != ":memory:":
            self.storage_path.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        cmd = [
            sys.executable,
            "-c",
            "import sys; from secantus.cli import main; sys.exit(main())",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str(self.storage_path),
            "--log-level", "WARNING",
            *(["--sync-on-commit"] if self.sync_on_commit else []),
        ]
        self.process = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded database exited with code {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("embedded database did not start in time")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def document_models() -> list[type]:
    """Every beanie document of the hub, in one list, so ``init_beanie`` builds all indexes."""
    from hub.models import MODELS as hub_models
    from tenants.models import MODELS as tenant_models
    from webhooks.models import MODELS as webhook_models

    return [*tenant_models, *hub_models, *webhook_models]


class Database:
    """The client and database one hub process uses."""

    def __init__(self, client: AsyncMongoClient, name: str) -> None:
        self.client = client
        self.db: AsyncDatabase = client[name]

    @classmethod
    async def connect(cls, uri: str, name: str, timed: bool = True) -> Database:
        """``timed``: every command's latency goes to the metrics (hub/metrics.py)."""
        client: AsyncMongoClient = AsyncMongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=10_000, event_listeners=[CommandTimer()] if timed else []
        )
        database = cls(client, name)
        await init_beanie(database=database.db, document_models=document_models())
        return database

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    async def close(self) -> None:
        await self.client.close()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncClientSession]:
        async with self.client.start_session() as session:
            yield session

    async def in_transaction(
        self,
        work: Callable[[AsyncClientSession], Awaitable[T]],
        *,
        retry_if: Callable[[Exception], bool] = _stale,
        attempts: int = TRANSACTION_ATTEMPTS,
    ) -> T:
        """``run_transaction`` on this database's client."""
        return await run_transaction(self.client, work, retry_if=retry_if, attempts=attempts)
