"""Where pinned MCP tool definitions live: the audit store's database, so that every replica sharing
it pins alike (SQLite for one machine, PostgreSQL for many), or process memory with a `memory://`
audit store.

One row per server and tool: the digest pinned when the tool was first seen, and the changed
digest waiting for an approver with the id of the decision that holds it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

__all__ = ["MemoryPinStore", "Pin", "PinStore", "PostgresPinStore", "SQLitePinStore", "open_pin_store"]

T = TypeVar("T")
_TABLE = "mcp_tool_pins"
_COLUMNS = "digest, pending_digest, pending_decision"


@dataclass(slots=True)
class Pin:
    """A pinned tool: its approved digest, and a changed one awaiting approval (if any)."""

    digest: str
    pending_digest: str | None = None
    pending_decision: str | None = None


class PinStore(Protocol):
    """Pinned tool definitions by (server, tool)."""

    description: str

    async def start(self) -> None:
        """Create the table if needed."""

    async def get(self, server: str, tool: str) -> Pin | None:
        """The pin of a tool, None when the tool was never seen."""

    async def first(self, server: str, tool: str, digest: str) -> Pin:
        """Pin `digest` unless the tool is pinned already; the pin as it now stands (a replica may
        have pinned another digest first)."""

    async def hold(self, server: str, tool: str, digest: str, decision_id: str) -> None:
        """Remember a changed digest and the decision awaiting approval for it."""

    async def accept(self, server: str, tool: str, digest: str) -> None:
        """Pin `digest` (an approved change) and forget the pending one."""

    async def close(self) -> None:
        """Release connections."""


class MemoryPinStore:
    """Pins in this process (with a `memory://` audit store: nothing else is kept either)."""

    description = "memory"

    def __init__(self, max_pins: int = 100_000) -> None:
        self._pins: dict[tuple[str, str], Pin] = {}
        self._max = max_pins

    async def start(self) -> None:
        return None

    async def get(self, server: str, tool: str) -> Pin | None:
        pin = self._pins.get((server, tool))
        return None if pin is None else Pin(pin.digest, pin.pending_digest, pin.pending_decision)

    async def first(self, server: str, tool: str, digest: str) -> Pin:
        pin = self._pins.get((server, tool))
        if pin is None:
            if len(self._pins) >= self._max:
                # Full: the tool is treated as first seen each time (logged by the caller as such).
                return Pin(digest)
            pin = self._pins[(server, tool)] = Pin(digest)
        return Pin(pin.digest, pin.pending_digest, pin.pending_decision)

    async def hold(self, server: str, tool: str, digest: str, decision_id: str) -> None:
        pin = self._pins.get((server, tool))
        if pin is not None:
            pin.pending_digest, pin.pending_decision = digest, decision_id

    async def accept(self, server: str, tool: str, digest: str) -> None:
        self._pins[(server, tool)] = Pin(digest)

    async def close(self) -> None:
        return None


class SQLitePinStore:
    """Pins in a table of the SQLite audit file (its own connection, on its own thread)."""

    def __init__(self, path: str | Path, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.description = f"sqlite:///{self.path}"
        self._busy_timeout = busy_timeout
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mcp-pins-sqlite")
        self._connection: sqlite3.Connection | None = None

    async def _on_thread(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLE} (server TEXT NOT NULL, tool TEXT NOT NULL, digest TEXT NOT NULL, "
                "pending_digest TEXT, pending_decision TEXT, pinned_at REAL NOT NULL, PRIMARY KEY (server, tool))"
            )
            self._connection = connection
        return self._connection

    def _get(self, server: str, tool: str) -> Pin | None:
        row = self._connect().execute(
            f"SELECT {_COLUMNS} FROM {_TABLE} WHERE server = ? AND tool = ?", (server, tool)
        ).fetchone()
        return None if row is None else Pin(*row)

    def _first(self, server: str, tool: str, digest: str) -> Pin:
        connection = self._connect()
        connection.execute(
            f"INSERT INTO {_TABLE} (server, tool, digest, pinned_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (server, tool, digest, time.time()),
        )
        pin = self._get(server, tool)
        assert pin is not None
        return pin

    def _hold(self, server: str, tool: str, digest: str, decision_id: str) -> None:
        self._connect().execute(
            f"UPDATE {_TABLE} SET pending_digest = ?, pending_decision = ? WHERE server = ? AND tool = ?",
            (digest, decision_id, server, tool),
        )

    def _accept(self, server: str, tool: str, digest: str) -> None:
        self._connect().execute(
            f"INSERT INTO {_TABLE} (server, tool, digest, pinned_at) VALUES (?, ?, ?, ?) ON CONFLICT (server, tool) "
            "DO UPDATE SET digest = excluded.digest, pending_digest = NULL, pending_decision = NULL, "
            "pinned_at = excluded.pinned_at",
            (server, tool, digest, time.time()),
        )

    async def start(self) -> None:
        await self._on_thread(self._connect)

    async def get(self, server: str, tool: str) -> Pin | None:
        return await self._on_thread(self._get, server, tool)

    async def first(self, server: str, tool: str, digest: str) -> Pin:
        return await self._on_thread(self._first, server, tool, digest)

    async def hold(self, server: str, tool: str, digest: str, decision_id: str) -> None:
        await self._on_thread(self._hold, server, tool, digest, decision_id)

    async def accept(self, server: str, tool: str, digest: str) -> None:
        await self._on_thread(self._accept, server, tool, digest)

    async def close(self) -> None:
        if self._connection is not None:
            await self._on_thread(self._connection.close)
            self._connection = None
        self._thread.shutdown(wait=False)


class PostgresPinStore:
    """Pins in a table of the PostgreSQL audit schema, shared by every replica."""

    def __init__(self, url: str) -> None:
        from capsem_proxy.audit.postgres import split_url

        self._dsn, schema, self.description = split_url(url)
        self._table = f'"{schema}".{_TABLE}'
        self._schema = schema
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    import asyncpg

                    pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=4, timeout=10)
                    async with pool.acquire() as connection:
                        # Replicas starting together may race to create the table: one wins, the
                        # others find it there.
                        for attempt in range(3):
                            try:
                                await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
                                await connection.execute(
                                    f"CREATE TABLE IF NOT EXISTS {self._table} (server TEXT NOT NULL, "
                                    "tool TEXT NOT NULL, digest TEXT NOT NULL, pending_digest TEXT, "
                                    "pending_decision TEXT, pinned_at DOUBLE PRECISION NOT NULL, "
                                    "PRIMARY KEY (server, tool))"
                                )
                                break
                            except (asyncpg.UniqueViolationError, asyncpg.DuplicateObjectError):
                                if attempt == 2:
                                    raise
                    self._pool = pool
        return self._pool

    async def start(self) -> None:
        await self._connected()

    async def get(self, server: str, tool: str) -> Pin | None:
        pool = await self._connected()
        row = await pool.fetchrow(
            f"SELECT {_COLUMNS} FROM {self._table} WHERE server = $1 AND tool = $2", server, tool
        )
        return None if row is None else Pin(row[0], row[1], row[2])

    async def first(self, server: str, tool: str, digest: str) -> Pin:
        pool = await self._connected()
        await pool.execute(
            f"INSERT INTO {self._table} (server, tool, digest, pinned_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            server, tool, digest, time.time(),
        )
        pin = await self.get(server, tool)
        assert pin is not None
        return pin

    async def hold(self, server: str, tool: str, digest: str, decision_id: str) -> None:
        pool = await self._connected()
        await pool.execute(
            f"UPDATE {self._table} SET pending_digest = $1, pending_decision = $2 WHERE server = $3 AND tool = $4",
            digest, decision_id, server, tool,
        )

    async def accept(self, server: str, tool: str, digest: str) -> None:
        pool = await self._connected()
        await pool.execute(
            f"INSERT INTO {self._table} (server, tool, digest, pinned_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (server, tool) DO UPDATE SET digest = excluded.digest, pending_digest = NULL, "
            "pending_decision = NULL, pinned_at = excluded.pinned_at",
            server, tool, digest, time.time(),
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def open_pin_store(audit_url: str) -> PinStore:
    """The pin store beside the audit store `audit_url` names."""
    if audit_url.startswith("sqlite:///"):
        return SQLitePinStore(audit_url.removeprefix("sqlite:///"))
    if audit_url.startswith(("postgresql://", "postgres://")):
        return PostgresPinStore(audit_url)
    return MemoryPinStore()
