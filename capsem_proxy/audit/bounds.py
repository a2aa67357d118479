"""What one request may put into the audit trail, and the queued rows built from it: a cap on every
text column, and decisions folded so that a request offering thousands of tools writes a handful of
rows, not thousands.

Caps apply when a row is queued (on the request path), so a queued row never holds more than its caps
however large the request was; they are never applied again when rows are read back (that would
change what was hashed). A cut value ends with `…[N chars]`, N its original length.

Folding, for the decisions taken at one interception point:
- ALLOW decisions of one policy on one hook become one row, with `count`, the sum of their latencies
  and a summary of their subjects (the tool names);
- every other decision keeps its own row while the request has row budget left
  (`audit.max_decision_rows`); beyond it, the governing decision (the one the caller was shown) and
  then the most severe ones keep their rows, and the rest fold like ALLOW decisions, per policy,
  hook and verdict. A BLOCK or CONFIRM is never dropped: at worst it is counted in a folded row.
"""

from __future__ import annotations

import time
from operator import attrgetter, itemgetter
from typing import Any

from capsem_proxy.audit.rows import COLUMN_NAMES, Entry
from capsem_proxy.decisions import Decision, Verdict, strictest
from capsem_proxy.hooks import RequestContext
from capsem_proxy.records import RequestRecord

__all__ = ["DECISION_CAPS", "REQUEST_CAPS", "cap_text", "decision_entries", "request_entry"]

# Characters kept per column. Ids the proxy makes are far shorter; the caps bound what a caller or a
# policy can make the proxy store (a model or tool name, a reason quoting input).
_ID, _NAME, _LABEL = 128, 256, 64
REQUEST_CAPS: dict[str, int] = {
    "request_id": _ID, "tenant_id": _ID, "session_id": _ID, "agent_id": _ID, "provider": _LABEL,
    "operation": _LABEL, "route": _NAME, "model": _NAME, "verdict": _LABEL, "decision_id": _ID, "reason": 512,
}
DECISION_CAPS: dict[str, int] = {
    "decision_id": _ID, "request_id": _ID, "tenant_id": _ID, "session_id": _ID, "agent_id": _ID,
    "provider": _LABEL, "operation": _LABEL, "model": _NAME, "hook": _LABEL, "policy": _ID, "verdict": _LABEL,
    "reason": 512, "details": 2048, "subject": _NAME,
}
# Values no longer than this fit every cap: one cheap check for the usual row.
_FITS = min(min(REQUEST_CAPS.values()), min(DECISION_CAPS.values()))
_SUBJECTS_SHOWN = 200  # characters of tool names listed in a folded row's subject before "… (+N more)"
# Key in RequestContext.scratch: how many individual non-ALLOW decision rows the request may still write.
_ROW_BUDGET = "audit_decision_rows_left"

_ALLOW = Verdict.ALLOW  # read once: a member read through its Enum class is a lookup each time
_VERDICT_TEXT = {verdict: verdict.value for verdict in Verdict}  # a dict lookup, not the `value` property
_REQUEST_COLUMNS = COLUMN_NAMES["requests"]
_record_values = attrgetter(*_REQUEST_COLUMNS)
_REQUEST_CAPPED = [(_REQUEST_COLUMNS.index(name), limit) for name, limit in REQUEST_CAPS.items()]
_request_texts = itemgetter(*(index for index, _ in _REQUEST_CAPPED))
_PROMPT, _ANSWER = _REQUEST_COLUMNS.index("prompt"), _REQUEST_COLUMNS.index("answer")
# A decision row: its first _DECISION_TEXTS columns are text, then latency_ms, recorded_at, count, shadow.
_DECISION_TEXTS = 14
assert COLUMN_NAMES["decisions"][_DECISION_TEXTS:] == ("latency_ms", "recorded_at", "count", "shadow")
_DECISION_TEXT_CAPS = tuple(DECISION_CAPS[name] for name in COLUMN_NAMES["decisions"][:_DECISION_TEXTS])


def cap_text(value: Any, limit: int) -> str:
    """`value` as text of at most `limit` characters, marked when cut."""
    text = value if type(value) is str else ("" if value is None else str(value))
    if len(text) <= limit:
        return text
    marker = f"…[{len(text)} chars]"
    if len(marker) >= limit:  # no room to mark it (caps are far larger than a marker)
        return text[:limit]
    return text[: limit - len(marker)] + marker


def _fits(texts: tuple[Any, ...]) -> bool:
    """True when every value is text short enough for any cap (one C-level pass: the usual row)."""
    try:
        return max(map(len, texts)) <= _FITS
    except TypeError:  # not all text: the slow path makes it text
        return False


def request_entry(record: RequestRecord, content_chars: int) -> Entry:
    """The queued row of a finished request (a snapshot: later changes to `record` are not seen),
    every text within its cap, stored prompt and answer within `content_chars` each."""
    values = _record_values(record)
    prompt, answer = values[_PROMPT], values[_ANSWER]
    if (
        _fits(_request_texts(values))
        and (prompt is None or (type(prompt) is str and len(prompt) <= content_chars))
        and (answer is None or (type(answer) is str and len(answer) <= content_chars))
    ):
        return "requests", values
    capped = list(values)
    for index, limit in _REQUEST_CAPPED:
        capped[index] = cap_text(capped[index], limit)
    for index in (_PROMPT, _ANSWER):
        if capped[index] is not None:
            capped[index] = cap_text(capped[index], content_chars)
    return "requests", tuple(capped)


def _decision_entry(values: tuple[Any, ...]) -> Entry:
    """A decision row with every text within its cap."""
    texts = values[:_DECISION_TEXTS]
    try:
        if max(map(len, texts)) <= _FITS:  # the usual row, checked in one C-level pass
            return "decisions", values
    except TypeError:  # not all text: cap_text makes it text
        pass
    capped = tuple(cap_text(text, limit) for text, limit in zip(texts, _DECISION_TEXT_CAPS, strict=True))
    return "decisions", capped + values[_DECISION_TEXTS:]


def _row(context: RequestContext, decision: Decision, now: float) -> Entry:
    return _decision_entry((
        decision.decision_id, context.request_id, context.tenant_id, context.session_id, context.agent_id,
        context.provider, context.operation, context.exchange.model, decision.hook, decision.policy,
        _VERDICT_TEXT[decision.verdict], decision.reason, decision.details, decision.subject, decision.latency_ms,
        now, 1, decision.shadow,
    ))


def _subjects(members: list[Decision]) -> str:
    """The distinct subjects of folded decisions, listed up to a length, then how many more."""
    shown: list[str] = []
    seen: set[str] = set()
    length = 0
    for member in members:
        subject = member.subject
        if not subject or subject in seen:
            continue
        seen.add(subject)
        if length < _SUBJECTS_SHOWN:
            name = cap_text(subject, 64)
            shown.append(name)
            length += len(name) + 2
    text = ", ".join(shown)
    if len(seen) > len(shown):
        text += f" … (+{len(seen) - len(shown)} more)"
    return cap_text(text, DECISION_CAPS["subject"])


def _folded_row(context: RequestContext, members: list[Decision], now: float) -> Entry:
    if len(members) == 1:
        return _row(context, members[0], now)
    first = members[0]
    details = f"{len(members)} {first.verdict.value} decisions of this policy on this hook, folded into one row"
    reasons = {member.reason for member in members}
    if len(reasons) > 1:
        details += f" ({len(reasons)} different reasons; the first one is shown)"
    return _decision_entry((
        first.decision_id, context.request_id, context.tenant_id, context.session_id, context.agent_id,
        context.provider, context.operation, context.exchange.model, first.hook, first.policy,
        first.verdict.value, first.reason, details, _subjects(members),
        sum(member.latency_ms for member in members), now, len(members), first.shadow,
    ))


def _fold(context: RequestContext, decisions: list[Decision], budget: int) -> tuple[list[Entry], int]:
    """The rows for `decisions`, and how many of the `budget` of individual non-ALLOW rows they used."""
    now = time.time()
    if len(decisions) == 1:  # the usual case: one policy on one hook
        only = decisions[0]
        return [_row(context, only, now)], 0 if only.verdict is Verdict.ALLOW else 1
    notable = [decision for decision in decisions if decision.verdict is not Verdict.ALLOW]
    if len(notable) <= budget:
        kept = notable
    else:
        governing = strictest(notable)
        ranked = sorted(notable, key=lambda decision: -decision.severity)  # stable: earliest first among equals
        kept = [governing] if governing is not None else []
        kept += [decision for decision in ranked if decision is not governing][: max(0, budget - 1)]
    kept_ids = {id(decision) for decision in kept}
    order: list[Decision | tuple[str, str, Verdict, bool]] = []
    groups: dict[tuple[str, str, Verdict, bool], list[Decision]] = {}
    for decision in decisions:
        if id(decision) in kept_ids:
            order.append(decision)
            continue
        key = (decision.hook, decision.policy, decision.verdict, decision.shadow)
        members = groups.get(key)
        if members is None:
            groups[key] = [decision]
            order.append(key)
        else:
            members.append(decision)
    entries = [
        _row(context, item, now) if isinstance(item, Decision) else _folded_row(context, groups[item], now)
        for item in order
    ]
    return entries, len(kept)


def decision_entries(context: RequestContext, decisions: list[Decision], max_rows: int) -> list[Entry]:
    """The queued rows for `decisions` taken at one interception point of the request of `context`,
    which may write `max_rows` individual non-ALLOW decision rows in all (see the module doc)."""
    if len(decisions) == 1 and decisions[0].verdict is _ALLOW:  # the usual case: one policy, one hook
        return [_row(context, decisions[0], time.time())]
    scratch = context.scratch
    budget = scratch.get(_ROW_BUDGET, max_rows)
    entries, used = _fold(context, decisions, budget)
    if used:
        scratch[_ROW_BUDGET] = max(0, budget - used)
    return entries
