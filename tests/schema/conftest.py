"""Helpers for wire-level tests: raw requests, and proof that the hub still answers a normal query afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import hub_settings, start_hub

TYPENAME = "{ __typename }"
HOSTILE_TIMEOUT = httpx.Timeout(20.0)  # a hang fails the test instead of blocking the suite


class Wire:
    def __init__(self, hub: Any, token: str) -> None:
        self.hub = hub
        self.token = token

    def headers(self, **extra: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", **extra}

    async def raw(self, content: bytes | Any, content_type: str = "application/json", **extra: str) -> httpx.Response:
        headers = self.headers(**{"content-type": content_type, **extra})
        return await self.hub.http.post("/graphql", content=content, headers=headers, timeout=HOSTILE_TIMEOUT)

    async def post(self, body: Any, accept: str = "application/json") -> httpx.Response:
        return await self.hub.http.post(
            "/graphql", json=body, headers=self.headers(accept=accept), timeout=HOSTILE_TIMEOUT
        )

    async def query(self, query: str, variables: dict | None = None, **kw: Any) -> httpx.Response:
        return await self.post({"query": query, "variables": variables or {}}, **kw)

    async def still_responsive(self) -> None:
        """A normal query right after the attack answers promptly (the timeout bounds 'promptly')."""
        response = await self.hub.http.post(
            "/graphql", json={"query": TYPENAME}, headers=self.headers(), timeout=httpx.Timeout(5.0)
        )
        assert response.status_code == 200
        assert response.json() == {"data": {"__typename": "Query"}}


@pytest.fixture(scope="module")
async def wire(key_file: Path, mongo_uri: str) -> AsyncIterator[Wire]:
    """One hub per module: these tests only read, or prove that nothing was stored, so they can share it."""
    settings = hub_settings(key_file, mongo_uri)
    async for hub in start_hub(settings):
        await hub.tenant("acme", "supplier")
        yield Wire(hub, hub.token("acme", "admin"))


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]
