"""Provider keys held by the proxy, encrypted at rest with AES-256-GCM under the master key.

The master key comes from an environment variable (`auth.master_key_env`, default
`CAPSEM_PROXY_MASTER_KEY`): any string of at least 32 characters, stretched with HKDF-SHA256.
A sealed value is `v1.<key id>.<nonce>.<ciphertext>` (base64url); the key id names the master
key that sealed it, so during a rotation former keys, listed comma-separated in
`<master_key_env>_PREVIOUS`, still open old values until `capsem-proxy keys rotate-master`
re-seals them all under the current one. The gateway key's id is bound as associated data: a
sealed value copied to another key's row does not open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["MasterKeyError", "MasterKeys", "load_master_keys"]

_MIN_CHARS = 32
_VERSION = "v1"


class MasterKeyError(Exception):
    """The master key is missing, too short, or cannot open a sealed value."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _MasterKey:
    __slots__ = ("aead", "key_id")

    def __init__(self, secret: str) -> None:
        if len(secret) < _MIN_CHARS:
            raise MasterKeyError(f"a master key must have at least {_MIN_CHARS} characters")
        material = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"capsem-proxy provider keys").derive(
            secret.encode()
        )
        self.aead = AESGCM(material)
        # A public name for the key: a hash of the derived material, never the key itself.
        self.key_id = hmac.new(material, b"key id", hashlib.sha256).hexdigest()[:12]


class MasterKeys:
    """The current master key (seals) and any former ones (open only)."""

    def __init__(self, current: str, previous: list[str] | None = None) -> None:
        self.current = _MasterKey(current)
        self._by_id = {self.current.key_id: self.current}
        for secret in previous or []:
            key = _MasterKey(secret)
            self._by_id.setdefault(key.key_id, key)

    def seal(self, plaintext: str, bound_to: str) -> str:
        nonce = os.urandom(12)
        sealed = self.current.aead.encrypt(nonce, plaintext.encode(), bound_to.encode())
        return ".".join((_VERSION, self.current.key_id, _b64(nonce), _b64(sealed)))

    def open(self, sealed: str, bound_to: str) -> str:
        try:
            version, key_id, nonce, body = sealed.split(".")
        except ValueError:
            raise MasterKeyError("a sealed provider key is malformed") from None
        key = self._by_id.get(key_id)
        if version != _VERSION or key is None:
            raise MasterKeyError(f"no configured master key opens values sealed under key id {key_id}")
        try:
            return key.aead.decrypt(_unb64(nonce), _unb64(body), bound_to.encode()).decode()
        except (InvalidTag, ValueError):
            raise MasterKeyError("a sealed provider key does not open (tampered, or bound to another key)") from None

    def needs_reseal(self, sealed: str) -> bool:
        return sealed.split(".", 2)[1:2] != [self.current.key_id]

    def seal_all(self, values: Mapping[str, str], bound_to: str) -> dict[str, str]:
        return {name: self.seal(value, bound_to) for name, value in values.items()}


def load_master_keys(env_var: str, environ: Mapping[str, str] | None = None) -> MasterKeys | None:
    """The master keys named by `env_var` (and `<env_var>_PREVIOUS`), or None when it is unset."""
    environ = os.environ if environ is None else environ
    current = environ.get(env_var)
    if not current:
        return None
    previous = [item.strip() for item in environ.get(env_var + "_PREVIOUS", "").split(",") if item.strip()]
    return MasterKeys(current, previous)
