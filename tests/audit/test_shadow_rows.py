"""Shadow decisions in the audit trail: stored with `shadow` set in SQLite and PostgreSQL, covered by
the hash chain (flipping the flag either way is found), and rows written before the column existed
(schema version 3) still verify after the migration to version 4."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from capsem_proxy.audit import AuditQuery, open_audit_sink
from capsem_proxy.audit.tools import open_reader, verify_chain
from capsem_proxy.decisions import Verdict
from tests.audit import stores
from tests.audit.stores import KEY, context, decision, store_under_test


async def _verify(url: str):
    reader = open_reader(url)
    await reader.open()
    try:
        return await verify_chain(reader, KEY, (), None, "")
    finally:
        await reader.close()


async def _write(url: str, head_file: Path) -> None:
    sink = open_audit_sink(url, KEY, head_file=head_file)
    await sink.start()
    sink.record(context("r1"), [decision(Verdict.BLOCK, "enforced"), decision(Verdict.BLOCK, "trial", shadow=True)])
    sink.record_request(stores.request("r1", status=200))
    await sink.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def written(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[tuple[str, object]]:
    url, execute = store_under_test(request.param, tmp_path, request)
    await _write(url, tmp_path / "head.json")
    yield url, execute


async def test_shadow_decisions_are_stored_marked_and_the_chain_holds(written):
    url, _ = written
    sink = open_audit_sink(url, KEY)
    await sink.start()
    try:
        rows = await sink.query_decisions(AuditQuery(request_id="r1"))
    finally:
        await sink.close()
    assert {row["policy"]: row["shadow"] for row in rows} == {"enforced": False, "trial": True}
    assert (await _verify(url)).broken is None


@pytest.mark.parametrize("flip", ["shadow = NOT shadow", "shadow = (policy = 'enforced')"])
async def test_flipping_the_shadow_flag_breaks_the_chain(written, flip):
    url, execute = written
    flip = flip.replace("NOT shadow", "1 - shadow") if url.startswith("sqlite") else flip
    execute(f"UPDATE decisions SET {flip}")
    broken = (await _verify(url)).broken
    assert broken is not None and "does not match its hash" in broken.problem


async def test_a_version_3_sqlite_store_migrates_to_the_current_version_and_verifies(tmp_path):
    from capsem_proxy.audit.sqlite_schema import CURRENT_VERSION, MIGRATIONS

    path = tmp_path / "v3.db"
    # Write rows as version 3 did: the table has no shadow column; the code hashes a False shadow as absent.
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at REAL)")
    for version, step in MIGRATIONS[:3]:
        step(connection)
        connection.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
    connection.close()
    url = f"sqlite:///{path}"
    await _write(url, tmp_path / "head.json")  # migrates and writes a shadow row too
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT MAX(version) FROM schema_version").fetchone() == (CURRENT_VERSION,)
    assert (await _verify(url)).broken is None


def test_a_decision_that_is_not_shadow_hashes_exactly_as_version_3_hashed_it():
    import orjson

    from capsem_proxy.audit.rows import encode_row

    values = ("d", "r", "t", "", "", "openai", "chat", "m", "on_model_call", "p", "ALLOW", "safe", "", "", 1.5, 2.0, 1)
    _, payload = encode_row("decisions", 7, "prev", (*values, False))
    assert payload == orjson.dumps(["decisions", 7, "prev", *values])
    _, shadow_payload = encode_row("decisions", 7, "prev", (*values, True))
    assert shadow_payload == orjson.dumps(["decisions", 7, "prev", *values, True])
