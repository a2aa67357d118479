"""The query API answers the same on every store (memory, SQLite, PostgreSQL): filters, paging,
sessions, timelines and summaries over one recorded data set."""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator

import pytest

from capsem_proxy.audit import AuditQuery, open_audit_sink
from capsem_proxy.audit.base import AuditSink
from capsem_proxy.decisions import Verdict
from tests.audit.stores import KEY, context, decision, request

# Requests started in the past, on 60-second bucket boundaries, so that their decisions (recorded now)
# come after them in time and the latency buckets are known.
BASE = math.floor((time.time() - 1000) / 60) * 60

# (request id, tenant, session, agent, provider, model, status, verdict, latency, offset, stream, decisions)
DATA = [
    ("r1", "A", "s1", "a1", "openai", "gpt", 200, "ALLOW", 10.0, 0, False, [(Verdict.ALLOW, "p1")]),
    ("r2", "A", "s1", "a2", "openai", "gpt", 403, "BLOCK", 20.0, 10, False,
     [(Verdict.BLOCK, "p1"), (Verdict.ALLOW, "p2")]),
    ("r3", "A", "s2", "a1", "anthropic", "claude", 200, "CONFIRM", 30.0, 70, False, [(Verdict.CONFIRM, "p2")]),
    ("r4", "B", "s3", "", "gemini", "gem", 403, "CONFIRM", 40.0, 80, False,
     [(Verdict.CONFIRM, "p2"), (Verdict.LOG, "p3")]),
    ("r5", "B", "", "", "openai", "gpt", 200, "BLOCK", 50.0, 130, True, [(Verdict.BLOCK, "p3")]),
]
TOKENS = {"r1": (5, 7), "r4": (1, 2)}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def sink(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[AuditSink]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = open_audit_sink(url, KEY)
    await opened.start()
    yield opened
    await opened.close()


@pytest.fixture
async def recorded(sink: AuditSink) -> AuditSink:
    for request_id, tenant, session, agent, provider, model, status, verdict, latency, offset, stream, taken in DATA:
        decisions = [decision(v, policy) for v, policy in taken]
        sink.record(context(request_id, tenant, session_id=session, agent_id=agent, provider=provider, model=model),
                    decisions)
        input_tokens, output_tokens = TOKENS.get(request_id, (None, None))
        sink.record_request(request(
            request_id, tenant, started_at=BASE + offset, session_id=session, agent_id=agent, provider=provider,
            model=model, status=status, verdict=verdict, latency_ms=latency, stream=stream,
            input_tokens=input_tokens, output_tokens=output_tokens, prompt="hello" if request_id == "r1" else None,
            upstream_ms=1.25 if request_id == "r1" else None,
        ))
    await sink.flush()
    return sink


async def _ids(sink: AuditSink, **filters) -> list[str]:
    return [row["request_id"] for row in await sink.query_requests(AuditQuery(**filters))]


async def test_requests_come_newest_first_with_every_field(recorded):
    rows = await recorded.query_requests(AuditQuery())
    assert [row["request_id"] for row in rows] == ["r5", "r4", "r3", "r2", "r1"]
    assert [row["seq"] for row in rows] == sorted((row["seq"] for row in rows), reverse=True)
    first = rows[-1]
    assert first["prompt"] == "hello" and first["upstream_ms"] == 1.25
    assert (first["input_tokens"], first["output_tokens"], first["stream"]) == (5, 7, False)
    assert rows[0]["stream"] is True and "prompt" not in rows[0] and "answer" not in rows[0]
    assert all(len(row["hash"]) == 64 and len(row["prev_hash"]) == 64 for row in rows)


@pytest.mark.parametrize(("filters", "expected"), [
    ({"tenant_id": "A"}, ["r3", "r2", "r1"]),
    ({"session_id": "s1"}, ["r2", "r1"]),
    ({"agent_id": "a1"}, ["r3", "r1"]),
    ({"request_id": "r4"}, ["r4"]),
    ({"provider": "gemini"}, ["r4"]),
    ({"model": "claude"}, ["r3"]),
    ({"verdict": ["CONFIRM"]}, ["r4", "r3"]),
    ({"verdict": []}, []),
    # BLOCK always counts (a stream cut after its 200); a confirmation only when it held the request (403).
    ({"blocked": True}, ["r5", "r4", "r2"]),
    ({"blocked": False}, ["r3", "r1"]),
    ({"since": BASE + 10, "until": BASE + 80}, ["r3", "r2"]),
    ({"tenant_id": "A", "blocked": True}, ["r2"]),
    ({"limit": 2}, ["r5", "r4"]),
])
async def test_request_filters(recorded, filters, expected):
    assert await _ids(recorded, **filters) == expected


async def test_paging_backwards_and_tailing_forwards(recorded):
    rows = await recorded.query_requests(AuditQuery())
    seq = {row["request_id"]: row["seq"] for row in rows}
    assert await _ids(recorded, before_seq=seq["r4"], limit=2) == ["r3", "r2"]
    assert await _ids(recorded, after_seq=seq["r2"]) == ["r3", "r4", "r5"]
    assert await _ids(recorded, after_seq=seq["r5"]) == []
    assert AuditQuery(limit=50_000).capped_limit == 1000


async def test_decision_rows_carry_the_request_ids(recorded):
    rows = await recorded.query_decisions(AuditQuery(request_id="r4"))
    assert [(row["policy"], row["verdict"]) for row in rows] == [("p3", "LOG"), ("p2", "CONFIRM")]
    assert {(row["tenant_id"], row["session_id"], row["provider"], row["model"]) for row in rows} == {
        ("B", "s3", "gemini", "gem")
    }
    by_policy = await recorded.query_decisions(AuditQuery(policy="p2"))
    assert [(row["request_id"], row["verdict"]) for row in by_policy] == [
        ("r4", "CONFIRM"), ("r3", "CONFIRM"), ("r2", "ALLOW")
    ]
    blocking = await recorded.query_decisions(AuditQuery(blocked=True))
    assert [(row["request_id"], row["verdict"]) for row in blocking] == [
        ("r5", "BLOCK"), ("r4", "CONFIRM"), ("r3", "CONFIRM"), ("r2", "BLOCK")
    ]
    assert await recorded.query_decisions(AuditQuery(agent_id="a2")) == await recorded.query_decisions(
        AuditQuery(request_id="r2")
    )


async def test_sessions_sum_up_their_requests(recorded):
    sessions = await recorded.query_sessions(AuditQuery())
    assert [session["session_id"] for session in sessions] == ["s3", "s2", "s1"]
    s1 = sessions[2]
    assert s1 == {
        "session_id": "s1", "tenant_id": "A", "agent_ids": ["a1", "a2"], "first_at": BASE, "last_at": BASE + 10,
        "requests": 2, "blocked": 1, "input_tokens": 5, "output_tokens": 7,
    }
    assert sessions[0]["agent_ids"] == [] and sessions[0]["blocked"] == 1
    assert [s["session_id"] for s in await recorded.query_sessions(AuditQuery(tenant_id="B"))] == ["s3"]
    assert [s["session_id"] for s in await recorded.query_sessions(AuditQuery(limit=1))] == ["s3"]


async def test_session_timeline_interleaves_requests_and_decisions_in_time_order(recorded):
    timeline = await recorded.session_timeline("s1")
    assert [(item["type"], item["request_id"]) for item in timeline] == [
        ("request", "r1"), ("request", "r2"), ("decision", "r1"), ("decision", "r2"), ("decision", "r2"),
    ]
    assert [item["policy"] for item in timeline[2:]] == ["p1", "p1", "p2"]
    assert [item["type"] for item in await recorded.session_timeline("s1", limit=2)] == ["decision", "decision"]
    assert await recorded.session_timeline("no-such-session") == []


async def test_summary_counts_verdicts_policies_tenants_and_latency(recorded):
    summary = await recorded.summary(BASE - 1, bucket_seconds=60)
    assert summary["requests"] == 5 and summary["blocked"] == 3
    assert summary["by_verdict"] == {"ALLOW": 1, "BLOCK": 2, "CONFIRM": 2}
    assert summary["top_policies"] == [
        {"policy": "p2", "verdict": "CONFIRM", "count": 2},
        {"policy": "p1", "verdict": "BLOCK", "count": 1},
        {"policy": "p3", "verdict": "BLOCK", "count": 1},
        {"policy": "p3", "verdict": "LOG", "count": 1},
    ]
    assert summary["top_tenants"] == [
        {"tenant_id": "A", "requests": 3, "blocked": 1},
        {"tenant_id": "B", "requests": 2, "blocked": 2},
    ]
    assert summary["latency"] == [
        {"t": BASE, "count": 2, "p50": 10.0, "p95": 20.0, "p99": 20.0},
        {"t": BASE + 60, "count": 2, "p50": 30.0, "p95": 40.0, "p99": 40.0},
        {"t": BASE + 120, "count": 1, "p50": 50.0, "p95": 50.0, "p99": 50.0},
    ]
    later = await recorded.summary(BASE + 60)
    assert later["requests"] == 3 and [point["count"] for point in later["latency"]] == [2, 1]


async def test_latency_percentiles_are_nearest_rank(sink):
    latencies = [float(value) for value in range(1, 101)]
    random.Random(7).shuffle(latencies)
    for index, latency in enumerate(latencies):
        sink.record_request(request(f"q{index}", started_at=BASE + 1, latency_ms=latency))
    await sink.flush()
    [point] = (await sink.summary(BASE, bucket_seconds=60))["latency"]
    assert point == {"t": BASE, "count": 100, "p50": 50.0, "p95": 95.0, "p99": 99.0}
