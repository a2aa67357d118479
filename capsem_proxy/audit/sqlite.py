"""The default audit store: a SQLite file in WAL mode. Writes run on one thread of their own, reads on
another (WAL lets them overlap); several worker processes may share the file (each batch is one
IMMEDIATE transaction that extends the chain from the head it reads)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from capsem_proxy.audit.chain import StoredHead, head_mac
from capsem_proxy.audit.errors import ChainKeyMismatch, SchemaMismatch
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.queued import QueuedAuditSink
from capsem_proxy.audit.rows import COLUMN_NAMES, Entry, encode_row
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
_WIDTH = {table: len(names) + 3 for table, names in COLUMN_NAMES.items()}
# Columns named: ALTER TABLE ADD COLUMN puts new columns after the hashes.
_INSERT = {
    table: {
        size: f"INSERT INTO {table} (seq, {', '.join(names)}, prev_hash, hash) VALUES "
        + ", ".join([f"({', '.join('?' * (len(names) + 3))})"] * size)
        for size in _CHUNK_SIZES
    }
    for table, names in COLUMN_NAMES.items()
}
_HEAD = "SELECT seq, hash, keyed_from, key_id, store_id, mac FROM chain_head WHERE id = 1"

# sqlite3 binds a str, int or float as it is, but looks every other value up as an adapter first: a
# None or a bool (a request row has several) failed that lookup twice, building and discarding an
# AttributeError each time, before being bound as NULL or as 0/1. Registering the conversions it
# falls back to anyway makes that one dictionary lookup and a C call; what is stored is unchanged.
# (The None adapter is a dictionary's C-level lookup: no Python frame per value.)
sqlite3.register_adapter(bool, int)
sqlite3.register_adapter(type(None), {None: None}.__getitem__)


def _link(entries: list[Entry], last_seq: int, last_hash: str, key: ChainKey) -> tuple[dict[str, list[Any]], int, str]:
    """chain.link_entries for this store: each table's insert parameters as one flat list, row after
    row (seq, the values, prev_hash, hash), which the multi-row statements take in slices (building a
    tuple per row and flattening them again cost about 4 % of writing a row). Also returns the last
    seq and hash."""
    params: dict[str, list[Any]] = {"requests": [], "decisions": []}
    seq, previous = last_seq, last_hash
    mac = key.mac
    for table, values in entries:
        seq += 1
        cleaned, payload = encode_row(table, seq, previous, values)
        digest = mac(payload)
        flat = params[table]
        flat.append(seq)
        flat += cleaned
        flat += (previous, digest)
        previous = digest
    return params, seq, previous


def _insert(connection: sqlite3.Connection, table: str, flat: list[Any], max_params: int) -> None:
    """Insert the rows of `flat` (their parameters, row after row, in column order) into `table`, many
    rows per statement, at most `max_params` parameters each."""
    statements = _INSERT[table]
    width = _WIDTH[table]
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

    def _locked_head(self, connection: sqlite3.Connection) -> StoredHead:
        """The head, inside the writer's transaction; refuses a head keyed with another key."""
        seq, digest, keyed_from, key_id, store_id, mac = connection.execute(_HEAD).fetchone()
        head = StoredHead(int(seq), digest, int(keyed_from), key_id, store_id, mac)
        if head.key_id and head.key_id != self._signing_key().key_id:
            raise ChainKeyMismatch(self.description, head.key_id, self._signing_key().key_id)
        return head

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
        head = self._locked_head(connection)
        if not entries:
            return head
        key = self._signing_key()
        params, last_seq, last_hash = _link(entries, head.seq, head.hash, key)
        for table, flat in params.items():
            if flat:
                _insert(connection, table, flat, self._max_params)
        mac = head_mac(key, head.store_id, last_seq, last_hash, head.keyed_from)
        connection.execute("UPDATE chain_head SET seq = ?, hash = ?, mac = ? WHERE id = 1", (last_seq, last_hash, mac))
        return StoredHead(last_seq, last_hash, head.keyed_from, key.key_id, head.store_id, mac)

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
