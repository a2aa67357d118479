"""The audit query routes: requests, decisions, sessions and their timelines, the summary, and exports."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from capsem_proxy.admin.export import MAX_EXPORT_ROWS, export_rows
from capsem_proxy.admin.params import (
    BadParameter,
    parse_audit_query,
    parse_int,
    parse_params,
    parse_segment,
    parse_time,
)
from capsem_proxy.admin.replies import Reply, error_reply, json_reply
from capsem_proxy.admin.tenants import NO_TENANT_NAMES, TenantDirectory, add_tenant_names, resolve_tenant
from capsem_proxy.admin.triage import add_governing_decisions, read_page
from capsem_proxy.audit.base import AuditSink
from capsem_proxy.audit.query import MAX_LIMIT, AuditQuery

__all__ = ["answer_query"]

logger = logging.getLogger("capsem_proxy.admin")

_MAX_BUCKETS = 10_000
_DEFAULT_SUMMARY_WINDOW = 3600.0
_PAGING = frozenset({"limit", "before_seq", "after_seq"})
_COMMON_FILTERS = frozenset(
    {
        "tenant", "tenant_id", "session_id", "agent_id", "request_id", "provider", "model", "policy", "verdict",
        "blocked", "since", "until", "q",
    }
)
_REQUEST_FILTERS = _COMMON_FILTERS | {"status"} | _PAGING
_DECISION_FILTERS = _COMMON_FILTERS | _PAGING
_EXPORT_PARAMS = {"requests": _REQUEST_FILTERS | {"format"}, "decisions": _DECISION_FILTERS | {"format"}}
# Sessions are built from request rows: these filters select the requests that count.
_SESSION_FILTERS = frozenset({"tenant", "tenant_id", "agent_id", "provider", "model", "since", "until", "limit"})


async def _parse_query(query_string: bytes, allowed: frozenset[str], directory: TenantDirectory) -> tuple[
    AuditQuery, dict[str, str]
]:
    params = parse_params(query_string, allowed)
    tenant_ids = await resolve_tenant(directory, params["tenant"]) if "tenant" in params else None
    return parse_audit_query(params, tenant_ids), params


async def answer_query(
    audit: AuditSink | None, parts: list[str], query_string: bytes, directory: TenantDirectory = NO_TENANT_NAMES
) -> Reply:
    """Answer a GET of `/admin/{requests,decisions,sessions,summary}[/{id}]` or
    `/admin/export/{requests,decisions}`, split into `parts`."""
    if audit is None or not hasattr(audit, "query_requests"):
        return error_reply(501, "the configured audit store does not answer queries")
    resource = parts[0]
    try:
        if resource == "export":
            table = parts[1] if len(parts) == 2 else ""
            if table not in _EXPORT_PARAMS:
                return error_reply(404, "not found (export requests or decisions)")
            query, params = await _parse_query(query_string, _EXPORT_PARAMS[table], directory)
            wanted = parse_int("limit", params["limit"], 1, MAX_EXPORT_ROWS) if "limit" in params else MAX_EXPORT_ROWS
            return await export_rows(audit, table, params.get("format", "csv"), query, wanted, directory)
        if resource == "requests" and len(parts) == 2:
            parse_params(query_string, frozenset())
            return await _request_detail(audit, parse_segment(parts[1], "request_id"), directory)
        if resource in ("requests", "decisions") and len(parts) == 1:
            allowed = _REQUEST_FILTERS if resource == "requests" else _DECISION_FILTERS
            query, _ = await _parse_query(query_string, allowed, directory)
            rows, cursor, scan_limited = await read_page(audit, resource, query, directory)
            answer: dict[str, Any] = {resource: rows, "next": cursor}
            if scan_limited:
                answer["scan_limited"] = True
            return json_reply(answer)
        if resource == "sessions" and len(parts) == 2:
            session_id = parse_segment(parts[1], "session_id")
            params = parse_params(query_string, frozenset({"limit"}))
            limit = parse_int("limit", params["limit"], 1, MAX_LIMIT) if "limit" in params else MAX_LIMIT
            timeline = await audit.session_timeline(session_id, limit=limit)
            if not timeline:
                return error_reply(404, "unknown session")
            await add_tenant_names(directory, timeline)
            return json_reply({"session_id": session_id, "timeline": timeline})
        if resource == "sessions":
            query, _ = await _parse_query(query_string, _SESSION_FILTERS, directory)
            sessions = await audit.query_sessions(query)
            await add_tenant_names(directory, sessions)
            return json_reply({"sessions": sessions})
        summary = await _summary(audit, parse_params(query_string, frozenset({"since", "bucket"})))
        await add_tenant_names(directory, summary["top_tenants"])
        return json_reply(summary)
    except BadParameter:
        raise
    except Exception:
        logger.exception("audit query on /admin/%s failed", resource)
        return error_reply(503, "the audit store did not answer; try again")


async def _request_detail(audit: AuditSink, request_id: str, directory: TenantDirectory) -> Reply:
    rows = await audit.query_requests(AuditQuery(request_id=request_id, limit=1))
    decisions = await audit.query_decisions(AuditQuery(request_id=request_id, limit=MAX_LIMIT))
    if not rows and not decisions:
        return error_reply(404, "unknown request id")
    decisions.sort(key=lambda row: row.get("seq", 0))
    await add_governing_decisions(audit, rows)
    await add_tenant_names(directory, [*rows, *decisions])
    return json_reply({"request": rows[0] if rows else None, "decisions": decisions})


async def _summary(audit: AuditSink, params: Mapping[str, str]) -> dict[str, Any]:
    now = time.time()
    since = parse_time("since", params["since"]) if "since" in params else now - _DEFAULT_SUMMARY_WINDOW
    bucket = parse_int("bucket", params["bucket"], 1, 86_400) if "bucket" in params else 60
    if (now - since) / bucket > _MAX_BUCKETS:
        raise BadParameter("bucket", f"too small for this window (at most {_MAX_BUCKETS} buckets)")
    summary = await audit.summary(since, float(bucket))
    return {"since": since, "bucket": bucket, **summary}
