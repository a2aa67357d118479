"""The audit query routes: requests, decisions, sessions and their timelines, and the summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from capsem_proxy.admin.params import (
    BadParameter,
    parse_audit_query,
    parse_int,
    parse_params,
    parse_segment,
    parse_time,
)
from capsem_proxy.admin.replies import Reply, error_reply, json_reply
from capsem_proxy.audit.base import AuditSink
from capsem_proxy.audit.query import MAX_LIMIT, AuditQuery

__all__ = ["answer_query"]

logger = logging.getLogger("capsem_proxy.admin")

_MAX_BUCKETS = 10_000
_DEFAULT_SUMMARY_WINDOW = 3600.0
_PAGING = frozenset({"limit", "before_seq", "after_seq"})
_REQUEST_FILTERS = frozenset(
    {"tenant_id", "session_id", "agent_id", "request_id", "provider", "model", "verdict", "blocked", "since", "until"}
) | _PAGING
_DECISION_FILTERS = frozenset(
    {
        "tenant_id", "session_id", "agent_id", "request_id", "provider", "model", "policy", "verdict", "blocked",
        "since", "until",
    }
) | _PAGING
# Sessions are built from request rows: these filters select the requests that count.
_SESSION_FILTERS = frozenset({"tenant_id", "agent_id", "provider", "model", "since", "until", "limit"})


async def answer_query(audit: AuditSink | None, parts: list[str], query_string: bytes) -> Reply:
    """Answer a GET of `/admin/{requests,decisions,sessions,summary}[/{id}]`, split into `parts`."""
    if audit is None or not hasattr(audit, "query_requests"):
        return error_reply(501, "the configured audit store does not answer queries")
    resource = parts[0]
    try:
        if resource == "requests" and len(parts) == 2:
            parse_params(query_string, frozenset())
            return await _request_detail(audit, parse_segment(parts[1], "request_id"))
        if resource == "requests":
            query = parse_audit_query(parse_params(query_string, _REQUEST_FILTERS))
            rows = await audit.query_requests(query)
            return json_reply({"requests": rows, "next": _next_cursor(rows, query)})
        if resource == "decisions":
            query = parse_audit_query(parse_params(query_string, _DECISION_FILTERS))
            rows = await audit.query_decisions(query)
            return json_reply({"decisions": rows, "next": _next_cursor(rows, query)})
        if resource == "sessions" and len(parts) == 2:
            session_id = parse_segment(parts[1], "session_id")
            params = parse_params(query_string, frozenset({"limit"}))
            limit = parse_int("limit", params["limit"], 1, MAX_LIMIT) if "limit" in params else MAX_LIMIT
            timeline = await audit.session_timeline(session_id, limit=limit)
            if not timeline:
                return error_reply(404, "unknown session")
            return json_reply({"session_id": session_id, "timeline": timeline})
        if resource == "sessions":
            query = parse_audit_query(parse_params(query_string, _SESSION_FILTERS))
            return json_reply({"sessions": await audit.query_sessions(query)})
        return await _summary(audit, parse_params(query_string, frozenset({"since", "bucket"})))
    except BadParameter:
        raise
    except Exception:
        logger.exception("audit query on /admin/%s failed", resource)
        return error_reply(503, "the audit store did not answer; try again")


def _next_cursor(rows: list[dict[str, Any]], query: AuditQuery) -> dict[str, int] | None:
    """Where the next page starts: the live tail continues after the newest row seen; a page
    read backwards continues before its oldest row, unless it was the last one."""
    seqs = [row["seq"] for row in rows if isinstance(row.get("seq"), int)]
    if query.after_seq is not None:
        return {"after_seq": max(seqs, default=query.after_seq)}
    if len(rows) >= query.limit and seqs:
        return {"before_seq": min(seqs)}
    return None


async def _request_detail(audit: AuditSink, request_id: str) -> Reply:
    rows = await audit.query_requests(AuditQuery(request_id=request_id, limit=1))
    decisions = await audit.query_decisions(AuditQuery(request_id=request_id, limit=MAX_LIMIT))
    if not rows and not decisions:
        return error_reply(404, "unknown request id")
    decisions.sort(key=lambda row: row.get("seq", 0))
    return json_reply({"request": rows[0] if rows else None, "decisions": decisions})


async def _summary(audit: AuditSink, params: Mapping[str, str]) -> Reply:
    now = time.time()
    since = parse_time("since", params["since"]) if "since" in params else now - _DEFAULT_SUMMARY_WINDOW
    bucket = parse_int("bucket", params["bucket"], 1, 86_400) if "bucket" in params else 60
    if (now - since) / bucket > _MAX_BUCKETS:
        raise BadParameter("bucket", f"too small for this window (at most {_MAX_BUCKETS} buckets)")
    summary = await audit.summary(since, float(bucket))
    return json_reply({"since": since, "bucket": bucket, **summary})
