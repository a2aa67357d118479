"""Verdicts, decisions and the rule that combines them: the strictest verdict wins."""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "CONFIRMATION_VERDICTS",
    "SEVERITY",
    "Decision",
    "Outcome",
    "Verdict",
    "new_decision_id",
    "redaction_failure",
    "sequential_decision_id",
    "strictest",
]


class Verdict(StrEnum):
    """CAPSEM's verdicts plus REDACT (the policy rewrote content instead of blocking)."""

    ALLOW = "ALLOW"
    LOG = "LOG"
    REDACT = "REDACT"
    CONFIRM = "CONFIRM"
    CLARIFY = "CLARIFY"
    REPLAN = "REPLAN"
    BLOCK = "BLOCK"


SEVERITY: dict[Verdict, int] = {
    Verdict.ALLOW: 0,
    Verdict.LOG: 1,
    Verdict.REDACT: 2,
    Verdict.CONFIRM: 3,
    Verdict.CLARIFY: 3,
    Verdict.REPLAN: 3,
    Verdict.BLOCK: 4,
}


CONFIRMATION_VERDICTS = frozenset({Verdict.CONFIRM, Verdict.CLARIFY, Verdict.REPLAN})
# A member read through its Enum class costs a lookup each time (about 0.2 µs on 3.11): the paths
# every request takes compare with this module constant instead.
_ALLOW = Verdict.ALLOW


def new_decision_id() -> str:
    """A short random id naming one decision (shown to callers in `x-capsem-decision-id`)."""
    return os.urandom(8).hex()


_PROCESS_PREFIX = os.urandom(4).hex()
# The process's prefix and a counter in hex: "<prefix>00000001", "<prefix>00000002"… made by C code
# alone (`next` of a `map` over a count), with no Python frame per id.
_SEQUENTIAL_IDS = map((_PROCESS_PREFIX + "{:08x}").format, itertools.count(1))

sequential_decision_id: Callable[[], str] = functools.partial(next, _SEQUENTIAL_IDS)
"""A cheap unique id for ALLOW decisions, which are recorded but never shown or approved."""


@dataclass(slots=True)
class Decision:
    """One policy's verdict on one hook call."""

    verdict: Verdict
    policy: str
    hook: str
    reason: str = "safe"
    details: str = ""
    # What the decision was about, when not the whole request: a tool name, say.
    subject: str = ""
    latency_ms: float = 0.0
    # When the policy was called (time.perf_counter()), to place it on a trace.
    started_at: float = 0.0
    decision_id: str = field(default_factory=new_decision_id)
    extra: dict[str, Any] = field(default_factory=dict)
    # For REDACT: each (original text, replacement) the policy asks for. Kept in memory for the
    # request only; never recorded (the audit keeps the count).
    redactions: list[tuple[str, str]] = field(default_factory=list)
    # Taken by a policy in shadow mode: recorded with its verdict, never enforced.
    shadow: bool = False

    @property
    def severity(self) -> int:
        return SEVERITY[self.verdict]


def strictest(decisions: list[Decision]) -> Decision | None:
    """The decision that governs: the most severe one, the earliest among equals; None if all ALLOW.
    Decisions of shadow policies never govern."""
    governing: Decision | None = None
    for decision in decisions:
        if decision.verdict is _ALLOW or decision.shadow:
            continue
        if governing is None or decision.severity > governing.severity:
            governing = decision
    return governing


@dataclass(slots=True)
class Outcome:
    """Every decision taken at one interception point, and the one that governs."""

    decisions: list[Decision]
    governing: Decision | None
    # False when the configuration treats CONFIRM, CLARIFY and REPLAN as LOG.
    confirmations_hold: bool = True

    @property
    def blocked(self) -> bool:
        """True when the request or answer must not go on (BLOCK, or a confirmation not given)."""
        if self.governing is None:
            return False
        if self.governing.verdict in CONFIRMATION_VERDICTS:
            return self.confirmations_hold
        return self.governing.severity >= SEVERITY[Verdict.BLOCK]

    @property
    def redactions(self) -> list[tuple[str, str]]:
        """Every rewrite asked for by REDACT decisions, longest original first."""
        if self.governing is None:  # all ALLOW (or shadow): nothing a REDACT asked for applies
            return []
        pairs = {
            original: replacement
            for decision in self.decisions
            if decision.verdict is Verdict.REDACT and not decision.shadow
            for original, replacement in decision.redactions
            if original
        }
        if not pairs:  # the usual outcome: no sort to set up
            return []
        return sorted(pairs.items(), key=lambda pair: len(pair[0]), reverse=True)

    @property
    def needs_confirmation(self) -> bool:
        """True when the governing verdict asks a human (CONFIRM, CLARIFY, REPLAN) and that holds."""
        return (
            self.confirmations_hold and self.governing is not None and self.governing.verdict in CONFIRMATION_VERDICTS
        )


def redaction_failure(outcome: Outcome) -> Decision:
    """The BLOCK taken when the text an outcome asked to redact could not be removed."""
    redacting = next(
        decision for decision in outcome.decisions if decision.verdict is Verdict.REDACT and not decision.shadow
    )
    return Decision(
        Verdict.BLOCK, redacting.policy, redacting.hook, reason="redaction_failed",
        details=f"{redacting.details or redacting.reason}; the content could not be redacted",
        subject=redacting.subject,
    )
