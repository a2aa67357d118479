"""Gateway keys: `cpk-` plus 43 random characters, shown once; the store keeps a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["KEY_PREFIX", "GatewayKey", "hash_key", "looks_like_gateway_key", "new_key", "new_key_id"]

KEY_PREFIX = "cpk-"
_RANDOM_BYTES = 32  # 43 base64url characters
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)


def new_key_id() -> str:
    return "gk_" + secrets.token_hex(8)


def hash_key(key: str) -> str:
    """The stored form. A gateway key carries 256 random bits, so a fast hash is as safe as a slow one."""
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_gateway_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX) and 40 <= len(value) - len(KEY_PREFIX) <= 128 and _KEY_CHARS.issuperset(
        value[len(KEY_PREFIX):]
    )


@dataclass(slots=True)
class GatewayKey:
    """One gateway key as stored: never the key itself, provider keys only sealed."""

    id: str
    tenant: str
    key_hash: str
    hint: str  # "cpk-…abcd": enough to tell keys apart in a listing
    created_at: float
    providers: list[str] = field(default_factory=list)  # empty: every provider
    models: list[str] = field(default_factory=list)  # globs; empty: every model
    sealed_provider_keys: dict[str, str] = field(default_factory=dict)
    expires_at: float | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    policy_set: str | None = None
    revoked_at: float | None = None
    name: str = ""

    def allows_provider(self, provider: str) -> bool:
        return not self.providers or provider in self.providers

    def allows_model(self, model: str) -> bool:
        return not self.models or any(fnmatchcase(model, pattern) for pattern in self.models)

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def public(self, now: float) -> dict[str, Any]:
        """What listings show: no key, no provider key (only which providers have one)."""
        return {
            "id": self.id, "tenant": self.tenant, "name": self.name, "hint": self.hint,
            "providers": self.providers, "models": self.models,
            "provider_keys": sorted(self.sealed_provider_keys), "expires_at": _iso(self.expires_at),
            "limits": self.limits, "policy_set": self.policy_set, "created_at": _iso(self.created_at),
            "revoked_at": _iso(self.revoked_at), "status": self.status(now),
        }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
