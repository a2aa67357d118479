"""What the admin API and the dashboard may ask of an audit store, and the rules every store
answers by (what "blocked" means, how percentiles are taken, which rows a query selects)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BLOCKING_VERDICTS",
    "MAX_LIMIT",
    "MAX_SCAN",
    "TIME_SLACK",
    "AuditQuery",
    "decision_blocked",
    "matches",
    "nearest_rank",
    "request_blocked",
    "summarize",
]

MAX_LIMIT = 1000
# Rows a query with a filter no index serves (provider, model, verdict, status, policy of a request, free
# text) examines at most: it reads the newest MAX_SCAN rows the indexed filters (tenant, session,
# request, time range, seq cursor) select, and filters those. A page that comes back short after a
# full scan is not the end: the caller continues from `scan_extent`.
MAX_SCAN = 20_000
# Longest a request may take (start to audit row) for `AuditQuery.seq_bounded_time`: rows are numbered
# in the order they are written, so a time window [since, until) lies between the seq of a row that
# started TIME_SLACK before `since` and that of one that started TIME_SLACK after `until`.
TIME_SLACK = 3600.0
# Verdicts that stop a request or an answer (the confirmation verdicts only when they hold it: 403).
BLOCKING_VERDICTS = ("BLOCK", "CONFIRM", "CLARIFY", "REPLAN")
PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


@dataclass
class AuditQuery:
    """Filters for audit queries; every field left None matches everything."""

    tenant_id: str | None = None
    session_id: str | None = None
    agent_id: str | None = None
    request_id: str | None = None
    provider: str | None = None
    model: str | None = None
    policy: str | None = None  # decisions: taken by it; requests: it decided something other than ALLOW
    verdict: list[str] | None = None  # e.g. ["BLOCK", "CONFIRM"]
    blocked: bool | None = None  # requests: stopped by a policy; decisions: a blocking verdict
    statuses: list[tuple[int, int]] | None = None  # requests only: HTTP status in one of these inclusive ranges
    text: str | None = None  # case-insensitive substring of a reason, details or subject (a request's decisions')
    tenant_ids: list[str] | None = None  # any of these tenants
    request_ids: list[str] | None = None  # any of these requests
    decision_ids: list[str] | None = None  # any of these decisions
    since: float | None = None  # unix seconds
    until: float | None = None
    # Admin queries: a time window also bounds the seq range walked (found through the time index), so
    # a window that holds few rows does not make the store walk the table outside it. Exact unless a
    # request took longer than TIME_SLACK; exports of the audit trail (the CLI) leave it off.
    seq_bounded_time: bool = False
    limit: int = 100  # capped at MAX_LIMIT
    before_seq: int | None = None  # paging backwards (newest first, the default order)
    after_seq: int | None = None  # live tail: rows with seq > after_seq, oldest first

    @property
    def capped_limit(self) -> int:
        return max(0, min(int(self.limit), MAX_LIMIT))

    @property
    def oldest_first(self) -> bool:
        return self.after_seq is not None

    def scanned(self, table: str) -> bool:
        """Whether a filter no index serves applies, so that the scan is bounded by MAX_SCAN."""
        unindexed = (self.agent_id, self.provider, self.model, self.policy, self.verdict, self.blocked, self.text)
        return any(value is not None for value in unindexed) or (table == "requests" and self.statuses is not None)


def request_blocked(verdict: str, status: int) -> bool:
    """A request counts as blocked when a policy stopped it: BLOCK always (a stream may already have
    sent 200), a confirmation verdict only when it held the request (403)."""
    return verdict == "BLOCK" or (verdict in BLOCKING_VERDICTS and status == 403)


def decision_blocked(verdict: str) -> bool:
    return verdict in BLOCKING_VERDICTS


# The time column each table is filtered and ordered in time by.
TIME_COLUMN = {"requests": "started_at", "decisions": "recorded_at"}


def text_fields(table: str) -> tuple[str, ...]:
    """The columns free text is looked for in (a request's own reason is only its category)."""
    return ("reason",) if table == "requests" else ("reason", "details", "subject")


def contains_text(row: dict[str, Any], table: str, text: str) -> bool:
    wanted = text.lower()
    return any(wanted in str(row[name]).lower() for name in text_fields(table))


def matches(
    query: AuditQuery, table: str, row: dict[str, Any], decisions_of: dict[str, list[dict[str, Any]]] | None = None
) -> bool:
    """Whether `row` of `table` passes the filters of `query` (the in-memory twin of the SQL stores).
    A request's `policy` and `text` filters look at its decisions, `decisions_of[request_id]`."""
    for name in ("tenant_id", "session_id", "agent_id", "request_id", "provider", "model"):
        wanted = getattr(query, name)
        if wanted is not None and row[name] != wanted:
            return False
    for name, column in (("tenant_ids", "tenant_id"), ("request_ids", "request_id"), ("decision_ids", "decision_id")):
        wanted_any = getattr(query, name)
        if wanted_any is not None and row[column] not in wanted_any:
            return False
    own = (decisions_of or {}).get(row["request_id"], []) if table == "requests" else []
    if query.policy is not None:
        if table == "decisions" and row["policy"] != query.policy:
            return False
        if table == "requests" and not any(d["policy"] == query.policy and d["verdict"] != "ALLOW" for d in own):
            return False
    if query.text is not None and not (
        contains_text(row, table, query.text) or any(contains_text(d, "decisions", query.text) for d in own)
    ):
        return False
    if (
        table == "requests" and query.statuses is not None
        and not any(low <= row["status"] <= high for low, high in query.statuses)
    ):
        return False
    if query.verdict is not None and row["verdict"] not in query.verdict:
        return False
    if query.blocked is not None:
        blocked = (
            request_blocked(row["verdict"], row["status"]) if table == "requests" else decision_blocked(row["verdict"])
        )
        if blocked != query.blocked:
            return False
    moment = row[TIME_COLUMN[table]]
    if query.since is not None and moment < query.since:
        return False
    if query.until is not None and moment >= query.until:
        return False
    if query.before_seq is not None and row["seq"] >= query.before_seq:
        return False
    return query.after_seq is None or row["seq"] > query.after_seq


def nearest_rank(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (the SQL stores compute the same one)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(
    requests: list[dict[str, Any]], decisions: list[dict[str, Any]], bucket_seconds: float
) -> dict[str, Any]:
    """The `summary()` answer computed from rows (the memory store; SQL stores do it in SQL)."""
    by_verdict: dict[str, int] = {}
    tenants: dict[str, list[int]] = {}
    buckets: dict[float, list[float]] = {}
    blocked_total = 0
    for row in requests:
        blocked = request_blocked(row["verdict"], row["status"])
        blocked_total += blocked
        by_verdict[row["verdict"]] = by_verdict.get(row["verdict"], 0) + 1
        counts = tenants.setdefault(row["tenant_id"], [0, 0])
        counts[0] += 1
        counts[1] += blocked
        start = float(math.floor(row["started_at"] / bucket_seconds) * bucket_seconds)
        buckets.setdefault(start, []).append(row["latency_ms"])
    policies: dict[tuple[str, str], int] = {}
    for row in decisions:
        if row["verdict"] != "ALLOW":
            key = (row["policy"], row["verdict"])
            policies[key] = policies.get(key, 0) + row.get("count", 1)
    top_policies = sorted(policies.items(), key=lambda item: (-item[1], item[0]))[:10]
    top_tenants = sorted(tenants.items(), key=lambda item: (-item[1][0], item[0]))[:10]
    latency = []
    for start in sorted(buckets):
        values = sorted(buckets[start])
        point: dict[str, Any] = {"t": start, "count": len(values)}
        point.update({name: nearest_rank(values, fraction) for name, fraction in PERCENTILES})
        latency.append(point)
    return {
        "requests": len(requests),
        "blocked": blocked_total,
        "by_verdict": by_verdict,
        "top_policies": [{"policy": p, "verdict": v, "count": n} for (p, v), n in top_policies],
        "top_tenants": [{"tenant_id": t, "requests": n, "blocked": b} for t, (n, b) in top_tenants],
        "latency": latency,
    }
