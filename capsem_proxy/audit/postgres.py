"""The PostgreSQL audit store (asyncpg), for proxies scaled out over several hosts.

URL: `postgresql://user[:password]@host:5432/db[?schema=name]`; the tables live in `name`
(default `capsem_audit`), created on first start. Each batch is one transaction that locks the chain's
head row (`SELECT ... FOR UPDATE`), links its rows after it and inserts them with COPY: replicas writing
to one database take turns, so their rows form one unbroken chain."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from capsem_proxy.audit.chain import StoredHead, head_mac, link_entries
from capsem_proxy.audit.errors import ChainKeyMismatch, SchemaMismatch
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.postgres_schema import CURRENT_VERSION, migrate, quote, stored_version
from capsem_proxy.audit.queued import QueuedAuditSink
from capsem_proxy.audit.rows import COLUMN_NAMES, Entry
from capsem_proxy.audit.sql import PostgresDialect, SQLQueries, Statements
from capsem_proxy.config import AuditSettings, ConfigError

__all__ = ["DEFAULT_SCHEMA", "PostgresAuditSink", "PostgresStore", "split_url"]

DEFAULT_SCHEMA = "capsem_audit"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_COPY_COLUMNS = {table: ["seq", *names, "prev_hash", "hash"] for table, names in COLUMN_NAMES.items()}
# Errors about the rows themselves: the same rows would fail again (anything else is an outage).
_PERMANENT = (asyncpg.DataError, ValueError, TypeError, OverflowError)


def split_url(url: str) -> tuple[str, str, str]:
    """(dsn for asyncpg, schema, description without password) of an audit URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), DEFAULT_SCHEMA)
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(f"audit.url: schema '{schema}' is not a plain identifier (letters, digits, _)")
    dsn = urlunsplit(parts._replace(query=urlencode([(key, value) for key, value in query if key != "schema"])))
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return dsn, schema, urlunsplit(parts._replace(netloc=netloc))


def _identity(table: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """What names a row: the request id of a request, (decision id, request id) of a decision."""
    return (values[0],) if table == "requests" else (values[0], values[1])


class PostgresStore(SQLQueries):
    """One audit schema in a PostgreSQL database. `readonly` stores (the audit CLI) never migrate or write."""

    def __init__(
        self, url: str, *, key: ChainKey | None = None, readonly: bool = False, timeout: float = 10.0
    ) -> None:
        self.dsn, self.schema, self.description = split_url(url)
        self._key = key
        self._readonly = readonly
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        # Set when a write failed in a way that leaves its commit unknown (the connection died while
        # COMMIT was on the wire): the next write leaves out the rows that did reach the store.
        self._maybe_committed = False
        self.statements = Statements(PostgresDialect)

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=4, timeout=self._timeout, command_timeout=max(30.0, self._timeout),
            server_settings={"search_path": self.schema, "application_name": "capsem-proxy-audit"},
        )
        try:
            async with pool.acquire() as connection:
                if self._readonly:
                    found = await stored_version(connection, self.schema)
                    if found != CURRENT_VERSION:
                        raise SchemaMismatch(
                            f"schema {self.schema} of {self.description} has audit schema version {found}, "
                            f"this proxy reads {CURRENT_VERSION}"
                            + ("; start the proxy once to create or migrate it" if found < CURRENT_VERSION else "")
                        )
                else:
                    await migrate(connection, self.schema)
                    async with connection.transaction():
                        await self._claim(connection)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    def _opened(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ConnectionError(f"audit store {self.description} is not open")
        return self._pool

    def _signing_key(self) -> ChainKey:
        if self._key is None:
            raise ValueError(f"audit store {self.description}: writing needs the chain key")
        return self._key

    async def _locked_head(self, connection: Any) -> StoredHead:
        """The head, locked for the transaction; refuses a head keyed with another key."""
        row = await connection.fetchrow(
            "SELECT seq, hash, keyed_from, key_id, store_id, mac FROM chain_head WHERE id = 1 FOR UPDATE"
        )
        head = StoredHead(int(row["seq"]), row["hash"], int(row["keyed_from"]), row["key_id"], row["store_id"],
                          row["mac"])
        if head.key_id and head.key_id != self._signing_key().key_id:
            raise ChainKeyMismatch(self.description, head.key_id, self._signing_key().key_id)
        return head

    async def _claim(self, connection: Any) -> None:
        """Name this proxy's key in a head that names none yet (a new or just migrated store)."""
        head = await self._locked_head(connection)
        if not head.key_id:
            key = self._signing_key()
            mac = head_mac(key, head.store_id, head.seq, head.hash, head.keyed_from)
            await connection.execute("UPDATE chain_head SET key_id = $1, mac = $2 WHERE id = 1", key.key_id, mac)

    async def write(self, entries: list[Entry]) -> StoredHead:
        try:
            head = await self._write(entries)
        except Exception as exc:
            if not self.is_permanent(exc):
                self._maybe_committed = True
            raise
        self._maybe_committed = False
        return head

    async def _write(self, entries: list[Entry]) -> StoredHead:
        async with self._opened().acquire(timeout=self._timeout) as connection, connection.transaction():
            head = await self._locked_head(connection)
            if entries and self._maybe_committed:
                entries = await self._not_yet_stored(connection, entries)
            if not entries:
                return head
            key = self._signing_key()
            # Hashing a batch takes milliseconds: off the event loop, while the head stays locked.
            batch = await asyncio.to_thread(link_entries, entries, head.seq, head.hash, key)
            for table, records in batch.params.items():
                if records:
                    await connection.copy_records_to_table(
                        table, records=records, columns=_COPY_COLUMNS[table], schema_name=self.schema
                    )
            mac = head_mac(key, head.store_id, batch.last_seq, batch.last_hash, head.keyed_from)
            await connection.execute("UPDATE chain_head SET seq = $1, hash = $2, mac = $3 WHERE id = 1",
                                     batch.last_seq, batch.last_hash, mac)
            return StoredHead(batch.last_seq, batch.last_hash, head.keyed_from, key.key_id, head.store_id, mac)

    async def _not_yet_stored(self, connection: Any, entries: list[Entry]) -> list[Entry]:
        """The entries of a retried batch that are not in the store yet. A batch is one transaction, so
        after an unknown outcome either all its rows are there or none; the retried batch may also hold
        rows queued since. A request row is known by its request id, a decision by its id and request."""
        request_ids = [values[0] for table, values in entries if table == "requests"]
        decided_in = list({values[1] for table, values in entries if table == "decisions"})
        stored: set[tuple[str, Any]] = set()
        if request_ids:
            rows = await connection.fetch("SELECT request_id FROM requests WHERE request_id = ANY($1::text[])",
                                          request_ids)
            stored.update(("requests", (row["request_id"],)) for row in rows)
        if decided_in:  # looked up by request id, which is indexed
            rows = await connection.fetch(
                "SELECT decision_id, request_id FROM decisions WHERE request_id = ANY($1::text[])", decided_in
            )
            stored.update(("decisions", (row["decision_id"], row["request_id"])) for row in rows)
        if not stored:
            return entries
        return [(table, values) for table, values in entries if (table, _identity(table, values)) not in stored]

    def is_permanent(self, error: BaseException) -> bool:
        return isinstance(error, _PERMANENT)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                pool.terminate()

    async def _fetch_all(self, statements: list[tuple[str, list[Any]]]) -> list[list[Sequence[Any]]]:
        async with self._opened().acquire(timeout=self._timeout) as connection:
            return [await connection.fetch(sql, *params) for sql, params in statements]

    async def drop(self) -> None:
        """Delete the schema and everything in it (tests)."""
        async with self._opened().acquire(timeout=self._timeout) as connection:
            await connection.execute(f"DROP SCHEMA IF EXISTS {quote(self.schema)} CASCADE")


class PostgresAuditSink(QueuedAuditSink):
    """The queued sink writing to PostgreSQL."""

    def __init__(self, url: str, *, key: ChainKey | None, **options: Any) -> None:
        super().__init__(PostgresStore(url, key=key), key=key, **options)

    @classmethod
    def from_settings(cls, settings: AuditSettings, key: ChainKey | None, **options: Any) -> PostgresAuditSink:
        return cls(settings.url, key=key, **cls.options(settings), **options)
