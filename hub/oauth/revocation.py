"""The revocation list: revoked access tokens, refresh families, deleted clients.

Access tokens are verified without a database round trip, so revocation is answered from a set of revoked keys that
each process reloads at most every ``cache_seconds`` (30 s by default): a token revoked on any hub process is
refused everywhere within that window, and at once on the process that revoked it. Entries expire (TTL index) when
the last token they cover has expired, so the set stays small.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from hub.models.oauth import RefreshToken, Revocation


def token_key(jti: str) -> str:
    return f"jti:{jti}"


def family_key(family_id: str) -> str:
    return f"fam:{family_id}"


def client_key(client_id: str) -> str:
    return f"client:{client_id}"


class RevocationList:
    def __init__(self, cache_seconds: float = 30.0) -> None:
        self.cache_seconds = cache_seconds
        self._keys: set[str] = set()
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        if time.monotonic() - self._loaded_at < self.cache_seconds:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at < self.cache_seconds:
                return
            now = datetime.now(UTC)
            cursor = Revocation.get_pymongo_collection().find({"expires_at": {"$gt": now}}, {"key": 1, "_id": 0})
            self._keys = {doc["key"] async for doc in cursor}
            self._loaded_at = time.monotonic()

    async def contains_any(self, keys: list[str]) -> bool:
        await self._refresh()
        return any(key in self._keys for key in keys)

    async def revoke(self, key: str, tenant_id: str, reason: str, expires_at: datetime) -> None:
        """Add ``key`` until ``expires_at`` (idempotent: revoking twice keeps the later expiry)."""
        self._keys.add(key)
        collection = Revocation.get_pymongo_collection()
        try:
            await collection.update_one(
                {"key": key},
                {
                    "$max": {"expires_at": expires_at},
                    "$setOnInsert": {"tenant_id": tenant_id, "reason": reason, "created_at": datetime.now(UTC)},
                },
                upsert=True,
            )
        except DuplicateKeyError:  # two revocations raced on the upsert: the other one stored it
            pass

    async def revoke_family(self, family_id: str, tenant_id: str, reason: str, access_ttl: int) -> None:
        """Revoke every refresh token of one sign-in and every access token issued from it."""
        await RefreshToken.get_pymongo_collection().update_many(
            {"family_id": family_id}, {"$set": {"revoked": True}}
        )
        expires = datetime.fromtimestamp(time.time() + access_ttl + 60, UTC)
        await self.revoke(family_key(family_id), tenant_id, reason, expires)
