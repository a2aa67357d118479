"""The SQLite audit schema and its migrations.

`schema_version` holds the layout's number; MIGRATIONS lists the steps in order, each taking the store
from the version before it to its own. A file written before `schema_version` existed (a lone
`decisions` table) is version 1. Steps run in one IMMEDIATE transaction, so several worker processes
opening the same file migrate it once. A step's SQL is frozen once released: change the layout by
appending a step.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable

from capsem_proxy.audit.chain import GENESIS, legacy_chain_entries
from capsem_proxy.audit.errors import SchemaMismatch

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "migrate", "stored_version"]


_V1 = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    model TEXT NOT NULL,
    hook TEXT NOT NULL,
    policy TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    details TEXT NOT NULL,
    subject TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_request ON decisions (request_id);
CREATE INDEX IF NOT EXISTS decisions_id ON decisions (decision_id);
"""

_V2_TABLES = """
CREATE TABLE requests (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    started_at REAL NOT NULL,
    tenant_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    route TEXT NOT NULL,
    model TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    upstream_ms REAL,
    ttfb_ms REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
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
    seq INTEGER PRIMARY KEY,
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
    latency_ms REAL NOT NULL,
    recorded_at REAL NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX decisions_request ON decisions (request_id);
CREATE INDEX decisions_tenant ON decisions (tenant_id, seq);
CREATE INDEX decisions_session ON decisions (session_id, seq);
CREATE INDEX decisions_recorded ON decisions (recorded_at);
CREATE TABLE chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
"""

_V2_INSERT_DECISION = "INSERT INTO decisions VALUES (" + ", ".join("?" * 19) + ")"
_COPY_CHUNK = 5000


def _to_v1(connection: sqlite3.Connection) -> None:
    """The first layout: decisions only, unchained."""
    for statement in _V1.split(";"):
        if statement.strip():
            connection.execute(statement)


def _to_v2(connection: sqlite3.Connection) -> None:
    """Request rows, session and agent ids on decisions, and the hash chain: version-1 decisions are
    kept, in their order, as the first links of the chain."""
    connection.execute("ALTER TABLE decisions RENAME TO decisions_v1")
    connection.execute("DROP INDEX IF EXISTS decisions_request")
    connection.execute("DROP INDEX IF EXISTS decisions_id")
    for statement in _V2_TABLES.split(";"):
        if statement.strip():
            connection.execute(statement)
    last_seq, last_hash = 0, GENESIS
    cursor = connection.execute(
        "SELECT decision_id, request_id, tenant_id, '', '', provider, operation, model, hook, policy, verdict, "
        "reason, details, subject, latency_ms, recorded_at FROM decisions_v1 ORDER BY rowid"
    )
    while chunk := cursor.fetchmany(_COPY_CHUNK):
        # Rows carry every column the code knows (count and shadow, added later, at their defaults);
        # the version-2 table takes the columns it had.
        rows = legacy_chain_entries((("decisions", (*values, 1, False)) for values in chunk), last_seq, last_hash)
        connection.executemany(
            _V2_INSERT_DECISION, [(row.seq, *row.values[:-2], row.prev_hash, row.hash) for row in rows]
        )
        last_seq, last_hash = rows[-1].seq, rows[-1].hash
    connection.execute("INSERT INTO chain_head VALUES (1, ?, ?)", (last_seq, last_hash))
    connection.execute("DROP TABLE decisions_v1")


def _to_v3(connection: sqlite3.Connection) -> None:
    """Folded decisions (`count`) and the keyed chain: the head learns the first keyed seq (rows
    written so far keep their plain hashes), the key id and MAC (set by the first keyed proxy to
    open the store) and a random store id (which the exported head names)."""
    connection.execute("ALTER TABLE decisions ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
    for column in ("keyed_from INTEGER NOT NULL DEFAULT 1", "key_id TEXT NOT NULL DEFAULT ''",
                   "store_id TEXT NOT NULL DEFAULT ''", "mac TEXT NOT NULL DEFAULT ''"):
        connection.execute(f"ALTER TABLE chain_head ADD COLUMN {column}")
    connection.execute("UPDATE chain_head SET keyed_from = seq + 1, store_id = ?", (os.urandom(16).hex(),))


def _to_v4(connection: sqlite3.Connection) -> None:
    """Shadow decisions (`shadow`): rows written so far were hashed without the column, which keeps
    them verifiable (a False `shadow` is left out of a row's hash, see rows.encode_row)."""
    connection.execute("ALTER TABLE decisions ADD COLUMN shadow INTEGER NOT NULL DEFAULT 0")


def _to_v5(connection: sqlite3.Connection) -> None:
    """Data lifecycle (lifecycle.py): `chain_start`, the signed checkpoint a retention prune leaves where
    the chain now begins, and `erased_rows`, the signed attestation of each row whose content an erasure
    blanked (its hash, computed over the content, still links the chain)."""
    connection.execute(
        "CREATE TABLE chain_start (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL, "
        "pruned_at REAL NOT NULL, mac TEXT NOT NULL)"
    )
    connection.execute(
        "CREATE TABLE erased_rows (seq INTEGER PRIMARY KEY, erasure_seq INTEGER NOT NULL, mac TEXT NOT NULL)"
    )


def _to_v6(connection: sqlite3.Connection) -> None:
    """Folded ALLOW decisions (folding.py): `allowed` on request rows. Rows written before it hold NULL,
    which their hash leaves out (see rows.encode_row)."""
    connection.execute("ALTER TABLE requests ADD COLUMN allowed TEXT")


MIGRATIONS: list[tuple[int, Callable[[sqlite3.Connection], None]]] = [
    (1, _to_v1), (2, _to_v2), (3, _to_v3), (4, _to_v4), (5, _to_v5), (6, _to_v6),
]
CURRENT_VERSION = MIGRATIONS[-1][0]


def stored_version(connection: sqlite3.Connection) -> int:
    """The layout version of the open database (0: empty)."""
    tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" in tables:
        row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)
    return 1 if "decisions" in tables else 0


def migrate(connection: sqlite3.Connection) -> int:
    """Bring the database (opened with isolation_level=None) to CURRENT_VERSION; returns the version found."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        found = stored_version(connection)
        if found > CURRENT_VERSION:
            raise SchemaMismatch(f"audit schema version {found} is newer than this code's {CURRENT_VERSION}")
        if found < CURRENT_VERSION:
            connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at REAL)")
        for version, step in MIGRATIONS:
            if version > found:
                step(connection)
                connection.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return found
