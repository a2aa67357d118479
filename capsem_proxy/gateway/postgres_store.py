"""The gateway tables in the audit's PostgreSQL database, in the audit's schema (asyncpg)."""

from __future__ import annotations

import builtins
from typing import Any

import asyncpg
import orjson

from capsem_proxy.audit.postgres import split_url
from capsem_proxy.gateway.keys import GatewayKey
from capsem_proxy.gateway.store import (
    _GROUP_COLUMNS,
    _KEY_COLUMNS,
    _USAGE_UPSERT,
    SCHEMA_VERSION,
    KeyStore,
    SchemaTooNew,
    UsageRow,
    _key_to_row,
    _row_to_key,
    _spend_rows,
)

__all__ = ["PostgresKeyStore"]

_TABLES = """
CREATE TABLE IF NOT EXISTS gateway_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gateway_keys (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, providers TEXT NOT NULL,
    models TEXT NOT NULL, sealed_provider_keys TEXT NOT NULL, expires_at DOUBLE PRECISION, limits TEXT NOT NULL,
    policy_set TEXT, revoked_at DOUBLE PRECISION);
CREATE TABLE IF NOT EXISTS gateway_usage (hour BIGINT NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL,
    provider TEXT NOT NULL, model TEXT NOT NULL, requests BIGINT NOT NULL, input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (hour, tenant, key_id, provider, model));
"""
_LOCK = 0x6361707367770001  # advisory lock taken while the tables are created


def _placeholders(count: int) -> str:
    return ", ".join(f"${index}" for index in range(1, count + 1))


class PostgresKeyStore(KeyStore):
    """Gateway keys and usage beside the audit tables; replicas sharing the database share keys."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.dsn, self.schema, self.description = split_url(url)
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=2, timeout=self._timeout,
            server_settings={"search_path": self.schema, "application_name": "capsem-proxy-gateway"},
        )
        try:
            async with pool.acquire() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
                await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                await connection.execute(_TABLES)
                version = await connection.fetchval("SELECT version FROM gateway_schema WHERE id = 1")
                if version is None:
                    await connection.execute("INSERT INTO gateway_schema (id, version) VALUES (1, $1)", SCHEMA_VERSION)
                elif version > SCHEMA_VERSION:
                    raise SchemaTooNew(f"{self.description}: gateway schema version {version} is newer than this "
                                       f"proxy's ({SCHEMA_VERSION})")
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _db(self) -> asyncpg.Pool:
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        return self._pool

    async def _select(self, where: str, *args: Any) -> list[GatewayKey]:
        rows = await (await self._db()).fetch(f"SELECT {', '.join(_KEY_COLUMNS)} FROM gateway_keys {where}", *args)
        return [_row_to_key(tuple(row)) for row in rows]

    async def insert(self, key: GatewayKey) -> None:
        sql = f"INSERT INTO gateway_keys ({', '.join(_KEY_COLUMNS)}) VALUES ({_placeholders(len(_KEY_COLUMNS))})"
        await (await self._db()).execute(sql, *_key_to_row(key))

    async def by_hash(self, key_hash: str) -> GatewayKey | None:
        found = await self._select("WHERE key_hash = $1", key_hash)
        return found[0] if found else None

    async def get(self, key_id: str) -> GatewayKey | None:
        found = await self._select("WHERE id = $1", key_id)
        return found[0] if found else None

    async def list(self) -> list[GatewayKey]:
        return await self._select("ORDER BY created_at")

    async def revoke(self, key_id: str, at: float) -> bool:
        status: str = await (await self._db()).execute(
            "UPDATE gateway_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", at, key_id
        )
        return status.endswith(" 1")

    async def reseal(self, key_id: str, sealed: dict[str, str]) -> None:
        await (await self._db()).execute(
            "UPDATE gateway_keys SET sealed_provider_keys = $1 WHERE id = $2", orjson.dumps(sealed).decode(), key_id
        )

    async def add_usage(self, rows: builtins.list[UsageRow]) -> None:
        sql = _USAGE_UPSERT.format(p=_placeholders(9))
        values = [
            (r.hour, r.tenant, r.key_id, r.provider, r.model, r.requests, r.input_tokens, r.output_tokens, r.cost_usd)
            for r in rows
        ]
        pool = await self._db()
        async with pool.acquire() as connection, connection.transaction():
            await connection.executemany(sql, values)

    async def spend(self, group_by: str, since: float) -> builtins.list[dict[str, Any]]:
        column = _GROUP_COLUMNS[group_by]
        rows = await (await self._db()).fetch(
            f"SELECT {column}, SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd) "
            f"FROM gateway_usage WHERE hour >= $1 GROUP BY {column} ORDER BY SUM(cost_usd) DESC, {column}",
            int(since),
        )
        return _spend_rows(tuple(row) for row in rows)

