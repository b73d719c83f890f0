"""The hub's own signing keys: a key ring stored in MongoDB, shared by every hub process and the CLI.

One document (``signing_keys``, ``_id: "ring"``) holds the ring and a version. Each process keeps it in memory and
re-reads it when a token names a key it does not know (a rotation on another process is honoured on the first
token signed with the new key) and every ``signing_key_refresh_seconds`` (so every process signs with the new key,
and an early retirement reaches every process, within that time). Rotation is a conditional update on the version.
The newest key signs; older keys stay in the JWKS until the tokens they signed have expired.

The ring used to be a JSON file (``LOTPULSE_SIGNING_KEY_FILE``, default ``<data dir>/signing-keys.json``): when the
database holds no ring yet, the first process to start imports that file, so existing deployments keep their keys
and their tokens stay valid. ``KeyFile`` still reads and writes such files (the import, and tests that mint tokens).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from hub.sharding import Unsharded

log = logging.getLogger("lotpulse.keys")
COLLECTION = "signing_keys"
RING_ID = "ring"
SHARDING = Unsharded("one document: the signing key ring every process reads")
ALGORITHM = "RS256"


@lru_cache(maxsize=32)
def _load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Parsed once per key: loading checks the RSA key and costs tens of milliseconds, on every request otherwise."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: str
    created_at: float
    retire_after: float | None = None  # drop from JWKS after this instant

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return _load_private_key(self.private_pem)

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}


def _new_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    # RFC 7638 thumbprint, shortened: stable for the key, unique enough for a ring of a few keys.
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, sort_keys=True, separators=(",", ":"))
    kid = jwt.utils.base64url_encode(hashlib.sha256(canonical.encode()).digest()).decode()[:16]
    return SigningKey(kid=kid, private_pem=pem, created_at=time.time())


class KeyRing:
    """Signing keys in memory, oldest first; the newest signs. Subclasses say where the keys are kept."""

    def __init__(self) -> None:
        self._keys: list[SigningKey] = []

    def _load(self) -> None:
        """Bring ``_keys`` up to date before a read (a file ring checks its file; a stored ring is loaded ahead)."""

    @property
    def current(self) -> SigningKey:
        self._load()
        return self._keys[-1]

    def keys(self) -> list[SigningKey]:
        self._load()
        now = time.time()
        return [key for key in self._keys if key.retire_after is None or key.retire_after > now]

    def find(self, kid: str) -> SigningKey | None:
        return next((key for key in self.keys() if key.kid == kid), None)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys()]}

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        key = self.current
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": typ})

    async def unknown_kid(self, kid: str) -> None:
        """A token names a key this ring does not hold: a stored ring looks again (another process may have
        rotated); a file ring has nothing to look at."""

    def _rotated(self, keep_old_seconds: float) -> list[SigningKey]:
        """The ring after a rotation: a new key, and every live older key retiring in ``keep_old_seconds``."""
        retire = time.time() + keep_old_seconds
        kept = [
            key if key.retire_after is not None else SigningKey(key.kid, key.private_pem, key.created_at, retire)
            for key in self.keys()
        ]
        return [*kept, _new_key()]


class KeyFile(KeyRing):
    """Signing keys in one JSON file with mode 0600 (the ring's former home; created on first use)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._mtime = -1.0

    def _load(self) -> None:
        mtime = self.path.stat().st_mtime if self.path.exists() else -1.0
        if mtime == self._mtime and self._keys:
            return
        if not self.path.exists():
            self._keys = [_new_key()]
            self._save()
            return
        data = json.loads(self.path.read_text())
        self._keys = [SigningKey(**item) for item in data["keys"]]
        self._mtime = mtime

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"keys": [asdict(key) for key in self._keys]}, fh)
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime

    def rotate(self, keep_old_seconds: float) -> SigningKey:
        """Add a new signing key; older keys stay verifiable for ``keep_old_seconds``."""
        self._keys = self._rotated(keep_old_seconds)
        self._save()
        return self._keys[-1]


class StoredKeyRing(KeyRing):
    """The key ring in the database (see the module docstring); ``load`` it before use."""

    LOOK_AGAIN_SECONDS = 5.0  # one key id found unknown is not looked for again sooner (junk tokens cost little)

    def __init__(self, legacy_file: Path | None = None) -> None:
        super().__init__()
        self.legacy_file = legacy_file
        self.collection: AsyncCollection[Any] | None = None
        self.version = 0
        self._unknown: dict[str, float] = {}  # key id -> when the ring was last read for it in vain
        self._lock = asyncio.Lock()

    def _load(self) -> None:
        if not self._keys:
            raise RuntimeError("the signing key ring is read from the database at startup: load() it first")

    def _adopt(self, doc: dict[str, Any]) -> None:
        self._keys = [SigningKey(**item) for item in doc["keys"]]
        self.version = int(doc["version"])

    async def load(self, collection: AsyncCollection[Any]) -> None:
        """Read the ring; the first process on a database without one imports the key file (or makes a key)."""
        self.collection = collection
        doc = await collection.find_one({"_id": RING_ID})
        if doc is None:
            legacy = self.legacy_file is not None and self.legacy_file.exists()
            keys = KeyFile(self.legacy_file).keys() if legacy else [_new_key()]  # type: ignore[arg-type]
            doc = {"_id": RING_ID, "version": 1, "keys": [asdict(key) for key in keys]}
            try:
                await collection.insert_one(doc)
                log.info("signing key ring stored in the database (%s)",
                         f"imported from {self.legacy_file}" if legacy else "new key")
            except DuplicateKeyError:  # another process stored its ring first: use that one
                doc = await collection.find_one({"_id": RING_ID})
                assert doc is not None
        self._adopt(doc)

    async def refresh(self) -> None:
        """Re-read the ring if it changed since this process last read it."""
        assert self.collection is not None
        doc = await self.collection.find_one({"_id": RING_ID, "version": {"$ne": self.version}})
        if doc is not None:
            self._adopt(doc)

    async def unknown_kid(self, kid: str) -> None:
        async with self._lock:  # concurrent requests with the new key: one read
            now = time.monotonic()
            if self.find(kid) is not None or now - self._unknown.get(kid, -self.LOOK_AGAIN_SECONDS) < \
                    self.LOOK_AGAIN_SECONDS:
                return
            try:
                await self.refresh()
            except PyMongoError as exc:
                log.warning("could not re-read the signing key ring (%s)", exc)
            if self.find(kid) is None:
                if len(self._unknown) >= 1000:
                    self._unknown.clear()
                self._unknown[kid] = now

    async def refresh_forever(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await self.refresh()
            except PyMongoError as exc:
                log.warning("could not re-read the signing key ring (%s); retrying", exc)

    async def rotate(self, keep_old_seconds: float) -> SigningKey:
        """Add a new signing key for every process; older keys stay verifiable for ``keep_old_seconds``."""
        assert self.collection is not None
        while True:
            await self.refresh()
            keys = self._rotated(keep_old_seconds)
            done = await self.collection.update_one(
                {"_id": RING_ID, "version": self.version},
                {"$set": {"keys": [asdict(key) for key in keys], "version": self.version + 1}},
            )
            if done.modified_count == 1:  # else another rotation landed first: rotate on top of it
                self._adopt({"keys": [asdict(key) for key in keys], "version": self.version + 1})
                return keys[-1]
