"""A durable store behind a bounded in-memory queue: the request path only appends tuples; a
background task writes batches every flush interval, keeps rows queued and retries with backoff
while the store is down, drains the queue on close, and exports the chain head after it writes.

Room in the queue (`queue_max` rows) is shared so that a flood cannot push a block out of the trail:
- ordinary rows (allowed requests and their decisions) may fill it up to `queue_max - reserved_rows`;
  past that they are dropped and counted (`overflow: drop`);
- protected rows may use the reserve too: decisions that stop a request (BLOCK, CONFIRM, CLARIFY,
  REPLAN), the request rows of such requests, and under `overflow: fail_closed` every row of the
  `required_tenants`. A protected row is never dropped by the queue;
- once the queue holds `queue_max` rows, `admits()` turns every new request away (the app answers
  503), so nothing new can be blocked unrecorded; only requests already admitted may still add their
  protected rows, a bounded overdraft (at most `max_decision_rows` plus a few folded rows each).
Under `fail_closed`, required tenants are turned away from `queue_max - reserved_rows` on, before
their rows would eat into the reserve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any, Protocol

from capsem_proxy.audit.bounds import decision_entries, request_entry
from capsem_proxy.audit.chain import StoredHead
from capsem_proxy.audit.folding import fold_allowed
from capsem_proxy.audit.head import export_head
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.query import BLOCKING_VERDICTS, AuditQuery
from capsem_proxy.audit.rows import COLUMN_NAMES, Entry
from capsem_proxy.config import AuditSettings
from capsem_proxy.decisions import Decision
from capsem_proxy.hooks import RequestContext
from capsem_proxy.records import RequestRecord

__all__ = ["AuditStore", "QueuedAuditSink"]

logger = logging.getLogger("capsem_proxy.audit")

_BACKOFF_MAX = 5.0
_DROP_LOG_INTERVAL = 10.0
_HEAD_EXPORT_INTERVAL = 1.0
_BLOCKING = frozenset(BLOCKING_VERDICTS)
_DECISION_VERDICT = COLUMN_NAMES["decisions"].index("verdict")
_REQUEST_VERDICT = COLUMN_NAMES["requests"].index("verdict")
_PROMPT = COLUMN_NAMES["requests"].index("prompt")
_ANSWER = COLUMN_NAMES["requests"].index("answer")
CONTENT_NOT_KEPT = "[not stored: the audit queue held too much content while the store was slow]"


class AuditStore(Protocol):
    """A database the queued sink writes to and reads from."""

    description: str  # for logs: the store without credentials

    async def open(self) -> None:
        """Connect, bring the schema up to date and claim the chain for this key (raises if the store
        cannot be reached, or is keyed with another key)."""

    async def write(self, entries: list[Entry]) -> StoredHead:
        """Chain and insert `entries` in one transaction (all or nothing); returns the new head."""

    async def head(self) -> StoredHead | None:
        """The store's head as stored."""

    def is_permanent(self, error: BaseException) -> bool:
        """True when retrying the same rows cannot succeed (a data error, not an outage)."""

    async def close(self) -> None: ...

    async def query_requests(self, q: AuditQuery) -> list[dict[str, Any]]: ...

    async def query_decisions(self, q: AuditQuery) -> list[dict[str, Any]]: ...

    async def scan_extent(self, table: str, q: AuditQuery) -> tuple[int, int | None]: ...

    async def query_sessions(self, q: AuditQuery) -> list[dict[str, Any]]: ...

    async def session_timeline(self, session_id: str, limit: int = 1000) -> list[dict[str, Any]]: ...

    async def summary(self, since: float, bucket_seconds: float = 60) -> dict[str, Any]: ...


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _content_chars(values: tuple[Any, ...]) -> int:
    """Characters of stored content a request row holds (the not-kept marker counts for nothing)."""
    return sum(len(text) for text in (values[_PROMPT], values[_ANSWER])
               if text is not None and text is not CONTENT_NOT_KEPT)


class QueuedAuditSink:
    """The audit sink of a durable store (see module doc)."""

    def __init__(
        self,
        store: AuditStore,
        *,
        key: ChainKey | None = None,
        queue_max: int = 100_000,
        reserved_rows: int | None = None,
        overflow: str = "drop",
        required_tenants: list[str] | tuple[str, ...] = (),
        max_decision_rows: int = 50,
        max_content_chars: int = 65_536,
        queue_max_content_chars: int = 64 * 1024 * 1024,
        flush_interval: float = 0.1,
        batch_max: int = 2000,
        close_timeout: float = 10.0,
        head_file: Path | None = None,
        head_log_interval: float = 60.0,
        retention_days: float | None = None,
        retention_check_interval: float = 3600.0,
    ) -> None:
        self.store = store
        self.dropped = 0
        self._key = key
        self._queue: deque[Entry] = deque()
        self._in_flight = 0
        self._queue_max = queue_max
        reserve = queue_max // 10 if reserved_rows is None else reserved_rows
        self._ordinary_max = max(0, queue_max - max(1, reserve))
        self._fail_closed = overflow == "fail_closed"
        self._required = frozenset(required_tenants)
        self._all_required = "*" in self._required
        self._max_decision_rows = max_decision_rows
        self._max_content_chars = max_content_chars
        self._content_budget = queue_max_content_chars
        self._content_queued = 0
        self._flush_interval = flush_interval
        self._batch_max = batch_max
        self._close_timeout = close_timeout
        self._head_file = head_file
        self._head_log_interval = head_log_interval
        self._head: StoredHead | None = None  # the latest head this process wrote or read
        self._head_exported: StoredHead | None = None
        self._head_exported_at = 0.0
        self._head_logged: StoredHead | None = None
        self._head_logged_at = 0.0
        self._opened = False
        self._failure = "audit store not open"
        self._backoff = 0.0
        self._last_drop_log = 0.0
        self._last_overdraft_log = 0.0
        self._task: asyncio.Task[None] | None = None
        self._retention_days = retention_days
        self._retention_check_interval = retention_check_interval
        self._retention_task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._pause_waiter: asyncio.Future[None] | None = None  # the writer's wait between flushes
        # One writer at a time: the periodic flush and the final one at shutdown never overlap.
        self._lock = asyncio.Lock()

    @classmethod
    def options(cls, settings: AuditSettings) -> dict[str, Any]:
        return {
            "queue_max": settings.queue_max,
            "reserved_rows": settings.reserved_rows,
            "overflow": settings.overflow,
            "required_tenants": tuple(settings.required_tenants),
            "max_decision_rows": settings.max_decision_rows,
            "max_content_chars": settings.max_content_chars,
            "queue_max_content_chars": settings.queue_max_content_chars,
            "flush_interval": settings.flush_interval_ms / 1000.0,
            "batch_max": settings.batch_max,
            "head_log_interval": settings.head_log_interval_s,
            "retention_days": settings.retention_days,
            "retention_check_interval": settings.retention_check_interval_s,
        }

    # The request path: append and return.

    def _keeps_everything(self, tenant_id: str) -> bool:
        """Whether every row of this tenant is protected (fail_closed, a required tenant)."""
        return self._fail_closed and (self._all_required or tenant_id in self._required)

    def _enqueue(self, entries: list[Entry]) -> None:
        """Ordinary rows: queued while there is room outside the reserve, else dropped (all of them)."""
        if len(self._queue) + self._in_flight + len(entries) > self._ordinary_max:
            self._drop(len(entries))
            return
        self._queue.extend(entries)

    def _protect(self, entries: list[Entry]) -> None:
        """Protected rows: always queued."""
        self._queue.extend(entries)
        depth = len(self._queue) + self._in_flight
        if depth > self._queue_max:
            now = time.monotonic()
            if now - self._last_overdraft_log >= _DROP_LOG_INTERVAL:
                self._last_overdraft_log = now
                logger.error("audit queue past its limit of %d rows (%d) with blocking decisions kept; new "
                             "requests are refused until the store catches up", self._queue_max, depth)

    def _drop(self, count: int) -> None:
        self.dropped += count
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL:
            self._last_drop_log = now
            logger.error("audit queue full (%d rows, the last %d kept for blocks): %d rows of allowed requests "
                         "dropped so far", self._queue_max, self._queue_max - self._ordinary_max, self.dropped)

    def record(self, context: RequestContext, decisions: list[Decision]) -> None:
        decisions = fold_allowed(context, decisions)
        if not decisions:
            return
        entries = decision_entries(context, decisions, self._max_decision_rows)
        if self._fail_closed and self._keeps_everything(context.tenant_id):
            self._protect(entries)
        elif len(entries) == 1:
            (self._protect if entries[0][1][_DECISION_VERDICT] in _BLOCKING else self._enqueue)(entries)
        elif len(self._queue) + self._in_flight + len(entries) <= self._ordinary_max:
            self._queue.extend(entries)  # room for all: kept in the order they were taken
        else:
            protected = [entry for entry in entries if entry[1][_DECISION_VERDICT] in _BLOCKING]
            if protected:
                self._protect(protected)
            if len(entries) > len(protected):
                self._drop(len(entries) - len(protected))

    def record_request(self, record: RequestRecord) -> None:
        entry = request_entry(record, self._max_content_chars)
        values = entry[1]
        if values[_PROMPT] is not None or values[_ANSWER] is not None:
            entry = self._within_content_budget(entry)
        if values[_REQUEST_VERDICT] in _BLOCKING or (self._fail_closed and self._keeps_everything(record.tenant_id)):
            self._protect([entry])
        elif len(self._queue) + self._in_flight >= self._ordinary_max:
            self._drop(1)
        else:
            self._queue.append(entry)

    def _within_content_budget(self, entry: Entry) -> Entry:
        """The entry, or its metadata only when the stored content queued would pass its budget."""
        chars = _content_chars(entry[1])
        if self._content_queued + chars > self._content_budget:
            values = list(entry[1])
            for index in (_PROMPT, _ANSWER):
                if values[index] is not None:
                    values[index] = CONTENT_NOT_KEPT
            entry = (entry[0], tuple(values))
            chars = _content_chars(entry[1])
        self._content_queued += chars
        return entry

    def _released(self, entries: list[Entry]) -> None:
        """Rows that left the queue (written, or lost): their content no longer counts."""
        if self._content_queued:
            self._content_queued -= sum(_content_chars(values) for table, values in entries if table == "requests")

    def admits(self, tenant_id: str) -> bool:
        """False when a new request of this tenant must be refused: the queue is full up to the
        reserve (every tenant), or, under fail_closed, up to the ordinary limit (required tenants)."""
        depth = len(self._queue) + self._in_flight
        if depth < self._ordinary_max:
            return True
        if depth >= self._queue_max:
            return False
        return not self._keeps_everything(tenant_id)

    def queue_depth(self) -> int:
        return len(self._queue) + self._in_flight

    # The background writer.

    async def start(self) -> None:
        if self._key is None:
            raise ValueError(f"audit store {self.store.description}: the proxy writes a keyed chain and needs its key")
        await self._open()
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._flush_forever(), name="audit-writer")
        if self._retention_days is not None:
            self._retention_task = asyncio.create_task(self._prune_forever(), name="audit-retention")

    async def _prune_forever(self) -> None:
        """Prune rows past the retention period now and then (capsem_proxy.audit.lifecycle); never fails."""
        from capsem_proxy.audit.lifecycle import prune

        assert self._key is not None and self._retention_days is not None
        while True:
            if self._opened:
                try:
                    # Not under the writer's lock: each bounded step locks the chain head in the store,
                    # so flushes go on between steps.
                    result = await prune(self.store, self._key, time.time() - self._retention_days * 86400)
                    if result.upto_seq:
                        logger.info("audit retention: removed %d request and %d decision rows (up to seq %d)",
                                    result.requests, result.decisions, result.upto_seq)
                        self._head = await self.store.head()
                except Exception as exc:
                    logger.warning("audit retention on %s failed: %s: %s", self.store.description,
                                   type(exc).__name__, exc)
            await asyncio.sleep(self._retention_check_interval)

    async def _open(self) -> bool:
        if self._opened:
            return True
        try:
            await self.store.open()
            # Export the head at once: a store written before (or just migrated) is anchored from the start.
            self._head = await self.store.head()
        except Exception as exc:
            self._failed(exc, "cannot open the audit store")
            return False
        self._opened = True
        self._failure = ""
        await self._publish_head(force=True)
        return True

    async def _publish_head(self, force: bool = False) -> None:
        """Export the latest head to the head file (at most once a second unless `force`) and log it
        (every head_log_interval seconds); never fails the writer."""
        head = self._head
        if head is None or self._key is None or not head.key_id:
            return
        now = time.monotonic()
        if self._head_file is not None and head != self._head_exported and (
            force or now - self._head_exported_at >= _HEAD_EXPORT_INTERVAL
        ):
            self._head_exported, self._head_exported_at = head, now
            try:
                await asyncio.to_thread(export_head, self._head_file, head, self.store.description, self._key,
                                        time.time())
            except OSError as exc:
                logger.error("cannot export the audit chain head to %s: %s", self._head_file, exc)
        if self._head_log_interval > 0 and head != self._head_logged and (
            force or now - self._head_logged_at >= self._head_log_interval
        ):
            self._head_logged, self._head_logged_at = head, now
            logger.info("audit chain head %d:%s (store %s, store id %s)", head.seq, head.hash,
                        self.store.description, head.store_id)

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
            await self._pause(self._backoff or self._flush_interval)
            if self._stopping.is_set():
                return
            try:
                await self.flush(gathered=True)
                await self._publish_head()
            except Exception:  # keep flushing whatever happens: a dead writer would lose rows silently
                logger.exception("audit flush failed")

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or until `close` stops the writer: one future and one timer, not the task
        and the cancellation `asyncio.wait_for` makes of every wait (several times a second)."""
        waiter = asyncio.get_running_loop().create_future()
        timer = waiter.get_loop().call_later(seconds, _wake, waiter)
        self._pause_waiter = waiter
        try:
            await waiter
        finally:
            timer.cancel()
            self._pause_waiter = None

    async def flush(self, gathered: bool = False) -> bool:
        """Write what is queued, in batches of at most batch_max rows; True when the queue is empty.
        On an outage the batch goes back to the head of the queue for the next try.

        `gathered` (the periodic writer): only the rows queued when the write starts. Rows keep
        arriving while a batch is written; taking them too would chain a run of small transactions
        after each turn (a few rows each: a write takes milliseconds, a request a fraction of one),
        each paying a transaction's fixed cost (locks, the head read, signed and updated, the index
        pages written again, a hand-off to the writer thread and back). They wait for the next turn,
        so a turn writes what one flush interval gathered."""
        async with self._lock:
            if not await self._open():
                return False
            left = len(self._queue) if gathered else -1
            while self._queue and left:
                count = min(self._batch_max, len(self._queue))
                if left > 0:
                    count = min(count, left)
                    left -= count
                batch = [self._queue.popleft() for _ in range(count)]
                self._in_flight = count
                try:
                    self._head = await self.store.write(batch)
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
                self._released(batch)
                if self._failure:
                    logger.warning("audit store %s is back; writing the queued rows", self.store.description)
                    self._failure, self._backoff = "", 0.0
            return not self._queue

    async def _write_one_by_one(self, batch: list[Entry], error: Exception) -> None:
        """A batch the store refuses for its content: keep every row it takes, drop (and count) the others."""
        logger.error("the audit store refused a batch (%s); writing its %d rows one by one", error, len(batch))
        for index, entry in enumerate(batch):
            try:
                self._head = await self.store.write([entry])
            except Exception as exc:
                if not self.store.is_permanent(exc):
                    self._queue.extendleft(reversed(batch[index:]))  # an outage now: the rest waits
                    raise
                logger.error("audit row dropped: the store refuses it (%s: %s)", type(exc).__name__, exc)
                self.dropped += 1
            self._released([entry])

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
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._retention_task
            self._retention_task = None
        if self._task is not None and self._stopping is not None:
            self._stopping.set()
            if self._pause_waiter is not None:
                _wake(self._pause_waiter)
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
            self._released(list(self._queue))
            self._queue.clear()
        with contextlib.suppress(Exception):
            await self._publish_head(force=True)
        with contextlib.suppress(Exception):
            await self.store.close()
        self._opened = False

    # Queries go straight to the store (rows still queued are not seen yet).

    async def query_requests(self, q: AuditQuery) -> list[dict[str, Any]]:
        return await self.store.query_requests(q)

    async def query_decisions(self, q: AuditQuery) -> list[dict[str, Any]]:
        return await self.store.query_decisions(q)

    async def scan_extent(self, table: str, q: AuditQuery) -> tuple[int, int | None]:
        return await self.store.scan_extent(table, q)

    async def query_sessions(self, q: AuditQuery) -> list[dict[str, Any]]:
        return await self.store.query_sessions(q)

    async def session_timeline(self, session_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        return await self.store.session_timeline(session_id, limit)

    async def summary(self, since: float, bucket_seconds: float = 60) -> dict[str, Any]:
        return await self.store.summary(since, bucket_seconds)
