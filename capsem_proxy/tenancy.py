"""Tenant identity: a keyed hash of the caller's provider key; the key itself is never kept."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["SECRET_FILE_NAME", "TenantHasher", "load_or_create_secret"]

SECRET_FILE_NAME = "tenant-secret"


def load_or_create_secret(data_dir: Path, configured: str | None) -> bytes:
    """The HMAC key: the configured one, else the one kept in `data_dir`, else a new one saved there.

    The file is created with mode 0600 and atomically, so replicas started together on one data dir
    agree on a single secret.
    """
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE_NAME
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_hex(32).encode()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(fresh)
    return fresh


class TenantHasher:
    """Maps a provider key to a stable tenant id (hex HMAC-SHA256, first 32 characters).

    Nothing is cached: a cache would keep callers' keys in a long-lived structure, and the
    HMAC costs about a microsecond.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def tenant_id(self, key: str) -> str:
        """The tenant id for `key`."""
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()[:32]
