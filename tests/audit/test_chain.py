"""The hash chain holds across both tables and many batches, and a row changed, deleted or cut off the
end directly in the database (sqlite3, psql) is found and named."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from capsem_proxy.audit import open_audit_sink
from capsem_proxy.audit.chain import GENESIS, row_hash
from capsem_proxy.audit.rows import clean_values
from capsem_proxy.audit.tools import VerifyReport, open_reader, verify_chain
from capsem_proxy.decisions import Verdict
from tests.audit import stores
from tests.audit.stores import context, decision, psql


@dataclass
class Store:
    url: str
    execute: Callable[[str], None]  # run SQL on the store directly, around the proxy

    async def verify(self, anchors: dict[int, str] | None = None) -> VerifyReport:
        reader = open_reader(self.url)
        await reader.open()
        try:
            return await verify_chain(reader, anchors)
        finally:
            await reader.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    """A store holding 3 batches: 10 requests with 2 decisions each (seq 1..30; r3's BLOCK is seq 10)."""
    if request.param == "sqlite":
        path = tmp_path / "audit.db"
        url = f"sqlite:///{path}"

        def execute(sql: str) -> None:
            with sqlite3.connect(path) as connection:
                connection.execute(sql)
    else:
        url = request.getfixturevalue("postgres_url")
        execute = psql(url)
    sink = open_audit_sink(url)
    await sink.start()
    for index in range(10):
        verdict = Verdict.BLOCK if index == 3 else Verdict.ALLOW
        sink.record(context(f"r{index}"), [decision(Verdict.ALLOW, "first"), decision(verdict, "second")])
        sink.record_request(stores.request(f"r{index}", status=403 if index == 3 else 200, verdict=verdict.value))
        if index in (2, 6):
            await sink.flush()
    await sink.close()
    yield Store(url, execute)


async def test_the_chain_of_an_untouched_store_verifies(store):
    report = await store.verify()
    assert report.broken is None
    assert report.walk.counts == {"requests": 10, "decisions": 20} and report.head[0] == 30
    assert report.describe().startswith("audit chain intact: 30 rows (requests 10, decisions 20)")


async def test_a_changed_verdict_is_named(store):
    store.execute("UPDATE decisions SET verdict = 'ALLOW' WHERE seq = 11")
    broken = (await store.verify()).broken
    assert broken is not None
    assert (broken.table, broken.seq, broken.request_id) == ("decisions", 11, "r3")
    assert "does not match its hash" in broken.problem
    assert broken.describe().startswith("chain broken at decisions seq 11 (request r3)")


async def test_a_deleted_row_is_named_by_the_row_after_it(store):
    store.execute("DELETE FROM requests WHERE seq = 12")
    broken = (await store.verify()).broken
    assert broken is not None
    assert (broken.table, broken.seq, broken.request_id) == ("decisions", 13, "r4")
    assert broken.problem == "row 12 before it is missing"


async def test_rows_cut_off_the_end_are_found_through_the_recorded_head(store):
    store.execute("DELETE FROM requests WHERE seq = 30")
    store.execute("DELETE FROM decisions WHERE seq = 29")
    broken = (await store.verify()).broken
    assert broken is not None and broken.seq == 28
    assert broken.problem == "rows 29..30 at the end are missing (the recorded head is seq 30)"


async def test_a_rewritten_chain_is_caught_by_an_anchor_kept_elsewhere(store):
    anchor = (await store.verify()).head
    # Rewrite the last row with a recomputed hash and head: the chain itself holds again...
    reader = open_reader(store.url)
    await reader.open()
    [last] = await reader.chain_page("requests", 29, 1)
    await reader.close()
    values = list(last.values)
    values[11] = "BLOCK"  # verdict
    forged = row_hash("requests", 30, last.prev_hash, clean_values("requests", values))
    store.execute(f"UPDATE requests SET verdict = 'BLOCK', hash = '{forged}' WHERE seq = 30")
    store.execute(f"UPDATE chain_head SET hash = '{forged}'")
    assert (await store.verify()).broken is None
    # ...but not with the head noted before.
    broken = (await store.verify({anchor[0]: anchor[1]})).broken
    assert broken is not None and (broken.seq, broken.request_id) == (30, "r9")


async def test_memory_rows_are_chained_too():
    sink = open_audit_sink("memory://")
    sink.record(context(), [decision()])
    sink.record_request(stores.request())
    [first], [second] = sink.decisions, sink.requests
    assert (first["seq"], first["prev_hash"]) == (1, GENESIS)
    assert (second["seq"], second["prev_hash"]) == (2, first["hash"])
