"""Held requests awaiting a human's approval (CONFIRM verdicts).

A held request is remembered by its decision id together with the tenant and a fingerprint
of the exact request; once an admin approves the id, the same tenant retrying the same
request with `x-capsem-approval: <decision id>` passes once. The store is process memory on
one machine, or Redis when several workers or replicas must share approvals
(`confirm.store_url`). Neither keeps the request itself, only its hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson

from capsem_proxy.config import ConfigError
from capsem_proxy.extras import needs_extra

__all__ = [
    "ApprovalStore",
    "HeldRequest",
    "MemoryApprovalStore",
    "RedisApprovalStore",
    "open_approval_store",
    "request_fingerprint",
]


def request_fingerprint(provider: str, operation: str, path: str, body: bytes) -> str:
    """A hash naming one exact request (never the request itself)."""
    digest = hashlib.sha256()
    for part in (provider, operation, path):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


@dataclass(slots=True)
class HeldRequest:
    """One request held for confirmation."""

    decision_id: str
    tenant_id: str
    fingerprint: str
    policy: str
    reason: str
    details: str
    held_at: float
    status: str = "pending"  # pending | approved | denied | used

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ApprovalStore(Protocol):
    """Where held requests live until they are decided and used, or expire."""

    async def hold(self, held: HeldRequest) -> None:
        """Remember a request held for confirmation."""

    async def pending(self) -> list[HeldRequest]:
        """Held requests not yet decided, oldest first."""

    async def get(self, decision_id: str) -> HeldRequest | None:
        """One held request, whatever its status; None when unknown or expired."""

    async def decide(self, decision_id: str, approve: bool) -> HeldRequest | None:
        """Approve or deny a pending request; returns it as it now stands (None when unknown)."""

    async def consume(self, decision_id: str, tenant_id: str, fingerprint: str) -> bool:
        """True once for an approved id retried by the same tenant with the same request."""

    async def ready(self) -> tuple[bool, str]:
        """Whether the store answers, and why not (for /readyz)."""

    async def close(self) -> None:
        """Release connections."""


class MemoryApprovalStore:
    """Held requests in this process, bounded and expiring."""

    def __init__(self, ttl_seconds: float, max_pending: int) -> None:
        self._ttl = ttl_seconds
        self._max = max_pending
        self._held: OrderedDict[str, HeldRequest] = OrderedDict()

    def _expire(self) -> None:
        horizon = time.time() - self._ttl
        while self._held:
            oldest = next(iter(self._held.values()))
            if oldest.held_at >= horizon and len(self._held) <= self._max:
                return
            self._held.popitem(last=False)

    async def hold(self, held: HeldRequest) -> None:
        self._held[held.decision_id] = held
        self._expire()

    async def pending(self) -> list[HeldRequest]:
        self._expire()
        return [held for held in self._held.values() if held.status == "pending"]

    async def get(self, decision_id: str) -> HeldRequest | None:
        self._expire()
        return self._held.get(decision_id)

    async def decide(self, decision_id: str, approve: bool) -> HeldRequest | None:
        held = await self.get(decision_id)
        if held is not None and held.status == "pending":
            held.status = "approved" if approve else "denied"
        return held

    async def consume(self, decision_id: str, tenant_id: str, fingerprint: str) -> bool:
        held = await self.get(decision_id)
        if held is None or held.status != "approved":
            return False
        if held.tenant_id != tenant_id or held.fingerprint != fingerprint:
            return False
        held.status = "used"
        return True

    async def ready(self) -> tuple[bool, str]:
        return True, ""

    async def close(self) -> None:
        return None


# Status changes run as Lua scripts so that, across replicas, an approval is used exactly once.
_DECIDE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local held = cjson.decode(raw)
if held['status'] == 'pending' then
  held['status'] = ARGV[1]
  redis.call('SET', KEYS[1], cjson.encode(held), 'KEEPTTL')
  redis.call('ZREM', KEYS[2], held['decision_id'])
end
return cjson.encode(held)
"""
_CONSUME = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local held = cjson.decode(raw)
if held['status'] ~= 'approved' or held['tenant_id'] ~= ARGV[1] or held['fingerprint'] ~= ARGV[2] then
  return 0
end
held['status'] = 'used'
redis.call('SET', KEYS[1], cjson.encode(held), 'KEEPTTL')
return 1
"""


class RedisApprovalStore:
    """Held requests in Redis, shared by every worker and replica; each expires after the TTL."""

    def __init__(self, url: str, ttl_seconds: float, prefix: str = "capsem:approvals") -> None:
        import redis.asyncio as redis_asyncio

        self._redis = redis_asyncio.Redis.from_url(url)
        self._ttl_ms = int(ttl_seconds * 1000)
        self._ttl_seconds = ttl_seconds
        self._prefix = prefix
        self._pending_key = f"{prefix}:pending"
        self._decide = self._redis.register_script(_DECIDE)
        self._consume = self._redis.register_script(_CONSUME)

    def _key(self, decision_id: str) -> str:
        return f"{self._prefix}:{decision_id}"

    async def hold(self, held: HeldRequest) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(held.decision_id), orjson.dumps(held.as_dict()), px=self._ttl_ms)
            pipe.zadd(self._pending_key, {held.decision_id: held.held_at})
            pipe.zremrangebyscore(self._pending_key, 0, time.time() - self._ttl_seconds)
            await pipe.execute()

    async def pending(self) -> list[HeldRequest]:
        await self._redis.zremrangebyscore(self._pending_key, 0, time.time() - self._ttl_seconds)
        ids = await self._redis.zrange(self._pending_key, 0, -1)
        if not ids:
            return []
        # redis-py types a reply as any RESP value; ZRANGE's members are bytes.
        raws = await self._redis.mget([self._key(i.decode()) for i in ids])  # type: ignore[union-attr]
        held = [HeldRequest(**orjson.loads(raw)) for raw in raws if raw]
        return [item for item in held if item.status == "pending"]

    async def get(self, decision_id: str) -> HeldRequest | None:
        raw = await self._redis.get(self._key(decision_id))
        return HeldRequest(**orjson.loads(raw)) if raw else None

    async def decide(self, decision_id: str, approve: bool) -> HeldRequest | None:
        status = "approved" if approve else "denied"
        raw = await self._decide(keys=[self._key(decision_id), self._pending_key], args=[status])
        return HeldRequest(**orjson.loads(raw)) if raw else None

    async def consume(self, decision_id: str, tenant_id: str, fingerprint: str) -> bool:
        return bool(await self._consume(keys=[self._key(decision_id)], args=[tenant_id, fingerprint]))

    async def ready(self) -> tuple[bool, str]:
        from redis.exceptions import RedisError  # loaded with the client already; absent from memory stores

        try:
            async with asyncio.timeout(1.0):
                await self._redis.ping()
        except (TimeoutError, OSError, RedisError) as exc:
            return False, f"approval store unreachable ({type(exc).__name__})"
        return True, ""

    async def close(self) -> None:
        await self._redis.aclose()


def open_approval_store(url: str, ttl_seconds: float, max_pending: int) -> ApprovalStore:
    """The store a URL names: `memory://` or `redis://host:port/db`."""
    if url.startswith("memory:"):
        return MemoryApprovalStore(ttl_seconds, max_pending)
    if url.startswith(("redis://", "rediss://", "unix://")):
        with needs_extra("confirm.store_url redis://"):
            return RedisApprovalStore(url, ttl_seconds)
    raise ConfigError(f"confirm.store_url: unsupported store '{url.split(':', 1)[0]}' (use memory:// or redis://)")
