"""An in-memory audit store (bounded, lost on exit), for tests and single-process development.
It answers every query the durable stores answer, and chains its rows the same way."""

from __future__ import annotations

import itertools
import os
from collections import deque
from operator import itemgetter
from typing import Any

from capsem_proxy.audit.bounds import decision_entries, request_entry
from capsem_proxy.audit.chain import GENESIS, chain_entries
from capsem_proxy.audit.folding import FOLD_MAX, fold_allowed, folded_decisions
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.query import TIME_COLUMN, AuditQuery, matches, request_blocked, summarize
from capsem_proxy.audit.rows import COLUMN_NAMES, Entry, row_dict
from capsem_proxy.audit.sql import whole_groups
from capsem_proxy.decisions import Decision
from capsem_proxy.hooks import RequestContext
from capsem_proxy.records import RequestRecord

__all__ = ["MemoryAuditSink"]

_ALLOWED = COLUMN_NAMES["requests"].index("allowed")


class MemoryAuditSink:
    """Keeps the most recent `limit` rows of each table in memory; nothing is ever queued or dropped.
    Rows are capped and decisions folded as in the durable stores; the chain's key is `key`, or one
    made for the process (nothing outlives it to be verified)."""

    dropped = 0

    def __init__(
        self, limit: int = 100_000, *, key: ChainKey | None = None, max_decision_rows: int = 50,
        max_content_chars: int = 65_536,
    ) -> None:
        self.requests: deque[dict[str, Any]] = deque(maxlen=limit)
        self.decisions: deque[dict[str, Any]] = deque(maxlen=limit)
        self.key = key or ChainKey(os.urandom(32))
        self._max_decision_rows = max_decision_rows
        self._max_content_chars = max_content_chars
        self._last_seq, self._last_hash = 0, GENESIS

    def _store(self, entries: list[Entry]) -> None:
        rows = chain_entries(entries, self._last_seq, self._last_hash, self.key)
        for row in rows:
            stored = row_dict(row.table, row.seq, row.values, row.prev_hash, row.hash)
            if row.table == "requests":
                self.requests.append(stored)
                # Folded decisions are held as the rows SQL stores read them as.
                self.decisions.extend(folded_decisions(stored, row.values[_ALLOWED]))
            else:
                self.decisions.append(stored)
        if rows:
            self._last_seq, self._last_hash = rows[-1].seq, rows[-1].hash

    def record(self, context: RequestContext, decisions: list[Decision]) -> None:
        decisions = fold_allowed(context, decisions)
        if not decisions:
            return
        self._store(decision_entries(context, decisions, self._max_decision_rows))

    def record_request(self, record: RequestRecord) -> None:
        self._store([request_entry(record, self._max_content_chars)])

    def admits(self, tenant_id: str) -> bool:
        return True

    def queue_depth(self) -> int:
        return 0

    async def start(self) -> None:
        return None

    def ready(self) -> tuple[bool, str]:
        return True, ""

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # Queries: the same answers as the SQL stores, computed over the rows held.

    def _decisions_by_request(self) -> dict[str, list[dict[str, Any]]]:
        by_request: dict[str, list[dict[str, Any]]] = {}
        for row in self.decisions:
            by_request.setdefault(row["request_id"], []).append(row)
        return by_request

    def _select(self, table: str, query: AuditQuery) -> list[dict[str, Any]]:
        rows = self.requests if table == "requests" else self.decisions
        ordered = rows if query.oldest_first else reversed(rows)
        looks_at_decisions = table == "requests" and (query.policy is not None or query.text is not None)
        decisions_of = self._decisions_by_request() if looks_at_decisions else None
        selected = (dict(row) for row in ordered if matches(query, table, row, decisions_of))
        if table == "requests":
            return list(itertools.islice(selected, query.capped_limit))
        # As the SQL stores: a page ends after the last decision folded into the request row it reaches.
        return whole_groups(list(itertools.islice(selected, query.capped_limit + FOLD_MAX)), query.capped_limit,
                            itemgetter("seq"))

    async def scan_extent(self, table: str, q: AuditQuery) -> tuple[int, int | None]:
        """Nothing here is scanned in bounded slices: every row held is looked at (see query.MAX_SCAN)."""
        return 0, None

    async def query_requests(self, q: AuditQuery) -> list[dict[str, Any]]:
        return self._select("requests", q)

    async def query_decisions(self, q: AuditQuery) -> list[dict[str, Any]]:
        return self._select("decisions", q)

    async def query_sessions(self, q: AuditQuery) -> list[dict[str, Any]]:
        unpaged = AuditQuery(**{**q.__dict__, "before_seq": None, "after_seq": None, "limit": 0})
        sessions: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.requests:
            if not row["session_id"] or not matches(unpaged, "requests", row):
                continue
            key = (row["tenant_id"], row["session_id"])
            session = sessions.get(key)
            if session is None:
                session = sessions[key] = {
                    "session_id": row["session_id"], "tenant_id": row["tenant_id"], "agent_ids": [],
                    "first_at": row["started_at"], "last_at": row["started_at"], "requests": 0, "blocked": 0,
                    "input_tokens": 0, "output_tokens": 0,
                }
            session["first_at"] = min(session["first_at"], row["started_at"])
            session["last_at"] = max(session["last_at"], row["started_at"])
            session["requests"] += 1
            session["blocked"] += request_blocked(row["verdict"], row["status"])
            session["input_tokens"] += row["input_tokens"] or 0
            session["output_tokens"] += row["output_tokens"] or 0
            if row["agent_id"] and row["agent_id"] not in session["agent_ids"]:
                session["agent_ids"].append(row["agent_id"])
        newest = sorted(sessions.values(), key=lambda session: session["last_at"], reverse=True)
        for session in newest:
            session["agent_ids"].sort()
        return newest[: q.capped_limit]

    async def session_timeline(self, session_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        items = [
            {"type": table[:-1], **row}
            for table, rows in (("requests", self.requests), ("decisions", self.decisions))
            for row in rows
            if row["session_id"] == session_id
        ]
        items.sort(key=lambda item: (item[TIME_COLUMN[item["type"] + "s"]], item["seq"]))
        return items[-limit:] if limit > 0 else []

    async def summary(self, since: float, bucket_seconds: float = 60) -> dict[str, Any]:
        requests = [row for row in self.requests if row["started_at"] >= since]
        decisions = [row for row in self.decisions if row["recorded_at"] >= since]
        return summarize(requests, decisions, bucket_seconds)
