"""One hub per module (starting one costs about a second); each test gets tenants of its own."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def hub(module_hub: Any) -> Any:
    return module_hub


@pytest.fixture
async def acme(hub: Any, suffix: str) -> str:
    return await hub.tenant(f"acme-{suffix}", "supplier", "Acme Foods")


@pytest.fixture
async def globex(hub: Any, suffix: str) -> str:
    return await hub.tenant(f"globex-{suffix}", "retailer", "Globex Markets")


@pytest.fixture
async def initech(hub: Any, suffix: str) -> str:
    return await hub.tenant(f"initech-{suffix}", "logistics")
