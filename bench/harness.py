"""What the benchmark scripts share: a hub process on its own database, tokens for it, and percentiles.

Each script measures the hub as clients meet it: a real ``python -m hub.cli serve`` process over HTTP, on a
SecantusDB process started here (or on ``LOTPULSE_MONGODB_URI``), with the load generator on the same machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hub.auth import mint_local_token
from hub.config import Settings
from hub.db import Database, Deadlines, EmbeddedServer, free_port
from hub.keys import KeyFile

# The benchmark's own connection (seeding, raw baselines, clean-up): no operation deadline, and a server busy with one
# long command (an index build, an aggregation over a large ledger; SecantusDB answers nothing else meanwhile) is not
# taken for gone: the driver's heartbeat waits as long as the connect deadline, and a missed one cancels the command.
BENCH_DEADLINES = Deadlines(operation=None, transaction=None, connect=3600.0, server_selection=60.0)


def on_cpu(pid: int) -> float:
    """Seconds all threads of a process spent on a CPU (/proc schedstat: waiting for a CPU is not counted)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as stat:
                total += int(stat.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if process.poll() is not None:
                raise SystemExit("hub exited during startup")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("hub did not become ready")


@dataclass
class BenchHub:
    port: int
    settings: Settings
    keyring: KeyFile
    database: Database  # the benchmark's own connection to the hub's database (seeding, raw baselines)
    process: subprocess.Popen[bytes]
    server: EmbeddedServer | None = None  # the database process started here (None: LOTPULSE_MONGODB_URI)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, tenant: str, *roles: str) -> str:
        return mint_local_token(self.settings, self.keyring, tenant, list(roles), 3600)


@asynccontextmanager
async def running_hub(keep: Path | None = None, **env_overrides: str) -> AsyncIterator[BenchHub]:
    """A hub process on a fresh database; the database is dropped afterwards. Seed before ``wait_ready``.

    ``keep``: a folder whose database (``keep/db``, name ``bench``) outlives the run, so a large seed is written once
    and measured many times; with ``LOTPULSE_MONGODB_URI`` set, the database ``bench`` there is kept instead.
    """
    tmp = Path(tempfile.mkdtemp(prefix="lotpulse-bench-"))
    server = None
    uri = os.environ.get("LOTPULSE_MONGODB_URI")
    if not uri:
        server = EmbeddedServer((keep or tmp) / "db", log_path=tmp / "secantusd.log")
        server.start(timeout=600.0)  # a large kept database takes a while to open
        uri = server.uri
    port, name = free_port(), "bench" if keep else f"bench_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "LOTPULSE_MONGODB_URI": uri,
        "LOTPULSE_DATABASE": name,
        "LOTPULSE_PORT": str(port),
        "LOTPULSE_SIGNING_KEY_FILE": str((keep or tmp) / "keys.json"),  # a kept database keeps its key ring
        "LOTPULSE_DATA_DIR": str(tmp),
        "LOTPULSE_LOG_LEVEL": "WARNING",
        "LOTPULSE_WEBHOOK_WORKER": "false",
        **env_overrides,
    }
    # The benchmark's own connection seeds and cleans up (dropping a large database takes its time): no deadline.
    database = await Database.connect(uri, name, deadlines=BENCH_DEADLINES)
    keyring = KeyFile((keep or tmp) / "keys.json")
    _ = keyring.current  # the file exists before the hub starts: the hub imports it into its database
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve"], env=env, stdout=open(tmp / "hub.log", "ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield BenchHub(port, Settings.from_env(env), keyring, database, process, server)
    finally:
        process.terminate()
        process.wait(10)
        if server is None and keep is None:
            await database.client.drop_database(name)
        await database.close()
        if server is not None:
            # Our own server is thrown away whole: dropping a large database key by key takes SecantusDB minutes.
            server.stop()
            shutil.rmtree(tmp / "db", ignore_errors=True)  # the logs stay for a look afterwards


def run_replay(files: list[str], folder: Path) -> tuple[dict[str, Any], float]:
    """Play histories with ``lotpulse replay`` in its own process (on LOTPULSE_MONGODB_URI, else a throwaway
    embedded database in ``folder``); answers its JSON report and the seconds it took."""
    report_path = folder / "report.json"
    env = dict(os.environ)
    server = None
    if not env.get("LOTPULSE_MONGODB_URI"):
        server = EmbeddedServer(folder / "db", log_path=folder / "secantusd.log", sync_on_commit=False)
        server.start()
        env["LOTPULSE_MONGODB_URI"] = server.uri
    env.setdefault("LOTPULSE_LOG_LEVEL", "WARNING")
    began = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-m", "hub.cli", "replay", *files, "--report", str(report_path)], env=env,
                       check=True, stdout=subprocess.DEVNULL)
    finally:
        if server is not None:
            server.stop()
    return json.loads(report_path.read_text()), time.perf_counter() - began
