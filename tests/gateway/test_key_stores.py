"""The key stores (SQLite, PostgreSQL, memory) behave alike: insert, look up by hash, list, revoke,
re-seal, and sum usage by tenant, key, model and provider; they keep their own schema version."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from capsem_proxy.gateway.keys import GatewayKey, hash_key, new_key
from capsem_proxy.gateway.store import MemoryKeyStore, SQLiteKeyStore, UsageRow, open_key_store
from tests.audit.stores import drop_schema, new_schema_url


def _key(tenant: str = "team-a") -> tuple[str, GatewayKey]:
    plain = new_key()
    return plain, GatewayKey(id=f"gk_{tenant}", tenant=tenant, key_hash=hash_key(plain), hint="cpk-…abcd",
                             created_at=time.time(), models=["gpt-4o*"], sealed_provider_keys={"openai": "v1.x.y.z"},
                             limits={"requests_per_minute": 5})


async def _exercise(store) -> None:
    await store.open()
    try:
        plain, key = _key()
        await store.insert(key)
        found = await store.by_hash(hash_key(plain))
        assert found is not None and found.tenant == "team-a" and found.models == ["gpt-4o*"]
        assert found.limits == {"requests_per_minute": 5}
        assert await store.by_hash(hash_key(new_key())) is None
        assert [k.id for k in await store.list()] == [key.id]
        await store.reseal(key.id, {"openai": "v1.new.y.z"})
        assert (await store.get(key.id)).sealed_provider_keys == {"openai": "v1.new.y.z"}
        assert await store.revoke(key.id, time.time())
        assert not await store.revoke(key.id, time.time())
        assert (await store.get(key.id)).status(time.time()) == "revoked"
        hour = int(time.time() // 3600) * 3600
        rows = [UsageRow(hour, "team-a", key.id, "openai", "gpt-4o", 2, 100, 50, 0.001),
                UsageRow(hour, "team-b", "", "anthropic", "claude-sonnet-4-5", 1, 10, 5, 0.0001)]
        await store.add_usage(rows)
        await store.add_usage(rows[:1])
        by_tenant = {row["group"]: row for row in await store.spend("tenant", hour)}
        assert by_tenant["team-a"]["requests"] == 4 and by_tenant["team-a"]["input_tokens"] == 200
        assert by_tenant["team-a"]["cost_usd"] == pytest.approx(0.002)
        assert {row["group"] for row in await store.spend("provider", hour)} == {"openai", "anthropic"}
        assert {row["group"] for row in await store.spend("key", hour)} == {key.id, ""}
        assert await store.spend("model", hour + 3600) == []
    finally:
        await store.close()


def test_memory_store():
    asyncio.run(_exercise(MemoryKeyStore()))


def test_sqlite_store_beside_the_audit_tables(tmp_path):
    db = tmp_path / "audit.db"
    store = open_key_store(f"sqlite:///{db}")
    assert isinstance(store, SQLiteKeyStore)
    asyncio.run(_exercise(store))
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT version FROM gateway_schema").fetchone() == (1,)


def test_postgres_store():
    url = new_schema_url()
    try:
        asyncio.run(_exercise(open_key_store(url)))
    finally:
        drop_schema(url)
