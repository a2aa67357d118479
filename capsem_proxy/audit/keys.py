"""The key of the audit chain: derived from the server secret (the one that keys tenant ids), held in
memory only, never written to the audit store. Without it, nobody who can only write to the database
can forge a row hash, so a row rewritten with a recomputed hash still shows."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from capsem_proxy.config import ConfigError, Settings
from capsem_proxy.tenancy import SECRET_FILE_NAME, load_or_create_secret

__all__ = ["ChainKey", "chain_key_for", "default_head_path"]

# Domain separation: the chain key is never the tenant-id key itself.
_DERIVATION_LABEL = b"capsem-proxy audit chain v1"
_KEY_ID_LABEL = b"capsem-proxy audit chain key id"
_BLOCK = 64  # SHA-256's block size
HEAD_FILE_NAME = "audit-head.json"


class ChainKey:
    """HMAC-SHA256 with one key.

    Written out (RFC 2104) rather than with `hmac.new` per row: the inner and outer states are
    computed once and copied for each message, which costs about a third of `hmac.digest`'s per-call
    key set-up; the output is the standard HMAC (tests compare it with `hmac`)."""

    __slots__ = ("_inner", "_outer", "key_id")

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("the audit chain key is empty")
        block = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in block))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in block))
        # Names the key in the store and the exported head without revealing anything about it.
        self.key_id = self.mac(_KEY_ID_LABEL)[:16]

    @classmethod
    def derive(cls, server_secret: bytes) -> ChainKey:
        """The chain key of a proxy whose server secret is `server_secret`."""
        return cls(hmac.digest(server_secret, _DERIVATION_LABEL, "sha256"))

    def mac(self, message: bytes) -> str:
        """Hex HMAC-SHA256 of `message`."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def __repr__(self) -> str:
        return f"ChainKey(key_id={self.key_id})"


def default_head_path(settings: Settings) -> Path:
    """Where the proxy exports its chain head: `audit.head_file`, else `<server.data_dir>/audit-head.json`."""
    return settings.audit.head_file or settings.server.data_dir / HEAD_FILE_NAME


def chain_key_for(settings: Settings, *, create: bool = False) -> ChainKey:
    """The chain key of the proxy `settings` describe. `create` (the proxy itself) makes the server
    secret on first run; readers (`audit verify`) never do, and say where they looked."""
    server = settings.server
    if create:
        return ChainKey.derive(load_or_create_secret(server.data_dir, server.tenant_secret))
    if server.tenant_secret:
        return ChainKey.derive(server.tenant_secret.encode())
    path = server.data_dir / SECRET_FILE_NAME
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"the audit chain is keyed with the proxy's server secret, and {path} cannot be read "
            f"({exc.strerror or exc}); point --config at the proxy's config (server.data_dir) or set "
            "CAPSEM_PROXY_SERVER__TENANT_SECRET"
        ) from None
    if not secret:
        raise ConfigError(f"the server secret in {path} is empty")
    return ChainKey.derive(secret)
