"""Audit sinks: where every policy decision is recorded, off the request path."""

from capsem_proxy.audit.base import AuditSink, DecisionRecord, open_audit_sink
from capsem_proxy.audit.memory import MemoryAuditSink
from capsem_proxy.audit.sqlite import SQLiteAuditSink

__all__ = ["AuditSink", "DecisionRecord", "MemoryAuditSink", "SQLiteAuditSink", "open_audit_sink"]
