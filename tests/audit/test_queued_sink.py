"""The queue in front of every durable store, with a store that hangs: shutdown still ends in time."""

from __future__ import annotations

import asyncio

from capsem_proxy.audit.queued import QueuedAuditSink
from tests.audit.stores import KEY, request


class HangingStore:
    """A store whose writes never finish (a database host that stopped answering)."""

    description = "hanging://"

    def __init__(self) -> None:
        self.writes_started = 0

    async def open(self) -> None:
        return None

    async def write(self, entries) -> None:
        self.writes_started += 1
        await asyncio.Event().wait()

    async def head(self) -> None:
        return None

    def is_permanent(self, error: BaseException) -> bool:
        return False

    async def close(self) -> None:
        return None


async def test_close_gives_up_on_a_hanging_store_in_time_and_counts_the_loss():
    store = HangingStore()
    sink = QueuedAuditSink(store, key=KEY, flush_interval=0.01, close_timeout=0.5)
    await sink.start()
    for index in range(10):
        sink.record_request(request(f"r{index}"))
    while not store.writes_started:
        await asyncio.sleep(0.01)
    assert sink.queue_depth() == 10  # rows being written still count as queued
    # The store never answers: close() returns only by giving up, after close_timeout (the minute
    # here only stops a test that would otherwise never end).
    async with asyncio.timeout(60):
        await sink.close()
    assert sink.dropped == 10 and sink.queue_depth() == 0


class CountingStore(HangingStore):
    """A store that takes every write at once and counts the rows."""

    def __init__(self) -> None:
        super().__init__()
        self.rows = 0

    async def write(self, entries) -> None:
        self.writes_started += 1
        self.rows += len(entries)


async def test_the_writer_flushes_every_interval_and_close_wakes_it_at_once():
    store = CountingStore()
    sink = QueuedAuditSink(store, key=KEY, flush_interval=0.02, close_timeout=5.0)
    await sink.start()
    sink.record_request(request("r1"))
    for _ in range(200):
        if store.rows:
            break
        await asyncio.sleep(0.01)
    assert store.rows == 1 and sink.queue_depth() == 0
    # A long interval: close() ends the wait between flushes, and writes what is queued.
    slow_store = CountingStore()
    slow = QueuedAuditSink(slow_store, key=KEY, flush_interval=3600.0, close_timeout=5.0)
    await slow.start()
    await asyncio.sleep(0.01)  # the writer is waiting out its interval
    slow.record_request(request("r2"))
    async with asyncio.timeout(60):  # far less than the hour it would wait out
        await slow.close()
    assert slow_store.rows == 1 and slow.dropped == 0
    await sink.close()
