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

from capsem_proxy.audit.chain import GENESIS, chain_entries
from capsem_proxy.audit.errors import SchemaMismatch
from capsem_proxy.audit.queued import QueuedAuditSink
from capsem_proxy.audit.rows import COLUMNS, Entry
from capsem_proxy.audit.sql import SQLiteDialect, SQLQueries, Statements
from capsem_proxy.audit.sqlite_schema import CURRENT_VERSION, migrate, stored_version
from capsem_proxy.config import AuditSettings

__all__ = ["SQLiteAuditSink", "SQLiteStore"]

T = TypeVar("T")

_INSERT = {
    table: f"INSERT INTO {table} VALUES ({', '.join('?' * (len(columns) + 3))})" for table, columns in COLUMNS.items()
}


class SQLiteStore(SQLQueries):
    """One SQLite audit file. `readonly` stores (the audit CLI) never create, migrate or write."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0, readonly: bool = False) -> None:
        self.path = Path(path)
        self.description = f"sqlite:///{self.path}"
        self._busy_timeout = busy_timeout
        self._readonly = readonly
        self._writer: sqlite3.Connection | None = None
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
                migrate(connection)
            except BaseException:
                connection.close()
                raise
            self._writer = connection
        return self._writer

    def _write(self, entries: list[Entry]) -> None:
        connection = self._connect_writer()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                last_seq, last_hash = connection.execute("SELECT seq, hash FROM chain_head").fetchone() or (0, GENESIS)
                rows = chain_entries(entries, last_seq, last_hash)
                for table in ("requests", "decisions"):
                    values = [(row.seq, *row.values, row.prev_hash, row.hash) for row in rows if row.table == table]
                    if values:
                        connection.executemany(_INSERT[table], values)
                connection.execute(
                    "INSERT INTO chain_head VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, "
                    "hash = excluded.hash",
                    (rows[-1].seq, rows[-1].hash),
                )
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
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

    async def write(self, entries: list[Entry]) -> None:
        if entries:
            await self._on(self._write_thread, self._write, entries)

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

    def __init__(self, path: str, *, busy_timeout: float = 5.0, **options: Any) -> None:
        super().__init__(SQLiteStore(path, busy_timeout=busy_timeout), **options)

    @property
    def path(self) -> Path:
        return self.store.path  # type: ignore[attr-defined, no-any-return]

    @classmethod
    def from_settings(cls, settings: AuditSettings) -> SQLiteAuditSink:
        return cls(settings.url.removeprefix("sqlite:///"), **cls.options(settings))
