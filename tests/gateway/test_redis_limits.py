"""The Redis limit store against the real Redis: two stores (two replicas) share one limit; leases keep
most requests off Redis without ever letting the shared counter pass the limit."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from capsem_proxy.gateway.limits import Check, StoreDown
from capsem_proxy.gateway.redis_limits import RedisLimitStore, lease_size
from capsem_proxy.gateway.resp import RespClient
from tests.services import REDIS_URL, require_service


@pytest.fixture
def prefix() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return f"capsem-test:{uuid.uuid4().hex}:"


def _requests(limit: int) -> Check:
    return Check("r:tenant:t:1", limit, 1, 60, "requests", "tenant t", "minute")


async def test_small_limits_are_exact_across_replicas(prefix):
    one, two = RedisLimitStore(REDIS_URL, prefix, 1.0), RedisLimitStore(REDIS_URL, prefix, 1.0)
    try:
        outcomes = [(await (one if turn % 2 else two).admit([_requests(5)]))[0] for turn in range(8)]
        assert [refusal is None for refusal in outcomes] == [True] * 5 + [False] * 3
    finally:
        await one.close()
        await two.close()


async def test_leases_never_pass_the_limit(prefix):
    limit = 1000
    assert lease_size(_requests(limit)) == 10
    replicas = [RedisLimitStore(REDIS_URL, prefix, 1.0) for _ in range(2)]
    try:
        admitted = 0
        for turn in range(1200):
            refusal, _ = await replicas[turn % 2].admit([_requests(limit)])
            admitted += refusal is None
        client = RespClient(REDIS_URL, 1.0)
        counted = int(await client.call("GET", prefix + "r:tenant:t:1"))
        await client.close()
        assert counted <= limit
        assert limit - 2 * 10 <= admitted <= counted
    finally:
        for replica in replicas:
            await replica.close()


async def test_concurrent_admits_on_one_replica_lose_no_lease(prefix):
    """Requests that miss the lease at once each reserve one from Redis; every reservation is used."""
    limit = 200
    replicas = [RedisLimitStore(REDIS_URL, prefix, 1.0) for _ in range(2)]
    try:
        admitted = 0
        for _ in range(70):
            outcomes = await asyncio.gather(*(replica.admit([_requests(limit)]) for replica in replicas
                                              for _ in range(2)))
            admitted += sum(refusal is None for refusal, _ in outcomes)
        assert admitted == limit
    finally:
        for replica in replicas:
            await replica.close()


async def test_usage_read_and_settled(prefix):
    store = RedisLimitStore(REDIS_URL, prefix, 1.0)
    tokens = Check("t:tenant:t:1", 100, 0, 60, "tokens", "tenant t", "minute")
    try:
        assert (await store.admit([tokens]))[0] is None
        await store.settle({"t:tenant:t:1": (150, 60)})
        refusal, _ = await store.admit([tokens])
        assert refusal is not None and refusal.current == 150
    finally:
        await store.close()


async def test_an_unreachable_redis_is_store_down():
    from tests.proxy_process import free_port

    store = RedisLimitStore(f"redis://127.0.0.1:{free_port()}/0", "x:", 0.2)
    with pytest.raises(StoreDown):
        await store.admit([_requests(5)])
    await store.close()
