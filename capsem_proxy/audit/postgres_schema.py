"""The PostgreSQL audit schema and its migrations.

The tables live in one PostgreSQL schema (`capsem_audit` unless the URL says `?schema=name`), so
several proxies or test runs can share a database without meeting. Versions number the same layouts
as the SQLite store (PostgreSQL starts at 2: version 1 only ever existed in SQLite). Migrations run
under a transaction-scoped advisory lock, so replicas starting together migrate once. A step's SQL is
frozen once released: change the layout by appending a step.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from capsem_proxy.audit.errors import SchemaMismatch

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "advisory_key", "migrate", "quote", "stored_version"]

_V2 = """
CREATE TABLE requests (
    seq BIGINT PRIMARY KEY,
    request_id TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    tenant_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    route TEXT NOT NULL,
    model TEXT NOT NULL,
    stream BOOLEAN NOT NULL,
    status BIGINT NOT NULL,
    verdict TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    upstream_ms DOUBLE PRECISION,
    ttfb_ms DOUBLE PRECISION,
    input_tokens BIGINT,
    output_tokens BIGINT,
    prompt TEXT,
    answer TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX requests_request ON requests (request_id);
CREATE INDEX requests_tenant ON requests (tenant_id, seq);
CREATE INDEX requests_session ON requests (session_id, seq);
CREATE INDEX requests_started ON requests (started_at);
CREATE TABLE decisions (
    seq BIGINT PRIMARY KEY,
    decision_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    model TEXT NOT NULL,
    hook TEXT NOT NULL,
    policy TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    details TEXT NOT NULL,
    subject TEXT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX decisions_request ON decisions (request_id);
CREATE INDEX decisions_tenant ON decisions (tenant_id, seq);
CREATE INDEX decisions_session ON decisions (session_id, seq);
CREATE INDEX decisions_recorded ON decisions (recorded_at);
CREATE TABLE chain_head (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO chain_head VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
"""


async def _to_v2(connection: Any) -> None:
    """Requests, decisions and the hash chain's head."""
    await connection.execute(_V2)


_V3 = """
ALTER TABLE decisions ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE chain_head ADD COLUMN keyed_from BIGINT NOT NULL DEFAULT 1, ADD COLUMN key_id TEXT NOT NULL DEFAULT '',
    ADD COLUMN store_id TEXT NOT NULL DEFAULT '', ADD COLUMN mac TEXT NOT NULL DEFAULT '';
"""


async def _to_v3(connection: Any) -> None:
    """Folded decisions (`count`) and the keyed chain: the head learns the first keyed seq (rows
    written so far keep their plain hashes), the key id and MAC (set by the first keyed proxy to
    open the store) and a random store id (which the exported head names). Adding columns with a
    constant default rewrites no table (PostgreSQL 11 and later)."""
    await connection.execute(_V3)
    await connection.execute("UPDATE chain_head SET keyed_from = seq + 1, store_id = $1", os.urandom(16).hex())


async def _to_v4(connection: Any) -> None:
    """Shadow decisions (`shadow`): rows written so far were hashed without the column, which keeps
    them verifiable (a False `shadow` is left out of a row's hash, see rows.encode_row)."""
    await connection.execute("ALTER TABLE decisions ADD COLUMN shadow BOOLEAN NOT NULL DEFAULT false")


async def _to_v5(connection: Any) -> None:
    """Data lifecycle (lifecycle.py): `chain_start`, the signed checkpoint a retention prune leaves where
    the chain now begins, and `erased_rows`, the signed attestation of each row whose content an erasure
    blanked (its hash, computed over the content, still links the chain)."""
    await connection.execute(
        "CREATE TABLE chain_start (id SMALLINT PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL, "
        "pruned_at DOUBLE PRECISION NOT NULL, mac TEXT NOT NULL);"
        "CREATE TABLE erased_rows (seq BIGINT PRIMARY KEY, erasure_seq BIGINT NOT NULL, mac TEXT NOT NULL)"
    )


async def _to_v6(connection: Any) -> None:
    """Folded ALLOW decisions (folding.py): `allowed` on request rows. Rows written before it hold NULL,
    which their hash leaves out (see rows.encode_row)."""
    await connection.execute("ALTER TABLE requests ADD COLUMN allowed TEXT")


MIGRATIONS: list[tuple[int, Callable[[Any], Awaitable[None]]]] = [
    (2, _to_v2), (3, _to_v3), (4, _to_v4), (5, _to_v5), (6, _to_v6),
]
CURRENT_VERSION = MIGRATIONS[-1][0]


def advisory_key(schema: str) -> int:
    """The advisory lock id that serialises migrations of one schema (a stable 32-bit number)."""
    return zlib.crc32(f"capsem_proxy.audit:{schema}".encode())


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def stored_version(connection: Any, schema: str) -> int:
    """The layout version in `schema` (0: no audit tables yet)."""
    exists = await connection.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f"{quote(schema)}.schema_version"
    )
    if not exists:
        return 0
    return int(await connection.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {quote(schema)}.schema_version"))


async def migrate(connection: Any, schema: str) -> int:
    """Bring `schema` to CURRENT_VERSION (creating it if needed); returns the version found."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(schema))
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        found = await stored_version(connection, schema)
        if found > CURRENT_VERSION:
            raise SchemaMismatch(f"audit schema version {found} is newer than this code's {CURRENT_VERSION}")
        if found < CURRENT_VERSION:
            await connection.execute(f"SET LOCAL search_path TO {quote(schema)}")
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at DOUBLE PRECISION)"
            )
            for version, step in MIGRATIONS:
                if version > found:
                    await step(connection)
                    await connection.execute(
                        "INSERT INTO schema_version VALUES ($1, extract(epoch FROM clock_timestamp()))", version
                    )
    return found
