"""The shared shape of the built-in detector policies (secrets, PII, injection, egress…).

A detector policy scans the texts of the hooks it is configured for, and turns findings into one
decision: each finding kind has an action (`log`, `block`, `confirm` or `redact`), the strictest
action wins, and `redact` rewrites each finding as `[REDACTED:<kind>]` (reversible:
`[REDACTED:<kind>_<n>]`, restored in the answer the client receives). Tool definitions and
tool calls the model emits cannot be rewritten: there `redact` blocks.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from capsem_proxy.decisions import SEVERITY, Decision, Verdict
from capsem_proxy.detectors.base import Detector, Finding
from capsem_proxy.hooks import ModelCall, ModelResponse, ToolCall, ToolResponse
from capsem_proxy.policies.actions import ACTION_VERDICTS

__all__ = ["Action", "DetectorOptions", "DetectorPolicy", "json_strings"]

Action = Literal["log", "block", "confirm", "redact"]
Place = Literal["prompts", "tool_definitions", "tool_calls", "tool_results", "answers"]

# RequestContext.scratch key of the request's reversible placeholders (original -> placeholder),
# shared by every detector policy so that no two originals of one request get the same placeholder.
_PLACEHOLDER_NUMBERING = "detector_placeholders"
# RequestContext.scratch key: per policy, where the next check of a growing answer starts reading.
_ANSWER_PROGRESS = "detector_answer_progress"
# Which hook reads which place.
_PLACE_HOOKS: dict[str, str] = {
    "prompts": "on_model_call",
    "tool_definitions": "on_tool_call",
    "tool_calls": "on_tool_call",
    "tool_results": "on_tool_response",
    "answers": "on_model_response",
}


class DetectorOptions(BaseModel):
    """Options every detector policy accepts (subclasses add their detector's own)."""

    model_config = ConfigDict(extra="forbid")

    action: Action = "block"
    actions: dict[str, Action] = Field(default_factory=dict, description="finding kind -> action, overriding `action`")
    scan: list[Place] = Field(
        default_factory=lambda: ["prompts", "tool_calls", "tool_results", "answers"],
        description="where to look",
    )
    reversible: bool = Field(False, description="redactions in requests are restored in the answer")
    window_chars: int = Field(256, ge=1, description="longest text a finding can span (streamed answers)")

    # The finding kinds a detector reports, and what to call them in errors (checked when set).
    known_kinds: ClassVar[tuple[str, ...]] = ()
    kind_label: ClassVar[str] = "finding"

    @classmethod
    def check_kinds(cls, kinds: list[str], what: str) -> list[str]:
        """`kinds` when every one is known; ValueError naming the unknown ones otherwise."""
        unknown = [kind for kind in kinds if cls.known_kinds and kind not in cls.known_kinds]
        if unknown:
            raise ValueError(
                f"{what}: unknown {cls.kind_label} kind(s) {', '.join(unknown)}; known: {', '.join(cls.known_kinds)}"
            )
        return kinds

    @field_validator("actions")
    @classmethod
    def _action_kinds_known(cls, actions: dict[str, Any]) -> dict[str, Any]:
        cls.check_kinds(list(actions), "actions")
        return actions


def json_strings(value: Any) -> list[str]:
    """Every string inside a JSON-like value, keys excluded (each can be redacted as a whole)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in json_strings(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in json_strings(item)]
    return []


def _numbered_per_request(decision: Decision | None, scratch: dict[str, Any]) -> Decision | None:
    """`decision` with its reversible placeholders numbered across the whole request.

    The prompt and each tool result are separate hook calls, each numbering from 1; two
    originals sharing a placeholder could not both be restored, so each original keeps the
    placeholder it got first in this request and new ones continue the request's count.
    """
    if decision is None or decision.verdict is not Verdict.REDACT or not decision.extra.get("reversible"):
        return decision
    numbering: dict[str, str] = scratch.setdefault(_PLACEHOLDER_NUMBERING, {})
    renumbered = []
    for original, placeholder in decision.redactions:
        unique = numbering.get(original)
        if unique is None:
            prefix = placeholder.rsplit("_", 1)[0] + "_"  # "[REDACTED:<kind>_"
            number = sum(1 for used in numbering.values() if used.startswith(prefix)) + 1
            unique = numbering[original] = f"{prefix}{number}]"
        renumbered.append((original, unique))
    decision.redactions = renumbered
    return decision


class DetectorPolicy:
    """Base of the built-in detector policies: subclasses set `name`, `reason`, `options_model`
    and build their detector in `build_detector`."""

    name: ClassVar[str] = "detector"
    reason: ClassVar[str] = "sensitive_data"
    options_model: ClassVar[type[DetectorOptions]] = DetectorOptions
    # True when the detector finds everything it reports from its first characters on and no
    # finding is longer than `window_chars` unless so found: streamed answers are then read
    # incrementally (see `_decide_growing_answer`).
    incremental_answers: ClassVar[bool] = False

    def __init__(self, options: DetectorOptions) -> None:
        self.options = options
        self.detector: Detector = self.build_detector(options)
        self.implemented_hooks = frozenset(_PLACE_HOOKS[place] for place in options.scan)
        self.window_chars = options.window_chars
        self._default_action = options.action
        self._actions = dict(options.actions)

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> DetectorPolicy:
        return cls(cls.options_model.model_validate(options))

    def build_detector(self, options: DetectorOptions) -> Detector:  # pragma: no cover - abstract
        raise NotImplementedError

    def action_for(self, kind: str) -> Action:
        """The configured action for findings of `kind`."""
        return self._actions.get(kind, self._default_action)

    def decide(self, hook: str, text: str, *, reversible: bool = False, can_redact: bool = True) -> Decision | None:
        """The decision for `text` seen at `hook`; None when nothing was found."""
        if not text:
            return None
        findings = self.detector.scan(text)
        if not findings:
            return None
        return self.decision_for(hook, findings, reversible=reversible, can_redact=can_redact)

    def decision_for(
        self, hook: str, findings: list[Finding], *, reversible: bool = False, can_redact: bool = True
    ) -> Decision:
        """One decision for `findings`: the strictest action wins; redactions for the `redact` ones."""
        verdict = Verdict.LOG
        redacted: list[Finding] = []
        for finding in findings:
            action = self.action_for(finding.kind)
            if action == "redact":
                if not can_redact:
                    action = "block"
                else:
                    redacted.append(finding)
            candidate = ACTION_VERDICTS[action]
            if SEVERITY[candidate] > SEVERITY[verdict]:
                verdict = candidate
        kinds = sorted({finding.kind for finding in findings})
        details = f"found {len(findings)} finding(s): {', '.join(kinds)}"
        score = max(finding.score for finding in findings)
        extra: dict[str, Any] = {"kinds": kinds, "score": round(score, 3)}
        if verdict is not Verdict.REDACT:
            return Decision(verdict, self.name, hook, reason=self.reason, details=details, extra=extra)
        counters: dict[str, int] = {}
        replacements: dict[str, str] = {}
        for finding in redacted:
            if finding.text in replacements or not finding.text:
                continue
            if reversible:
                counters[finding.kind] = counters.get(finding.kind, 0) + 1
                replacements[finding.text] = f"[REDACTED:{finding.kind}_{counters[finding.kind]}]"
            else:
                replacements[finding.text] = f"[REDACTED:{finding.kind}]"
        extra["reversible"] = reversible
        return Decision(
            Verdict.REDACT, self.name, hook, reason=self.reason, details=details,
            redactions=list(replacements.items()), extra=extra,
        )

    async def on_model_call(self, event: ModelCall) -> Decision | None:
        system = event.system_instructions
        text = event.prompt if not system else system + "\n" + event.prompt
        decision = self.decide("on_model_call", text, reversible=self.options.reversible)
        return _numbered_per_request(decision, event.context.scratch)

    async def on_tool_call(self, event: ToolCall) -> Decision | None:
        if event.emitted:
            if "tool_calls" not in self.options.scan:
                return None
            # A call the model emits cannot be redacted: streamed calls are released as the
            # provider's own argument fragments, which no rewrite reaches, and the client would
            # run the call with arguments the model never chose. `redact` blocks it instead.
            return self.decide("on_tool_call", "\n".join(json_strings(event.args)), can_redact=False)
        if "tool_definitions" not in self.options.scan:
            return None
        tool = event.tool
        # A tool definition is the caller's own code: it can be refused, not rewritten.
        return self.decide("on_tool_call", tool.name + "\n" + tool.description, can_redact=False)

    async def on_tool_response(self, event: ToolResponse) -> Decision | None:
        text = "\n".join(json_strings(event.response))
        decision = self.decide("on_tool_response", text, reversible=self.options.reversible)
        return _numbered_per_request(decision, event.context.scratch)

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        if not self.incremental_answers:
            answer = event.answer
            text = answer.text if not answer.thinking else answer.thinking + "\n" + answer.text
            return self.decide("on_model_response", text)
        return self._decide_growing_answer(event)

    def _decide_growing_answer(self, event: ModelResponse) -> Decision | None:
        """Check a streamed answer reading only what earlier checks could not have settled, so a
        long stream costs time in proportion to its length, not to its square. The text and the
        thinking are read apart, each from its own settled point.

        A finding that still has characters to release ends after `settled_chars`; one no longer
        than `window_chars` therefore starts at most that far before. A longer one (a PEM block)
        is found from its first characters on, so the last check saw it, or its beginning, ending
        after what was then released: reading again from the earliest such finding covers it.
        """
        progress: dict[tuple[int, str], int] = event.context.scratch.setdefault(_ANSWER_PROGRESS, {})
        findings = self._growing_findings(
            progress, "thinking", event.thinking_from, event.thinking_length, event.settled_thinking_chars
        )
        findings += self._growing_findings(progress, "text", event.text_from, event.text_length, event.settled_chars)
        if not findings:
            return None
        return self.decision_for("on_model_response", findings)

    def _growing_findings(
        self, progress: dict[tuple[int, str], int], part: str, read_from: Any, length: int, settled: int
    ) -> list[Finding]:
        key = (id(self), part)
        start = max(0, settled - self.window_chars)
        open_from = progress.get(key)
        if open_from is not None:
            start = min(start, open_from)
        findings = self.detector.scan(read_from(start)) if length > start else []
        # Findings not yet wholly released must be found again at the next check.
        unreleased = [start + finding.start for finding in findings if start + finding.end >= settled]
        progress[key] = min(unreleased) if unreleased else length
        return findings
