"""The audit sink interface, and `open_audit_sink`, which picks the store a URL names."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.query import AuditQuery
from capsem_proxy.config import AuditSettings, ConfigError
from capsem_proxy.decisions import Decision
from capsem_proxy.extras import needs_extra
from capsem_proxy.hooks import RequestContext
from capsem_proxy.records import RequestRecord

__all__ = ["AuditSink", "open_audit_sink"]


class AuditSink(Protocol):
    """Takes rows without blocking the request and stores them in the background; answers queries."""

    dropped: int  # rows lost because the queue was full (or the store refused them for good)

    def record(self, context: RequestContext, decisions: list[Decision]) -> None:
        """Queue decision rows, capped and folded (never blocks, never raises on the request path)."""

    def record_request(self, record: RequestRecord) -> None:
        """Queue the row of a finished request."""

    def admits(self, tenant_id: str) -> bool:
        """False when a new request of this tenant must be refused because its rows might find no room."""

    def queue_depth(self) -> int:
        """Rows waiting to be written."""

    async def start(self) -> None:
        """Begin background work (inside the running event loop)."""

    def ready(self) -> tuple[bool, str]:
        """Whether the store takes writes, and why not (for /readyz)."""

    async def close(self) -> None:
        """Flush everything queued (bounded wait) and release the store."""

    async def query_requests(self, q: AuditQuery) -> list[dict[str, Any]]:
        """Request rows: seq, every RequestRecord field (prompt/answer only if stored), prev_hash, hash."""

    async def query_decisions(self, q: AuditQuery) -> list[dict[str, Any]]:
        """Decision rows: seq, the decision fields, prev_hash, hash."""

    async def scan_extent(self, table: str, q: AuditQuery) -> tuple[int, int | None]:
        """How many rows a query with unindexed filters examined (at most MAX_SCAN) and the seq it
        stopped at: where the next page starts when a full scan filled no page; (0, None) when the
        store examines every row."""

    async def query_sessions(self, q: AuditQuery) -> list[dict[str, Any]]:
        """One summary per session, newest first."""

    async def session_timeline(self, session_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The session's latest `limit` requests and decisions in time order, each with a "type"."""

    async def summary(self, since: float, bucket_seconds: float = 60) -> dict[str, Any]:
        """Totals, top policies and tenants, and latency percentiles per time bucket since `since`."""


def open_audit_sink(
    settings: AuditSettings | str, key: ChainKey | None = None, *, head_file: Path | None = None
) -> AuditSink:
    """The sink `settings.url` names: `memory://`, `sqlite:///path`, `postgresql://...`.
    A bare URL string is accepted too (with default settings).

    `key` keys the chain (keys.chain_key_for); a durable sink opened without one can be inspected but
    refuses to start. `head_file` is where the chain head is exported (none when None)."""
    from capsem_proxy.audit.memory import MemoryAuditSink
    from capsem_proxy.audit.sqlite import SQLiteAuditSink

    if isinstance(settings, str):
        settings = AuditSettings(url=settings)
    url = settings.url
    if url.startswith("memory:"):
        return MemoryAuditSink(key=key, max_decision_rows=settings.max_decision_rows,
                               max_content_chars=settings.max_content_chars)
    if url.startswith("sqlite:///"):
        return SQLiteAuditSink.from_settings(settings, key, head_file=head_file)
    if url.startswith(("postgresql://", "postgres://")):
        with needs_extra("audit.url postgresql://"):
            from capsem_proxy.audit.postgres import PostgresAuditSink

        return PostgresAuditSink.from_settings(settings, key, head_file=head_file)
    scheme = url.split(":", 1)[0]
    raise ConfigError(
        f"audit.url: unsupported audit store '{scheme}' (use sqlite:///path, postgresql://... or memory://)"
    )
