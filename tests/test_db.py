"""The one transaction runner: stale work starts over in a new transaction, other errors and the last try propagate."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.errors import DuplicateKeyError

from hub.db import EmbeddedServer, StaleRead, run_transaction
from hub.errors import ServiceUnavailable


@pytest.fixture
async def client(mongo_uri: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield client
    finally:
        await client.close()


async def test_stale_work_runs_again_and_only_the_last_run_commits(client: AsyncMongoClient[Any]) -> None:
    collection = client[f"db_{uuid.uuid4().hex[:12]}"]["things"]
    await collection.insert_one({"_id": "seed"})  # collections cannot be created inside a transaction
    runs = 0

    async def work(session: Any) -> int:
        nonlocal runs
        runs += 1
        await collection.insert_one({"run": runs}, session=session)
        if runs < 3:
            raise StaleRead("a concurrent writer got there first")
        return runs

    assert await run_transaction(client, work) == 3
    assert [doc["run"] async for doc in collection.find({"run": {"$exists": True}})] == [3]


async def test_retries_stop_after_the_attempts_and_other_errors_are_not_retried(client: AsyncMongoClient[Any]) -> None:
    runs = 0

    async def stale(session: Any) -> None:
        nonlocal runs
        runs += 1
        raise StaleRead("always stale")

    with pytest.raises(StaleRead):
        await run_transaction(client, stale, attempts=3)
    assert runs == 3

    runs = 0

    async def broken(session: Any) -> None:
        nonlocal runs
        runs += 1
        raise DuplicateKeyError("E11000")

    with pytest.raises(DuplicateKeyError):
        await run_transaction(client, broken)
    assert runs == 1
    runs = 0
    with pytest.raises(DuplicateKeyError):
        await run_transaction(client, broken, retry_if=lambda exc: isinstance(exc, DuplicateKeyError), attempts=2)
    assert runs == 2


async def test_a_transaction_that_ran_out_of_time_releases_what_it_wrote(mongo_uri: str) -> None:
    """A statement still running at the deadline leaves its transaction open on the server; the runner aborts it,
    so the documents it wrote do not stay locked until the server reaps idle transactions (after 10 s here)."""
    app = f"stall-{uuid.uuid4().hex[:8]}"
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, tz_aware=True, appName=app)
    try:
        collection = client[f"db_{uuid.uuid4().hex[:12]}"]["positions"]
        await collection.insert_one({"_id": "p", "on_hand": 0})
        # This client's next find is held by the server for 3 s: it outlives the 0.5 s deadline below.
        await client.admin.command("configureFailPoint", "failCommand", mode={"times": 1}, data={
            "failCommands": ["find"], "appName": app, "blockConnection": True, "blockTimeMS": 3000})

        async def stalled(session: Any) -> None:
            await collection.update_one({"_id": "p"}, {"$inc": {"on_hand": 1}}, session=session)
            await collection.find_one({"_id": "p"}, session=session)

        with pytest.raises(ServiceUnavailable):
            await run_transaction(client, stalled, deadline=0.5)

        async def next_writer(session: Any) -> None:
            await collection.update_one({"_id": "p"}, {"$inc": {"on_hand": 10}}, session=session)

        # Without the release this conflicts with the abandoned transaction until the deadline passes (before the
        # server's idle limit would free the document).
        await run_transaction(client, next_writer, deadline=8)
        assert await collection.find_one({"_id": "p"}) == {"_id": "p", "on_hand": 10}
    finally:
        await client.close()


DIES_MID_TRANSACTION = """
import os, sys
from pymongo import MongoClient
client = MongoClient(sys.argv[1])
session = client.start_session()
session.start_transaction()
client.db.positions.update_one({"_id": "p"}, {"$inc": {"on_hand": 1}}, session=session)
print("locked", flush=True)
os._exit(0)  # like kill -9: no abort, no endSessions
"""


async def test_the_embedded_database_frees_what_a_dead_process_locked(tmp_path: Any) -> None:
    """A hub killed inside a transaction cannot abort it: the embedded database reaps it once it idles past the
    limit, so writers of the same documents wait seconds, not the server's default minute."""
    server = EmbeddedServer(tmp_path / "db", sync_on_commit=False, idle_transaction_seconds=4.0)
    server.start()
    client: AsyncMongoClient[Any] = AsyncMongoClient(server.uri, tz_aware=True)
    try:
        collection = client["db"]["positions"]
        await collection.insert_one({"_id": "p", "on_hand": 0})
        child = subprocess.run([sys.executable, "-c", DIES_MID_TRANSACTION, server.uri], capture_output=True,
                               text=True, timeout=60)
        assert child.stdout.strip() == "locked", child.stderr

        async def next_writer(session: Any) -> None:
            await collection.update_one({"_id": "p"}, {"$inc": {"on_hand": 10}}, session=session)

        with pytest.raises(ServiceUnavailable):  # the dead transaction still holds the position
            await run_transaction(client, next_writer, deadline=0.3)
        # Well before the default 60 s: the write goes through once the dead transaction is reaped.
        await run_transaction(client, next_writer, deadline=30)
        assert await collection.find_one({"_id": "p"}) == {"_id": "p", "on_hand": 10}
    finally:
        await client.close()
        server.stop()


async def test_writes_to_the_embedded_database_are_not_retryable_writes(mongo_uri: str) -> None:
    """The embedded server records every retryable write for 30 minutes and walks that record on each one (a soak's
    writes grew costlier by the minute), so its URI turns them off: no write carries a txnNumber outside a
    transaction, while a transaction still does."""
    sent: list[dict[str, Any]] = []

    class Recorder(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name in ("insert", "update"):
                sent.append(dict(event.command))

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, event_listeners=[Recorder()])
    try:
        collection = client[f"db_{uuid.uuid4().hex[:12]}"]["things"]
        await collection.insert_one({"_id": 1})
        await collection.update_one({"_id": 1}, {"$set": {"n": 1}})

        async def work(session: Any) -> None:
            await collection.update_one({"_id": 1}, {"$set": {"n": 2}}, session=session)

        await run_transaction(client, work)
    finally:
        await client.close()
    assert [("txnNumber" in command) for command in sent] == [False, False, True]
