"""The keyed hash chain holds across both tables and many batches, and what someone with write access to
the database does to it directly (sqlite3, psql) is found and named: a changed row, even with its hash
recomputed; rows deleted in the middle or cut off the end; the head moved back over them; a head
replayed from earlier; the whole store emptied. Stores written before the chain was keyed still verify."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from capsem_proxy.audit import AuditQuery, open_audit_sink
from capsem_proxy.audit.chain import GENESIS, Anchor, legacy_chain_entries, legacy_row_hash, row_hash
from capsem_proxy.audit.head import ExportedHead, read_exported_head
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.rows import COLUMN_NAMES, clean_values
from capsem_proxy.audit.tools import VerifyReport, open_reader, verify_chain
from capsem_proxy.decisions import Verdict
from tests.audit import stores
from tests.audit.stores import KEY, context, decision, psql, sqlite_executor, store_under_test


@dataclass
class Store:
    url: str
    execute: Callable[[str], None]  # run SQL on the store directly, around the proxy
    head_file: Path

    def exported(self) -> ExportedHead:
        return read_exported_head(self.head_file, KEY)

    async def verify(self, *anchors: Anchor, key: ChainKey = KEY, exported: bool = False) -> VerifyReport:
        reader = open_reader(self.url)
        await reader.open()
        try:
            return await verify_chain(reader, key, anchors, self.exported() if exported else None, "the head file")
        finally:
            await reader.close()

    async def last_rows(self, table: str, count: int):
        reader = open_reader(self.url)
        await reader.open()
        try:
            rows = await reader.chain_page(table, 0, 1000)
        finally:
            await reader.close()
        return rows[-count:]


async def _fill(url: str, head_file: Path) -> None:
    """10 requests with 2 decisions each, in 3 batches (seq 1..30; r3's BLOCK is seq 11)."""
    sink = open_audit_sink(url, KEY, head_file=head_file)
    await sink.start()
    for index in range(10):
        verdict = Verdict.BLOCK if index == 3 else Verdict.ALLOW
        sink.record(context(f"r{index}"), [decision(Verdict.ALLOW, "first"), decision(verdict, "second")])
        sink.record_request(stores.request(f"r{index}", status=403 if index == 3 else 200, verdict=verdict.value))
        if index in (2, 6):
            await sink.flush()
    await sink.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    url, execute = store_under_test(request.param, tmp_path, request)
    await _fill(url, tmp_path / "audit-head.json")
    yield Store(url, execute, tmp_path / "audit-head.json")


def test_the_chain_key_is_standard_hmac_sha256_and_is_never_the_server_secret():
    secret = b"server secret"
    key = ChainKey.derive(secret)
    derived = hmac.digest(secret, b"capsem-proxy audit chain v1", "sha256")
    assert key.mac(b"row") == hmac.new(derived, b"row", hashlib.sha256).hexdigest()
    assert key.mac(b"row") != hmac.new(secret, b"row", hashlib.sha256).hexdigest()
    assert key.key_id == ChainKey.derive(secret).key_id != ChainKey.derive(b"other").key_id
    assert "server" not in repr(key) and derived.hex() not in repr(key)


async def test_the_chain_of_an_untouched_store_verifies_against_its_exported_head(store):
    report = await store.verify(exported=True)
    assert report.broken is None
    assert report.walk.counts == {"requests": 10, "decisions": 20} and report.head.seq == 30
    assert report.head.key_id == KEY.key_id and report.exported.seq == 30
    assert report.describe().startswith("audit chain intact: 30 rows (requests 10, decisions 20); head 30:")
    assert "the exported head (seq 30, written" in report.describe()


async def test_a_changed_verdict_is_named(store):
    store.execute("UPDATE decisions SET verdict = 'ALLOW' WHERE seq = 11")
    broken = (await store.verify()).broken
    assert broken is not None
    assert (broken.table, broken.seq, broken.request_id) == ("decisions", 11, "r3")
    assert "does not match its hash" in broken.problem
    assert broken.describe().startswith("chain broken at decisions seq 11 (request r3)")


async def test_a_row_rewritten_with_a_recomputed_hash_is_caught_without_the_key(store):
    """The hashes are keyed: the plain SHA-256 of the changed row (or a MAC with a guessed key) is not it."""
    [last] = await store.last_rows("requests", 1)
    values = list(last.values)
    values[11] = "BLOCK"  # verdict
    cleaned = clean_values("requests", values)
    for forged in (legacy_row_hash("requests", 30, last.prev_hash, cleaned),
                   row_hash(ChainKey(b"guessed"), "requests", 30, last.prev_hash, cleaned)):
        store.execute(f"UPDATE requests SET verdict = 'BLOCK', hash = '{forged}' WHERE seq = 30; "
                      f"UPDATE chain_head SET hash = '{forged}'")
        broken = (await store.verify()).broken
        assert broken is not None and (broken.seq, broken.request_id) == (30, "r9")
        assert "does not match its hash" in broken.problem


async def test_a_deleted_row_is_named_by_the_row_after_it(store):
    store.execute("DELETE FROM requests WHERE seq = 12")
    broken = (await store.verify()).broken
    assert broken is not None
    assert (broken.table, broken.seq, broken.request_id) == ("decisions", 13, "r4")
    assert broken.problem == "row 12 before it is missing"


async def test_rows_cut_off_the_end_are_found_through_the_recorded_head(store):
    store.execute("DELETE FROM requests WHERE seq = 30; DELETE FROM decisions WHERE seq = 29")
    broken = (await store.verify()).broken
    assert broken is not None and broken.seq == 28
    assert broken.problem == "rows 29..30 at the end are missing (the recorded head is seq 30)"


async def test_rows_cut_off_with_the_head_moved_back_are_caught_by_its_mac_and_the_exported_head(store):
    kept = next(row for row in await store.last_rows("decisions", 2) if row.seq == 28)
    store.execute(f"DELETE FROM requests WHERE seq = 30; DELETE FROM decisions WHERE seq = 29; "
                  f"UPDATE chain_head SET seq = 28, hash = '{kept.hash}'")
    broken = (await store.verify()).broken
    assert broken is not None and broken.seq == 28
    assert "the store's head was rewritten: its MAC does not match" in broken.problem
    broken = (await store.verify(exported=True)).broken
    assert broken is not None
    assert broken.problem == "rows 29..30 at the end are missing (row 30 is named by the head file): rows were removed"


async def test_a_head_replayed_from_earlier_is_caught_by_the_exported_head(store, tmp_path):
    """Someone who kept a copy of an earlier head row (with its valid MAC) puts it back after cutting rows."""
    reader = open_reader(store.url)
    await reader.open()
    try:
        earlier = await reader.head()
    finally:
        await reader.close()
    assert earlier is not None
    # Write more rows (a later head and a newer export), then roll the store back to the copy.
    await _fill_more(store)
    store.execute(f"DELETE FROM requests WHERE seq > 30; DELETE FROM decisions WHERE seq > 30; "
                  f"UPDATE chain_head SET seq = {earlier.seq}, hash = '{earlier.hash}', mac = '{earlier.mac}'")
    assert (await store.verify()).broken is None  # the store alone cannot tell...
    broken = (await store.verify(exported=True)).broken  # ...the exported head can
    assert broken is not None and "rows 31..32 at the end are missing" in broken.problem


async def _fill_more(store: Store) -> None:
    sink = open_audit_sink(store.url, KEY, head_file=store.head_file)
    await sink.start()
    sink.record(context("late"), [decision(Verdict.BLOCK)])
    sink.record_request(stores.request("late", status=403, verdict="BLOCK"))
    await sink.close()
    assert store.exported().seq == 32


async def test_an_emptied_store_is_caught_by_the_exported_head(store):
    store.execute(f"DELETE FROM requests; DELETE FROM decisions; UPDATE chain_head SET seq = 0, hash = '{GENESIS}'")
    broken = (await store.verify(exported=True)).broken
    assert broken is not None
    assert broken.describe() == (
        "chain broken: rows 1..30 at the end are missing (row 30 is named by the head file): rows were removed"
    )


async def test_a_head_row_deleted_or_reset_to_name_no_key_is_caught(store):
    store.execute("UPDATE chain_head SET key_id = '', mac = ''")
    broken = (await store.verify()).broken
    assert broken is not None and "names no chain key, yet the store holds rows" in broken.problem
    store.execute("DELETE FROM chain_head")
    broken = (await store.verify()).broken
    assert broken is not None and "the store's head row is missing" in broken.problem


async def test_a_recreated_store_is_not_mistaken_for_the_exported_one(store):
    store.execute("UPDATE chain_head SET store_id = 'another'")
    broken = (await store.verify(exported=True)).broken
    assert broken is not None and "the store was replaced or recreated" in broken.problem


async def test_a_store_keyed_with_another_secret_says_so(store):
    broken = (await store.verify(key=ChainKey.derive(b"not the proxy's secret"))).broken
    assert broken is not None
    assert f"keyed with key id {KEY.key_id}, not with this key" in broken.describe()


async def test_an_anchor_noted_elsewhere_must_still_match(store):
    report = await store.verify()
    head = Anchor(report.head.seq, report.head.hash, "the anchor given")
    assert (await store.verify(head)).broken is None
    broken = (await store.verify(Anchor(30, "0" * 64, "the anchor given"))).broken
    assert broken is not None and broken.problem == f"its hash is not the {'0' * 64} of the anchor given"


async def test_memory_rows_are_chained_too():
    sink = open_audit_sink("memory://", KEY)
    sink.record(context(), [decision()])
    sink.record_request(stores.request())
    [first], [second] = sink.decisions, sink.requests
    assert (first["seq"], first["prev_hash"]) == (1, GENESIS)
    assert (second["seq"], second["prev_hash"]) == (2, first["hash"])


# Stores written before the chain was keyed (schema version 2).

def _legacy_rows(count: int) -> list[tuple[str, tuple]]:
    """Rows as version 2 wrote them: decisions without a count (nor a shadow flag)."""
    rows = []
    for index in range(count):
        verdict = "BLOCK" if index == 1 else "ALLOW"
        rows.append(("decisions", (f"old-d{index}", f"old{index}", "t", "", "", "openai", "chat", "m",
                                   "on_model_call", "p", verdict, "r", "", "", 1.5, 1000.0 + index, 1, False)))
        rows.append(("requests", (f"old{index}", 1000.0 + index, "t", "", "", "openai", "chat", "/v1/chat/completions",
                                  "m", False, 200, verdict, "", "", 2.0, None, None, None, None, None, None, None)))
    return rows


def _write_version_2_sqlite(path: Path, count: int) -> None:
    from capsem_proxy.audit.sqlite_schema import MIGRATIONS

    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at REAL)")
        for version, step in MIGRATIONS[:2]:
            step(connection)
            connection.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
        chained = legacy_chain_entries(_legacy_rows(count), 0, GENESIS)
        for row in chained:
            values = row.values[:-2] if row.table == "decisions" else row.values[:-1]  # the columns of version 2
            connection.execute(f"INSERT INTO {row.table} VALUES ({', '.join('?' * (len(values) + 3))})",
                               (row.seq, *values, row.prev_hash, row.hash))
        connection.execute("UPDATE chain_head SET seq = ?, hash = ?", (chained[-1].seq, chained[-1].hash))
    finally:
        connection.close()


async def _write_version_2_postgres(url: str, count: int) -> None:
    import asyncpg

    from capsem_proxy.audit.postgres_schema import _V2

    base, _, schema = url.partition("?schema=")
    connection = await asyncpg.connect(base)
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
        await connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at DOUBLE PRECISION)")
        await connection.execute(_V2)
        await connection.execute("INSERT INTO schema_version VALUES (2, 0)")
        chained = legacy_chain_entries(_legacy_rows(count), 0, GENESIS)
        for row in chained:
            values = row.values[:-2] if row.table == "decisions" else row.values[:-1]  # the columns of version 2
            placeholders = ", ".join(f"${index}" for index in range(1, len(values) + 4))
            await connection.execute(f"INSERT INTO {row.table} VALUES ({placeholders})", row.seq, *values,
                                     row.prev_hash, row.hash)
        await connection.execute("UPDATE chain_head SET seq = $1, hash = $2", chained[-1].seq, chained[-1].hash)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def upgraded(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    """A version-2 store with 8 unkeyed rows (seq 1..8), opened by this proxy, which writes 2 keyed rows."""
    if request.param == "sqlite":
        path = tmp_path / "audit.db"
        _write_version_2_sqlite(path, 4)
        url, execute = f"sqlite:///{path}", sqlite_executor(path)
    else:
        url = request.getfixturevalue("postgres_url")
        await _write_version_2_postgres(url, 4)
        execute = psql(url)
    sink = open_audit_sink(url, KEY, head_file=tmp_path / "head.json")
    await sink.start()
    sink.record(context("new"), [decision(Verdict.LOG)])
    sink.record_request(stores.request("new", verdict="LOG"))
    await sink.close()
    yield Store(url, execute, tmp_path / "head.json")


async def test_a_store_from_before_the_key_keeps_its_rows_and_continues_keyed(upgraded):
    report = await upgraded.verify(exported=True)
    assert report.broken is None, report.describe()
    assert report.walk.rows == 10 and report.walk.legacy_rows == 8 and report.head.keyed_from == 9
    assert "the first 8 written before the chain was keyed" in report.describe()
    reader = open_reader(upgraded.url)
    await reader.open()
    try:
        [old] = await reader.query_decisions(AuditQuery(request_id="old1"))
    finally:
        await reader.close()
    assert (old["verdict"], old["count"]) == ("BLOCK", 1)


async def test_an_unkeyed_row_rewritten_with_recomputed_hashes_breaks_at_the_first_keyed_row(upgraded):
    reader = open_reader(upgraded.url)
    await reader.open()
    try:
        rows = sorted([*await reader.chain_page("requests", 0, 100), *await reader.chain_page("decisions", 0, 100)],
                      key=lambda row: row.seq)
    finally:
        await reader.close()
    # Turn old1's BLOCK (seq 3) into an ALLOW and recompute every plain hash after it, up to seq 8.
    previous = rows[1].hash
    for row in rows[2:8]:
        values = list(row.values)
        if row.seq == 3:
            values[10] = "ALLOW"
        digest = legacy_row_hash(row.table, row.seq, previous, tuple(values))
        verdict = ", verdict = 'ALLOW'" if row.seq == 3 else ""
        upgraded.execute(f"UPDATE {row.table} SET prev_hash = '{previous}', hash = '{digest}'{verdict} "
                         f"WHERE seq = {row.seq}")
        previous = digest
    broken = (await upgraded.verify()).broken
    assert broken is not None and broken.seq == 9
    assert broken.problem == "its prev_hash does not match the hash of seq 8"


async def test_claiming_the_unkeyed_rows_as_keyed_or_the_keyed_as_unkeyed_fails(upgraded):
    upgraded.execute("UPDATE chain_head SET keyed_from = 20")
    broken = (await upgraded.verify()).broken
    assert broken is not None and "content does not match its hash" in broken.problem  # seq 9 is keyed
    upgraded.execute("UPDATE chain_head SET keyed_from = 1")
    broken = (await upgraded.verify()).broken
    assert broken is not None and (broken.seq, "content does not match its hash" in broken.problem) == (1, True)


def test_legacy_hashes_are_what_version_2_wrote():
    values = ("d", "r", "t", "", "", "openai", "chat", "m", "on_model_call", "p", "ALLOW", "safe", "", "", 1.5, 2.0, 1,
              False)
    expected = hashlib.sha256(orjson.dumps(["decisions", 1, GENESIS, *values[:-2]])).hexdigest()
    assert legacy_row_hash("decisions", 1, GENESIS, values) == expected


class _HeadReadEarlier:
    """A reader whose first head() answer is one read before more rows were written (a live store)."""

    def __init__(self, reader, earlier) -> None:
        self._reader, self._earlier = reader, earlier

    async def head(self):
        earlier, self._earlier = self._earlier, None
        return earlier if earlier is not None else await self._reader.head()

    def __getattr__(self, name: str):
        return getattr(self._reader, name)


async def test_rows_written_while_a_live_store_is_verified_are_left_for_the_next_run(store):
    reader = open_reader(store.url)
    await reader.open()
    try:
        earlier = await reader.head()
        await _fill_more(store)
        report = await verify_chain(_HeadReadEarlier(reader, earlier), KEY)
    finally:
        await reader.close()
    assert report.broken is None and report.walk.rows == 30 and report.later_rows == 2
    assert report.describe().endswith("; 2 rows written since the check began are left for the next run")


async def test_a_row_slipped_in_past_the_head_is_caught(store):
    columns = ", ".join(COLUMN_NAMES["requests"])
    store.execute(f"INSERT INTO requests (seq, {columns}, prev_hash, hash) "
                  f"SELECT 31, {columns}, hash, '{'f' * 64}' FROM requests WHERE seq = 30")
    broken = (await store.verify()).broken
    assert broken is not None and broken.problem == "row 31 lies past the store's head (seq 30): no proxy wrote it"


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_request_row_with_a_non_finite_time_and_no_folded_decisions_verifies(kind, tmp_path, request):
    # Stored as cleaned (0.0 for a required time) and hashed the same way, also when the row's trailing
    # `allowed` column is NULL and so left out of its hash (its null once made up for the time's).
    url, _ = store_under_test(kind, tmp_path, request)
    sink = open_audit_sink(url, KEY)
    await sink.start()
    sink.record_request(stores.request("r-inf", status=200, latency_ms=float("inf"), upstream_ms=2.0))
    await sink.close()
    reader = open_reader(url)
    await reader.open()
    try:
        report = await verify_chain(reader, KEY)
        rows = await reader.query_requests(AuditQuery(request_id="r-inf"))
    finally:
        await reader.close()
    assert report.broken is None and report.walk.rows == 1
    assert (rows[0]["latency_ms"], rows[0]["upstream_ms"]) == (0.0, 2.0)
