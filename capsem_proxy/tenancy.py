"""Tenant identity: a keyed hash of the caller's provider key; the key itself is never kept."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

from capsem_proxy.config import ConfigError

__all__ = ["SECRET_FILE_NAME", "TenantHasher", "load_or_create_secret"]

# SHA-256's block size, and the HMAC pads as byte translation tables (RFC 2104).
_BLOCK_SIZE = 64
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))

SECRET_FILE_NAME = "tenant-secret"


def load_or_create_secret(data_dir: Path, configured: str | None) -> bytes:
    """The HMAC key: the configured one, else the one kept in `data_dir`, else a new one saved there.

    A new secret is written to a private temporary file and linked into place, so replicas
    started together on one data dir never read a half-written (empty) secret and agree on one.
    """
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=data_dir, prefix=".tenant-secret-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_hex(32).encode())
            with contextlib.suppress(FileExistsError):  # another replica won the race: use its secret
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    secret = path.read_bytes().strip()
    if not secret:
        raise ConfigError(
            f"server.data_dir: the tenant secret in {path} is empty; delete it or set server.tenant_secret"
        )
    return secret


class TenantHasher:
    """Maps a provider key to a stable tenant id (hex HMAC-SHA256, first 32 characters).

    Nothing is cached: a cache would keep callers' keys in a long-lived structure. The HMAC's
    keyed inner and outer hash states (RFC 2104) are computed once from the secret, so a request
    costs two hash copies rather than a new HMAC object (which re-derives them every time).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: bytes) -> None:
        if len(secret) > _BLOCK_SIZE:
            secret = hashlib.sha256(secret).digest()
        secret = secret.ljust(_BLOCK_SIZE, b"\0")
        self._inner = hashlib.sha256(secret.translate(_INNER_PAD))
        self._outer = hashlib.sha256(secret.translate(_OUTER_PAD))

    def tenant_id(self, key: str) -> str:
        """The tenant id for `key`: hmac.new(secret, key, sha256).hexdigest()[:32]."""
        inner = self._inner.copy()
        inner.update(key.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:32]
