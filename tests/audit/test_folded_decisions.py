"""ALLOW decisions folded into their request's row (audit/folding.py): what is folded and what keeps a
row, how every store reads folded decisions back as decision rows (filters, paging, timeline), and that
the chain covers them, on the memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from capsem_proxy.audit import AuditQuery, open_audit_sink
from capsem_proxy.audit.folding import FOLD_MAX
from capsem_proxy.audit.tools import open_reader, verify_chain
from capsem_proxy.config import Settings
from capsem_proxy.decisions import Decision, Verdict, sequential_decision_id
from capsem_proxy.observability import Observer
from tests.audit import stores
from tests.audit.stores import KEY, context, store_under_test


def _allow(policy: str, hook: str = "on_model_call", **fields: Any) -> Decision:
    return Decision(Verdict.ALLOW, policy, hook, latency_ms=0.5, decision_id=sequential_decision_id(), **fields)


def _observer(sink: Any) -> Observer:
    return Observer(Settings(metrics={"enabled": False}, audit={"url": "memory://"}), sink)


def _run_request(observer: Observer, request_id: str, *, session_id: str = "s-1", tenant_id: str = "tenant-1",
                 calls: list[list[Decision]] | None = None) -> None:
    """One request as the proxy records it: decisions at each interception point, then its row."""
    record = stores.request(request_id, tenant_id, session_id=session_id, status=200)
    ctx = context(request_id, tenant_id, session_id=session_id)
    ctx.record = record
    for decisions in calls if calls is not None else [[_allow("Debug")]]:
        observer.decisions(ctx, decisions)
    observer.finish(record, None, ctx)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def sink(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Any]:
    url = "memory://" if request.param == "memory" else store_under_test(request.param, tmp_path, request)[0]
    opened = open_audit_sink(url, KEY, head_file=tmp_path / "head.json")
    await opened.start()
    opened.url = url
    yield opened
    await opened.close()


async def _flushed(sink: Any) -> Any:
    if hasattr(sink, "flush"):
        await sink.flush()
    return sink


def _table_rows(url: str, table: str) -> int | None:
    """Rows of `table` in a SQLite store (None for the others: their rows are counted through queries)."""
    if not url.startswith("sqlite:///"):
        return None
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return int(connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_content_free_allows_fold_into_the_request_row_and_read_back_as_decisions(sink):
    observer = _observer(sink)
    calls = [
        [_allow("Debug"), _allow("secrets"), _allow("Debug"),  # Debug twice: one entry, count 2
         Decision(Verdict.LOG, "audit-all", "on_model_call", reason="logged", decision_id=sequential_decision_id()),
         _allow("tools", "on_tool_call", subject="search"),  # a subject: its own row
         _allow("trial", shadow=True)],  # shadow: its own row
        [_allow("secrets", "on_model_response")],
    ]
    _run_request(observer, "r1", calls=calls)
    await _flushed(sink)
    assert _table_rows(sink.url, "decisions") in (3, None)
    [request_row] = await sink.query_requests(AuditQuery(request_id="r1"))
    assert "allowed" not in request_row
    rows = await sink.query_decisions(AuditQuery(request_id="r1"))
    by_key = {(row["policy"], row["hook"]): row for row in rows}
    assert set(by_key) == {("Debug", "on_model_call"), ("secrets", "on_model_call"), ("audit-all", "on_model_call"),
                           ("tools", "on_tool_call"), ("trial", "on_model_call"), ("secrets", "on_model_response")}
    folded = [by_key[key] for key in (("Debug", "on_model_call"), ("secrets", "on_model_call"),
                                      ("secrets", "on_model_response"))]
    for row in folded:
        assert row["seq"] == request_row["seq"] and row["hash"] == request_row["hash"]
        assert (row["verdict"], row["details"], row["subject"], row["shadow"]) == ("ALLOW", "", "", False)
        assert (row["tenant_id"], row["session_id"], row["request_id"]) == ("tenant-1", "s-1", "r1")
        assert row["model"] == "m" and row["reason"] == "safe" and row["recorded_at"] > 0
    assert by_key[("Debug", "on_model_call")]["count"] == 2
    assert by_key[("Debug", "on_model_call")]["latency_ms"] == pytest.approx(1.0)
    assert by_key[("tools", "on_tool_call")]["seq"] < request_row["seq"]
    assert by_key[("trial", "on_model_call")]["shadow"] is True
    if not sink.url.startswith("memory"):
        reader = open_reader(sink.url)
        await reader.open()
        try:
            report = await verify_chain(reader, KEY)
        finally:
            await reader.close()
        assert report.broken is None and report.walk.counts == {"requests": 1, "decisions": 3}


async def test_a_decision_taken_after_the_request_row_keeps_a_row_of_its_own(sink):
    observer = _observer(sink)
    record = stores.request("r1", session_id="s-1", status=200)
    ctx = context("r1", session_id="s-1")
    ctx.record = record
    observer.decisions(ctx, [_allow("Debug")])
    observer.finish(record, None, ctx)
    observer.decisions(ctx, [_allow("late")])
    await _flushed(sink)
    rows = {row["policy"]: row for row in await sink.query_decisions(AuditQuery(request_id="r1"))}
    [request_row] = await sink.query_requests(AuditQuery(request_id="r1"))
    assert rows["Debug"]["seq"] == request_row["seq"]
    assert rows["late"]["seq"] > request_row["seq"]


async def test_past_fold_max_entries_decisions_keep_rows(sink):
    observer = _observer(sink)
    policies = [f"p{index:02d}" for index in range(FOLD_MAX + 3)]
    _run_request(observer, "r1", calls=[[_allow(policy) for policy in policies]])
    await _flushed(sink)
    rows = await sink.query_decisions(AuditQuery(request_id="r1"))
    [request_row] = await sink.query_requests(AuditQuery(request_id="r1"))
    assert sorted(row["policy"] for row in rows) == policies
    assert sum(row["seq"] == request_row["seq"] for row in rows) == FOLD_MAX
    assert _table_rows(sink.url, "decisions") in (3, None)


async def test_pages_never_end_inside_a_request_s_folded_decisions(sink):
    """Three folded decisions per request, pages of 2: walking back with before_seq, and forward with
    after_seq, sees every decision once, in the order of one unpaged query."""
    observer = _observer(sink)
    for index in range(5):
        _run_request(observer, f"r{index}", calls=[[_allow("a"), _allow("b")], [_allow("c", "on_model_response")]])
        if index == 2:
            observer.decisions(context("x", session_id="s-1"), [
                Decision(Verdict.BLOCK, "blocker", "on_model_call", decision_id=sequential_decision_id())])
    await _flushed(sink)
    everything = await sink.query_decisions(AuditQuery(limit=1000))
    assert len(everything) == 16
    assert [row["seq"] for row in everything] == sorted((row["seq"] for row in everything), reverse=True)
    seen, cursor = [], None
    while True:
        page = await sink.query_decisions(AuditQuery(limit=2, before_seq=cursor))
        if not page:
            break
        assert 1 <= len(page) <= 2 + 2  # the limit, and the rest of a group it reached into
        seen += page
        cursor = page[-1]["seq"]
    assert [row["decision_id"] for row in seen] == [row["decision_id"] for row in everything]
    forward, after = [], 0
    while page := await sink.query_decisions(AuditQuery(limit=2, after_seq=after)):
        forward += page
        after = page[-1]["seq"]
    assert sorted(row["decision_id"] for row in forward) == sorted(row["decision_id"] for row in everything)
    assert len(forward) == len(everything)


async def test_filters_timeline_and_summary_see_folded_decisions(sink):
    observer = _observer(sink)
    before = time.time() - 1
    _run_request(observer, "r1", session_id="s-a", tenant_id="t-a")
    _run_request(observer, "r2", session_id="s-b", tenant_id="t-b", calls=[[
        _allow("Debug"), Decision(Verdict.BLOCK, "secrets", "on_model_call", reason="secret_found",
                                  decision_id=sequential_decision_id())]])
    await _flushed(sink)

    async def policies(**filters: Any) -> list[tuple[str, str]]:
        return sorted((row["request_id"], row["policy"]) for row in await sink.query_decisions(AuditQuery(**filters)))

    assert await policies() == [("r1", "Debug"), ("r2", "Debug"), ("r2", "secrets")]
    assert await policies(tenant_id="t-a") == [("r1", "Debug")]
    assert await policies(session_id="s-b", verdict=["ALLOW"]) == [("r2", "Debug")]
    assert await policies(verdict=["BLOCK"]) == [("r2", "secrets")]
    assert await policies(blocked=False) == [("r1", "Debug"), ("r2", "Debug")]
    assert await policies(policy="Debug", tenant_ids=["t-b"]) == [("r2", "Debug")]
    assert await policies(since=before, until=time.time() + 1, seq_bounded_time=True) == await policies()
    assert await policies(since=time.time() + 10, seq_bounded_time=True) == []
    assert await policies(text="SAFE") == [("r1", "Debug"), ("r2", "Debug")]
    # A request's text filter looks at its decisions, the folded ones included.
    assert [row["request_id"] for row in await sink.query_requests(AuditQuery(text="safe", tenant_id="t-a"))] == ["r1"]
    timeline = await sink.session_timeline("s-a")
    assert [(item["type"], item.get("policy")) for item in timeline] == [("request", None), ("decision", "Debug")]
    summary = await sink.summary(before)
    assert summary["top_policies"] == [{"policy": "secrets", "verdict": "BLOCK", "count": 1}]


async def test_changing_a_folded_decision_breaks_the_chain(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    sink = open_audit_sink(url, KEY, head_file=tmp_path / "head.json")
    await sink.start()
    _run_request(_observer(sink), "r1", calls=[[_allow("Debug"), _allow("secrets")]])
    await sink.close()
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        connection.execute("UPDATE requests SET allowed = replace(allowed, '\"secrets\"', '\"nothing\"')")
    reader = open_reader(url)
    await reader.open()
    try:
        report = await verify_chain(reader, KEY)
    finally:
        await reader.close()
    assert report.broken is not None and report.broken.table == "requests"


@pytest.mark.parametrize("filters", [
    {"tenant_id": "A"},
    {"session_id": "s", "text": "key"},
    {"request_ids": ["a", "b"], "decision_ids": ["d"]},
    {"since": 1.0, "until": 2.0, "seq_bounded_time": True},
    {"before_seq": 10},
])
def test_sqlite_reads_both_kinds_of_decision_through_an_index(filters):
    """The decisions table and the request rows holding folded decisions are each read through an
    index or the seq order, never in full; neither side is sorted before its limit applies."""
    from capsem_proxy.audit.sql import SQLiteDialect, Statements
    from capsem_proxy.audit.sqlite_schema import migrate

    sql, params = Statements(SQLiteDialect).rows("decisions", AuditQuery(**filters))
    connection = sqlite3.connect(":memory:")
    connection.isolation_level = None
    migrate(connection)
    steps = [str(row[-1]) for row in connection.execute("EXPLAIN QUERY PLAN " + sql, params)]
    reads = [step for step in steps if step.startswith(("SCAN decisions", "SEARCH decisions", "SCAN fr", "SEARCH fr"))]
    assert len(reads) >= 2, steps  # the decisions table and the request rows
    for step in reads:
        assert "INDEX" in step or "PRIMARY KEY" in step, steps


def test_no_folded_decision_is_read_when_the_filter_excludes_allow():
    from capsem_proxy.audit.sql import SQLiteDialect, Statements

    for filters in ({"verdict": ["BLOCK"]}, {"blocked": True}):
        sql, _ = Statements(SQLiteDialect).rows("decisions", AuditQuery(**filters))
        assert "json_each" not in sql
    sql, _ = Statements(SQLiteDialect).rows("decisions", AuditQuery(verdict=["ALLOW", "BLOCK"]))
    assert "json_each" in sql
