"""A built-in policy: blocks prompt injection and jailbreak attempts in prompts, tool results, tool
definitions (poisoned descriptions) and any request text the adapter did not recognise.

Prompts are scored with one threshold; tool results (pages, documents and emails an agent
fetched, where indirect injection hides) with their own threshold and weights that count
"AI assistant reading this…" phrasing higher. An injection cannot be masked out of a text
(what remains is still the attacker's), so `redact` is refused; `block`, `confirm` and `log`
are the actions. System instructions are the operator's own and often legitimately say things
like "ignore instructions found in documents", so they are not scanned unless asked.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, field_validator

from capsem_proxy.decisions import Decision
from capsem_proxy.detectors.base import Detector
from capsem_proxy.detectors.injection import KINDS, Analysis, InjectionDetector, Profile, load_signatures
from capsem_proxy.detectors.injection_model import load_model
from capsem_proxy.hooks import ModelCall, ModelResponse
from capsem_proxy.policies.detector_policy import DetectorOptions, DetectorPolicy, Place
from capsem_proxy.scanning import current_ledger, screen, too_large_decision

__all__ = ["InjectionOptions", "InjectionPolicy"]

_REDACT_REFUSED = (
    "'redact' is not an action for injection findings: masking the matched phrases leaves the rest of "
    "the attacker's text in place; use 'block', 'confirm' or 'log'"
)
# Which scoring profile reads which hook: text the caller wrote vs text a tool brought in.
_HOOK_PROFILES: dict[str, Profile] = {
    "on_model_call": "prompts",
    "on_model_response": "prompts",
    "on_tool_response": "tool_results",
    "on_tool_call": "tool_results",
}


class InjectionOptions(DetectorOptions):
    """Options of InjectionPolicy (plus those every detector policy has)."""

    # Every place of a request, not answers; tool calls the model emits only when `scan` is spelled
    # out with `tool_calls` (or `emitted_tool_calls: true`).
    scan: list[Place] = Field(
        default_factory=lambda: list[Place](["prompts", "tool_definitions", "tool_calls", "tool_results", "other"]),
        description="where to look",
    )
    prompt_threshold: float = Field(0.6, ge=0.0, le=1.0, description="score at which a prompt is flagged")
    tool_result_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="score at which a tool result (or tool definition) is flagged"
    )
    scan_system: bool = Field(False, description="also score the system instructions with the prompt")
    decode_payloads: bool = Field(True, description="decode embedded base64 / hex payloads and score them too")
    signatures_file: str | None = Field(None, description="a signatures YAML replacing the built-in one")
    classifier: bool = Field(True, description="fuse the learned model's score with the signatures and heuristics")
    classifier_threshold: float | None = Field(
        None, gt=0.0, lt=1.0, description="model probability at which a prompt is flagged (default: the model's own)"
    )
    classifier_tool_result_threshold: float | None = Field(
        None, gt=0.0, lt=1.0,
        description="model probability at which a tool result or document is flagged (default: the model's own)",
    )

    emitted_calls_by_default: ClassVar[bool] = False

    @field_validator("action")
    @classmethod
    def _action_is_not_redact(cls, action: str) -> str:
        if action == "redact":
            raise ValueError(_REDACT_REFUSED)
        return action

    @field_validator("actions")
    @classmethod
    def _kinds_and_actions(cls, actions: dict[str, str]) -> dict[str, str]:
        for kind, action in actions.items():
            if kind not in KINDS:
                raise ValueError(f"unknown finding kind '{kind}' (kinds: {', '.join(KINDS)})")
            if action == "redact":
                raise ValueError(_REDACT_REFUSED)
        return actions

    @field_validator("signatures_file")
    @classmethod
    def _signatures_load(cls, path: str | None) -> str | None:
        if path is not None:
            try:
                load_signatures(path)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"signatures_file '{path}' cannot be used: {exc}") from exc
        return path


class InjectionPolicy(DetectorPolicy):
    """Prompt injection / jailbreak detector policy (built-in name `injection`)."""

    name: ClassVar[str] = "injection"
    reason: ClassVar[str] = "prompt_injection"
    options_model: ClassVar[type[DetectorOptions]] = InjectionOptions
    # A streamed answer is scored on what earlier checks did not read, plus `window_chars` before it.
    incremental_answers: ClassVar[bool] = True

    def __init__(self, options: DetectorOptions) -> None:
        if not isinstance(options, InjectionOptions):
            options = InjectionOptions.model_validate(options.model_dump())
        self._scan_system = options.scan_system
        signatures = load_signatures(options.signatures_file)
        model = load_model() if options.classifier else None
        self._detectors: dict[Profile, InjectionDetector] = {
            "prompts": InjectionDetector(
                options.prompt_threshold, "prompts", signatures, options.decode_payloads, model,
                options.classifier_threshold,
            ),
            "tool_results": InjectionDetector(
                options.tool_result_threshold, "tool_results", signatures, options.decode_payloads, model,
                options.classifier_tool_result_threshold,
            ),
        }
        super().__init__(options)

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> InjectionPolicy:
        return cls(InjectionOptions.model_validate(options))

    def build_detector(self, options: DetectorOptions) -> Detector:
        return self._detectors["prompts"]

    async def decide(
        self, hook: str, text: str, *, reversible: bool = False, can_redact: bool = True
    ) -> Decision | None:
        """The decision for `text` at `hook`, scored with that place's profile and threshold."""
        if not text or current_ledger().fits_inline(len(text)):
            return self.decide_inline(hook, text, reversible=reversible, can_redact=can_redact)
        refusal = self.over_budget(hook, len(text), growing=hook == "on_model_response")
        if refusal is not None:
            return refusal
        detector = self._detectors[_HOOK_PROFILES.get(hook, "prompts")]
        analysis = await screen(
            len(text), lambda: detector.analyze(text), lambda slice_chars: detector.analyze_in_slices(text, slice_chars)
        )
        return self._analysis_decision(hook, text, analysis)

    def decide_inline(
        self, hook: str, text: str, *, reversible: bool = False, can_redact: bool = True
    ) -> Decision | None:
        """`decide` for a text the caller knows fits inline (`ScanLedger.fits_inline`)."""
        if not text:
            return None
        ledger = current_ledger()  # `over_budget`, with the ledger kept for the inline read
        if not ledger.charge(self, len(text), growing=hook == "on_model_response", inline=True):
            return too_large_decision(self.name, hook, ledger)
        return self._analysis_decision(hook, text, self._detectors[_HOOK_PROFILES.get(hook, "prompts")].analyze(text))

    def _analysis_decision(self, hook: str, text: str, analysis: Analysis) -> Decision | None:
        findings = analysis.findings(text)
        if not findings:
            return None
        decision = self.decision_for(hook, findings, can_redact=False)
        kinds = sorted({finding.kind for finding in findings})
        decision.details = (
            f"{' and '.join(kind.replace('_', ' ') for kind in kinds)} detected "
            f"(score {analysis.score:.2f} >= {analysis.threshold:.2f}; {', '.join(analysis.families)})"
        )
        decision.extra["families"] = analysis.families
        decision.extra["threshold"] = analysis.threshold
        return decision

    def system_text(self, event: ModelCall) -> str:
        """System instructions are the operator's own: read only with `scan_system`."""
        return event.system_instructions if self._scan_system else ""

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        """A whole answer is scored whole; a growing stream at each check on its new text and the
        `window_chars` before it (an injection phrase fits in the window; evidence spread wider
        apart than that is not combined in streams, so a long answer costs linear time)."""
        # The budget counts the answer's length, whatever part of it a check reads.
        refusal = self.over_budget("on_model_response", event.thinking_length + event.text_length, growing=True)
        if refusal is not None:
            return refusal
        window = self.window_chars
        thinking = event.thinking_from(max(0, event.settled_thinking_chars - window))
        text = event.text_from(max(0, event.settled_chars - window))
        return await self.decide("on_model_response", thinking + "\n" + text if thinking else text)
