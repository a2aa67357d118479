"""The triage filters answer the same on every store (memory, SQLite, PostgreSQL): status ranges, the
policy that acted on a request, free text over reasons (wildcards taken literally), lists of ids, and
the bounded scan that serves filters no index covers."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator

import pytest

from capsem_proxy.audit import AuditQuery, open_audit_sink
from capsem_proxy.audit import query as audit_query
from capsem_proxy.audit.base import AuditSink
from capsem_proxy.audit.sql import SQLiteDialect, Statements
from capsem_proxy.decisions import Verdict
from tests.audit.stores import KEY, context, decision
from tests.audit.stores import request as request_row

NOW = time.time() - 100

# (request id, tenant, status, verdict, decisions as (verdict, policy, reason, details))
DATA = [
    ("q1", "A", 200, "ALLOW", [(Verdict.ALLOW, "pii", "safe", "")]),
    ("q2", "A", 403, "BLOCK", [(Verdict.BLOCK, "secrets", "policy_violation", "AWS key in prompt"),
                               (Verdict.ALLOW, "pii", "safe", "")]),
    ("q3", "B", 200, "BLOCK", [(Verdict.BLOCK, "pii", "policy_violation", "Email 100% in answer_text")]),
    ("q4", "B", 502, "ALLOW", [(Verdict.LOG, "pii", "logged", "phone number seen")]),
    ("q5", "C", 429, "ALLOW", []),
]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def recorded(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[AuditSink]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    sink = open_audit_sink(url, KEY)
    await sink.start()
    for offset, (request_id, tenant, status, verdict, taken) in enumerate(DATA):
        decisions = [decision(v, policy, reason=reason, details=details) for v, policy, reason, details in taken]
        if decisions:
            sink.record(context(request_id, tenant), decisions)
        sink.record_request(request_row(request_id, tenant, started_at=NOW + offset, status=status, verdict=verdict,
                                        session_id=f"s-{tenant}"))
    await sink.flush()
    yield sink
    await sink.close()


async def _ids(sink: AuditSink, **filters) -> list[str]:
    return [row["request_id"] for row in await sink.query_requests(AuditQuery(**filters))]


async def test_status_ranges_select_requests(recorded):
    assert await _ids(recorded, statuses=[(403, 403)]) == ["q2"]
    assert await _ids(recorded, statuses=[(400, 499)]) == ["q5", "q2"]
    assert await _ids(recorded, statuses=[(500, 599), (200, 200)]) == ["q4", "q3", "q1"]
    assert await _ids(recorded, statuses=[]) == []


async def test_policy_selects_the_requests_it_acted_on(recorded):
    # An ALLOW of the policy does not count: every request gets one from every policy.
    assert await _ids(recorded, policy="pii") == ["q4", "q3"]
    assert await _ids(recorded, policy="secrets") == ["q2"]
    assert await _ids(recorded, policy="secrets", tenant_id="B") == []


async def test_free_text_looks_at_reasons_and_details_case_insensitively(recorded):
    assert await _ids(recorded, text="aws KEY") == ["q2"]
    assert await _ids(recorded, text="policy_violation") == ["q3", "q2"]  # the request's own category
    assert await _ids(recorded, text="logged") == ["q4"]
    # LIKE wildcards are literal: '%' and '_' match only themselves.
    assert await _ids(recorded, text="100%") == ["q3"]
    assert await _ids(recorded, text="answer_text") == ["q3"]
    assert await _ids(recorded, text="answerXtext") == []
    assert await _ids(recorded, text="%") == ["q3"]
    decisions = await recorded.query_decisions(AuditQuery(text="PHONE"))
    assert [row["request_id"] for row in decisions] == ["q4"]


async def test_lists_of_ids_and_tenants(recorded):
    assert await _ids(recorded, tenant_ids=["A", "C"]) == ["q5", "q2", "q1"]
    assert await _ids(recorded, request_ids=["q1", "q4", "nope"]) == ["q4", "q1"]
    assert await _ids(recorded, request_ids=[]) == []
    rows = await recorded.query_decisions(AuditQuery(request_ids=["q2"], verdict=["BLOCK"]))
    assert [(row["policy"], row["details"]) for row in rows] == [("secrets", "AWS key in prompt")]
    by_id = await recorded.query_decisions(AuditQuery(decision_ids=[rows[0]["decision_id"]]))
    assert [row["decision_id"] for row in by_id] == [rows[0]["decision_id"]]


async def test_filters_combine_with_paging_both_ways(recorded):
    newest = await _ids(recorded, verdict=["BLOCK", "ALLOW"], statuses=[(200, 599)], limit=2)
    assert newest == ["q5", "q4"]
    seqs = {row["request_id"]: row["seq"] for row in await recorded.query_requests(AuditQuery())}
    assert await _ids(recorded, statuses=[(200, 599)], before_seq=seqs["q4"]) == ["q3", "q2", "q1"]
    assert await _ids(recorded, blocked=True, after_seq=seqs["q2"]) == ["q3"]


async def test_the_scan_behind_unindexed_filters_is_bounded(recorded, monkeypatch):
    """With a scan of 2 rows, the newest 2 requests are examined; what is found there is answered, and
    scan_extent says where the scan stopped so that the caller can go on."""
    if isinstance(recorded, type(open_audit_sink("memory://"))):
        assert await recorded.scan_extent("requests", AuditQuery(verdict=["BLOCK"])) == (0, None)
        return
    monkeypatch.setattr("capsem_proxy.audit.sql.MAX_SCAN", 2)
    seqs = {row["request_id"]: row["seq"] for row in await recorded.query_requests(AuditQuery())}
    assert await _ids(recorded, verdict=["BLOCK"]) == []  # q5 and q4 examined, neither blocked
    count, edge = await recorded.scan_extent("requests", AuditQuery(verdict=["BLOCK"]))
    assert (count, edge) == (2, seqs["q4"])
    assert await _ids(recorded, verdict=["BLOCK"], before_seq=edge) == ["q3", "q2"]
    # Indexed filters alone are not scanned: a plain page is bounded by its limit.
    assert await recorded.scan_extent("requests", AuditQuery(tenant_id="A")) == (0, None)
    # Sessions are built from the newest requests the filters reach, within the same bound.
    sessions = await recorded.query_sessions(AuditQuery())
    assert [session["session_id"] for session in sessions] == ["s-C", "s-B"]
    assert sessions[1]["requests"] == 1  # q4 only: q3 was not scanned


def _plan(sql: str, params: list) -> str:
    connection = sqlite3.connect(":memory:")
    from capsem_proxy.audit.sqlite_schema import migrate

    connection.isolation_level = None
    migrate(connection)
    return " | ".join(str(row[-1]) for row in connection.execute("EXPLAIN QUERY PLAN " + sql, params))


@pytest.mark.parametrize("filters", [
    {"tenant_id": "A", "verdict": ["BLOCK"]},
    {"session_id": "s", "text": "key"},
    {"since": 1.0, "until": 2.0, "statuses": [(400, 499)], "policy": "pii"},
    {"provider": "openai", "model": "gpt", "before_seq": 10},
    {"request_ids": ["a", "b"]},
])
def test_sqlite_plans_read_requests_through_an_index(filters):
    """No filter combination makes SQLite read the requests table in full: its scan goes through the
    primary key (seq) or an index, and decisions are reached through their request index."""
    sql, params = Statements(SQLiteDialect).rows("requests", AuditQuery(**filters))
    plan = _plan(sql, params)
    for step in plan.split(" | "):
        if (step.startswith("SCAN ") and "requests" in step) or step.startswith("SCAN d"):
            assert "INDEX" in step or "PRIMARY KEY" in step or "USING" in step, plan
    if "policy" in filters or "text" in filters:
        assert "decisions_request" in plan, plan
    assert audit_query.MAX_SCAN == 20_000


async def test_a_time_window_also_bounds_the_seq_range_walked(recorded):
    """Admin queries (seq_bounded_time) find the same rows in a window as exact ones, and SQLite
    walks only the seq range the time index gives for it."""
    for since, until in ((NOW + 1, NOW + 3), (NOW - 10, NOW + 2), (NOW + 4, None), (None, NOW + 1)):
        exact = await _ids(recorded, since=since, until=until)
        assert await _ids(recorded, since=since, until=until, seq_bounded_time=True) == exact
        assert await _ids(recorded, since=since, until=until, verdict=["BLOCK", "ALLOW"], seq_bounded_time=True) == (
            await _ids(recorded, since=since, until=until, verdict=["BLOCK", "ALLOW"]))
    sql, params = Statements(SQLiteDialect).rows(
        "requests", AuditQuery(since=1.0, until=2.0, verdict=["BLOCK"], seq_bounded_time=True))
    plan = _plan(sql, params)
    assert "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" in plan and "requests_started" in plan, plan


@pytest.mark.parametrize("filters", [{"text": "key"}, {"policy": "pii"}, {"policy": "pii", "text": "key"}])
async def test_postgres_looks_at_the_decisions_of_each_scanned_request_only(postgres_url, filters):
    """PostgreSQL would answer a request's `policy` or `text` filter with a hash join over every
    decision in the store; the subquery runs per scanned request instead, through the request index."""
    import asyncpg

    from capsem_proxy.audit.postgres import split_url
    from capsem_proxy.audit.sql import PostgresDialect

    sink = open_audit_sink(postgres_url, KEY)
    await sink.start()
    await sink.close()
    dsn, schema, _ = split_url(postgres_url)
    connection = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        sql, params = Statements(PostgresDialect).rows("requests", AuditQuery(**filters))
        await connection.execute("SET enable_seqscan = off")  # the plan an index allows, whatever the table size
        plan = "\n".join(row[0] for row in await connection.fetch("EXPLAIN " + sql, *params))
    finally:
        await connection.close()
    assert "hashed SubPlan" not in plan and "Semi Join" not in plan and "Hash Join" not in plan, plan
    assert "decisions_request" in plan, plan
