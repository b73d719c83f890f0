"""Fixtures: one SecantusDB process per session, a database per test, the real app under uvicorn on loopback.

Tests talk to the hub as clients do, over real HTTP (httpx) and WebSocket connections. Each test gets its own
database name, so tests are independent of each other.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hub.app import create_app, uvicorn_options
from hub.auth import mint_local_token
from hub.config import Settings
from hub.db import EmbeddedServer, free_port
from hub.keys import KeyFile
from tenants import service as tenant_service

KEEPALIVE_SECONDS = 2.0  # the test client's idle connections, well under uvicorn's timeout_keep_alive (5 s)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.function):
            item.add_marker(pytest.mark.anyio)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("secantus")
    server = EmbeddedServer(path / "db", log_path=path / "secantusd.log", sync_on_commit=False, test_commands=True)
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "signing-keys.json"
    _ = KeyFile(path).current  # generate once: RSA key generation is slow
    return path


def hub_settings(key_file: Path, mongo_uri: str, **changes: Any) -> Settings:
    """Settings for a hub of its own: a fresh database and a free port on the session's database server.

    The database deadlines are generous (the production defaults answer SERVICE_UNAVAILABLE after 4 s): the suite
    shares two cores with its own database and hub processes, and only the deadline tests, which run ``lotpulse
    serve`` with the defaults, are about deadlines."""
    changes = {"request_timeout_seconds": 20.0, "transaction_timeout_seconds": 15.0, **changes}
    port = free_port()
    return Settings(
        mongodb_uri=mongo_uri,
        database=f"t_{uuid.uuid4().hex[:12]}",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        signing_key_file=key_file,
        **changes,
    )


@pytest.fixture
def settings(tmp_path: Path, key_file: Path, mongo_uri: str) -> Settings:
    return hub_settings(key_file, mongo_uri, data_dir=tmp_path, webhook_allow_private=True)


@dataclass
class Hub:
    """A running hub and a client for it."""

    settings: Settings
    app: Any
    http: httpx.AsyncClient
    keyring: KeyFile
    tokens: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.settings.public_url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    @property
    def state(self) -> Any:
        return self.app.state.hub

    def token(self, tenant: str, *roles: str, ttl: int = 3600, subject: str | None = None) -> str:
        roles = roles or ("admin",)
        key = (tenant, tuple(roles))
        if subject is not None or ttl != 3600 or key not in self.tokens:
            minted = mint_local_token(self.settings, self.keyring, tenant, list(roles), ttl, subject=subject)
            if subject is not None or ttl != 3600:
                return minted
            self.tokens[key] = minted
        return self.tokens[key]

    async def post(
        self, query: str, variables: dict | None = None, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers, **kw
        )

    async def gql(self, query: str, variables: dict | None = None, *, tenant: str | None = None,
                  roles: tuple[str, ...] = ("admin",), token: str | None = None) -> dict:
        """Run an operation as ``tenant`` (or with ``token``); answers the whole response body."""
        if token is None and tenant is not None:
            token = self.token(tenant, *roles)
        response = await self.post(query, variables, token)
        return response.json()

    async def ok(self, query: str, variables: dict | None = None, **kw: Any) -> dict:
        """Like ``gql`` but fails the test on any error; answers ``data``."""
        body = await self.gql(query, variables, **kw)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def tenant(self, tenant_id: str, kind: str = "supplier", name: str | None = None) -> str:
        await tenant_service.create_tenant(tenant_id, name or tenant_id.title(), kind)
        return tenant_id


async def start_hub(settings: Settings, **app_options: Any) -> AsyncIterator[Hub]:
    app = create_app(settings, **app_options)
    # The options of `lotpulse serve` (no proxy headers believed), on loopback and quieter.
    options = {**uvicorn_options(settings), "host": "127.0.0.1", "log_level": "warning"}
    config = uvicorn.Config(app, **options, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("hub did not start")
        await asyncio.sleep(0.01)
    # The client forgets an idle connection before uvicorn closes it (both wait 5 s by default): otherwise a request
    # sent on a connection the server is closing at that moment fails with ReadError.
    limits = httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS)
    async with httpx.AsyncClient(base_url=settings.public_url, timeout=30, limits=limits) as http:
        yield Hub(settings, app, http, KeyFile(settings.signing_key_file))  # type: ignore[arg-type]
    server.should_exit = True
    await task


@pytest.fixture(scope="module")
async def module_hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Hub]:
    """One hub for a whole test module (starting one costs about a second); its tests take fresh tenants."""
    async for running in start_hub(hub_settings(key_file, mongo_uri)):
        yield running


@pytest.fixture
def suffix() -> str:
    """A fresh tenant-name suffix, for tests that share a hub."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
async def hub(settings: Settings) -> AsyncIterator[Hub]:
    async for running in start_hub(settings):
        yield running
