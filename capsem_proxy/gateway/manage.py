"""Creating, listing, revoking gateway keys and re-sealing held provider keys: shared by the admin API
and the CLI."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from capsem_proxy.gateway.crypto import MasterKeys
from capsem_proxy.gateway.keys import GatewayKey, hash_key, new_key, new_key_id
from capsem_proxy.gateway.settings import LimitValues
from capsem_proxy.gateway.store import KeyStore

__all__ = ["KeyRequest", "KeyRequestError", "create_key", "reseal_all"]

_NAME_CHARS = 128


class KeyRequestError(ValueError):
    """The request to create a key is invalid; the message names the field."""


class KeyRequest(BaseModel):
    """The body of `POST /admin/keys` (and the options of `capsem-proxy keys create`)."""

    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(..., min_length=1, max_length=_NAME_CHARS)
    name: str = Field("", max_length=_NAME_CHARS)
    providers: list[Literal["openai", "gemini", "anthropic"]] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list, max_length=256)
    provider_keys: dict[Literal["openai", "gemini", "anthropic"], str] = Field(default_factory=dict)
    expires_at: datetime | None = None
    limits: LimitValues | None = None
    policy_set: str | None = Field(None, max_length=_NAME_CHARS)

    @field_validator("tenant", "name", "policy_set")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be printable text")
        return value

    @field_validator("models")
    @classmethod
    def _model_globs(cls, value: list[str]) -> list[str]:
        if any(not item or len(item) > _NAME_CHARS for item in value):
            raise ValueError(f"each model must be 1 to {_NAME_CHARS} characters")
        return value

    @field_validator("provider_keys")
    @classmethod
    def _provider_keys(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not key or len(key) > 4096 or not key.isprintable() for key in value.values()):
            raise ValueError("each provider key must be 1 to 4096 printable characters")
        return value

    @classmethod
    def parse(cls, payload: Any) -> KeyRequest:
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            # Never echo the input: it may hold a provider key.
            raise KeyRequestError(f"{where}: {first['msg']}") from None


async def create_key(store: KeyStore, master: MasterKeys | None, request: KeyRequest) -> tuple[str, GatewayKey]:
    """A new key, stored; returns (the key in clear, shown once, and its stored form)."""
    if request.provider_keys and master is None:
        raise KeyRequestError("provider_keys: the master key is not set, so the proxy cannot hold provider keys")
    expires_at = None
    if request.expires_at is not None:
        moment = request.expires_at if request.expires_at.tzinfo else request.expires_at.replace(tzinfo=UTC)
        expires_at = moment.timestamp()
    plain = new_key()
    key_id = new_key_id()
    provider_keys: dict[str, str] = dict(request.provider_keys.items())
    key = GatewayKey(
        id=key_id, tenant=request.tenant, name=request.name, key_hash=hash_key(plain),
        hint=f"cpk-…{plain[-4:]}", created_at=time.time(), providers=list(request.providers),
        models=list(request.models),
        sealed_provider_keys=master.seal_all(provider_keys, key_id) if master is not None else {},
        expires_at=expires_at,
        limits=request.limits.model_dump(exclude_defaults=True) if request.limits is not None else {},
        policy_set=request.policy_set,
    )
    await store.insert(key)
    return plain, key


async def reseal_all(store: KeyStore, master: MasterKeys) -> int:
    """Re-seal every held provider key under the current master key; returns how many keys changed.
    Former master keys must still be configured (`<master_key_env>_PREVIOUS`) to open the old values."""
    changed = 0
    for key in await store.list():
        if not any(master.needs_reseal(sealed) for sealed in key.sealed_provider_keys.values()):
            continue
        opened = {provider: master.open(sealed, key.id) for provider, sealed in key.sealed_provider_keys.items()}
        await store.reseal(key.id, master.seal_all(opened, key.id))
        changed += 1
    return changed
