"""The audit trail's data lifecycle: retention, erasure on request, and the rows that record both.

Both keep the keyed hash chain verifiable (chain.py):

- **Retention** (`prune`) removes a prefix of the chain: every row up to seq S, where S is the last row
  such that it and all rows before it are older than the cut-off. The store's chain start becomes
  (S, hash of S) with a keyed MAC, so `audit verify` begins there; removing rows past a checkpoint,
  or moving it, needs the key.
- **Erasure** (`erase`) blanks the content of one tenant's or one session's rows (requests' prompt and
  answer, decisions' details and subject) in place. A blanked row keeps the hash it was written with,
  so the chain still links; its new values are vouched for by a keyed attestation in `erased_rows`.
  A large scope goes in bounded steps, one transaction each, that a rerun resumes.

Each operation (each step of one) appends one decision row to the chain (hook `retention` or `erasure`,
policy `audit`) saying what was done, in the same transaction, under the head's lock: replicas may run them at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

import orjson

from capsem_proxy.audit.chain import StoredHead, erased_mac, head_mac, link_entries, start_mac
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.rows import COLUMN_NAMES, Entry, clean_values
from capsem_proxy.decisions import new_decision_id

__all__ = ["EraseResult", "PruneResult", "erase", "open_store", "prune"]

T = TypeVar("T")
_PAGE = 2000
# What erasure blanks, per table: column -> the value it gets.
ERASED_COLUMNS: dict[str, dict[str, Any]] = {
    "requests": {"prompt": None, "answer": None},
    "decisions": {"details": "", "subject": ""},
}
_HAS_CONTENT = {
    "requests": "(prompt IS NOT NULL OR answer IS NOT NULL)",
    "decisions": "(details <> '' OR subject <> '')",
}
_TIME_COLUMN = {"requests": "started_at", "decisions": "recorded_at"}


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune removed: rows up to `upto_seq` (0 and no rows: nothing was old enough)."""

    upto_seq: int
    requests: int
    decisions: int
    record_seq: int  # the retention row appended (0 when nothing was removed)


@dataclass(frozen=True, slots=True)
class EraseResult:
    """What an erasure blanked; `record_seq` is the (last) erasure row appended, `steps` how many
    transactions it took (each recorded by its own erasure row)."""

    requests: int
    decisions: int
    record_seq: int
    steps: int = 1


@dataclass(frozen=True, slots=True)
class _ErasureStep:
    result: EraseResult
    upto: int  # the last seq the erasure covers: the head when it began
    complete: bool


class _Tx(Protocol):
    """One transaction on a store, with its chain head locked."""

    async def rows(self, sql: str, *params: Any) -> list[Sequence[Any]]: ...

    async def run(self, sql: str, *params: Any) -> int: ...

    async def run_many(self, sql: str, params: list[tuple[Any, ...]]) -> None: ...

    async def locked_head(self) -> StoredHead: ...


def _record(hook: str, reason: str, details: dict[str, Any], tenant_id: str = "", session_id: str = "") -> Entry:
    """The decision row recording a lifecycle operation."""
    values = (new_decision_id(), "", tenant_id, session_id, "", "capsem-proxy", "audit", "", hook, "audit", "LOG",
              reason, orjson.dumps(details).decode(), "", 0.0, time.time(), 1, False)
    return ("decisions", values)


async def _append(tx: _Tx, key: ChainKey, head: StoredHead, entry: Entry) -> int:
    """Chain `entry` after the head and move the head; returns its seq."""
    batch = link_entries([entry], head.seq, head.hash, key)
    for table, params in batch.params.items():
        names = ("seq", *COLUMN_NAMES[table], "prev_hash", "hash")
        for row in params:
            await tx.run(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", *row)
    mac = head_mac(key, head.store_id, batch.last_seq, batch.last_hash, head.keyed_from)
    await tx.run("UPDATE chain_head SET seq = ?, hash = ?, mac = ? WHERE id = 1", batch.last_seq, batch.last_hash, mac)
    return batch.last_seq


async def _prune(tx: _Tx, key: ChainKey, before: float, max_rows: int) -> PruneResult:
    head = await tx.locked_head()
    firsts = []
    for table, column in _TIME_COLUMN.items():
        (first,) = (await tx.rows(f"SELECT MIN(seq) FROM {table} WHERE {column} >= ?", float(before)))[0]
        if first is not None:
            firsts.append(int(first))
    started = await tx.rows("SELECT seq FROM chain_start")
    start = int(started[0][0]) if started else 0
    # Every row up to `upto` is older than the cut-off; at most max_rows go per transaction, so that
    # writers wait for the head's lock a bounded time (the seqs after the start are contiguous).
    upto = min(min(firsts) - 1 if firsts else head.seq, start + max_rows)
    if upto <= start:
        return PruneResult(0, 0, 0, 0)
    found = await tx.rows("SELECT hash FROM requests WHERE seq = ? UNION ALL SELECT hash FROM decisions WHERE seq = ?",
                          upto, upto)
    if not found:
        raise ValueError(f"audit row {upto} is missing: verify the store before pruning it")
    upto_hash = str(found[0][0])
    removed = {table: await tx.run(f"DELETE FROM {table} WHERE seq <= ?", upto) for table in _TIME_COLUMN}
    await tx.run("DELETE FROM erased_rows WHERE seq <= ?", upto)
    await tx.run("DELETE FROM chain_start")
    await tx.run("INSERT INTO chain_start (id, seq, hash, pruned_at, mac) VALUES (1, ?, ?, ?, ?)", upto, upto_hash,
                 time.time(), start_mac(key, head.store_id, upto, upto_hash))
    details = {"upto_seq": upto, "before": before, "requests": removed["requests"], "decisions": removed["decisions"]}
    record_seq = await _append(tx, key, head, _record("retention", "audit retention", details))
    return PruneResult(upto, removed["requests"], removed["decisions"], record_seq)


async def _erase(tx: _Tx, key: ChainKey, column: str, value: str, upto: int | None, max_rows: int) -> _ErasureStep:
    """One step of an erasure: blank at most `max_rows` rows of the scope with seq up to `upto` (the head
    at the first step when None), attest them and record the step."""
    head = await tx.locked_head()
    bound = head.seq if upto is None else upto
    erasure_seq = head.seq + 1  # the erasure row's, appended last
    counts = dict.fromkeys(ERASED_COLUMNS, 0)
    left = max_rows
    for table, blanks in ERASED_COLUMNS.items():
        names = COLUMN_NAMES[table]
        positions = {names.index(name): blank for name, blank in blanks.items()}
        update = f"UPDATE {table} SET {', '.join(f'{name} = ?' for name in blanks)} WHERE seq = ?"
        after = 0
        while left > 0:
            selected = f"seq, {', '.join(names)}, prev_hash, hash"
            page = await tx.rows(_erasable(table, column, selected, min(_PAGE, left)), value, after, bound)
            if not page:
                break
            attestations = []
            for record in page:
                seq, prev_hash, row_hash = int(record[0]), str(record[-2]), str(record[-1])
                values = list(clean_values(table, record[1:-2]))
                for position, blank in positions.items():
                    values[position] = blank
                attestations.append((seq, erasure_seq, erased_mac(key, table, seq, prev_hash, tuple(values), row_hash,
                                                                  erasure_seq)))
            await tx.run_many(update, [(*blanks.values(), seq) for seq, _, _ in attestations])
            await tx.run_many("INSERT INTO erased_rows (seq, erasure_seq, mac) VALUES (?, ?, ?)", attestations)
            counts[table] += len(page)
            left -= len(page)
            after = attestations[-1][0]
    complete = True
    for table in ERASED_COLUMNS:
        if await tx.rows(_erasable(table, column, "seq", 1), value, 0, bound):
            complete = False
            break
    details = {column: value, "requests": counts["requests"], "decisions": counts["decisions"],
               "upto_seq": bound, "complete": complete}
    scope = {"tenant_id": value} if column == "tenant_id" else {"session_id": value}
    record_seq = await _append(tx, key, head, _record("erasure", "erasure on request", details, **scope))
    return _ErasureStep(EraseResult(counts["requests"], counts["decisions"], record_seq), bound, complete)


def _erasable(table: str, column: str, selected: str, limit: int) -> str:
    """`selected` of the rows of one scope (`column = ?`) after a seq and up to a seq (`?`, `?`) whose
    content is not yet erased. The rows recording retention and erasure are left alone: they hold no
    one's content, and are the record of what was done."""
    kept = " AND hook NOT IN ('erasure', 'retention')" if table == "decisions" else ""
    return (f"SELECT {selected} FROM {table} WHERE {column} = ? AND seq > ? AND seq <= ? "
            f"AND {_HAS_CONTENT[table]}{kept} AND NOT EXISTS (SELECT 1 FROM erased_rows e WHERE e.seq = {table}.seq) "
            f"ORDER BY seq LIMIT {int(limit)}")


# ------------------------------------------------------------------ running a transaction on each store


class _SQLiteTx:
    def __init__(self, store: Any, connection: Any) -> None:
        self._store, self._connection = store, connection

    async def rows(self, sql: str, *params: Any) -> list[Sequence[Any]]:
        return list(self._connection.execute(sql, params).fetchall())

    async def run(self, sql: str, *params: Any) -> int:
        return int(self._connection.execute(sql, params).rowcount)

    async def run_many(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        self._connection.executemany(sql, params)

    async def locked_head(self) -> StoredHead:
        return self._store._locked_head(self._connection)  # type: ignore[no-any-return]


def _numbered(sql: str) -> str:
    """`?` placeholders as PostgreSQL's $1, $2 (the statements above have no `?` in literals)."""
    parts = sql.split("?")
    return "".join(part + (f"${index}" if index < len(parts) else "") for index, part in enumerate(parts, start=1))


class _PostgresTx:
    def __init__(self, store: Any, connection: Any) -> None:
        self._store, self._connection = store, connection

    async def rows(self, sql: str, *params: Any) -> list[Sequence[Any]]:
        return list(await self._connection.fetch(_numbered(sql), *params))

    async def run(self, sql: str, *params: Any) -> int:
        status = await self._connection.execute(_numbered(sql), *params)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def run_many(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        if params:
            await self._connection.executemany(_numbered(sql), params)

    async def locked_head(self) -> StoredHead:
        return await self._store._locked_head(self._connection)  # type: ignore[no-any-return]


async def _in_transaction(store: Any, work: Callable[[_Tx], Coroutine[Any, Any, T]]) -> T:
    from capsem_proxy.audit.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):

        def on_write_thread() -> T:
            connection = store._connect_writer()
            return store._in_transaction(connection, lambda conn: asyncio.run(work(_SQLiteTx(store, conn))))

        return await store._on(store._write_thread, on_write_thread)
    async with store._opened().acquire(timeout=store._timeout) as connection, connection.transaction():
        return await work(_PostgresTx(store, connection))


def open_store(url: str, key: ChainKey) -> Any:
    """A writable SQL store for `url` (call `await store.open()`, which migrates it)."""
    from capsem_proxy.config import ConfigError
    from capsem_proxy.extras import needs_extra

    if url.startswith("sqlite:///"):
        from capsem_proxy.audit.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"), key=key)
    if url.startswith(("postgresql://", "postgres://")):
        with needs_extra("audit.url postgresql://"):
            from capsem_proxy.audit.postgres import PostgresStore

        return PostgresStore(url, key=key)
    raise ConfigError(f"audit.url {url.split(':', 1)[0]}: retention and erasure need a SQLite or PostgreSQL store")


async def prune(store: Any, key: ChainKey, before: float, *, max_rows: int = 50_000) -> PruneResult:
    """Remove the chain's rows older than `before` (unix seconds), leaving a signed checkpoint; at most
    `max_rows` rows per transaction (each step is recorded). Returns the totals and the last step's seqs."""
    total = PruneResult(0, 0, 0, 0)
    while True:
        step = await _in_transaction(store, lambda tx: _prune(tx, key, before, max(1, max_rows)))
        if not step.upto_seq:
            return total
        total = PruneResult(step.upto_seq, total.requests + step.requests, total.decisions + step.decisions,
                            step.record_seq)


async def erase(
    store: Any, key: ChainKey, *, tenant_id: str | None = None, session_id: str | None = None,
    max_rows: int = 10_000,
) -> EraseResult:
    """Blank the stored content of one tenant's (or one session's) rows, keeping the chain verifiable.

    Rows written up to the moment it begins are erased, at most `max_rows` per transaction so that
    writers wait for the head's lock a bounded time; each step appends its own erasure row (`complete`
    false until the last). Stopped half-way, it resumes where it was when run again: rows already
    erased are not selected twice."""
    if (tenant_id is None) == (session_id is None):
        raise ValueError("erase one tenant or one session")
    column, value = ("tenant_id", tenant_id) if tenant_id is not None else ("session_id", session_id)
    if not value:
        raise ValueError(f"erase: an empty {column} would name every row without one")
    requests = decisions = steps = 0
    upto: int | None = None
    while True:
        step = await _in_transaction(
            store, partial(_erase, key=key, column=column, value=str(value), upto=upto, max_rows=max(1, max_rows))
        )
        upto, steps = step.upto, steps + 1
        requests, decisions = requests + step.result.requests, decisions + step.result.decisions
        if step.complete:
            return EraseResult(requests, decisions, step.result.record_seq, steps)
