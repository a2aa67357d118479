"""Every older audit schema version migrates to the current one (6: folded ALLOW decisions; 5 added the
retention checkpoint and erasure attestations), on SQLite (from 1) and PostgreSQL (from 2): the rows
written under the old layout keep verifying, and retention and erasure then work on the migrated store."""

from __future__ import annotations

import sqlite3
import time

import asyncpg
import pytest

from capsem_proxy.audit import open_audit_sink, postgres_schema, sqlite_schema
from capsem_proxy.audit.chain import GENESIS, chain_entries, head_mac, legacy_chain_entries
from capsem_proxy.audit.lifecycle import erase, open_store, prune
from capsem_proxy.audit.rows import COLUMN_NAMES
from capsem_proxy.audit.tools import open_reader, verify_chain
from capsem_proxy.decisions import Verdict
from tests.audit import stores
from tests.audit.stores import KEY, context, decision

OLD_TENANT = "tenant-old"


def _old_rows(count: int) -> list[tuple[str, tuple]]:
    rows = []
    for index in range(count):
        rows.append(("decisions", (f"od{index}", f"o{index}", OLD_TENANT, "", "", "openai", "chat", "m",
                                   "on_model_call", "p", "LOG", "r", "detail", "", 1.0, 1000.0 + index, 1, False)))
        rows.append(("requests", (f"o{index}", 1000.0 + index, OLD_TENANT, "", "", "openai", "chat",
                                  "/v1/chat/completions", "m", False, 200, "LOG", "", "", 2.0, None, None, None, None,
                                  f"old prompt {index}", None, None)))
    return rows


def _sqlite_at(path, version: int) -> None:
    """A SQLite store as `version` left it, with rows written as that version wrote them."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        if version > 1:
            connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at REAL)")
        for number, step in sqlite_schema.MIGRATIONS[:version]:
            step(connection)
            if version > 1:
                connection.execute("INSERT INTO schema_version VALUES (?, ?)", (number, time.time()))
        rows = _old_rows(3)
        if version == 1:
            for table, values in rows:
                if table == "decisions":
                    keep = [values[i] for i in range(16) if COLUMN_NAMES["decisions"][i] not in ("session_id",
                                                                                                  "agent_id")]
                    connection.execute(f"INSERT INTO decisions VALUES ({', '.join('?' * 14)})", keep)
            return
        columns = {table: [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
                   for table in ("requests", "decisions")}
        chained = legacy_chain_entries(rows, 0, GENESIS) if version == 2 else chain_entries(rows, 0, GENESIS, KEY)
        for row in chained:
            named = dict(zip(("seq", *COLUMN_NAMES[row.table], "prev_hash", "hash"),
                             (row.seq, *row.values, row.prev_hash, row.hash), strict=True))
            names = [name for name in columns[row.table] if name in named]
            connection.execute(f"INSERT INTO {row.table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                               [named[name] for name in names])
        last = chained[-1]
        if version == 2:
            connection.execute("UPDATE chain_head SET seq = ?, hash = ?", (last.seq, last.hash))
        else:
            # Version 3 set keyed_from to 1 on this empty store; the proxy claimed it with its key.
            store_id, keyed_from = connection.execute("SELECT store_id, keyed_from FROM chain_head").fetchone()
            mac = head_mac(KEY, store_id, last.seq, last.hash, keyed_from)
            connection.execute("UPDATE chain_head SET seq = ?, hash = ?, key_id = ?, mac = ?",
                               (last.seq, last.hash, KEY.key_id, mac))
    finally:
        connection.close()


async def _postgres_at(url: str, version: int) -> None:
    base, _, schema = url.partition("?schema=")
    connection = await asyncpg.connect(base)
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"; SET search_path TO "{schema}"')
        await connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at DOUBLE PRECISION)")
        for number, step in postgres_schema.MIGRATIONS:
            if number <= version:
                await step(connection)
                await connection.execute("INSERT INTO schema_version VALUES ($1, 0)", number)
        rows = _old_rows(3)
        chained = legacy_chain_entries(rows, 0, GENESIS) if version == 2 else chain_entries(rows, 0, GENESIS, KEY)
        for row in chained:
            present = {record["column_name"] for record in await connection.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
                schema, row.table)}
            named = dict(zip(("seq", *COLUMN_NAMES[row.table], "prev_hash", "hash"),
                             (row.seq, *row.values, row.prev_hash, row.hash), strict=True))
            names = [name for name in named if name in present]
            placeholders = ", ".join(f"${index}" for index in range(1, len(names) + 1))
            await connection.execute(f"INSERT INTO {row.table} ({', '.join(names)}) VALUES ({placeholders})",
                                     *[named[name] for name in names])
        last = chained[-1]
        if version == 2:
            await connection.execute("UPDATE chain_head SET seq = $1, hash = $2", last.seq, last.hash)
        else:
            head = await connection.fetchrow("SELECT store_id, keyed_from FROM chain_head")
            mac = head_mac(KEY, head["store_id"], last.seq, last.hash, head["keyed_from"])
            await connection.execute("UPDATE chain_head SET seq = $1, hash = $2, key_id = $3, mac = $4",
                                     last.seq, last.hash, KEY.key_id, mac)
    finally:
        await connection.close()


async def _verify(url: str):
    reader = open_reader(url)
    await reader.open()
    try:
        return await verify_chain(reader, KEY)
    finally:
        await reader.close()


async def _upgrade_and_use(url: str, tmp_path) -> None:
    sink = open_audit_sink(url, KEY, head_file=tmp_path / "head.json")  # migrates on start
    await sink.start()
    sink.record(context("new", "tenant-new"), [decision(Verdict.LOG)])
    sink.record_request(stores.request("new", "tenant-new", verdict="LOG"))
    await sink.close()
    report = await _verify(url)
    assert report.broken is None, report.describe()
    store = open_store(url, KEY)
    await store.open()
    try:
        await erase(store, KEY, tenant_id=OLD_TENANT)
        report = await _verify(url)
        assert report.broken is None, report.describe()
        await prune(store, KEY, before=1500.0)  # the old rows are from 1970
        report = await _verify(url)
        assert report.broken is None, report.describe()
        assert report.start is not None
    finally:
        await store.close()


@pytest.mark.parametrize("version", [number for number, _ in sqlite_schema.MIGRATIONS[:-1]])
async def test_every_older_sqlite_version_migrates_and_keeps_verifying(version, tmp_path):
    path = tmp_path / "audit.db"
    _sqlite_at(path, version)
    await _upgrade_and_use(f"sqlite:///{path}", tmp_path)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone() == (
            sqlite_schema.CURRENT_VERSION,)
    assert sqlite_schema.CURRENT_VERSION == 6


@pytest.mark.parametrize("version", [number for number, _ in postgres_schema.MIGRATIONS[:-1]])
async def test_every_older_postgres_version_migrates_and_keeps_verifying(version, postgres_url, tmp_path):
    await _postgres_at(postgres_url, version)
    await _upgrade_and_use(postgres_url, tmp_path)
    base, _, schema = postgres_url.partition("?schema=")
    connection = await asyncpg.connect(base)
    try:
        found = await connection.fetchval(f'SELECT MAX(version) FROM "{schema}".schema_version')
    finally:
        await connection.close()
    assert found == postgres_schema.CURRENT_VERSION == 6
