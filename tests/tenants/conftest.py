"""One hub per module (starting one costs about a second); each test gets tenants of its own."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from tests.conftest import hub_settings, start_hub


@pytest.fixture(scope="module")
async def hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Any]:
    settings = hub_settings(key_file, mongo_uri)
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
