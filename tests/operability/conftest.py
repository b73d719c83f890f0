"""A hub with metrics on (bearer token), shared by the module's tests; they take fresh tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Hub, hub_settings, start_hub

METRICS_TOKEN = "metrics-test-token"


@pytest.fixture(scope="module")
async def ops_hub(key_file: Path, mongo_uri: str) -> AsyncIterator[Hub]:
    settings = hub_settings(key_file, mongo_uri, metrics_token=METRICS_TOKEN, metrics_refresh_seconds=0.0)
    async for running in start_hub(settings):
        yield running
