"""Retention and erasure keep the chain verifiable, on SQLite and PostgreSQL: a prune leaves a signed
checkpoint where the chain now begins, an erasure blanks content in place with signed attestations, and
each is recorded as a chained row. Tampering around them (a forged checkpoint, rows removed past it, an
attestation dropped, content put back) is still caught."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from capsem_proxy.audit import AuditQuery, open_audit_sink
from capsem_proxy.audit.lifecycle import erase, open_store, prune
from capsem_proxy.audit.tools import VerifyReport, open_reader, verify_chain
from capsem_proxy.config import AuditSettings
from capsem_proxy.decisions import Verdict
from tests.audit import stores
from tests.audit.stores import KEY, context, decision, store_under_test

OLD, NEW = 1_000_000.0, time.time()


@dataclass
class Store:
    url: str
    execute: Any

    async def verify(self) -> VerifyReport:
        reader = open_reader(self.url)
        await reader.open()
        try:
            return await verify_chain(reader, KEY)
        finally:
            await reader.close()

    async def rows(self, table: str, **filters: Any) -> list[dict[str, Any]]:
        reader = open_reader(self.url)
        await reader.open()
        try:
            return await getattr(reader, f"query_{table}")(AuditQuery(limit=1000, after_seq=0, **filters))
        finally:
            await reader.close()

    async def run(self, operation, *args, **kwargs):
        store = open_store(self.url, KEY)
        await store.open()
        try:
            return await operation(store, KEY, *args, **kwargs)
        finally:
            await store.close()


async def _fill(url: str) -> None:
    """Requests with content: 3 old ones of tenant-a, then 2 new of tenant-a and 2 new of tenant-b
    (each with one decision, whose details carry content too)."""
    sink = open_audit_sink(AuditSettings(url=url, store_content=True), KEY)
    await sink.start()
    plan = [("old", "tenant-a", OLD)] * 3 + [("new", "tenant-a", NEW)] * 2 + [("new", "tenant-b", NEW)] * 2
    for index, (age, tenant, started) in enumerate(plan):
        request_id = f"{age}-{index}"
        sink.record(context(request_id, tenant, session_id=f"s-{tenant}"),
                    [decision(Verdict.LOG, "p", details=f"secret detail {index}")])
        sink.record_request(stores.request(request_id, tenant, started_at=started, session_id=f"s-{tenant}",
                                           prompt=f"prompt {index}", answer=f"answer {index}"))
        await sink.flush()
    await sink.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    url, execute = store_under_test(request.param, tmp_path, request)
    await _fill(url)
    yield Store(url, execute)


def _set_old_decisions(store: Store) -> None:
    store.execute(f"UPDATE decisions SET recorded_at = {OLD} WHERE request_id LIKE 'old-%'")


async def test_prune_removes_the_old_prefix_and_the_chain_still_verifies(store):
    # Decisions are recorded now: make the old requests' decisions old too (a direct UPDATE breaks their
    # hashes, but they are the rows the prune removes).
    _set_old_decisions(store)
    result = await store.run(prune, NEW - 3600)
    assert (result.requests, result.decisions) == (3, 3)
    assert result.upto_seq == 6
    report = await store.verify()
    assert report.broken is None, report.describe()
    assert report.start is not None and report.start.seq == 6
    assert "removed by retention" in report.describe()
    assert {row["request_id"] for row in await store.rows("requests")} == {f"new-{i}" for i in range(3, 7)}
    retention = [row for row in await store.rows("decisions") if row["hook"] == "retention"]
    assert len(retention) == 1 and retention[0]["seq"] == result.record_seq
    assert orjson.loads(retention[0]["details"])["upto_seq"] == 6
    again = await store.run(prune, NEW - 3600)
    assert again.upto_seq == 0 and again.record_seq == 0  # nothing more is old enough


async def test_rows_removed_past_the_checkpoint_or_a_moved_checkpoint_are_caught(store):
    _set_old_decisions(store)
    await store.run(prune, NEW - 3600)
    store.execute("DELETE FROM requests WHERE seq = 8")
    broken = (await store.verify()).broken
    assert broken is not None and "missing" in broken.problem
    store.execute("UPDATE chain_start SET seq = 8")
    broken = (await store.verify()).broken
    assert broken is not None and "start checkpoint" in broken.problem


async def test_a_deleted_checkpoint_shows_the_pruned_rows_as_missing(store):
    _set_old_decisions(store)
    await store.run(prune, NEW - 3600)
    store.execute("DELETE FROM chain_start")
    broken = (await store.verify()).broken
    assert broken is not None and "rows 1..6" in broken.problem


async def test_erasing_a_tenant_blanks_its_content_only_and_records_it(store):
    result = await store.run(erase, tenant_id="tenant-a")
    assert (result.requests, result.decisions) == (5, 5)
    report = await store.verify()
    assert report.broken is None, report.describe()
    for row in await store.rows("requests", tenant_id="tenant-a"):
        assert "prompt" not in row and "answer" not in row
    for row in await store.rows("decisions", tenant_id="tenant-a"):
        if row["hook"] != "erasure":
            assert row["details"] == "" and row["subject"] == ""
    kept = await store.rows("requests", tenant_id="tenant-b")
    assert [row["prompt"] for row in kept] == ["prompt 5", "prompt 6"]
    erasures = [row for row in await store.rows("decisions") if row["hook"] == "erasure"]
    assert len(erasures) == 1 and erasures[0]["tenant_id"] == "tenant-a"
    assert orjson.loads(erasures[0]["details"]) == {"tenant_id": "tenant-a", "requests": 5, "decisions": 5,
                                                    "upto_seq": 14, "complete": True}
    # Erasing again finds nothing left (the first erasure's own row is its record: kept), and is recorded too.
    again = await store.run(erase, tenant_id="tenant-a")
    assert (again.requests, again.decisions) == (0, 0)
    first = [row for row in await store.rows("decisions") if row["seq"] == result.record_seq]
    assert orjson.loads(first[0]["details"])["requests"] == 5
    assert (await store.verify()).broken is None


async def test_erasing_a_session_and_then_pruning_keep_the_chain(store):
    await store.run(erase, session_id="s-tenant-b")
    _set_old_decisions(store)
    await store.run(prune, NEW - 3600)
    report = await store.verify()
    assert report.broken is None, report.describe()


async def test_content_put_back_or_an_attestation_dropped_is_caught(store):
    await store.run(erase, tenant_id="tenant-b")
    store.execute("UPDATE requests SET prompt = 'restored' WHERE request_id = 'new-5'")
    broken = (await store.verify()).broken
    assert broken is not None and broken.problem.startswith("the row's content does not match")
    store.execute("UPDATE requests SET prompt = NULL WHERE request_id = 'new-5'")
    assert (await store.verify()).broken is None
    store.execute("DELETE FROM erased_rows WHERE seq = (SELECT MIN(seq) FROM erased_rows)")
    broken = (await store.verify()).broken
    assert broken is not None and "does not match its hash" in broken.problem


async def test_erase_needs_exactly_one_non_empty_scope(store):
    for kwargs in ({}, {"tenant_id": "a", "session_id": "b"}, {"tenant_id": ""}):
        with pytest.raises(ValueError):
            await store.run(erase, **kwargs)


async def test_the_proxy_prunes_past_audit_retention_days_in_the_background(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    await _fill(url)
    store = Store(url, lambda sql: sqlite3.connect(tmp_path / "audit.db").executescript(sql))
    _set_old_decisions(store)
    settings = AuditSettings(url=url, retention_days=1, retention_check_interval_s=1)
    sink = open_audit_sink(settings, KEY)
    await sink.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            report = await store.verify()
            if report.start is not None:
                break
            await asyncio.sleep(0.1)
        assert report.start is not None and report.start.seq == 6
        assert report.broken is None, report.describe()
    finally:
        await sink.close()


async def test_a_large_prune_goes_in_bounded_steps_each_recorded(store):
    _set_old_decisions(store)
    result = await store.run(prune, NEW - 3600, max_rows=4)
    assert (result.upto_seq, result.requests, result.decisions) == (6, 3, 3)
    steps = [row for row in await store.rows("decisions") if row["hook"] == "retention"]
    assert len(steps) == 2  # seq 1-4, then 5-6 (the first step's own row is new, so it stays)
    report = await store.verify()
    assert report.broken is None, report.describe()


async def test_a_large_erasure_goes_in_bounded_steps_each_recorded(store):
    result = await store.run(erase, tenant_id="tenant-a", max_rows=3)
    assert (result.requests, result.decisions, result.steps) == (5, 5, 4)  # 3 + 3 + 3 + 1 rows
    steps = [orjson.loads(row["details"]) for row in await store.rows("decisions", tenant_id="tenant-a")
             if row["hook"] == "erasure"]
    steps.sort(key=lambda details: details["requests"] * 10 + details["decisions"], reverse=True)
    assert sum(step["requests"] + step["decisions"] for step in steps) == 10
    assert all(step["requests"] + step["decisions"] <= 3 for step in steps)
    assert [step["complete"] for step in steps].count(True) == 1
    assert {step["upto_seq"] for step in steps} == {14}  # rows written after it began are not its own
    for row in await store.rows("requests", tenant_id="tenant-a"):
        assert "prompt" not in row
    report = await store.verify()
    assert report.broken is None, report.describe()


async def test_an_erasure_stopped_half_way_resumes_when_run_again(store, monkeypatch):
    # One step commits, then the process stops: the second step's transaction never begins.
    from capsem_proxy.audit import lifecycle

    run, calls = lifecycle._in_transaction, []

    async def stopping_after_one(audit_store, work):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return await run(audit_store, work)

    monkeypatch.setattr(lifecycle, "_in_transaction", stopping_after_one)
    with pytest.raises(KeyboardInterrupt):
        await store.run(erase, tenant_id="tenant-a", max_rows=4)
    monkeypatch.setattr(lifecycle, "_in_transaction", run)
    assert len([row for row in await store.rows("requests", tenant_id="tenant-a") if "prompt" in row]) == 1
    assert (await store.verify()).broken is None
    rest = await store.run(erase, tenant_id="tenant-a")
    assert (rest.requests, rest.decisions) == (1, 5)
    assert not [row for row in await store.rows("requests", tenant_id="tenant-a") if "prompt" in row]
    report = await store.verify()
    assert report.broken is None, report.describe()


@pytest.mark.parametrize("pages_before", [1, 3])
async def test_verify_running_while_a_prune_removes_rows_it_has_yet_to_read_reports_no_break(
    store, monkeypatch, pages_before
):
    from capsem_proxy.audit import tools

    # Every row so far becomes old enough to prune (all 14), then two more requests are written.
    await asyncio.sleep(0.01)
    cut_off = time.time()
    await asyncio.sleep(0.01)
    sink = open_audit_sink(AuditSettings(url=store.url, store_content=True), KEY)
    await sink.start()
    for index in (7, 8):
        sink.record(context(f"later-{index}", "tenant-c"), [decision(Verdict.LOG, "p")])
        sink.record_request(stores.request(f"later-{index}", "tenant-c", started_at=time.time()))
    await sink.flush()
    await sink.close()
    monkeypatch.setattr(tools, "_PAGE", 2)  # the walk reads the store in many small pages
    reader = open_reader(store.url)
    await reader.open()
    pages = 0
    read_page = reader.chain_page

    async def chain_page(table, after_seq, limit):
        nonlocal pages
        pages += 1
        if pages == pages_before + 1:  # the prune commits between two of the walk's reads
            await store.run(prune, cut_off)
        return await read_page(table, after_seq, limit)

    monkeypatch.setattr(reader, "chain_page", chain_page)
    try:
        report = await verify_chain(reader, KEY)
    finally:
        await reader.close()
    assert report.broken is None, report.describe()
    assert report.start is not None and report.start.seq == 14
    assert report.walk.rows >= 4  # the rows left after the checkpoint were checked
    assert (await store.verify()).broken is None


async def test_an_erasure_step_reads_its_rows_a_page_at_a_time(store, monkeypatch):
    from capsem_proxy.audit import lifecycle

    monkeypatch.setattr(lifecycle, "_PAGE", 2)  # pages of 2 rows within steps of 5
    result = await store.run(erase, tenant_id="tenant-a", max_rows=5)
    assert (result.requests, result.decisions, result.steps) == (5, 5, 2)
    steps = sorted((orjson.loads(row["details"]) for row in await store.rows("decisions", tenant_id="tenant-a")
                    if row["hook"] == "erasure"), key=lambda details: details["complete"])
    assert [(step["requests"], step["decisions"], step["complete"]) for step in steps] == [(5, 0, False),
                                                                                             (0, 5, True)]
    report = await store.verify()
    assert report.broken is None, report.describe()
