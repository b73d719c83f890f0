"""The hub's own signing keys: a small JSON key ring on disk, shared by every hub process and the CLI.

A file (not the database) because ``lotpulse token`` must sign while the embedded database is held by a running hub.
The newest key signs; older keys stay in the JWKS until the tokens they signed have expired.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

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
    """Signing keys stored in one file with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: list[SigningKey] = []
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
            json.dump({"keys": [key.__dict__ for key in self._keys]}, fh)
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime

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

    def rotate(self, keep_old_seconds: float) -> SigningKey:
        """Add a new signing key; older keys stay verifiable for ``keep_old_seconds``."""
        self._load()
        retire = time.time() + keep_old_seconds
        self._keys = [
            key if key.retire_after is not None else SigningKey(key.kid, key.private_pem, key.created_at, retire)
            for key in self.keys()
        ]
        self._keys.append(_new_key())
        self._save()
        return self._keys[-1]

    def sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        key = self.current
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": typ})
