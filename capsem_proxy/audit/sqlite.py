"""The default audit store: a SQLite file in WAL mode, written in batches off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import Any

from capsem_proxy.audit.base import to_rows
from capsem_proxy.decisions import Decision
from capsem_proxy.hooks import RequestContext

__all__ = ["SQLiteAuditSink"]

logger = logging.getLogger("capsem_proxy.audit")

_SCHEMA = """
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
# Rows go in rowid order (cheap appends); ids are unique by construction, so no unique index.
_INSERT = "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


_MAX_BATCH = 2000


class SQLiteAuditSink:
    """Queues decisions in memory (bounded) and writes them every `flush_interval` seconds."""

    def __init__(self, path: str, *, flush_interval: float = 0.1, max_queued: int = 100_000) -> None:
        self.path = Path(path)
        self._queue: list[tuple[Any, ...]] = []
        self._flush_interval = flush_interval
        self._max_queued = max_queued
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None
        self._connection: sqlite3.Connection | None = None
        self._last_write_failed = False
        self._stopping: asyncio.Event | None = None
        # One writer at a time: the periodic flush and the final one at shutdown never overlap.
        self._lock = asyncio.Lock()

    def record(self, context: RequestContext, decisions: list[Decision]) -> None:
        if len(self._queue) >= self._max_queued:
            self.dropped += len(decisions)
            return
        self._queue.extend(to_rows(context, decisions))

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Several worker processes may share the file: wait for each other's write locks.
            connection = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            self._connection = connection
        return self._connection

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        connection = self._connect()
        with connection:
            connection.executemany(_INSERT, batch)

    async def start(self) -> None:
        await asyncio.to_thread(self._connect)
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._flush_interval)
            try:
                await self.flush()
            except Exception:  # keep flushing whatever happens; a dead loop would drop rows silently
                logger.exception("audit flush failed")

    async def flush(self) -> None:
        """Write what is queued, in bounded batches; on failure the rest stays queued for the next try."""
        async with self._lock:
            while self._queue:
                # Binding rows holds the GIL, so one huge batch would stall requests: write in slices.
                batch, self._queue = self._queue[:_MAX_BATCH], self._queue[_MAX_BATCH:]
                try:
                    await asyncio.to_thread(self._write, batch)
                except sqlite3.Error:
                    self._last_write_failed = True
                    logger.exception("audit write failed; %d decisions kept for retry", len(batch))
                    self._queue[:0] = batch
                    return
                self._last_write_failed = False

    def ready(self) -> tuple[bool, str]:
        """Whether the store takes writes, and why not."""
        if self._connection is None:
            return False, "audit store not open"
        if self._last_write_failed:
            return False, "audit store writes are failing"
        if self._task is not None and self._task.done():
            return False, "audit writer stopped"
        return True, ""

    async def close(self) -> None:
        """Stop the writer (letting a write in progress finish), flush the rest, close the file."""
        if self._task is not None and self._stopping is not None:
            self._stopping.set()
            await self._task
            self._task = None
        await self.flush()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
