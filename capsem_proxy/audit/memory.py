"""An in-memory audit sink (bounded), for tests and single-process development."""

from __future__ import annotations

from collections import deque

from capsem_proxy.audit.base import DecisionRecord, to_records
from capsem_proxy.decisions import Decision
from capsem_proxy.hooks import RequestContext

__all__ = ["MemoryAuditSink"]


class MemoryAuditSink:
    """Keeps the most recent decisions in memory."""

    def __init__(self, limit: int = 100_000) -> None:
        self.records: deque[DecisionRecord] = deque(maxlen=limit)

    def record(self, context: RequestContext, decisions: list[Decision]) -> None:
        self.records.extend(to_records(context, decisions))

    async def start(self) -> None:
        return None

    def ready(self) -> tuple[bool, str]:
        return True, ""

    async def close(self) -> None:
        return None
