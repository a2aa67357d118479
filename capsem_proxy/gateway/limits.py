"""Rate limits and budgets: counters in fixed windows (a minute, a UTC day) plus open-stream gauges,
kept in process memory or in Redis, where one Lua script checks and counts a request's every limit
atomically in one round trip. Usage known only at the end (tokens, cost, a stream closing) is
settled in batches off the request path."""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

__all__ = ["Check", "LimitStore", "MemoryLimitStore", "Refusal", "StoreDown", "open_limit_store"]

logger = logging.getLogger("capsem_proxy.gateway")

STREAM_TTL_S = 3600  # an open-stream count left by a crashed replica fades after this


class StoreDown(Exception):
    """The limit store did not answer in time."""


@dataclass(slots=True)
class Check:
    """One limit on one request: the counter `key` may not pass `limit`. A request adds `add` when it
    is admitted (1 for requests and streams); a zero `add` only checks usage settled earlier
    (tokens, micro-USD)."""

    key: str
    limit: int
    add: int
    ttl_s: int
    kind: str  # requests | tokens | usd | streams
    scope: str  # what it limits, for the error message: "tenant team-a", "key gk_…"
    window: str  # minute | day | open


@dataclass(slots=True)
class Refusal:
    """The check that failed, its counter's value and how long until its window resets."""

    check: Check
    current: int
    reset_ms: int
    values: list[int]  # every check's counter, in order


class LimitStore(ABC):
    """Counters shared by every request (and, in Redis, by every replica)."""

    @abstractmethod
    async def admit(self, checks: list[Check]) -> tuple[Refusal | None, list[int]]:
        """Check every limit; when all hold, count the request. Returns (refusal, counter values)."""

    @abstractmethod
    async def settle(self, charges: dict[str, tuple[int, int]]) -> None:
        """Add usage to counters: {key: (delta, ttl_s)}; a negative delta on a stream gauge closes a stream."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


class MemoryLimitStore(LimitStore):
    """Counters in this process (one replica). Expired windows are swept now and then."""

    def __init__(self) -> None:
        self._counters: dict[str, list[float]] = {}  # key -> [value, expires_at (monotonic)]
        self._next_sweep = time.monotonic() + 60

    def _value(self, key: str, now: float) -> int:
        entry = self._counters.get(key)
        if entry is None or entry[1] <= now:
            return 0
        return int(entry[0])

    async def admit(self, checks: list[Check]) -> tuple[Refusal | None, list[int]]:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        values = [self._value(check.key, now) for check in checks]
        for check, current in zip(checks, values, strict=True):
            if (current + check.add > check.limit) if check.add else current >= check.limit:
                entry = self._counters.get(check.key)
                reset_ms = int((entry[1] - now) * 1000) if entry is not None and entry[1] > now else check.ttl_s * 1000
                return Refusal(check, current, reset_ms, values), values
        for index, check in enumerate(checks):
            if check.add:
                values[index] = self._add(check.key, check.add, check.ttl_s, now, refresh=check.kind == "streams")
        return None, values

    def _add(self, key: str, delta: int, ttl_s: int, now: float, *, refresh: bool = False) -> int:
        entry = self._counters.get(key)
        if entry is None or entry[1] <= now:
            entry = self._counters[key] = [0, now + ttl_s]
        elif refresh:
            entry[1] = now + ttl_s
        entry[0] = max(entry[0] + delta, 0)
        return int(entry[0])

    async def settle(self, charges: dict[str, tuple[int, int]]) -> None:
        self.settle_now(charges)

    def settle_now(self, charges: dict[str, tuple[int, int]]) -> None:
        """`settle` without a round trip (there is none to make in memory)."""
        now = time.monotonic()
        for key, (delta, ttl_s) in charges.items():
            self._add(key, delta, ttl_s, now)

    def _sweep(self, now: float) -> None:
        self._counters = {key: entry for key, entry in self._counters.items() if entry[1] > now}
        self._next_sweep = now + 60


def window_ids(now: float) -> tuple[int, int, int, int]:
    """(minute id, seconds left in it, UTC day id, seconds left in it)."""
    minute = int(now // 60)
    day = int(now // 86400)
    return minute, max(1, math.ceil((minute + 1) * 60 - now)), day, max(1, math.ceil((day + 1) * 86400 - now))


def open_limit_store(url: str, key_prefix: str, timeout_s: float) -> LimitStore:
    if url.startswith("memory:"):
        return MemoryLimitStore()
    from capsem_proxy.gateway.redis_limits import RedisLimitStore

    return RedisLimitStore(url, key_prefix, timeout_s)

