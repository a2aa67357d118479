"""Reading request and decision rows for triage: one page of a filtered query, each request row with
the policy and text of the decision that governed it (a request row alone holds only the category,
`policy_violation`), tenant names where known, and the cursor of the next page."""

from __future__ import annotations

from typing import Any

from capsem_proxy.admin.tenants import TenantDirectory, add_tenant_names
from capsem_proxy.audit.base import AuditSink
from capsem_proxy.audit.query import MAX_SCAN, AuditQuery

__all__ = ["Page", "read_page"]

Page = tuple[list[dict[str, Any]], dict[str, int] | None, bool]


async def read_page(audit: AuditSink, table: str, query: AuditQuery, directory: TenantDirectory) -> Page:
    """The rows of `table` that `query` selects, the cursor of the next page (None at the end), and
    whether the page was cut short by the bounded scan (query.MAX_SCAN) rather than by the end."""
    rows = await (audit.query_requests(query) if table == "requests" else audit.query_decisions(query))
    if table == "requests":
        await add_governing_decisions(audit, rows)
    await add_tenant_names(directory, rows)
    cursor = _next_cursor(rows, query)
    scan_limited = False
    if len(rows) < query.capped_limit and query.scanned(table) and hasattr(audit, "scan_extent"):
        count, edge = await audit.scan_extent(table, query)
        if edge is not None and query.oldest_first:
            # The live tail: rows up to the scan's edge were all looked at, matched or not, so the
            # next poll starts after them instead of filtering them again.
            scan_limited = count >= MAX_SCAN
            cursor = {"after_seq": max(edge, (cursor or {}).get("after_seq", edge))}
        elif edge is not None and count >= MAX_SCAN:
            scan_limited = True
            cursor = {"before_seq": edge}
    return rows, cursor, scan_limited


async def add_governing_decisions(audit: AuditSink, rows: list[dict[str, Any]]) -> None:
    """Give each request row the `policy` and `details` of its governing decision (one indexed query
    for the page: decisions are looked up by request id)."""
    governed = {row["decision_id"]: row for row in rows if row.get("decision_id")}
    if not governed:
        return
    request_ids = list(dict.fromkeys(row["request_id"] for row in governed.values()))
    decisions = await audit.query_decisions(
        AuditQuery(request_ids=request_ids, decision_ids=list(governed), limit=len(governed))
    )
    for decision in decisions:
        row = governed.get(decision["decision_id"])
        if row is not None and row["request_id"] == decision["request_id"]:
            row.setdefault("policy", decision["policy"])
            row.setdefault("details", decision["details"])


def _next_cursor(rows: list[dict[str, Any]], query: AuditQuery) -> dict[str, int] | None:
    """Where the next page starts: the live tail continues after the newest row seen; a page
    read backwards continues before its oldest row, unless it was the last one."""
    seqs = [row["seq"] for row in rows if isinstance(row.get("seq"), int)]
    if query.after_seq is not None:
        return {"after_seq": max(seqs, default=query.after_seq)}
    if len(rows) >= query.limit and seqs:
        return {"before_seq": min(seqs)}
    return None
