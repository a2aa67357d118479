"""The audit trail: a row per proxied request and per policy decision, written off the request path
to SQLite (default), PostgreSQL or memory, hash-chained so that tampering shows, and queryable."""

from capsem_proxy.audit.base import AuditSink, open_audit_sink
from capsem_proxy.audit.memory import MemoryAuditSink
from capsem_proxy.audit.query import AuditQuery
from capsem_proxy.audit.sqlite import SQLiteAuditSink

__all__ = ["AuditQuery", "AuditSink", "MemoryAuditSink", "SQLiteAuditSink", "open_audit_sink"]
