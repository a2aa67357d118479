"""Limits shared by every replica through Redis.

One script call checks every limit of a request and counts it atomically. To keep Redis off most
requests' path, a replica reserves a small lease of a request counter at once (at most 1 % of the
limit, at most 50; a single request when the limit is under 100, so small limits stay exact): the
requests it admits from its lease need no round trip, and the counter in Redis never passes the
limit, so a limit holds across replicas. A lease unused when its window ends is lost with it (a
replica may refuse at most one lease's worth early). Usage counters (tokens, USD) are read with the
same call and trusted for 100 ms, the same order as the batching of settled usage; open-stream
gauges are never leased. Settled usage goes in one script call per batch."""

from __future__ import annotations

import time

from capsem_proxy.gateway.limits import Check, LimitStore, Refusal, StoreDown
from capsem_proxy.gateway.resp import RedisError, RespClient

__all__ = ["RedisLimitStore", "lease_size"]

_READ_TTL_S = 0.1
_MAX_LEASE = 50

# KEYS: the counters. ARGV: per key, limit, add, ttl (seconds), refresh (1: reset the ttl on every add),
# lease (how much to reserve when the check holds, at least add). All checks first, then all adds: a
# refused request counts nowhere. Returns {failed index or 0, its pttl, then per key: its value, granted}.
_ADMIT = b"""
local n = #KEYS
local values = {}
local failed = 0
for i = 1, n do
  local base = (i - 1) * 5
  local limit = tonumber(ARGV[base + 1])
  local add = tonumber(ARGV[base + 2])
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  values[i] = current
  if failed == 0 and ((add > 0 and current + add > limit) or (add == 0 and current >= limit)) then
    failed = i
  end
end
local out = {failed, 0}
if failed > 0 then
  out[2] = redis.call('PTTL', KEYS[failed])
  for i = 1, n do
    out[#out + 1] = values[i]
    out[#out + 1] = 0
  end
  return out
end
for i = 1, n do
  local base = (i - 1) * 5
  local add = tonumber(ARGV[base + 2])
  local granted = 0
  if add > 0 then
    local limit = tonumber(ARGV[base + 1])
    granted = math.max(add, math.min(tonumber(ARGV[base + 5]), limit - values[i]))
    local value = redis.call('INCRBY', KEYS[i], granted)
    values[i] = value
    if value == granted or ARGV[base + 4] == '1' then
      redis.call('EXPIRE', KEYS[i], tonumber(ARGV[base + 3]))
    end
  end
  out[#out + 1] = values[i]
  out[#out + 1] = granted
end
return out
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


def lease_size(check: Check) -> int:
    """How much of a counter a replica reserves at once."""
    if check.kind == "streams" or check.limit < 100:
        return check.add
    return max(check.add, min(check.limit // 100, _MAX_LEASE))


class RedisLimitStore(LimitStore):
    """Counters in Redis under `key_prefix`, with per-replica leases of request counters."""

    def __init__(self, url: str, key_prefix: str, timeout_s: float) -> None:
        self._client = RespClient(url, timeout_s)
        self._prefix = key_prefix
        self._leases: dict[str, list[float]] = {}  # counter -> [left in the lease, counter value, dropped at]
        self._reads: dict[str, tuple[int, float]] = {}  # usage counter -> (value, trusted until)
        self._sweep_at = time.monotonic() + 60

    def _local(self, checks: list[Check], now: float) -> list[int] | None:
        """Counter values when the leases and fresh reads admit the request with no round trip."""
        leases, reads = self._leases, self._reads
        for check in checks:
            if check.add:
                lease = leases.get(check.key)
                if lease is None or lease[0] < check.add or check.kind == "streams":
                    return None
            else:
                read = reads.get(check.key)
                if read is None or read[1] < now or read[0] >= check.limit:
                    return None
        values = []
        for check in checks:
            if check.add:
                lease = leases[check.key]
                lease[0] -= check.add
                values.append(int(lease[1] - lease[0]))
            else:
                values.append(reads[check.key][0])
        return values

    async def admit(self, checks: list[Check]) -> tuple[Refusal | None, list[int]]:
        now = time.monotonic()
        if now >= self._sweep_at:
            self._sweep(now)
        values = self._local(checks, now)
        if values is not None:
            return None, values
        keys = [self._prefix + check.key for check in checks]
        args: list[int] = []
        for check in checks:
            args += (check.limit, check.add, check.ttl_s, 1 if check.kind == "streams" else 0, lease_size(check))
        try:
            result = await self._client.run_script(_ADMIT, keys, args)
        except RedisError as exc:
            raise StoreDown(f"the limit store did not answer: {exc}") from exc
        failed, pttl = int(result[0]), int(result[1])
        values = [int(value) for value in result[2::2]]
        granted = [int(value) for value in result[3::2]]
        trusted_until = time.monotonic() + _READ_TTL_S
        for check, value, grant in zip(checks, values, granted, strict=True):
            if not check.add:
                self._reads[check.key] = (value, trusted_until)
            elif grant > check.add:
                lease = self._leases.get(check.key)
                if lease is None:
                    self._leases[check.key] = [grant - check.add, value, trusted_until + check.ttl_s]
                else:  # requests that missed the lease at once each reserved one: keep every reservation
                    lease[0] += grant - check.add
                    lease[1] = max(lease[1], value)
        if failed:
            check = checks[failed - 1]
            return Refusal(check, values[failed - 1], pttl if pttl > 0 else check.ttl_s * 1000, values), values
        return None, values

    async def settle(self, charges: dict[str, tuple[int, int]]) -> None:
        if not charges:
            return
        reads = self._reads
        for key, (delta, _ttl) in charges.items():
            read = reads.get(key)
            if read is not None:  # this replica's own usage counts at once
                reads[key] = (read[0] + delta, read[1])
        keys = [self._prefix + key for key in charges]
        args: list[int] = []
        for delta, ttl_s in charges.values():
            args += (delta, ttl_s)
        try:
            await self._client.run_script(_SETTLE, keys, args)
        except RedisError as exc:
            raise StoreDown(f"the limit store did not answer: {exc}") from exc

    def _sweep(self, now: float) -> None:
        """Forget reads and leases of past windows (their counters' names carry the window)."""
        self._reads = {key: read for key, read in self._reads.items() if read[1] >= now}
        self._leases = {key: lease for key, lease in self._leases.items() if lease[2] >= now}
        self._sweep_at = now + 60

    async def close(self) -> None:
        await self._client.close()
