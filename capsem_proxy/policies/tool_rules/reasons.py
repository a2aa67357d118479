"""What tool-rules found, and the one decision it makes of it. Reasons name the tool, the rule and
the argument, never an argument's value (it may be a secret)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capsem_proxy.decisions import SEVERITY, Decision
from capsem_proxy.policies.actions import ACTION_VERDICTS

__all__ = ["Violation", "decision_of", "shortened"]

_REASONS = {
    "denied_tool": "unknown_tool",
    "unoffered_tool": "unknown_tool",
    "invalid_arguments": "policy_violation",
    "too_many_calls": "excessive_usage",
    "argument_rule": "high_risk_action",
}
_MAX_NAME_CHARS = 64
_MAX_DETAILS = 3


@dataclass(frozen=True, slots=True)
class Violation:
    """One check that failed: its kind, its configured action and what it says."""

    kind: str
    action: str
    details: str
    rule: str = ""


def shortened(name: Any) -> str:
    """`name` as text, cut to a length a reason can hold."""
    text = str(name)
    return text if len(text) <= _MAX_NAME_CHARS else text[:_MAX_NAME_CHARS] + "..."


def decision_of(violations: list[Violation], policy: str, subject: str) -> Decision:
    """One decision for `violations`: the strictest action governs and its violation is named first."""
    governing = max(violations, key=lambda violation: SEVERITY[ACTION_VERDICTS[violation.action]])
    verdict = ACTION_VERDICTS[governing.action]
    ordered = [governing, *(violation for violation in violations if violation is not governing)]
    return Decision(
        verdict,
        policy,
        "on_tool_call",
        reason=_REASONS[governing.kind],
        details="; ".join(violation.details for violation in ordered[:_MAX_DETAILS]),
        subject=subject,
        extra={
            "kinds": sorted({violation.kind for violation in violations}),
            "rules": [violation.rule for violation in violations if violation.rule],
        },
    )
