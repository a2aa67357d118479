"""The SQLite audit sink: batched writes off the event loop, a bounded queue, retries while the file
is locked, a drain at close, and the migration of version-1 files."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest

from capsem_proxy.audit import SQLiteAuditSink, open_audit_sink
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.tools import open_reader, verify_chain
from capsem_proxy.config import AuditSettings
from capsem_proxy.decisions import Verdict
from tests.audit.stores import KEY, context, decision, request


def _count(path, table="decisions") -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


async def _verify(path):
    reader = open_reader(f"sqlite:///{path}")
    await reader.open()
    try:
        return await verify_chain(reader, KEY)
    finally:
        await reader.close()


def _locked(path) -> sqlite3.Connection:
    """Another writer holding the file: every write of the sink fails while it holds on."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


async def test_settings_pick_the_store_and_its_options(tmp_path):
    sink = open_audit_sink(AuditSettings(url=f"sqlite:///{tmp_path}/a.db", queue_max=500, batch_max=7,
                                         flush_interval_ms=250, overflow="fail_closed"), KEY)
    assert isinstance(sink, SQLiteAuditSink) and sink.path == tmp_path / "a.db"
    assert (sink._queue_max, sink._batch_max, sink._flush_interval) == (500, 7, 0.25)
    assert isinstance(open_audit_sink(f"sqlite:///{tmp_path}/b.db", KEY), SQLiteAuditSink)


async def test_rows_are_written_in_wal_mode_and_flushed_on_close(tmp_path):
    sink = SQLiteAuditSink(str(tmp_path / "a.db"), key=KEY, flush_interval=60)
    await sink.start()
    sink.record(context(session_id="s", agent_id="ag"), [decision(Verdict.LOG, details="noted")])
    sink.record_request(request(status=200, verdict="LOG"))
    assert sink.queue_depth() == 2
    await sink.close()
    with sqlite3.connect(tmp_path / "a.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = connection.execute("SELECT seq, verdict, details, request_id, session_id, agent_id FROM decisions")
        assert rows.fetchall() == [(1, "LOG", "noted", "req-1", "s", "ag")]
        assert connection.execute("SELECT seq, status, verdict FROM requests").fetchall() == [(2, 200, "LOG")]
    assert sink.queue_depth() == 0 and sink.dropped == 0


def _three(verdict: Verdict = Verdict.ALLOW) -> list:
    """Three decisions that stay three rows (one per policy)."""
    return [decision(verdict, f"p{index}") for index in range(3)]


async def test_a_full_queue_drops_allowed_rows_and_counts(tmp_path):
    sink = SQLiteAuditSink(str(tmp_path / "a.db"), key=KEY, flush_interval=60, queue_max=10, reserved_rows=5)
    sink.record(context(), _three())
    assert sink.admits("tenant-1")
    sink.record(context(), _three())  # would pass the 5 rows outside the reserve: the whole call is dropped
    sink.record_request(request())
    sink.record_request(request())
    assert (sink.queue_depth(), sink.dropped) == (5, 3)
    sink.record_request(request())
    assert sink.dropped == 4 and sink.admits("tenant-1")  # the reserve is still free: requests go on
    await sink.close()
    assert _count(tmp_path / "a.db") == 3 and _count(tmp_path / "a.db", "requests") == 2


async def test_blocks_use_the_reserve_and_are_never_dropped(tmp_path):
    sink = SQLiteAuditSink(str(tmp_path / "a.db"), key=KEY, flush_interval=60, queue_max=10, reserved_rows=4)
    for index in range(6):
        sink.record_request(request(f"allowed-{index}"))
    sink.record_request(request("one-too-many"))
    assert (sink.queue_depth(), sink.dropped) == (6, 1)
    sink.record(context("blocked"), [decision(Verdict.ALLOW, "first"), decision(Verdict.BLOCK, "second")])
    sink.record_request(request("blocked", verdict="BLOCK", status=403))
    assert (sink.queue_depth(), sink.dropped) == (8, 2)  # the BLOCK and its request row in; the ALLOW row out
    assert sink.admits("tenant-1")
    for index in range(3):  # past queue_max: still kept, and from then on every new request is turned away
        sink.record(context(f"blocked-{index}"), [decision(Verdict.CONFIRM)])
    assert (sink.queue_depth(), sink.dropped) == (11, 2)
    assert not sink.admits("tenant-1")
    await sink.close()
    with sqlite3.connect(tmp_path / "a.db") as connection:
        verdicts = connection.execute("SELECT request_id, verdict FROM decisions ORDER BY seq").fetchall()
        assert verdicts == [("blocked", "BLOCK"), *((f"blocked-{index}", "CONFIRM") for index in range(3))]
        assert connection.execute("SELECT verdict FROM requests WHERE request_id = 'blocked'").fetchall() == [
            ("BLOCK",)
        ]


async def test_fail_closed_refuses_required_tenants_before_the_reserve(tmp_path):
    """Requests admitted while there was room still find room for their rows when they finish."""
    sink = SQLiteAuditSink(str(tmp_path / "a.db"), key=KEY, flush_interval=60, queue_max=100, overflow="fail_closed",
                           required_tenants=["tenant-1"])
    for _ in range(89):
        sink.record_request(request())
    assert sink.admits("tenant-1")
    sink.record_request(request())
    assert not sink.admits("tenant-1") and sink.admits("someone-else")
    for _ in range(15):  # rows of required tenants are kept, even past the limit
        sink.record_request(request())
    assert (sink.queue_depth(), sink.dropped) == (105, 0)
    assert not sink.admits("someone-else")
    await sink.close()


async def test_a_locked_store_keeps_rows_queued_and_reports_not_ready(tmp_path, caplog):
    path = tmp_path / "a.db"
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=60, busy_timeout=0.05)
    assert sink.ready() == (False, "audit store not open")
    await sink.start()
    assert sink.ready() == (True, "")
    holder = _locked(path)
    for index in range(5):
        sink.record(context(f"r{index}"), [decision(Verdict.LOG)])
    with caplog.at_level(logging.ERROR, "capsem_proxy.audit"):
        assert not await sink.flush()
        assert not await sink.flush()
    ready, reason = sink.ready()
    assert not ready and "database is locked" in reason
    assert sink.queue_depth() == 5 and sink.dropped == 0
    assert len([r for r in caplog.records if "cannot write" in r.getMessage()]) == 1  # once per outage
    holder.execute("ROLLBACK")
    holder.close()
    assert await sink.flush() and sink.ready() == (True, "")
    await sink.close()
    assert _count(path) == 5
    assert (await _verify(path)).broken is None


async def test_the_writer_retries_in_the_background_until_the_store_is_back(tmp_path):
    path = tmp_path / "a.db"
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=0.01, busy_timeout=0.01)
    await sink.start()
    holder = _locked(path)
    for index in range(50):
        sink.record_request(request(f"r{index}"))
    await asyncio.sleep(0.3)
    assert not sink.ready()[0] and sink.queue_depth() == 50
    assert sink._backoff > 0.01  # backing off, not spinning
    holder.execute("ROLLBACK")
    holder.close()
    deadline = time.monotonic() + 10
    while sink.queue_depth() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert sink.queue_depth() == 0 and sink.ready() == (True, "")
    await sink.close()
    assert _count(path, "requests") == 50


async def test_close_waits_a_bounded_time_then_counts_what_it_could_not_write(tmp_path, caplog):
    path = tmp_path / "a.db"
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=60, busy_timeout=0.01, close_timeout=0.5)
    await sink.start()
    holder = _locked(path)
    sink.record(context(), _three())
    # The lock is never given up while it closes: close() returns only by giving up, after
    # close_timeout (the minute here only stops a test that would otherwise never end).
    with caplog.at_level(logging.ERROR, "capsem_proxy.audit"):
        async with asyncio.timeout(60):
            await sink.close()
    assert sink.dropped == 3
    assert any("3 rows lost" in record.getMessage() for record in caplog.records)
    holder.execute("ROLLBACK")
    holder.close()


async def test_large_queues_are_written_in_bounded_batches(tmp_path):
    path = tmp_path / "a.db"
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=60, batch_max=700)
    await sink.start()
    for _ in range(5000):
        sink.record(context(), [decision()])
    await sink.flush()
    await sink.close()
    assert _count(path) == 5000
    report = await _verify(path)
    assert report.broken is None and report.walk.rows == 5000


@pytest.mark.parametrize("max_params", [None, 999])
async def test_batches_of_any_size_store_every_row_as_queued(tmp_path, max_params):
    # Rows go in as statements of 64, 32, ... 1 rows: a batch of 127 decisions and 64 requests uses
    # every size for one table and all but 64 for the other. SQLite before 3.32 allows 999 parameters
    # per statement (41 request rows): larger statements are then left out.
    path = tmp_path / "a.db"
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=60)
    await sink.start()
    if max_params is not None:
        store = sink.store
        await store._on(store._write_thread, store._writer.setlimit, sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, max_params)
        store._max_params = max_params
    # Request rows with and without stored content go in through statements of their own.
    contents = [(None, None), ("p", None), (None, "a"), ("p", "a")]
    for index in range(127):
        sink.record(context(f"req-{index}"), [decision(reason=f"r{index}", shadow=index % 2 == 1)])
        if index % 2 == 0:
            prompt, answer = contents[index // 2 % 4 if index < 32 else 0]
            sink.record_request(request(f"req-{index}", status=200, stream=index % 4 == 0, ttfb_ms=None,
                                        prompt=prompt, answer=answer))
    assert await sink.flush()  # written at the first try
    await sink.close()
    with sqlite3.connect(path) as connection:
        decisions = connection.execute("SELECT seq, request_id, reason, shadow FROM decisions ORDER BY seq").fetchall()
        requests = connection.execute(
            "SELECT seq, request_id, stream, ttfb_ms, prompt, answer FROM requests ORDER BY seq"
        ).fetchall()
    assert [(request_id, reason, shadow) for _, request_id, reason, shadow in decisions] == [
        (f"req-{index}", f"r{index}", index % 2) for index in range(127)
    ]
    assert [row[1:] for row in requests] == [
        (f"req-{index}", int(index % 4 == 0), None, *contents[index // 2 % 4 if index < 32 else 0])
        for index in range(0, 127, 2)
    ]
    assert sorted(seq for seq, *_ in decisions + requests) == list(range(1, 127 + 64 + 1))
    report = await _verify(path)
    assert report.broken is None and report.walk.rows == 127 + 64


async def test_closing_during_a_periodic_flush_loses_nothing(tmp_path):
    for attempt in range(3):
        path = tmp_path / f"{attempt}.db"
        sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=0.001)
        await sink.start()
        for _ in range(20000):
            sink.record(context(), [decision()])
        await asyncio.sleep(0.002)  # let the periodic flush start writing
        await sink.close()
        assert _count(path) == 20000


async def test_two_writers_on_one_file_keep_one_chain(tmp_path):
    """Worker processes share the file: each batch extends the chain from the head it reads."""
    path = tmp_path / "a.db"
    sinks = [SQLiteAuditSink(str(path), key=KEY, flush_interval=60) for _ in range(2)]
    for sink in sinks:
        await sink.start()
    for round_ in range(10):
        for index, sink in enumerate(sinks):
            sink.record(context(f"w{index}-{round_}"), _three())
            sink.record_request(request(f"w{index}-{round_}"))
        await asyncio.gather(*(sink.flush() for sink in sinks))
    for sink in sinks:
        await sink.close()
    report = await _verify(path)
    assert report.broken is None and report.walk.rows == 80 and report.head.seq == 80


async def test_a_row_the_store_refuses_is_dropped_alone(tmp_path, caplog):
    path = tmp_path / "a.db"
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=60)
    await sink.start()
    sink.record_request(request("ok-1"))
    sink.record_request(request("too-big", input_tokens=2**70))  # no SQLite integer holds it
    sink.record_request(request("ok-2"))
    with caplog.at_level(logging.ERROR, "capsem_proxy.audit"):
        assert await sink.flush()
    await sink.close()
    with sqlite3.connect(path) as connection:
        assert [row[0] for row in connection.execute("SELECT request_id FROM requests")] == ["ok-1", "ok-2"]
    assert sink.dropped == 1 and any("audit row dropped" in r.getMessage() for r in caplog.records)
    assert (await _verify(path)).broken is None


async def test_text_no_store_accepts_is_cleaned_before_it_is_chained(tmp_path):
    path = tmp_path / "a.db"
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=60)
    await sink.start()
    sink.record_request(request("r\x00nul", model="m\ud800x", prompt="a\x00b"))
    await sink.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT request_id, model, prompt FROM requests").fetchone() == (
            "r\ufffdnul", "m?x", "a\ufffdb"
        )
    assert (await _verify(path)).broken is None


async def test_a_request_row_is_a_snapshot_of_the_record(tmp_path):
    sink = open_audit_sink("memory://", KEY)
    record = request(status=200)
    sink.record_request(record)
    record.status = 500
    assert sink.requests[0]["status"] == 200


V1_SCHEMA = """
CREATE TABLE decisions (decision_id TEXT NOT NULL, request_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    provider TEXT NOT NULL, operation TEXT NOT NULL, model TEXT NOT NULL, hook TEXT NOT NULL, policy TEXT NOT NULL,
    verdict TEXT NOT NULL, reason TEXT NOT NULL, details TEXT NOT NULL, subject TEXT NOT NULL,
    latency_ms REAL NOT NULL, recorded_at REAL NOT NULL);
CREATE INDEX decisions_request ON decisions (request_id);
CREATE INDEX decisions_id ON decisions (decision_id);
"""


async def test_a_version_1_file_is_migrated_and_its_decisions_chained(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(V1_SCHEMA)
        connection.executemany(
            "INSERT INTO decisions VALUES (?, ?, 't', 'openai', 'chat', 'm', 'on_model_call', 'p', ?, 'r', '', '', "
            "1.5, ?)",
            [(f"d{index}", f"old-{index}", "BLOCK" if index == 3 else "ALLOW", 1000.0 + index) for index in range(7)],
        )
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=60)
    await sink.start()
    sink.record(context("new"), [decision(Verdict.LOG)])
    sink.record_request(request("new"))
    await sink.close()
    with sqlite3.connect(path) as connection:
        versions = connection.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert versions == [(2,), (3,), (4,), (5,), (6,)]
        rows = connection.execute("SELECT seq, decision_id, request_id, session_id, verdict FROM decisions").fetchall()
        assert rows[:4] == [(1, "d0", "old-0", "", "ALLOW"), (2, "d1", "old-1", "", "ALLOW"),
                            (3, "d2", "old-2", "", "ALLOW"), (4, "d3", "old-3", "", "BLOCK")]
        assert rows[-1][0] == 8 and rows[-1][2] == "new"
        assert connection.execute("SELECT seq FROM requests").fetchall() == [(9,)]
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "decisions_v1" not in tables
    report = await _verify(path)
    assert report.broken is None and report.walk.counts == {"requests": 1, "decisions": 8}
    again = SQLiteAuditSink(str(path), key=KEY, flush_interval=60)  # opening a current file changes nothing
    await again.start()
    await again.close()
    assert _count(path) == 8


async def test_a_store_newer_than_the_code_is_refused(tmp_path):
    path = tmp_path / "new.db"
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=60)
    await sink.start()
    await sink.close()
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO schema_version VALUES (99, 0)")
    newer = SQLiteAuditSink(str(path), key=KEY, flush_interval=60)
    await newer.start()
    ready, reason = newer.ready()
    assert not ready and "version 99" in reason
    await newer.close()


async def test_a_store_keyed_with_another_secret_is_not_written_to(tmp_path, caplog):
    """Replicas (or a restart) with another server secret would break the chain: the store stays unwritten
    and /readyz says why."""
    path = tmp_path / "a.db"
    sink = SQLiteAuditSink(str(path), key=KEY, flush_interval=60)
    await sink.start()
    sink.record_request(request("first"))
    await sink.close()
    # Its row can never be written, so closing retries for close_timeout: a second is as telling as ten.
    other = SQLiteAuditSink(str(path), key=ChainKey.derive(b"another secret"), flush_interval=60, close_timeout=1)
    with caplog.at_level(logging.ERROR, "capsem_proxy.audit"):
        await other.start()
    other.record_request(request("second"))
    assert not await other.flush()
    ready, reason = other.ready()
    assert not ready and f"keyed with key id {KEY.key_id}" in reason and "same server secret" in reason
    await other.close()
    assert _count(path, "requests") == 1 and (await _verify(path)).broken is None
