"""The in-memory limit store: checks before counts, gauges for open streams, settled usage."""

from capsem_proxy.gateway.limits import Check, MemoryLimitStore


async def test_requests_counted_until_the_limit():
    store = MemoryLimitStore()
    check = Check("r:tenant:a:1", 2, 1, 60, "requests", "tenant a", "minute")
    assert (await store.admit([check]))[0] is None
    assert (await store.admit([check]))[0] is None
    refusal, values = await store.admit([check])
    assert refusal is not None and refusal.current == 2 and 0 < refusal.reset_ms <= 60_000 and values == [2]


async def test_a_refused_request_counts_nowhere():
    store = MemoryLimitStore()
    requests = Check("r:k", 5, 1, 60, "requests", "key k", "minute")
    tokens = Check("t:k", 100, 0, 60, "tokens", "key k", "minute")
    store.settle_now({"t:k": (150, 60)})
    refusal, _ = await store.admit([requests, tokens])
    assert refusal is not None and refusal.check is tokens
    refusal, values = await store.admit([requests])
    assert refusal is None and values == [1]


async def test_streams_open_and_close():
    store = MemoryLimitStore()
    stream = Check("s:a", 1, 1, 3600, "streams", "tenant a", "open")
    assert (await store.admit([stream]))[0] is None
    assert (await store.admit([stream]))[0] is not None
    await store.settle({"s:a": (-1, 3600)})
    assert (await store.admit([stream]))[0] is None
