"""ALLOW decisions folded into their request's row.

Most decisions a request earns are ALLOWs with nothing to add: the default policy on every prompt,
each text detector on the prompt and on the answer. As rows of their own they were most of the
audit's work (each chained, hashed, inserted and indexed: 7 of the 8 rows of a request with the four
text detectors on). A decision that is ALLOW, not shadow, with no details and no subject, taken
while its request is in flight, is folded instead into the request row's `allowed` column: a JSON
array with one entry per hook, policy and reason,

    [decision_id, hook, policy, reason, latency_ms, recorded_at, count, model]

(the first decision's id and time, the sum of the latencies, how many were folded). The request
row's hash covers the column like any other, so folded decisions are as tamper-evident as rows.

Queries read each entry as a decision row (sql.py's decision source, memory.py): its seq, prev_hash
and hash are those of its request row, and so are its request, tenant, session and agent ids,
provider and operation; verdict ALLOW, no details, no subject, not shadow. Decisions taken once the
request row is queued, and entries past FOLD_MAX, keep rows of their own.
"""

from __future__ import annotations

from time import time
from typing import Any

import orjson

from capsem_proxy.audit.rows import COLUMN_NAMES
from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.hooks import RequestContext

__all__ = [
    "FOLDED_CONSTANTS", "FOLDED_FIELDS", "FOLD_MAX", "FROM_REQUEST", "fold_allowed", "folded_decisions", "folded_json",
]

# Distinct entries one request row holds; a request offering more hooks x policies x reasons writes
# the rest as rows (bounds the column however many policies run).
FOLD_MAX = 16
# What an entry holds, in order (each a decision column).
FOLDED_FIELDS = ("decision_id", "hook", "policy", "reason", "latency_ms", "recorded_at", "count", "model")
# The other decision columns of a folded decision: those its request row holds, and those every one shares.
FROM_REQUEST = ("request_id", "tenant_id", "session_id", "agent_id", "provider", "operation")
FOLDED_CONSTANTS: dict[str, Any] = {"verdict": "ALLOW", "details": "", "subject": "", "shadow": False}
# Texts longer than this are not folded (the caps of bounds.py would cut them; rows cap them).
_LONGEST_TEXT = 64
_ALLOW = Verdict.ALLOW
_LATENCY, _COUNT = FOLDED_FIELDS.index("latency_ms"), FOLDED_FIELDS.index("count")


def fold_allowed(context: RequestContext, decisions: list[Decision]) -> list[Decision]:
    """Fold what can be folded of `decisions` into the request of `context`; returns the decisions
    that still need rows of their own, in their order."""
    if context.record is None or context.audit_closed:
        return decisions
    folded = context.folded_allows
    if folded is None:
        folded = context.folded_allows = {}
    rest: list[Decision] = []
    now = 0.0
    model = context.exchange.model
    model_fits = len(model) <= 4 * _LONGEST_TEXT
    for decision in decisions:
        if (
            decision.verdict is _ALLOW and not decision.shadow and not decision.details and not decision.subject
            and len(decision.decision_id) <= _LONGEST_TEXT
        ):
            key = (decision.hook, decision.policy, decision.reason)
            entry = folded.get(key)
            if entry is not None:  # its hook, policy and reason were found short enough when it was made
                entry[_LATENCY] += decision.latency_ms
                entry[_COUNT] += 1
                continue
            if model_fits and len(folded) < FOLD_MAX and _short(key):
                if not now:
                    now = time()
                folded[key] = [decision.decision_id, *key, float(decision.latency_ms), now, 1, model]
                continue
        rest.append(decision)
    return rest


def _short(key: tuple[str, str, str]) -> bool:
    """Whether a (hook, policy, reason) key's texts are all short enough to fold."""
    hook, policy, reason = key
    return len(hook) <= _LONGEST_TEXT and len(policy) <= _LONGEST_TEXT and len(reason) <= _LONGEST_TEXT


def folded_json(context: RequestContext) -> str | None:
    """The `allowed` column of the request of `context` (None: nothing folded); no decision is folded
    into it from now on."""
    context.audit_closed = True
    folded = context.folded_allows
    return orjson.dumps(list(folded.values())).decode() if folded else None


def folded_decisions(request: dict[str, Any], allowed: str | None) -> list[dict[str, Any]]:
    """The decision rows (as queries return them) folded into a request row (`request`, as queries
    return it, and its `allowed` column)."""
    if not allowed:
        return []
    shared = {name: request[name] for name in FROM_REQUEST} | FOLDED_CONSTANTS
    rows = []
    for entry in orjson.loads(allowed):
        fields = dict(zip(FOLDED_FIELDS, entry, strict=True)) | shared
        row: dict[str, Any] = {"seq": request["seq"]}
        for name in COLUMN_NAMES["decisions"]:
            row[name] = fields[name]
        row["prev_hash"], row["hash"] = request["prev_hash"], request["hash"]
        rows.append(row)
    return rows
