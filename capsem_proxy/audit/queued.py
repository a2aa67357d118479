"""A durable store behind a bounded in-memory queue: the request path only appends a tuple; a
background task writes batches every flush interval, keeps rows queued and retries with backoff
while the store is down, and drains the queue on close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, Protocol

from capsem_proxy.audit.query import AuditQuery
from capsem_proxy.audit.rows import Entry, decision_entries, request_entry
from capsem_proxy.config import AuditSettings
from capsem_proxy.decisions import Decision
from capsem_proxy.hooks import RequestContext
from capsem_proxy.records import RequestRecord

__all__ = ["AuditStore", "QueuedAuditSink"]

logger = logging.getLogger("capsem_proxy.audit")

_BACKOFF_MAX = 5.0
_DROP_LOG_INTERVAL = 10.0


class AuditStore(Protocol):
    """A database the queued sink writes to and reads from."""

    description: str  # for logs: the store without credentials

    async def open(self) -> None:
        """Connect and bring the schema up to date (raises if the store cannot be reached)."""

    async def write(self, entries: list[Entry]) -> None:
        """Chain and insert `entries` in one transaction (all or nothing)."""

    def is_permanent(self, error: BaseException) -> bool:
        """True when retrying the same rows cannot succeed (a data error, not an outage)."""

    async def close(self) -> None: ...

    async def query_requests(self, q: AuditQuery) -> list[dict[str, Any]]: ...

    async def query_decisions(self, q: AuditQuery) -> list[dict[str, Any]]: ...

    async def query_sessions(self, q: AuditQuery) -> list[dict[str, Any]]: ...

    async def session_timeline(self, session_id: str, limit: int = 1000) -> list[dict[str, Any]]: ...

    async def summary(self, since: float, bucket_seconds: float = 60) -> dict[str, Any]: ...


class QueuedAuditSink:
    """The audit sink of a durable store (see module doc).

    With `overflow: fail_closed`, `has_room()` turns False a tenth of the queue before it is full:
    requests admitted just before still have room for their rows when they finish."""

    def __init__(
        self,
        store: AuditStore,
        *,
        queue_max: int = 100_000,
        overflow: str = "drop",
        flush_interval: float = 0.1,
        batch_max: int = 2000,
        close_timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.dropped = 0
        self._queue: deque[Entry] = deque()
        self._in_flight = 0
        self._queue_max = queue_max
        self._admit_max = queue_max - queue_max // 10 if overflow == "fail_closed" else queue_max
        self._flush_interval = flush_interval
        self._batch_max = batch_max
        self._close_timeout = close_timeout
        self._opened = False
        self._failure = "audit store not open"
        self._backoff = 0.0
        self._last_drop_log = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        # One writer at a time: the periodic flush and the final one at shutdown never overlap.
        self._lock = asyncio.Lock()

    @classmethod
    def options(cls, settings: AuditSettings) -> dict[str, Any]:
        return {
            "queue_max": settings.queue_max,
            "overflow": settings.overflow,
            "flush_interval": settings.flush_interval_ms / 1000.0,
            "batch_max": settings.batch_max,
        }

    # The request path: append and return.

    def _enqueue(self, entries: list[Entry]) -> None:
        if len(self._queue) + self._in_flight + len(entries) > self._queue_max:
            self._drop(len(entries))
            return
        self._queue.extend(entries)

    def _drop(self, count: int) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL:
            self._last_drop_log = now
            logger.error("audit queue full (%d rows): %d rows dropped so far", self._queue_max, self.dropped)

    def record(self, context: RequestContext, decisions: list[Decision]) -> None:
        if decisions:
            self._enqueue(decision_entries(context, decisions))

    def record_request(self, record: RequestRecord) -> None:
        if len(self._queue) + self._in_flight >= self._queue_max:
            self._drop(1)
            return
        self._queue.append(request_entry(record))

    def has_room(self) -> bool:
        return len(self._queue) + self._in_flight < self._admit_max

    def queue_depth(self) -> int:
        return len(self._queue) + self._in_flight

    # The background writer.

    async def start(self) -> None:
        await self._open()
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._flush_forever(), name="audit-writer")

    async def _open(self) -> bool:
        if self._opened:
            return True
        try:
            await self.store.open()
        except Exception as exc:
            self._failed(exc, "cannot open the audit store")
            return False
        self._opened = True
        self._failure = ""
        return True

    def _failed(self, error: BaseException, what: str) -> None:
        first = not self._failure or self._failure == "audit store not open"
        self._failure = f"audit store unavailable: {type(error).__name__}: {error}"[:300]
        self._backoff = min(_BACKOFF_MAX, max(self._flush_interval, self._backoff * 2))
        if first:
            logger.error("%s %s (%s); %d rows queued, retrying", what, self.store.description, self._failure,
                         self.queue_depth())
        else:
            logger.debug("audit store still unavailable: %s", self._failure)

    async def _flush_forever(self) -> None:
        assert self._stopping is not None
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._backoff or self._flush_interval)
            if self._stopping.is_set():
                return
            try:
                await self.flush()
            except Exception:  # keep flushing whatever happens: a dead writer would lose rows silently
                logger.exception("audit flush failed")

    async def flush(self) -> bool:
        """Write what is queued, in batches of at most batch_max rows; True when the queue is empty.
        On an outage the batch goes back to the head of the queue for the next try."""
        async with self._lock:
            if not await self._open():
                return False
            while self._queue:
                count = min(self._batch_max, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                self._in_flight = count
                try:
                    await self.store.write(batch)
                except BaseException as exc:
                    self._in_flight = 0
                    if isinstance(exc, Exception) and self.store.is_permanent(exc):
                        await self._write_one_by_one(batch, exc)
                        continue
                    self._queue.extendleft(reversed(batch))
                    if not isinstance(exc, Exception):  # cancelled: the rows are back in the queue
                        raise
                    self._failed(exc, "cannot write to the audit store")
                    return False
                self._in_flight = 0
                if self._failure:
                    logger.warning("audit store %s is back; writing the queued rows", self.store.description)
                    self._failure, self._backoff = "", 0.0
            return True

    async def _write_one_by_one(self, batch: list[Entry], error: Exception) -> None:
        """A batch the store refuses for its content: keep every row it takes, drop (and count) the others."""
        logger.error("the audit store refused a batch (%s); writing its %d rows one by one", error, len(batch))
        for entry in batch:
            try:
                await self.store.write([entry])
            except Exception as exc:
                if not self.store.is_permanent(exc):
                    raise
                logger.error("audit row dropped: the store refuses it (%s: %s)", type(exc).__name__, exc)
                self.dropped += 1

    def ready(self) -> tuple[bool, str]:
        """Whether the store takes writes, and why not."""
        if self._failure:
            return False, self._failure
        if self._task is not None and self._task.done():
            return False, "audit writer stopped"
        return True, ""

    async def close(self) -> None:
        """Stop the writer, write everything queued (retrying for up to close_timeout seconds), close
        the store; rows still queued after that are counted in `dropped` and logged as lost."""
        deadline = time.monotonic() + self._close_timeout
        if self._task is not None and self._stopping is not None:
            self._stopping.set()
            # A write in progress may finish; one hanging on an unreachable store is cancelled
            # (its rows go back to the queue).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._task, self._close_timeout)
            self._task = None
        while self.queue_depth():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                if await asyncio.wait_for(self.flush(), remaining):
                    break
            except TimeoutError:
                break
            await asyncio.sleep(min(self._backoff or self._flush_interval, max(0.0, deadline - time.monotonic())))
        lost = self.queue_depth()
        if lost:
            self.dropped += lost
            logger.error("audit store %s unavailable at shutdown: %d rows lost", self.store.description, lost)
            self._queue.clear()
        with contextlib.suppress(Exception):
            await self.store.close()
        self._opened = False

    # Queries go straight to the store (rows still queued are not seen yet).

    async def query_requests(self, q: AuditQuery) -> list[dict[str, Any]]:
        return await self.store.query_requests(q)

    async def query_decisions(self, q: AuditQuery) -> list[dict[str, Any]]:
        return await self.store.query_decisions(q)

    async def query_sessions(self, q: AuditQuery) -> list[dict[str, Any]]:
        return await self.store.query_sessions(q)

    async def session_timeline(self, session_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        return await self.store.session_timeline(session_id, limit)

    async def summary(self, since: float, bucket_seconds: float = 60) -> dict[str, Any]:
        return await self.store.summary(since, bucket_seconds)
