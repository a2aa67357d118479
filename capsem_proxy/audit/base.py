"""The audit sink interface and the record it stores."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from capsem_proxy.config import ConfigError
from capsem_proxy.decisions import Decision
from capsem_proxy.hooks import RequestContext

__all__ = ["AuditSink", "DecisionRecord", "open_audit_sink", "to_records", "to_rows"]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision as stored: never a key, never prompt or answer content."""

    decision_id: str
    request_id: str
    tenant_id: str
    provider: str
    operation: str
    model: str
    hook: str
    policy: str
    verdict: str
    reason: str
    details: str
    subject: str
    latency_ms: float
    recorded_at: float


def to_rows(context: RequestContext, decisions: list[Decision]) -> list[tuple[Any, ...]]:
    """Rows (in DecisionRecord field order) for `decisions` taken on the request `context`."""
    now = time.time()
    request_id, tenant_id, provider = context.request_id, context.tenant_id, context.provider
    operation, model = context.operation, context.exchange.model
    return [
        (
            decision.decision_id, request_id, tenant_id, provider, operation, model, decision.hook,
            decision.policy, decision.verdict.value, decision.reason, decision.details, decision.subject,
            round(decision.latency_ms, 4), now,
        )
        for decision in decisions
    ]


def to_records(context: RequestContext, decisions: list[Decision]) -> list[DecisionRecord]:
    """Records for `decisions` taken on the request `context`."""
    return [DecisionRecord(*row) for row in to_rows(context, decisions)]


class AuditSink(Protocol):
    """Receives decisions without blocking the request; persists them in the background."""

    def record(self, context: RequestContext, decisions: list[Decision]) -> None:
        """Queue `decisions` for storage (never blocks, never raises on the request path)."""

    async def start(self) -> None:
        """Begin background work (inside the running event loop)."""

    def ready(self) -> tuple[bool, str]:
        """Whether the store takes writes, and why not (for /readyz)."""

    async def close(self) -> None:
        """Flush everything queued and release the store."""


def open_audit_sink(url: str) -> AuditSink:
    """The sink a URL names: `memory://`, `sqlite:///path`."""
    from capsem_proxy.audit.memory import MemoryAuditSink
    from capsem_proxy.audit.sqlite import SQLiteAuditSink

    if url.startswith("memory:"):
        return MemoryAuditSink()
    if url.startswith("sqlite:///"):
        return SQLiteAuditSink(url.removeprefix("sqlite:///"))
    scheme = url.split(":", 1)[0]
    raise ConfigError(f"audit.url: unsupported audit store '{scheme}' (use sqlite:///path or memory://)")
