"""The PostgreSQL audit sink: replicas sharing one database keep one chain, schemas keep runs apart,
and rows wait in the queue while the server is down (a private server, stopped and started here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import pytest

from capsem_proxy.audit import open_audit_sink
from capsem_proxy.audit.postgres import PostgresAuditSink, split_url
from capsem_proxy.audit.tools import open_reader, verify_chain
from capsem_proxy.config import AuditSettings, ConfigError
from capsem_proxy.decisions import Verdict
from tests.audit.stores import KEY, PrivatePostgres, context, decision, drop_schema, request, running_private_postgres


async def _verify(url: str):
    reader = open_reader(url)
    await reader.open()
    try:
        return await verify_chain(reader, KEY)
    finally:
        await reader.close()


async def _count(url: str, table: str) -> int:
    base, _, schema = url.partition("?schema=")
    connection = await asyncpg.connect(base)
    try:
        return int(await connection.fetchval(f'SELECT count(*) FROM "{schema or "capsem_audit"}".{table}'))
    finally:
        await connection.close()


def test_the_url_names_the_schema_and_logs_never_show_the_password():
    dsn, schema, description = split_url("postgresql://u:secret@db:5433/audit?schema=team_a&sslmode=disable")
    assert (dsn, schema) == ("postgresql://u:secret@db:5433/audit?sslmode=disable", "team_a")
    assert "secret" not in description and description.startswith("postgresql://u@db:5433/audit")
    assert split_url("postgresql://db/audit")[1] == "capsem_audit"
    with pytest.raises(ConfigError, match="schema"):
        split_url("postgresql://db/audit?schema=x;drop")
    sink = open_audit_sink(AuditSettings(url="postgresql://db/audit", batch_max=9, queue_max=300), KEY)
    assert isinstance(sink, PostgresAuditSink) and (sink._batch_max, sink._queue_max) == (9, 300)


async def test_replicas_writing_together_keep_one_unbroken_chain(postgres_url):
    replicas = [open_audit_sink(AuditSettings(url=postgres_url, flush_interval_ms=5), KEY) for _ in range(3)]
    await asyncio.gather(*(replica.start() for replica in replicas))  # migrating together, once
    for round_ in range(20):
        for index, replica in enumerate(replicas):
            replica.record(context(f"{index}-{round_}"), [decision(), decision(Verdict.LOG)])
            replica.record_request(request(f"{index}-{round_}"))
        await asyncio.sleep(0.003)
    await asyncio.gather(*(replica.close() for replica in replicas))
    report = await _verify(postgres_url)
    assert report.broken is None
    assert report.walk.counts == {"requests": 60, "decisions": 120} and report.head.seq == 180


async def test_each_schema_is_a_store_of_its_own(postgres_url):
    other = postgres_url.rsplit("=", 1)[0] + "=" + postgres_url.rsplit("=", 1)[1] + "_b"
    try:
        for url, count in ((postgres_url, 2), (other, 5)):
            sink = open_audit_sink(url, KEY)
            await sink.start()
            for index in range(count):
                sink.record_request(request(f"r{index}"))
            await sink.close()
        assert (await _count(postgres_url, "requests"), await _count(other, "requests")) == (2, 5)
    finally:
        await asyncio.to_thread(drop_schema, other)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    with running_private_postgres() as server:
        yield server


async def _wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def test_rows_wait_for_a_server_that_went_down_and_reach_it_when_it_is_back(private_postgres):
    url = private_postgres.url + "?schema=outage"
    sink = open_audit_sink(AuditSettings(url=url, flush_interval_ms=20), KEY)
    await sink.start()
    sink.record_request(request("before"))
    assert await sink.flush()
    await asyncio.to_thread(private_postgres.stop)
    try:
        for index in range(200):
            sink.record(context(f"down-{index}"), [decision()])
            sink.record_request(request(f"down-{index}"))
        assert await _wait_until(lambda: not sink.ready()[0], 5)
        await asyncio.sleep(0.5)
        assert sink.queue_depth() == 400 and sink.dropped == 0
        assert "unavailable" in sink.ready()[1]
    finally:
        await asyncio.to_thread(private_postgres.start)
    assert await _wait_until(lambda: sink.queue_depth() == 0)
    assert sink.ready() == (True, "")
    await sink.close()
    assert await _count(url, "requests") == 201 and await _count(url, "decisions") == 200
    assert (await _verify(url)).broken is None


async def test_a_proxy_started_while_the_server_is_down_connects_later(private_postgres):
    url = private_postgres.url + "?schema=late"
    await asyncio.to_thread(private_postgres.stop)
    try:
        sink = open_audit_sink(AuditSettings(url=url, flush_interval_ms=20), KEY)
        await sink.start()  # does not raise: the writer keeps trying
        ready, reason = sink.ready()
        assert not ready and "unavailable" in reason
        sink.record_request(request("early"))
    finally:
        await asyncio.to_thread(private_postgres.start)
    assert await _wait_until(lambda: sink.queue_depth() == 0)
    await sink.close()
    assert await _count(url, "requests") == 1
