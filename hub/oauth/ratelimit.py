"""Failed client authentications, counted per client id and per IP in fixed windows stored in MongoDB.

Stored, not kept in memory, because any number of hub processes answer ``/oauth/token``: a guesser spreading its
attempts over processes must still hit one limit. Only failures are counted, so a well-behaved client never pays
for a write.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from hub.models.oauth import FailedAuth


class FailedAuthLimiter:
    def __init__(self, window_seconds: int, per_client: int, per_ip: int) -> None:
        self.window = window_seconds
        self.per_client = per_client
        self.per_ip = per_ip

    def _window(self) -> tuple[datetime, int]:
        now = time.time()
        start = now - now % self.window
        return datetime.fromtimestamp(start, UTC), int(start + self.window - now) + 1

    def _keys(self, client_ids: list[str], ip: str | None) -> dict[str, int]:
        keys = {f"client:{client_id[:200]}": self.per_client for client_id in client_ids if client_id}
        if ip:
            keys[f"ip:{ip}"] = self.per_ip
        return keys

    async def retry_after(self, client_ids: list[str], ip: str | None) -> int | None:
        """Seconds until this caller may try again, or None when it is under its limits."""
        keys = self._keys(client_ids, ip)
        if not keys:
            return None
        start, remaining = self._window()
        cursor = FailedAuth.get_pymongo_collection().find({"key": {"$in": list(keys)}, "window_start": start})
        async for doc in cursor:
            if doc["failures"] >= keys[doc["key"]]:
                return remaining
        return None

    async def _count(self, key: str) -> int:
        """Add one to ``key`` in the current window; answers its count."""
        start, _ = self._window()
        expires = datetime.fromtimestamp(start.timestamp() + 2 * self.window, UTC)
        collection = FailedAuth.get_pymongo_collection()
        try:
            doc = await collection.find_one_and_update(
                {"key": key, "window_start": start},
                {"$inc": {"failures": 1}, "$setOnInsert": {"expires_at": expires}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # concurrent first count in this window: count it on the stored one
            doc = await collection.find_one_and_update(
                {"key": key, "window_start": start}, {"$inc": {"failures": 1}}, return_document=ReturnDocument.AFTER
            )
        return int(doc["failures"]) if doc is not None else 1

    async def failed(self, client_ids: list[str], ip: str | None) -> list[str]:
        """Count one failure; answers the keys (``client:…``, ``ip:…``) this failure brought to their limit."""
        return [key for key, limit in self._keys(client_ids, ip).items() if await self._count(key) == limit]

    async def audits_refusal(self, ip: str | None) -> bool:
        """Count one refused request from ``ip``; answers whether it still goes to the audit log. Refusals are
        written there up to ``per_ip`` an address a window and only logged beyond: a public client's id is public,
        and requests refused for it would otherwise let anyone fill its tenant's audit log."""
        return ip is None or await self._count(f"refused:{ip}") <= self.per_ip
