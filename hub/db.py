"""MongoDB client, beanie initialisation, the transaction runner and the embedded SecantusDB server.

The embedded server runs as a separate process (keeps its GPL-2.0 code out of ours; ``--sync-on-commit`` makes
acknowledged writes survive a kill -9). Production points ``LOTPULSE_MONGODB_URI`` at a MongoDB replica set.

Every operation has a deadline (pymongo's client-side operation timeout), and so has every transaction with all its
retries: a database that is gone or hung costs a caller seconds and a typed ``SERVICE_UNAVAILABLE``, never a hang.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pymongo
from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError
from pymongo.write_concern import WriteConcern

from hub.errors import ServiceUnavailable
from hub.metrics import CommandTimer

log = logging.getLogger("lotpulse.db")
PR_SET_PDEATHSIG = 1
T = TypeVar("T")
TRANSACTION_ATTEMPTS = 8
FIRST_BACKOFF_SECONDS = 0.005
RELEASE_SECONDS = 2.0  # aborting a transaction a timed-out attempt left open
# A transaction of the embedded database left idle this long is aborted. A live hub never pauses a transaction
# for seconds (each one has a deadline of a few seconds, all of it); one of a process that died (kill -9, out of
# memory) would otherwise keep what it wrote locked for the server's default of 60 s.
IDLE_TRANSACTION_SECONDS = 10.0
# SecantusDB takes the idle limit only as a constructor argument of its server (no flag, no setParameter), so the
# child sets it before running the server's own command line.
_SERVE = (
    "import functools, sys; from secantus.server import SecantusDBServer as S; "
    "S.__init__ = functools.partialmethod(S.__init__, transaction_lifetime_seconds=float(sys.argv.pop(1))); "
    "from secantus.cli import main; sys.exit(main())"
)


class StaleRead(Exception):
    """Raised by transaction work whose reads a concurrent writer changed first: the runner starts it over."""


def _stale(exc: Exception) -> bool:
    return isinstance(exc, StaleRead)


@dataclass(frozen=True)
class Deadlines:
    """How long the hub waits on the database (seconds). ``operation`` None: no per-operation limit (shell tools)."""

    operation: float | None = 10.0
    server_selection: float = 1.0  # no reachable server for this long: unavailable (callers retry after Retry-After)
    connect: float = 2.0  # a new connection's TCP connect and handshake: a server that accepts and never answers
    transaction: float | None = 4.0  # one transaction, every retry of it and the backoff between them included
    readiness: float = 0.5  # /readyz must turn red within a second of losing the database
    # Building the indexes at startup: after an upgrade a new index over a large collection takes a while, and
    # SecantusDB may keep a build cut short by a deadline as a partial index that later reads trust.
    startup: float = 600.0


def unavailable(exc: BaseException) -> bool:
    """Did the database fail to answer (unreachable, deadline passed, connection lost), rather than refuse?"""
    if isinstance(exc, ServiceUnavailable):
        return True
    return isinstance(exc, PyMongoError) and (isinstance(exc, ConnectionFailure) or exc.timeout)


async def run_transaction(
    client: AsyncMongoClient[Any],
    work: Callable[[AsyncClientSession], Awaitable[T]],
    *,
    retry_if: Callable[[Exception], bool] = _stale,
    attempts: int = TRANSACTION_ATTEMPTS,
    deadline: float | None = None,
) -> T:
    """The hub's one way to run ``work(session)`` in a transaction (majority write concern), retried as one policy.

    - The driver's ``with_transaction`` runs ``work`` again on a transient transaction error (a write conflict with
      another transaction) and commits again on an unknown commit result, so ``work`` must be safe to re-run.
    - An error ``retry_if`` accepts (by default ``StaleRead``; callers add e.g. a creation race on a unique key)
      starts ``work`` over in a new transaction after an exponential backoff from 5 ms, at most ``attempts`` times
      in all; the last one propagates.
    - ``deadline`` (seconds) bounds all of it, every attempt and backoff included (the driver's own limit is
      120 s); a database that did not answer in time is ``ServiceUnavailable``: the caller hears within seconds,
      with a typed, retryable error. (Under a deadline the driver waits for a server as long as the deadline allows,
      so callers that can, check ``Database.reachable`` first.)
    """

    async def attempt(session: AsyncClientSession) -> T:
        try:
            return await work(session)
        except ServerSelectionTimeoutError as exc:
            # Raised as is, the driver would label it transient and retry it (in vain) until the deadline.
            raise ServiceUnavailable("the database is unavailable; retry shortly") from exc

    try:
        with pymongo.timeout(deadline) if deadline is not None else nullcontext():
            for number in range(attempts):
                session = client.start_session()
                ended_here = True
                try:
                    return await session.with_transaction(attempt, write_concern=WriteConcern("majority"))
                except BaseException as exc:
                    if isinstance(exc, asyncio.CancelledError) or unavailable(exc):
                        _release_later(session)  # ends the session once the server has let go of the transaction
                        ended_here = False
                    if not isinstance(exc, Exception) or number == attempts - 1 or not retry_if(exc):
                        raise
                finally:
                    if ended_here:
                        await session.end_session()
                await asyncio.sleep(FIRST_BACKOFF_SECONDS * 2**number)
    except PyMongoError as exc:
        if unavailable(exc):
            raise ServiceUnavailable("the database did not complete the change in time; retry shortly") from exc
        raise
    raise AssertionError("unreachable: the last attempt returns or raises")


_releasing: set[asyncio.Task[None]] = set()


def _release_later(session: AsyncClientSession) -> None:
    """Abort, in the background, the transaction an attempt that ran out of time may have left open on the server.

    When a statement outlives the deadline, the driver gives up on it (and on its connection) and cannot send
    ``abortTransaction`` any more: the server keeps the transaction, and the documents it wrote stay locked until
    its transaction lifetime (60 s by default) reaps it. Every other writer of those documents meanwhile conflicts,
    times out in turn and leaves a transaction of its own behind: under load the write path stalls for minutes.
    The abort runs outside the caller's deadline (a fresh context) and never delays the caller's answer.
    """
    task = asyncio.get_running_loop().create_task(_release(session), context=contextvars.Context())
    _releasing.add(task)
    task.add_done_callback(_releasing.discard)


async def _release(session: AsyncClientSession) -> None:
    try:
        with pymongo.timeout(RELEASE_SECONDS):
            # The session's last transaction number is the attempt's: abort exactly that one (the driver believes
            # it aborted already and would refuse a second abort_transaction()).
            await session.client.admin.command(
                {"abortTransaction": 1, "txnNumber": session._transaction_id, "autocommit": False}, session=session
            )
    except PyMongoError:
        pass  # already gone (aborted, reaped, or the database is down and holds nothing for anyone)
    finally:
        with suppress(PyMongoError):
            await session.end_session()


def _die_with_parent() -> None:
    """Linux: the database gets SIGTERM when the hub dies, even by kill -9, so it is never left orphaned.

    The kernel sends it when the *thread* that started the child ends, so start it from the main thread.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Values per $in: SecantusDB checks every fetched document against the whole ``$in`` list, so one lookup of n values
# costs n² (400 lot ids at once: 577 ms, in slices of 100: 207 ms); about 50 per query costs least per value.
IN_SLICE = 50


async def by_ids(collection: Any, ids: list[Any], session: Any = None, projection: Any = None) -> list[dict]:
    """The documents with these ``_id``s, looked up in slices of ``IN_SLICE``."""
    found: list[dict] = []
    for start in range(0, len(ids), IN_SLICE):
        found += await collection.find({"_id": {"$in": ids[start:start + IN_SLICE]}}, projection,
                                       session=session).to_list(None)
    return found


def embedded_uri(port: int) -> str:
    """The URI of an embedded server on loopback, with the driver's retryable writes off.

    SecantusDB keeps the reply of every retryable write in memory for 30 minutes and walks that whole record on each
    retryable write (sorting it once it passes 10,000 entries), so with retryable writes on, a busy hub's writes cost
    more every minute. The record could not deduplicate a retry across a restart of the database anyway (it is only in
    memory), and on loopback a connection lost mid-write means that process died. Without driver retries, such a write
    fails with SERVICE_UNAVAILABLE and the client's retry is covered by the hub's own guards (idempotency keys, leases,
    conditional updates). Transactions are unaffected. A MongoDB URI given by the operator keeps its own setting.
    """
    return f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"


class EmbeddedServer:
    """A SecantusDB child process listening on loopback.

    It runs in a session of its own, so a Ctrl-C in the terminal reaches the hub only: the hub decides when its
    database stops (after the hub itself has stopped using it).
    """

    def __init__(
        self,
        storage_path: Path | str,
        port: int | None = None,
        log_path: Path | None = None,
        sync_on_commit: bool = True,
        test_commands: bool = False,
        idle_transaction_seconds: float = IDLE_TRANSACTION_SECONDS,
    ) -> None:
        # Tests turn syncing off: their data is thrown away, and killing a hub (not the database) loses nothing.
        self.sync_on_commit = sync_on_commit
        self.test_commands = test_commands  # configureFailPoint: tests stall or fail chosen commands
        self.idle_transaction_seconds = idle_transaction_seconds
        self.storage_path = Path(storage_path)
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return embedded_uri(self.port)

    def spawn(self) -> None:
        """Start the process (same port as before, so clients reconnect to it); see ``listening``."""
        if str(self.storage_path) != ":memory:":
            self.storage_path.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-c",
            _SERVE,
            str(self.idle_transaction_seconds),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str(self.storage_path),
            "--log-level", "WARNING",
            *(["--sync-on-commit"] if self.sync_on_commit else []),
            *(["--enable-test-commands"] if self.test_commands else []),
        ]
        out = open(self.log_path, "ab") if self.log_path else None
        try:
            self.process = subprocess.Popen(
                cmd, stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent,
            )
        finally:
            if out is not None:
                out.close()  # the child has its own descriptor

    def listening(self) -> bool:
        """Is the process accepting connections? Raises if it exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"embedded database exited with code {self.process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def start(self, timeout: float = 30.0) -> None:
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.listening():
                return
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

    def __init__(self, client: AsyncMongoClient, name: str, deadlines: Deadlines | None = None) -> None:
        self.client = client
        self.db: AsyncDatabase = client[name]
        self.deadlines = deadlines or Deadlines()

    @classmethod
    async def connect(cls, uri: str, name: str, timed: bool = True, deadlines: Deadlines | None = None) -> Database:
        """``timed``: every command's latency goes to the metrics (hub/metrics.py)."""
        deadlines = deadlines or Deadlines()
        options: dict[str, Any] = {
            "serverSelectionTimeoutMS": int(deadlines.server_selection * 1000),
            "connectTimeoutMS": int(deadlines.connect * 1000),
        }
        if deadlines.operation is not None:
            options["timeoutMS"] = int(deadlines.operation * 1000)
        client: AsyncMongoClient = AsyncMongoClient(
            uri, tz_aware=True, event_listeners=[CommandTimer()] if timed else [], **options
        )
        database = cls(client, name, deadlines)
        with pymongo.timeout(deadlines.startup):
            await init_beanie(database=database.db, document_models=document_models())
        return database

    async def ping(self) -> bool:
        if not self.client.topology_description.has_writable_server():
            return False  # the driver's monitor lost the server: no need to wait for a ping to say so
        try:
            with pymongo.timeout(self.deadlines.readiness):
                await self.client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    async def reachable(self) -> bool:
        """Is a writable server known, now or within the server-selection deadline? Sends nothing.

        Under an operation deadline pymongo waits for a server as long as the deadline allows (not
        serverSelectionTimeoutMS), so a request checks this first: with the database gone it is refused in about a
        second instead of spending its whole deadline waiting.
        """
        deadline = time.monotonic() + self.deadlines.server_selection
        while not self.client.topology_description.has_writable_server():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

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
        """``run_transaction`` on this database's client, within its transaction deadline."""
        return await run_transaction(
            self.client, work, retry_if=retry_if, attempts=attempts, deadline=self.deadlines.transaction
        )
