"""Replay recorded traffic through another configuration's policies, offline, and report every verdict
that would change: how a team tunes thresholds or tries a new policy on its own traffic before
enforcing it (`capsem-proxy replay --config NEW.yaml`).

What is replayed: requests the audit trail holds content for (`audit.store_content`): their stored
prompt (system instructions and conversation text, as redacted when stored) is checked as the prompt
of a request to the same provider, operation and model, and their stored answer as its answer,
through the pipeline NEW's policy sets select for that tenant. Tool definitions, tool results and
tool calls are not stored, so policies reading only those places have nothing to read again.

Before: the strictest verdict each policy recorded on the request (shadow decisions included: they
are what a shadow policy would have done). After: the strictest verdict each of NEW's policies takes.
A policy missing on one side counts as ALLOW there. A value redacted before it was stored cannot be
found again: a policy that redacted it and now finds nothing keeps its recorded verdict, counted as
`not_comparable` rather than reported as a change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from capsem_proxy.audit.query import MAX_LIMIT, AuditQuery
from capsem_proxy.decisions import SEVERITY, Decision, Verdict
from capsem_proxy.exchange import Answer, Exchange, Message
from capsem_proxy.hooks import RequestContext
from capsem_proxy.policy_sets import PolicySelector

__all__ = ["ReplayReport", "VerdictChange", "replay"]

_REDACTED_MARK = "[REDACTED:"


@dataclass(frozen=True, slots=True)
class VerdictChange:
    """One policy whose verdict on one recorded request differs under the new configuration."""

    request_id: str
    policy: str
    before: str
    after: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(slots=True)
class ReplayReport:
    """Every change, and how many requests were replayed, skipped or not comparable."""

    changes: list[VerdictChange] = field(default_factory=list)
    replayed: int = 0
    without_content: int = 0
    not_comparable: int = 0

    def counts(self) -> dict[str, dict[str, int]]:
        """Per policy: how many verdicts changed, in all and from each verdict to each other one."""
        result: dict[str, Counter[str]] = {}
        for change in self.changes:
            counter = result.setdefault(change.policy, Counter())
            counter["changed"] += 1
            counter[f"{change.before} -> {change.after}"] += 1
        return {policy: dict(sorted(counter.items())) for policy, counter in sorted(result.items())}


def _strictest_by_policy(decisions: list[dict[str, Any]] | list[Decision]) -> dict[str, tuple[str, str]]:
    """policy -> (strictest verdict, its reason and details) over decisions (rows or Decision objects)."""
    found: dict[str, tuple[str, str]] = {}
    for decision in decisions:
        if isinstance(decision, Decision):
            policy, verdict = decision.policy, decision.verdict.value
            reason = f"{decision.reason}: {decision.details}" if decision.details else decision.reason
        else:
            policy, verdict = str(decision["policy"]), str(decision["verdict"])
            details = decision.get("details") or ""
            reason = f"{decision['reason']}: {details}" if details else str(decision["reason"])
        if verdict == Verdict.ALLOW.value:
            continue
        current = found.get(policy)
        if current is None or SEVERITY[Verdict(verdict)] > SEVERITY[Verdict(current[0])]:
            found[policy] = (verdict, reason)
    return found


def _context(row: dict[str, Any]) -> RequestContext:
    prompt = str(row.get("prompt") or "")
    exchange = Exchange(
        str(row["provider"]), str(row["operation"]), model=str(row["model"]),
        messages=[Message("user", prompt)] if prompt else [], request_bytes=len(prompt.encode()),
    )
    return RequestContext(
        str(row["request_id"]), str(row["tenant_id"]), str(row["provider"]), str(row["operation"]), exchange,
        agent_id=str(row.get("agent_id") or ""), session_id=str(row.get("session_id") or ""),
    )


async def _replay_one(selector: PolicySelector, row: dict[str, Any], recorded: list[dict[str, Any]],
                      report: ReplayReport) -> None:
    context = _context(row)
    pipeline = selector.select(context.tenant_id, context.provider, context.operation, context.exchange.model)
    decisions: list[Decision] = []
    if row.get("prompt"):
        decisions += (await pipeline.check_request(context)).decisions
    if row.get("answer"):
        decisions += (await pipeline.check_answer(context, Answer(text=str(row["answer"])))).decisions
    before = _strictest_by_policy(recorded)
    after = _strictest_by_policy(decisions)
    stored = f"{row.get('prompt') or ''}\n{row.get('answer') or ''}"
    for policy in sorted(set(before) | set(after)):
        old, old_reason = before.get(policy, (Verdict.ALLOW.value, ""))
        new, new_reason = after.get(policy, (Verdict.ALLOW.value, ""))
        if old == new:
            continue
        if old == Verdict.REDACT.value and new == Verdict.ALLOW.value and _REDACTED_MARK in stored:
            report.not_comparable += 1  # what it redacted was stored redacted: nothing left to find
            continue
        reason = new_reason or f"no longer {old.lower()}: {old_reason}"
        report.changes.append(VerdictChange(str(row["request_id"]), policy, old, new, reason))


async def replay(reader: Any, selector: PolicySelector, *, since: float | None = None,
                 until: float | None = None, limit: int | None = None) -> ReplayReport:
    """Replay the requests `reader`'s store recorded in [since, until) through `selector`'s
    pipelines, newest first, at most `limit` of them (all by default)."""
    report = ReplayReport()
    before_seq: int | None = None
    seen = 0
    while True:
        page = await reader.query_requests(
            AuditQuery(since=since, until=until, limit=MAX_LIMIT, before_seq=before_seq)
        )
        if not page:
            break
        for row in page:
            if limit is not None and seen >= limit:
                return report
            seen += 1
            if row.get("prompt") is None and row.get("answer") is None:
                report.without_content += 1
                continue
            recorded = await reader.query_decisions(AuditQuery(request_id=row["request_id"], limit=MAX_LIMIT))
            await _replay_one(selector, row, recorded, report)
            report.replayed += 1
        before_seq = min(int(row["seq"]) for row in page)
    return report
