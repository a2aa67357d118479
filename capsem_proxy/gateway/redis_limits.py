"""Limits shared by every replica through Redis: one EVALSHA per admitted request checks every limit
and counts the request atomically; settled usage goes in one script call per batch."""

from __future__ import annotations

from capsem_proxy.gateway.limits import Check, LimitStore, Refusal, StoreDown
from capsem_proxy.gateway.resp import RedisError, RespClient

__all__ = ["RedisLimitStore"]

# KEYS: the counters. ARGV: per key, limit, add, ttl (seconds), refresh (1: reset the ttl on every add).
# All checks first, then all adds: a refused request counts nowhere.
_ADMIT = b"""
local n = #KEYS
local values = {}
local failed = 0
for i = 1, n do
  local base = (i - 1) * 4
  local limit = tonumber(ARGV[base + 1])
  local add = tonumber(ARGV[base + 2])
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  values[i] = current
  if failed == 0 and ((add > 0 and current + add > limit) or (add == 0 and current >= limit)) then
    failed = i
  end
end
local pttl = 0
if failed > 0 then
  pttl = redis.call('PTTL', KEYS[failed])
else
  for i = 1, n do
    local base = (i - 1) * 4
    local add = tonumber(ARGV[base + 2])
    if add > 0 then
      local value = redis.call('INCRBY', KEYS[i], add)
      values[i] = value
      if value == add or ARGV[base + 4] == '1' then
        redis.call('EXPIRE', KEYS[i], tonumber(ARGV[base + 3]))
      end
    end
  end
end
table.insert(values, 1, pttl)
table.insert(values, 1, failed)
return values
"""

# KEYS: counters. ARGV: per key, delta, ttl. A gauge never goes below zero.
_SETTLE = b"""
for i = 1, #KEYS do
  local delta = tonumber(ARGV[(i - 1) * 2 + 1])
  local value = redis.call('INCRBY', KEYS[i], delta)
  if value < 0 then
    redis.call('SET', KEYS[i], 0, 'KEEPTTL')
  elseif value == delta then
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[(i - 1) * 2 + 2]))
  end
end
return #KEYS
"""


class RedisLimitStore(LimitStore):
    """Counters in Redis under `key_prefix`."""

    def __init__(self, url: str, key_prefix: str, timeout_s: float) -> None:
        self._client = RespClient(url, timeout_s)
        self._prefix = key_prefix

    async def admit(self, checks: list[Check]) -> tuple[Refusal | None, list[int]]:
        keys = [self._prefix + check.key for check in checks]
        args: list[int] = []
        for check in checks:
            args += (check.limit, check.add, check.ttl_s, 1 if check.kind == "streams" else 0)
        try:
            result = await self._client.run_script(_ADMIT, keys, args)
        except (RedisError, OSError) as exc:
            raise StoreDown(f"the limit store did not answer: {type(exc).__name__}") from exc
        failed, pttl = int(result[0]), int(result[1])
        values = [int(value) for value in result[2:]]
        if failed:
            check = checks[failed - 1]
            return Refusal(check, values[failed - 1], pttl if pttl > 0 else check.ttl_s * 1000, values), values
        return None, values

    async def settle(self, charges: dict[str, tuple[int, int]]) -> None:
        if not charges:
            return
        keys = [self._prefix + key for key in charges]
        args: list[int] = []
        for delta, ttl_s in charges.values():
            args += (delta, ttl_s)
        try:
            await self._client.run_script(_SETTLE, keys, args)
        except (RedisError, OSError) as exc:
            raise StoreDown(f"the limit store did not answer: {type(exc).__name__}") from exc

    async def close(self) -> None:
        await self._client.close()
