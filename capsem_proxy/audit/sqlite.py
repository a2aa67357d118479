"""The default audit store: a SQLite file in WAL mode. Writes run on one thread of their own, reads on
another (WAL lets them overlap); several worker processes may share the file (each batch is one
IMMEDIATE transaction that extends the chain from the head it reads)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from capsem_proxy.audit.chain import StoredHead, head_mac, linked_rows
from capsem_proxy.audit.errors import ChainKeyMismatch, SchemaMismatch
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.queued import QueuedAuditSink
from capsem_proxy.audit.rows import COLUMN_NAMES, COLUMNS, Entry, Kind
from capsem_proxy.audit.sql import SQLiteDialect, SQLQueries, Statements
from capsem_proxy.audit.sqlite_schema import CURRENT_VERSION, migrate, stored_version
from capsem_proxy.config import AuditSettings

__all__ = ["SQLiteAuditSink", "SQLiteStore"]

T = TypeVar("T")

# Rows per INSERT statement. executemany runs one statement per row, and its per-row work (a Python
# iteration, a reset and a halt of the statement) cost about a quarter of inserting an audit row; one
# statement of many rows does that once. A batch goes in statements of 64 rows, its remainder in
# statements of 32, 16, ... 1 rows, so that each table has only a few statement texts, all kept
# prepared by the connection. Sizes whose values pass the connection's limit of host parameters are
# skipped (32,766 since SQLite 3.32, 999 before).
_CHUNK_SIZES = (64, 32, 16, 8, 4, 2, 1)
_HEAD = "SELECT seq, hash, keyed_from, key_id, store_id, mac FROM chain_head WHERE id = 1"

# sqlite3 binds a str, int or float as it is, but hands any other value to its adapters first: a None
# or a bool costs that lookup (a key tuple, a dictionary lookup, a call), about as much as binding two
# texts. Without a registered adapter it also failed two attribute lookups, building and discarding an
# AttributeError each time, before being bound as NULL or as 0/1; registering the conversions it falls
# back to anyway makes that one dictionary lookup and a C call (the None adapter is a dictionary's
# C-level lookup: no Python frame per value). What is stored is unchanged.
sqlite3.register_adapter(bool, int)
sqlite3.register_adapter(type(None), {None: None}.__getitem__)


@dataclass(frozen=True, eq=False)
class _Shape:
    """The rows of one table as they are bound: seq, the values (a request's prompt and answer left out
    when it stores no content, the default: the statement leaves them NULL, so that their Nones are not
    bound), prev_hash and hash. The row's one bool column goes in as 0/1 (adapters never see it)."""

    width: int  # parameters per row
    statements: dict[int, str]  # the INSERT of that many rows
    flag: int  # the bool column's index in the row's values, counted from their end
    cut: slice | None  # the values left out, counted from their end

    @classmethod
    def of(cls, table: str, omitted: tuple[str, ...] = ()) -> _Shape:
        names = COLUMN_NAMES[table]
        (flag,) = (index for index, (_, kind) in enumerate(COLUMNS[table]) if kind is Kind.BOOL)
        cut = None
        if omitted:
            first = names.index(omitted[0])
            assert names[first:first + len(omitted)] == omitted and flag < first
            cut = slice(first - len(names), first + len(omitted) - len(names) or None)
        columns = ("seq", *(name for name in names if name not in omitted), "prev_hash", "hash")
        row = f"({', '.join('?' * len(columns))})"
        # Columns named: ALTER TABLE ADD COLUMN puts new columns after the hashes.
        statements = {size: f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([row] * size)
                      for size in _CHUNK_SIZES}
        return cls(len(columns), statements, flag - len(names), cut)


_REQUESTS = _Shape.of("requests")
_REQUESTS_WITHOUT_CONTENT = _Shape.of("requests", ("prompt", "answer"))
_DECISIONS = _Shape.of("decisions")
_PROMPT, _ANSWER = COLUMN_NAMES["requests"].index("prompt"), COLUMN_NAMES["requests"].index("answer")


def _link(
    entries: list[Entry], last_seq: int, last_hash: str, key: ChainKey
) -> tuple[dict[_Shape, list[Any]], int, str]:
    """chain.link_entries for this store (its rows chained by chain.linked_rows): the insert
    parameters of each shape of row as one flat list, row after row, which the multi-row statements
    take in slices (building a tuple per row and flattening them again cost about 3 % of writing a
    row). Also returns the last seq and hash."""
    params: dict[_Shape, list[Any]] = {_REQUESTS: [], _REQUESTS_WITHOUT_CONTENT: [], _DECISIONS: []}
    seq, digest = last_seq, last_hash
    for table, seq, cleaned, previous, digest in linked_rows(entries, last_seq, last_hash, key):
        if table == "decisions":
            shape = _DECISIONS
        elif cleaned[_PROMPT] is None and cleaned[_ANSWER] is None:
            shape = _REQUESTS_WITHOUT_CONTENT
        else:
            shape = _REQUESTS
        flat = params[shape]
        flat.append(seq)
        flat += cleaned
        flat[shape.flag] = int(flat[shape.flag])
        if shape.cut is not None:
            del flat[shape.cut]
        flat += (previous, digest)
    return params, seq, digest


def _insert(connection: sqlite3.Connection, shape: _Shape, flat: list[Any], max_params: int) -> None:
    """Insert the rows of `flat` (their parameters, row after row, in the shape's order), many rows per
    statement, at most `max_params` parameters each."""
    statements = shape.statements
    width = shape.width
    most = max(1, max_params // width)
    start, left = 0, len(flat) // width
    for size in _CHUNK_SIZES:
        count = left // size if size <= most else 0
        if count:
            span = size * width
            end = start + count * span
            connection.executemany(statements[size], [flat[at:at + span] for at in range(start, end, span)])
            start, left = end, left - count * size


class SQLiteStore(SQLQueries):
    """One SQLite audit file. `readonly` stores (the audit CLI) never create, migrate or write."""

    def __init__(
        self, path: str | Path, *, key: ChainKey | None = None, busy_timeout: float = 5.0, readonly: bool = False
    ) -> None:
        self.path = Path(path)
        self.description = f"sqlite:///{self.path}"
        self._key = key
        self._busy_timeout = busy_timeout
        self._readonly = readonly
        self._writer: sqlite3.Connection | None = None
        self._max_params = 999  # the writer's limit of host parameters per statement, read when it connects
        self._reader: sqlite3.Connection | None = None
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="audit-sqlite-write")
        self._read_thread = ThreadPoolExecutor(1, thread_name_prefix="audit-sqlite-read")
        self.statements = Statements(SQLiteDialect)

    async def _on(self, thread: ThreadPoolExecutor, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(thread, call, *args)

    # Writing (on the write thread).

    def _connect_writer(self) -> sqlite3.Connection:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                self._max_params = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
                migrate(connection)
                self._in_transaction(connection, self._claim)
            except BaseException:
                connection.close()
                raise
            self._writer = connection
        return self._writer

    def _signing_key(self) -> ChainKey:
        if self._key is None:
            raise ValueError(f"audit store {self.description}: writing needs the chain key")
        return self._key

    def _head_row(self, connection: sqlite3.Connection) -> tuple[int, str, int, str, str, str]:
        """The head's columns (as StoredHead orders them), inside the writer's transaction; refuses a
        head keyed with another key."""
        head = connection.execute(_HEAD).fetchone()
        if head[3] and head[3] != self._signing_key().key_id:
            raise ChainKeyMismatch(self.description, head[3], self._signing_key().key_id)
        return head  # type: ignore[no-any-return]

    def _locked_head(self, connection: sqlite3.Connection) -> StoredHead:
        """The head, inside the writer's transaction; refuses a head keyed with another key."""
        seq, digest, keyed_from, key_id, store_id, mac = self._head_row(connection)
        return StoredHead(int(seq), digest, int(keyed_from), key_id, store_id, mac)

    def _claim(self, connection: sqlite3.Connection) -> None:
        """Name this proxy's key in a head that names none yet (a new or just migrated store)."""
        head = self._locked_head(connection)
        if not head.key_id:
            key = self._signing_key()
            mac = head_mac(key, head.store_id, head.seq, head.hash, head.keyed_from)
            connection.execute("UPDATE chain_head SET key_id = ?, mac = ? WHERE id = 1", (key.key_id, mac))

    @staticmethod
    def _in_transaction(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return result

    def _append(self, connection: sqlite3.Connection, entries: list[Entry]) -> StoredHead:
        if not entries:
            return self._locked_head(connection)
        # The head read as columns: a StoredHead (a frozen dataclass) costs about 10k instructions to
        # build, and only the new one is returned.
        seq, digest, keyed_from, _, store_id, _ = self._head_row(connection)
        key = self._signing_key()
        params, last_seq, last_hash = _link(entries, int(seq), digest, key)
        for shape, flat in params.items():
            if flat:
                _insert(connection, shape, flat, self._max_params)
        mac = head_mac(key, store_id, last_seq, last_hash, int(keyed_from))
        connection.execute("UPDATE chain_head SET seq = ?, hash = ?, mac = ? WHERE id = 1", (last_seq, last_hash, mac))
        return StoredHead(last_seq, last_hash, int(keyed_from), key.key_id, store_id, mac)

    def _write(self, entries: list[Entry]) -> StoredHead:
        connection = self._connect_writer()
        try:
            return self._in_transaction(connection, lambda connection: self._append(connection, entries))
        except sqlite3.OperationalError:
            # Locked, read-only, I/O error, file gone: start from a fresh connection next time.
            self._close_writer()
            raise

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def open(self) -> None:
        if self._readonly:
            await self._on(self._read_thread, self._connect_reader)
        else:
            await self._on(self._write_thread, self._connect_writer)

    async def write(self, entries: list[Entry]) -> StoredHead:
        return await self._on(self._write_thread, self._write, entries)

    def is_permanent(self, error: BaseException) -> bool:
        # OperationalError is an outage (locked, read-only, disk); the others are about the rows.
        return isinstance(error, sqlite3.DatabaseError | ValueError | TypeError | OverflowError) and not isinstance(
            error, sqlite3.OperationalError
        )

    async def close(self) -> None:
        await self._on(self._write_thread, self._close_writer)
        await self._on(self._read_thread, self._close_reader)
        self._write_thread.shutdown(wait=False)
        self._read_thread.shutdown(wait=False)

    # Reading (on the read thread).

    def _connect_reader(self) -> sqlite3.Connection:
        if self._reader is None:
            if not self.path.exists():
                raise FileNotFoundError(f"no audit store at {self.path}")
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self._busy_timeout,
                check_same_thread=False,
            )
            try:
                found = stored_version(connection)
            except BaseException:
                connection.close()
                raise
            if found != CURRENT_VERSION:
                connection.close()
                raise SchemaMismatch(
                    f"{self.path} has audit schema version {found}, this proxy reads {CURRENT_VERSION}"
                    + ("; start the proxy once to migrate it" if found < CURRENT_VERSION else "")
                )
            self._reader = connection
        return self._reader

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _fetch_sync(self, statements: list[tuple[str, list[Any]]]) -> list[list[Any]]:
        connection = self._connect_reader()
        return [connection.execute(sql, params).fetchall() for sql, params in statements]

    async def _fetch_all(self, statements: list[tuple[str, list[Any]]]) -> list[list[Any]]:
        return await self._on(self._read_thread, self._fetch_sync, statements)

    def _agent_list(self, aggregate: Any) -> list[str]:
        return list(orjson.loads(aggregate)) if aggregate else []


class SQLiteAuditSink(QueuedAuditSink):
    """The queued sink writing to a SQLite file."""

    def __init__(self, path: str, *, key: ChainKey | None, busy_timeout: float = 5.0, **options: Any) -> None:
        super().__init__(SQLiteStore(path, key=key, busy_timeout=busy_timeout), key=key, **options)

    @property
    def path(self) -> Path:
        return self.store.path  # type: ignore[attr-defined, no-any-return]

    @classmethod
    def from_settings(cls, settings: AuditSettings, key: ChainKey | None, **options: Any) -> SQLiteAuditSink:
        return cls(settings.url.removeprefix("sqlite:///"), key=key, **cls.options(settings), **options)
