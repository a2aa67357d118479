"""Where gateway keys and spend live: beside the audit trail, in the same database, in tables of
their own (`gateway_*`, with their own schema version in `gateway_schema`). SQLite by default,
PostgreSQL when the audit store is, memory for memory:// audits."""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from capsem_proxy.extras import needs_extra
from capsem_proxy.gateway.keys import GatewayKey

__all__ = ["GROUPS", "KeyStore", "MemoryKeyStore", "SQLiteKeyStore", "UsageRow", "open_key_store"]

T = TypeVar("T")

SCHEMA_VERSION = 1
GROUPS = ("tenant", "key", "model", "provider")
_GROUP_COLUMNS = {"tenant": "tenant", "key": "key_id", "model": "model", "provider": "provider"}
_KEY_COLUMNS = (
    "id", "tenant", "name", "key_hash", "hint", "created_at", "providers", "models", "sealed_provider_keys",
    "expires_at", "limits", "policy_set", "revoked_at",
)
_JSON_COLUMNS = frozenset({"providers", "models", "sealed_provider_keys", "limits"})


@dataclass(slots=True)
class UsageRow:
    """Usage summed per hour, tenant, key, provider and model."""

    hour: int  # unix seconds, start of the hour
    tenant: str
    key_id: str
    provider: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


def _row_to_key(row: Iterable[Any]) -> GatewayKey:
    values = dict(zip(_KEY_COLUMNS, row, strict=True))
    for name in _JSON_COLUMNS:
        values[name] = orjson.loads(values[name]) if values[name] else ([] if name in ("providers", "models") else {})
    return GatewayKey(**values)


def _key_to_row(key: GatewayKey) -> tuple[Any, ...]:
    return tuple(
        orjson.dumps(getattr(key, name)).decode() if name in _JSON_COLUMNS else getattr(key, name)
        for name in _KEY_COLUMNS
    )


def _spend_rows(rows: Iterable[Iterable[Any]]) -> list[dict[str, Any]]:
    return [
        {"group": group, "requests": int(requests or 0), "input_tokens": int(inp or 0),
         "output_tokens": int(out or 0), "cost_usd": round(float(cost or 0.0), 6)}
        for group, requests, inp, out, cost in rows
    ]


class KeyStore(ABC):
    """Gateway keys and their usage."""

    description = ""

    async def open(self) -> None:  # noqa: B027 - optional
        """Create or check the tables."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""

    @abstractmethod
    async def insert(self, key: GatewayKey) -> None: ...

    @abstractmethod
    async def by_hash(self, key_hash: str) -> GatewayKey | None: ...

    @abstractmethod
    async def get(self, key_id: str) -> GatewayKey | None: ...

    @abstractmethod
    async def list(self) -> list[GatewayKey]: ...

    @abstractmethod
    async def revoke(self, key_id: str, at: float) -> bool:
        """Mark a key revoked; False when no such key (or already revoked)."""

    @abstractmethod
    async def reseal(self, key_id: str, sealed: dict[str, str]) -> None: ...

    @abstractmethod
    async def add_usage(self, rows: builtins.list[UsageRow]) -> None: ...

    @abstractmethod
    async def spend(self, group_by: str, since: float) -> builtins.list[dict[str, Any]]: ...


class MemoryKeyStore(KeyStore):
    """Keys in process memory (tests, memory:// audits)."""

    description = "memory://"

    def __init__(self) -> None:
        self._keys: dict[str, GatewayKey] = {}
        self._usage: dict[tuple[int, str, str, str, str], list[float]] = {}

    async def insert(self, key: GatewayKey) -> None:
        self._keys[key.id] = key

    async def by_hash(self, key_hash: str) -> GatewayKey | None:
        return next((key for key in self._keys.values() if key.key_hash == key_hash), None)

    async def get(self, key_id: str) -> GatewayKey | None:
        return self._keys.get(key_id)

    async def list(self) -> list[GatewayKey]:
        return sorted(self._keys.values(), key=lambda key: key.created_at)

    async def revoke(self, key_id: str, at: float) -> bool:
        key = self._keys.get(key_id)
        if key is None or key.revoked_at is not None:
            return False
        key.revoked_at = at
        return True

    async def reseal(self, key_id: str, sealed: dict[str, str]) -> None:
        self._keys[key_id].sealed_provider_keys = sealed

    async def add_usage(self, rows: builtins.list[UsageRow]) -> None:
        for row in rows:
            sums = self._usage.setdefault((row.hour, row.tenant, row.key_id, row.provider, row.model), [0, 0, 0, 0.0])
            sums[0] += row.requests
            sums[1] += row.input_tokens
            sums[2] += row.output_tokens
            sums[3] += row.cost_usd

    async def spend(self, group_by: str, since: float) -> builtins.list[dict[str, Any]]:
        index = {"tenant": 1, "key": 2, "provider": 3, "model": 4}[group_by]
        groups: dict[str, list[float]] = {}
        for ident, sums in self._usage.items():
            if ident[0] >= since:
                total = groups.setdefault(str(ident[index]), [0, 0, 0, 0.0])
                for position, value in enumerate(sums):
                    total[position] += value
        rows = [(group, *sums) for group, sums in groups.items()]
        return sorted(_spend_rows(rows), key=lambda row: -row["cost_usd"])


_SQLITE_TABLES = (
    "CREATE TABLE IF NOT EXISTS gateway_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gateway_keys (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, name TEXT NOT NULL, "
    "key_hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL, created_at REAL NOT NULL, providers TEXT NOT NULL, "
    "models TEXT NOT NULL, sealed_provider_keys TEXT NOT NULL, expires_at REAL, limits TEXT NOT NULL, "
    "policy_set TEXT, revoked_at REAL)",
    "CREATE TABLE IF NOT EXISTS gateway_usage (hour INTEGER NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL, "
    "provider TEXT NOT NULL, model TEXT NOT NULL, requests INTEGER NOT NULL, input_tokens INTEGER NOT NULL, "
    "output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL, PRIMARY KEY (hour, tenant, key_id, provider, model))",
)
_USAGE_UPSERT = (
    "INSERT INTO gateway_usage (hour, tenant, key_id, provider, model, requests, input_tokens, output_tokens, "
    "cost_usd) VALUES ({p}) ON CONFLICT (hour, tenant, key_id, provider, model) DO UPDATE SET "
    "requests = gateway_usage.requests + excluded.requests, "
    "input_tokens = gateway_usage.input_tokens + excluded.input_tokens, "
    "output_tokens = gateway_usage.output_tokens + excluded.output_tokens, "
    "cost_usd = gateway_usage.cost_usd + excluded.cost_usd"
)


class SchemaTooNew(Exception):
    """The gateway tables were written by a newer proxy."""


class SQLiteKeyStore(KeyStore):
    """The gateway tables in the audit's SQLite file, on a thread of their own."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = f"sqlite:///{self.path}"
        self._connection: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="gateway-sqlite")

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SQLITE_TABLES:
                    connection.execute(statement)
                row = connection.execute("SELECT version FROM gateway_schema WHERE id = 1").fetchone()
                if row is None:
                    connection.execute("INSERT INTO gateway_schema (id, version) VALUES (1, ?)", (SCHEMA_VERSION,))
                elif row[0] > SCHEMA_VERSION:
                    raise SchemaTooNew(f"{self.description}: gateway schema version {row[0]} is newer than this "
                                       f"proxy's ({SCHEMA_VERSION})")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                connection.close()
                raise
            self._connection = connection
        return self._connection

    async def open(self) -> None:
        await self._run(self._db)

    async def close(self) -> None:
        def shut() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await self._run(shut)
        self._thread.shutdown(wait=False)

    def _select(self, where: str, args: tuple[Any, ...]) -> list[GatewayKey]:
        cursor = self._db().execute(f"SELECT {', '.join(_KEY_COLUMNS)} FROM gateway_keys {where}", args)
        return [_row_to_key(row) for row in cursor.fetchall()]

    async def insert(self, key: GatewayKey) -> None:
        sql = f"INSERT INTO gateway_keys ({', '.join(_KEY_COLUMNS)}) VALUES ({', '.join('?' * len(_KEY_COLUMNS))})"
        await self._run(lambda: self._db().execute(sql, _key_to_row(key)))

    async def by_hash(self, key_hash: str) -> GatewayKey | None:
        found = await self._run(self._select, "WHERE key_hash = ?", (key_hash,))
        return found[0] if found else None

    async def get(self, key_id: str) -> GatewayKey | None:
        found = await self._run(self._select, "WHERE id = ?", (key_id,))
        return found[0] if found else None

    async def list(self) -> list[GatewayKey]:
        return await self._run(self._select, "ORDER BY created_at", ())

    async def revoke(self, key_id: str, at: float) -> bool:
        sql = "UPDATE gateway_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        return await self._run(lambda: self._db().execute(sql, (at, key_id)).rowcount == 1)

    async def reseal(self, key_id: str, sealed: dict[str, str]) -> None:
        sql = "UPDATE gateway_keys SET sealed_provider_keys = ? WHERE id = ?"
        await self._run(lambda: self._db().execute(sql, (orjson.dumps(sealed).decode(), key_id)))

    async def add_usage(self, rows: builtins.list[UsageRow]) -> None:
        sql = _USAGE_UPSERT.format(p=", ".join("?" * 9))
        values = [
            (r.hour, r.tenant, r.key_id, r.provider, r.model, r.requests, r.input_tokens, r.output_tokens, r.cost_usd)
            for r in rows
        ]

        def write() -> None:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(sql, values)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(write)

    async def spend(self, group_by: str, since: float) -> builtins.list[dict[str, Any]]:
        column = _GROUP_COLUMNS[group_by]
        sql = (
            f"SELECT {column}, SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd) "
            f"FROM gateway_usage WHERE hour >= ? GROUP BY {column} ORDER BY SUM(cost_usd) DESC, {column}"
        )
        rows = await self._run(lambda: self._db().execute(sql, (int(since),)).fetchall())
        return _spend_rows(rows)


def open_key_store(audit_url: str) -> KeyStore:
    """The key store beside the audit store named by `audit_url`."""
    if audit_url.startswith("sqlite:///"):
        return SQLiteKeyStore(audit_url.removeprefix("sqlite:///"))
    if audit_url.startswith(("postgresql://", "postgres://")):
        with needs_extra("audit.url postgresql://"):
            from capsem_proxy.gateway.postgres_store import PostgresKeyStore

        return PostgresKeyStore(audit_url)
    return MemoryKeyStore()
