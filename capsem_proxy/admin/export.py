"""Export of filtered audit rows: `GET /admin/export/{requests,decisions}?format=csv|jsonl&<filters>`.

The filters are those of `/admin/requests` and `/admin/decisions`; rows come newest first, read page
by page with the same bounded queries. An export is bounded three ways: `limit` rows (at most
MAX_EXPORT_ROWS), MAX_EXPORT_BYTES of output, and MAX_EXPORT_PAGES pages read. When a bound cut it,
the answer says so in `x-capsem-export-truncated` and carries the cursor to continue from in
`x-capsem-export-next` (`before_seq=N`).

CSV cells that a spreadsheet would run as a formula (starting with = + - @ or a control character)
are prefixed with a quote: reasons and names can carry a caller's text.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import orjson

from capsem_proxy.admin.params import BadParameter
from capsem_proxy.admin.replies import Reply
from capsem_proxy.admin.tenants import TenantDirectory
from capsem_proxy.admin.triage import read_page
from capsem_proxy.audit.base import AuditSink
from capsem_proxy.audit.query import MAX_LIMIT, AuditQuery, decision_blocked, request_blocked

__all__ = ["CSV_COLUMNS", "MAX_EXPORT_BYTES", "MAX_EXPORT_ROWS", "export_rows"]

MAX_EXPORT_ROWS = 10_000
MAX_EXPORT_BYTES = 16 * 1024 * 1024
MAX_EXPORT_PAGES = 100
FORMATS = {"csv": b"text/csv; charset=utf-8", "jsonl": b"application/x-ndjson"}

CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "requests": (
        "time", "request_id", "tenant_id", "tenant_name", "session_id", "agent_id", "provider", "operation", "route",
        "model", "stream", "status", "verdict", "blocked", "policy", "reason", "details", "decision_id",
        "latency_ms", "upstream_ms", "ttfb_ms", "input_tokens", "output_tokens",
    ),
    "decisions": (
        "time", "decision_id", "request_id", "tenant_id", "tenant_name", "session_id", "agent_id", "provider",
        "operation", "model", "hook", "policy", "verdict", "shadow", "blocked", "reason", "details", "subject", "count",
        "latency_ms",
    ),
}
_TIME_OF = {"requests": "started_at", "decisions": "recorded_at"}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _iso(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{whole}.{int((seconds % 1) * 1000):03d}Z"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _export_fields(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row with what an export adds: its time in ISO 8601 UTC, and whether it stopped anything."""
    blocked = (
        request_blocked(row.get("verdict", ""), row.get("status", 0)) if table == "requests"
        else decision_blocked(row.get("verdict", ""))
    )
    return {"time": _iso(row.get(_TIME_OF[table])), **row, "blocked": blocked}


class _Writer:
    """Accumulates encoded rows up to MAX_EXPORT_BYTES."""

    def __init__(self, table: str, fmt: str) -> None:
        self.table, self.fmt = table, fmt
        self.parts: list[bytes] = []
        self.size = 0
        self.rows = 0
        if fmt == "csv":
            self._add(self._csv_line(list(CSV_COLUMNS[table])))

    @staticmethod
    def _csv_line(values: list[Any]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(values)
        return buffer.getvalue().encode("utf-8")

    def _add(self, encoded: bytes) -> None:
        self.parts.append(encoded)
        self.size += len(encoded)

    def add(self, row: dict[str, Any]) -> bool:
        """Add a row; False (and nothing added) when it would pass the byte bound."""
        fields = _export_fields(self.table, row)
        if self.fmt == "csv":
            encoded = self._csv_line([_cell(fields.get(column)) for column in CSV_COLUMNS[self.table]])
        else:
            encoded = orjson.dumps(fields, default=str) + b"\n"
        if self.size + len(encoded) > MAX_EXPORT_BYTES:
            return False
        self._add(encoded)
        self.rows += 1
        return True


async def export_rows(
    audit: AuditSink, table: str, fmt: str, query: AuditQuery, wanted: int, directory: TenantDirectory
) -> Reply:
    """The export of up to `wanted` rows of `table` that `query` selects, as `fmt`."""
    if fmt not in FORMATS:
        raise BadParameter("format", f"must be one of {', '.join(FORMATS)}")
    if query.after_seq is not None:
        raise BadParameter("after_seq", "exports read newest first; use before_seq to continue one")
    writer = _Writer(table, fmt)
    cursor: dict[str, int] | None = {"before_seq": query.before_seq} if query.before_seq is not None else {}
    truncated = False
    pages = 0
    while cursor is not None and writer.rows < wanted:
        if pages >= MAX_EXPORT_PAGES:
            truncated = True
            break
        query.before_seq = cursor.get("before_seq")
        query.limit = min(MAX_LIMIT, wanted - writer.rows)
        rows, cursor, _ = await read_page(audit, table, query, directory)
        pages += 1
        for row in rows:
            if not writer.add(row):
                truncated = True
                cursor = {"before_seq": row["seq"] + 1}
                break
        if truncated:
            break
    if cursor is not None and writer.rows >= wanted:
        truncated = True
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = [
        (b"content-disposition", f'attachment; filename="capsem-{table}-{stamp}.{fmt}"'.encode()),
        (b"x-capsem-export-rows", str(writer.rows).encode()),
        (b"x-capsem-export-truncated", b"true" if truncated else b"false"),
    ]
    if truncated and cursor is not None and cursor.get("before_seq") is not None:
        headers.append((b"x-capsem-export-next", f"before_seq={cursor['before_seq']}".encode()))
    return Reply(200, b"".join(writer.parts), FORMATS[fmt], headers)
