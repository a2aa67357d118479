"""Decisions reach the SQLite audit store, through the real proxy; no key is ever stored."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import httpx
import orjson

from capsem_proxy.audit import MemoryAuditSink, SQLiteAuditSink
from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext

KEY = "sk-AUDITLEAKCHECK-7f3a9c"


def _rows(database, request_id=None, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if database.exists():
            with sqlite3.connect(database) as connection:
                connection.row_factory = sqlite3.Row
                query, args = "SELECT * FROM decisions", ()
                if request_id:
                    query, args = query + " WHERE request_id = ?", (request_id,)
                rows = [dict(row) for row in connection.execute(query, args)]
            if rows:
                return rows
        time.sleep(0.05)
    return []


def test_blocked_request_decision_is_stored_with_its_id(proxy):
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions",
        content=b'{"model":"gpt-x","messages":[{"role":"user","content":"please capsem_block"}]}',
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 403
    rows = _rows(proxy.workdir / "capsem-data" / "audit.db", response.headers["x-capsem-request-id"])
    blocked = [row for row in rows if row["verdict"] == "BLOCK"]
    assert len(blocked) == 1
    row = blocked[0]
    assert row["decision_id"] == response.headers["x-capsem-decision-id"]
    assert (row["hook"], row["policy"], row["model"], row["provider"]) == ("on_model_call", "Debug", "gpt-x", "openai")
    assert row["details"] == "Detected 'capsem_block' in prompt"
    assert len(row["tenant_id"]) == 32


def test_streamed_answer_decisions_are_stored_and_no_key_anywhere(proxy):
    response = httpx.post(
        f"{proxy.base_url}/v1/messages",
        content=b'{"model":"claude-x","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"hi"}]}',
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 200
    rows = _rows(proxy.workdir / "capsem-data" / "audit.db", response.headers["x-capsem-request-id"])
    assert {row["hook"] for row in rows} == {"on_model_call"}  # the default DebugPolicy reads prompts
    database_bytes = (proxy.workdir / "capsem-data" / "audit.db").read_bytes()
    assert KEY.encode() not in database_bytes
    assert all(KEY not in orjson.dumps(row).decode() for row in _rows(proxy.workdir / "capsem-data" / "audit.db"))


def _context():
    return RequestContext("req-1", "tenant-1", "openai", "chat", Exchange("openai", "chat", model="m"))


async def test_sqlite_sink_flushes_on_close(tmp_path):
    sink = SQLiteAuditSink(str(tmp_path / "a.db"), flush_interval=60)
    await sink.start()
    sink.record(_context(), [Decision(Verdict.LOG, "p", "on_model_call", details="noted")])
    await sink.close()
    rows = _rows(tmp_path / "a.db", timeout=0.1)
    assert [(row["verdict"], row["details"], row["request_id"]) for row in rows] == [("LOG", "noted", "req-1")]


async def test_sqlite_sink_counts_what_it_cannot_queue(tmp_path):
    sink = SQLiteAuditSink(str(tmp_path / "a.db"), flush_interval=60, max_queued=2)
    for _ in range(3):
        sink.record(_context(), [Decision(Verdict.ALLOW, "p", "on_model_call")])
    assert sink.dropped == 1
    await sink.close()


def test_memory_sink_keeps_records():
    sink = MemoryAuditSink(limit=2)
    sink.record(_context(), [Decision(Verdict.BLOCK, "p", "on_tool_call", subject="rm")] * 3)
    assert len(sink.records) == 2 and sink.records[0].subject == "rm"


async def test_readiness_follows_the_store(tmp_path):
    sink = SQLiteAuditSink(str(tmp_path / "a.db"), flush_interval=60)
    assert sink.ready() == (False, "audit store not open")
    await sink.start()
    assert sink.ready() == (True, "")
    (tmp_path / "a.db").unlink()
    sink._connection.execute("PRAGMA query_only = ON")  # writes now fail, as on a read-only disk
    sink.record(_context(), [Decision(Verdict.LOG, "p", "on_model_call")])
    await sink.flush()
    assert sink.ready() == (False, "audit store writes are failing")
    await sink.close()


async def test_large_queues_are_written_in_bounded_batches(tmp_path):
    sink = SQLiteAuditSink(str(tmp_path / "a.db"), flush_interval=60)
    await sink.start()
    for _ in range(5000):
        sink.record(_context(), [Decision(Verdict.ALLOW, "p", "on_model_call")])
    await sink.flush()
    with sqlite3.connect(tmp_path / "a.db") as connection:
        assert connection.execute("SELECT count(*) FROM decisions").fetchone()[0] == 5000
    await sink.close()


async def test_closing_during_a_periodic_flush_loses_nothing(tmp_path):
    for _ in range(5):
        path = tmp_path / f"{_}.db"
        sink = SQLiteAuditSink(str(path), flush_interval=0.001)
        await sink.start()
        for _row in range(30000):
            sink.record(_context(), [Decision(Verdict.ALLOW, "p", "on_model_call")])
        await asyncio.sleep(0.002)  # let the periodic flush start writing
        await sink.close()
        with sqlite3.connect(path) as connection:
            assert connection.execute("SELECT count(*) FROM decisions").fetchone()[0] == 30000
