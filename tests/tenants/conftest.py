"""One hub per module (starting one costs about a second); each test gets tenants of its own."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from hub.config import Settings
from hub.db import free_port
from tests.conftest import start_hub


@pytest.fixture(scope="module")
async def hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Any]:
    port = free_port()
    settings = Settings(
        mongodb_uri=mongo_uri,
        database=f"t_{uuid.uuid4().hex[:12]}",
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        signing_key_file=key_file,
    )
    async for running in start_hub(settings):
        yield running


@pytest.fixture
def suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
async def acme(hub: Any, suffix: str) -> str:
    return await hub.tenant(f"acme-{suffix}", "supplier", "Acme Foods")


@pytest.fixture
async def globex(hub: Any, suffix: str) -> str:
    return await hub.tenant(f"globex-{suffix}", "retailer", "Globex Markets")


@pytest.fixture
async def initech(hub: Any, suffix: str) -> str:
    return await hub.tenant(f"initech-{suffix}", "logistics")
